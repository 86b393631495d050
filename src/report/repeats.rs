//! Levels run `--repeat N` times: their runs found again by `params.repeat`, and each
//! catalogue metric over them as a mean with a 95 % Student-t interval and the
//! coefficient of variation (`metrics::confidence`). The session prints a level's
//! table after its last repeat; `report DIR` recomputes them from the saved runs.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use super::compare::shown;
use super::document::{RepeatInterval, RepeatsDoc, SavedRun};
use super::page::num;
use crate::metrics::catalogue::{self, Metric, Read, Stat, Unit};
use crate::metrics::confidence::MeanInterval;
use crate::metrics::ordered_map::OrderedMap;

/// The label of repeat `k` of `n` of a level: "concurrency 8 · rep 2/3".
pub fn label(level: &str, k: u32, n: u32) -> String {
    format!("{level} · rep {k}/{n}")
}

/// A run's level and which repeat of how many it is; `None` for a run not repeated.
pub fn level_of(run: &SavedRun) -> Option<(&str, u32, u32)> {
    let (k, n) = (run.params.repeat?, run.params.repeats?);
    // An --append suffix (" #2") may follow the repeat's own.
    let level = run.label.rsplit_once(" · rep ").map(|(l, _)| l)?;
    Some((level, k, n))
}

/// One level's repeats and every metric over its complete runs.
#[derive(Clone, Debug)]
pub struct RepeatLevel {
    pub level: String,
    pub runs: Vec<String>,
    /// Catalogue metrics every complete run has, in catalogue order.
    pub metrics: Vec<(&'static Metric, MeanInterval)>,
    /// The first run's load settings (the repeats share them but for their number).
    pub params: super::document::RunParams,
}

/// Runs of repeated levels, grouped: a group is a level's runs in a row, numbered
/// from repeat 1 up (so a level appended again later is a group of its own).
fn groups(runs: &[SavedRun]) -> Vec<(&str, Vec<&SavedRun>)> {
    let mut out: Vec<(&str, Vec<&SavedRun>)> = Vec::new();
    let mut last: Option<(&str, u32)> = None;
    for run in runs {
        let Some((level, k, _)) = level_of(run) else {
            last = None;
            continue;
        };
        match (out.last_mut(), last) {
            (Some((l, v)), Some((prev, pk))) if *l == level && prev == level && k == pk + 1 => {
                v.push(run)
            }
            _ => out.push((level, vec![run])),
        }
        last = Some((level, k));
    }
    out
}

impl RepeatLevel {
    /// `None` under two complete runs: no spread to measure.
    fn of(level: &str, runs: &[&SavedRun]) -> Option<RepeatLevel> {
        let done: Vec<&&SavedRun> = runs.iter().filter(|r| r.is_complete()).collect();
        if done.len() < 2 {
            return None;
        }
        let metrics = catalogue::all()
            .filter_map(|m| {
                let values: Option<Vec<f64>> = done.iter().map(|r| m.value(&r.summary)).collect();
                Some((m, MeanInterval::of(&values?)?))
            })
            .collect();
        Some(RepeatLevel {
            level: level.to_string(),
            runs: done.iter().map(|r| r.label.clone()).collect(),
            metrics,
            params: done[0].params.clone(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&MeanInterval> {
        self.metrics
            .iter()
            .find(|(m, _)| m.key == key)
            .map(|(_, i)| i)
    }

    /// The terminal table: the key metrics (throughput, shares, p50 and p99 latencies).
    pub fn render(&self) -> String {
        let mut t = Table::new();
        t.load_style(UTF8_FULL_CONDENSED);
        t.set_header(vec!["", "mean", "95% CI", "±", "CV"]);
        for (m, i) in self.metrics.iter().filter(|(m, _)| key_metric(m)) {
            let half = (i.ci95[1] - i.ci95[0]) / 2.0;
            t.add_row(vec![
                m.label.to_string(),
                shown(m, Some(i.mean)),
                format!(
                    "{} – {}",
                    shown(m, Some(i.ci95[0])),
                    shown(m, Some(i.ci95[1]))
                ),
                match (m.unit, i.mean) {
                    (Unit::Share, _) => format!("{:.1} pt", half * 100.0),
                    (_, mean) if mean != 0.0 => format!("{:.1}%", half / mean.abs() * 100.0),
                    _ => num(half),
                },
                i.cv.map_or("-".into(), |cv| format!("{:.1}%", cv * 100.0)),
            ]);
        }
        for c in 1..5 {
            if let Some(col) = t.column_mut(c) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        format!(
            "── {}: {} repeats ──\n{t}\nmean over the repeats; 95% CI = mean ± t(0.975, n−1)·s/√n; CV = s/mean\n",
            self.level,
            self.runs.len()
        )
    }

    pub fn to_doc(&self) -> RepeatsDoc {
        RepeatsDoc {
            level: self.level.clone(),
            runs: self.runs.clone(),
            metrics: OrderedMap(
                self.metrics
                    .iter()
                    .map(|(m, i)| {
                        let saved = RepeatInterval {
                            mean: i.mean,
                            ci95: i.ci95,
                            cv: i.cv,
                            n: i.n,
                        };
                        (m.key.to_string(), saved)
                    })
                    .collect(),
            ),
        }
    }
}

/// The metrics the table shows: throughput, shares, and p50 and p99 of the latencies.
/// Every metric is saved.
fn key_metric(m: &Metric) -> bool {
    match m.read {
        Read::Stat(_, Stat::P(p)) => p == 50.0 || p == 99.0,
        Read::Stat(_, Stat::Mean) => false,
        Read::Value(_) => m.unit != Unit::Requests,
    }
}

/// Every repeated level of `runs` with two complete runs or more, in run order.
pub fn repeat_levels(runs: &[SavedRun]) -> Vec<RepeatLevel> {
    groups(runs)
        .into_iter()
        .filter_map(|(level, g)| RepeatLevel::of(level, &g))
        .collect()
}

/// After the last run of `runs` (just finished): its level's figures when it was the
/// level's last repeat.
pub fn finished_level(runs: &[SavedRun]) -> Option<RepeatLevel> {
    let (_, k, n) = level_of(runs.last()?)?;
    if k != n {
        return None;
    }
    let (level, g) = groups(runs).pop()?;
    RepeatLevel::of(level, &g)
}

/// The `repeats` of results.json; `None` when no level was repeated.
pub fn to_docs(levels: &[RepeatLevel]) -> Option<Vec<RepeatsDoc>> {
    (!levels.is_empty()).then(|| levels.iter().map(RepeatLevel::to_doc).collect())
}

#[cfg(test)]
#[path = "tests_repeats.rs"]
mod tests;
