//! `servescope capacity`: the largest load that meets an SLO. A [`Planner`] that runs
//! ordinary concurrency or rate runs ("probes") chosen by the [`search`] state machine
//! from the attainment of those before, keeps the `capacity` object of results.json up
//! to date after every probe, and prints the answer ([`answer`]). [`reanalysis`] judges
//! the saved probes again under another SLO (`report DIR --slo --attainment`).

pub mod answer;
pub mod reanalysis;
pub mod search;

use crate::metrics::slo::Slo;
use crate::report::document::{ResultsDoc, RunMode, SavedRun};
use crate::session::RunPlan;
use crate::session::planner::Planner;
use crate::settings::{CapacityBy, CapacitySettings, Rate, RateSettings, StartSettings};
use search::{Observation, Search, SearchConfig};

/// The search as a session planner.
pub struct CapacityPlanner {
    settings: CapacitySettings,
    slo: Slo,
    seed: u64,
    /// Warm-up and ramp-up, as for any run.
    start: StartSettings,
    search: Search,
    /// The run label of each probe recorded, in order.
    runs: Vec<String>,
}

impl CapacityPlanner {
    pub fn new(
        settings: CapacitySettings,
        slo: Slo,
        seed: u64,
        start: StartSettings,
    ) -> CapacityPlanner {
        let search = Search::new(SearchConfig {
            min: settings.min,
            max: settings.max,
            resolution: settings.resolution,
            integer: settings.by == CapacityBy::Concurrency,
            confirm: settings.confirm,
            target: settings.attainment,
        });
        CapacityPlanner {
            settings,
            slo,
            seed,
            start,
            search,
            runs: Vec::new(),
        }
    }

    /// The run of probe `index` at `level`: an ordinary concurrency or rate run, with
    /// the session's warm-up and ramp-up.
    fn plan(&self, level: f64, index: usize) -> RunPlan {
        let s = &self.settings;
        let mut plan = match s.by {
            CapacityBy::Concurrency => {
                let c = level as usize;
                // At least two requests per slot, so the level is held, not just reached.
                let n = s.num_requests.max(2 * c);
                // Unless told otherwise, one request per slot warms the level up first, so
                // measured requests meet a server already at that load.
                let mut start = self.start;
                if start.warmup.is_none() && start.warmup_s.is_none() {
                    start.warmup = Some(c);
                }
                crate::commands::starting(crate::commands::concurrency(&[c], n), &start)
            }
            CapacityBy::Rate => {
                let rate = RateSettings {
                    rates: vec![Rate(Some(level))],
                    burstiness: s.burstiness,
                    duration_s: s.duration_s,
                    span: s.span,
                    max_concurrency: s.max_concurrency,
                };
                crate::commands::rate(&rate, &self.start, self.seed.wrapping_add(index as u64))
            }
        }
        .pop()
        .expect("one plan per probe");
        plan.label = format!("capacity · {} {}", s.by.as_str(), answer::level_text(level));
        plan.params.capacity_probe = Some(true);
        plan
    }
}

/// A finished run as the search sees it: met / sent under the session's SLO.
pub fn observe(run: &SavedRun) -> Observation {
    let s = &run.summary;
    Observation {
        sent: s.total,
        met: s.goodput.as_ref().map_or(0, |g| g.met),
        complete: run.is_complete(),
    }
}

impl Planner for CapacityPlanner {
    fn mode(&self) -> Option<RunMode> {
        Some(match self.settings.by {
            CapacityBy::Concurrency => RunMode::Concurrency,
            CapacityBy::Rate => RunMode::Rate,
        })
    }

    fn next(&mut self, done: &[SavedRun]) -> Option<RunPlan> {
        if done.len() > self.runs.len()
            && let Some(run) = done.last()
        {
            self.search.record(observe(run));
            self.runs.push(run.label.clone());
        }
        let level = self.search.next_level()?;
        Some(self.plan(level, self.runs.len()))
    }

    fn annotate(&self, doc: &mut ResultsDoc) {
        doc.capacity = Some(answer::to_doc(
            &self.search,
            &self.runs,
            &self.settings,
            &self.slo,
        ));
    }

    fn conclude(&self, done: &[SavedRun]) {
        let doc = answer::to_doc(&self.search, &self.runs, &self.settings, &self.slo);
        outln!("{}", answer::render(&doc, done));
    }
}

#[cfg(test)]
#[path = "tests_search.rs"]
mod tests_search;

#[cfg(test)]
#[path = "tests_cli.rs"]
mod tests_cli;
