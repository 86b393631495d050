//! `servescope capacity`: the largest load that meets an SLO. A [`Planner`] that runs
//! ordinary concurrency or rate runs ("probes") chosen by the [`search`] state machine
//! from the attainment of those before, keeps the `capacity` object of results.json up
//! to date after every probe, and prints the answer ([`answer`]). [`reanalysis`] judges
//! the saved probes again under another SLO (`report DIR --slo --attainment`).

pub mod answer;
pub mod reanalysis;
pub mod search;

use std::sync::Arc;

use crate::metrics::slo::Slo;
use crate::report::document::{ResultsDoc, RunMode, RunParams, SavedRun};
use crate::schedule::arrivals::rate_arrivals;
use crate::schedule::{Arrivals, Load};
use crate::session::RunPlan;
use crate::session::planner::Planner;
use crate::settings::{CapacityBy, CapacitySettings};
use search::{Observation, Search, SearchConfig};

/// The search as a session planner.
pub struct CapacityPlanner {
    settings: CapacitySettings,
    slo: Slo,
    seed: u64,
    search: Search,
    /// The run label of each probe recorded, in order.
    runs: Vec<String>,
}

impl CapacityPlanner {
    pub fn new(settings: CapacitySettings, slo: Slo, seed: u64) -> CapacityPlanner {
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
            search,
            runs: Vec::new(),
        }
    }

    /// The run of probe `index` at `level`.
    fn plan(&self, level: f64, index: usize) -> RunPlan {
        let s = &self.settings;
        let label = format!("capacity · {} {}", s.by.as_str(), answer::level_text(level));
        match s.by {
            CapacityBy::Concurrency => {
                let c = level as usize;
                // At least two requests per slot, so the level is held, not just reached.
                let n = s.num_requests.max(2 * c);
                RunPlan {
                    label,
                    mode: RunMode::Concurrency,
                    params: RunParams {
                        concurrency: Some(c),
                        num_requests: Some(n),
                        capacity_probe: Some(true),
                        ..RunParams::default()
                    },
                    load: Load::ClosedLoop { concurrency: c },
                    requests: n,
                    ..RunPlan::default()
                }
            }
            CapacityBy::Rate => {
                let seed = self.seed.wrapping_add(index as u64);
                let offsets = rate_arrivals(Some(level), s.burstiness, s.span, seed);
                RunPlan {
                    label,
                    mode: RunMode::Rate,
                    params: RunParams {
                        rate: Some(Some(level)),
                        burstiness: Some(s.burstiness),
                        num_requests: Some(offsets.len()),
                        duration_s: Some(s.duration_s),
                        max_concurrency: Some(s.max_concurrency),
                        capacity_probe: Some(true),
                        ..RunParams::default()
                    },
                    requests: offsets.len(),
                    load: Load::OpenLoop {
                        at: Arrivals::Offsets(Arc::new(offsets)),
                        cap: s.max_concurrency,
                    },
                    ..RunPlan::default()
                }
            }
        }
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
