//! `compare` of levels repeated on both sides (`--repeat`): each metric's mean over the
//! repeats, better or worse only when A's and B's 95 % intervals do not overlap, else
//! noise. Levels repeated on one side only, and single runs, keep the ±noise band.

use super::compare::{DecidedBy, Row, RunComparison, Verdict, shown, verdict};
use super::document::SavedRun;
use super::repeats::{RepeatLevel, repeat_levels};
use crate::metrics::catalogue::{Better, Metric};
use crate::metrics::confidence::MeanInterval;

/// Appended to the rule when some level was decided by its intervals.
pub const INTERVAL_RULE: &str = " Levels repeated on both sides (--repeat) compare the means of their repeats instead: \
better or worse only when the two 95% intervals do not overlap, else noise.";

/// The verdict for B against A from their intervals.
pub fn interval_verdict(a: &MeanInterval, b: &MeanInterval, better: Better) -> Verdict {
    if !a.apart(b) {
        return Verdict::Noise;
    }
    // Apart: the means differ, and the direction decides (no band left to apply).
    verdict(Some(a.mean), Some(b.mean), better, 0.0)
}

fn row(metric: &'static Metric, a: &MeanInterval, b: &MeanInterval) -> Row {
    Row {
        metric,
        a: Some(a.mean),
        b: Some(b.mean),
        ratio: (a.mean != 0.0).then(|| b.mean / a.mean),
        verdict: interval_verdict(a, b, metric.better),
        ci: Some([a.ci95, b.ci95]),
    }
}

/// One level on both sides: every metric both have intervals for.
fn level_comparison(a: &RepeatLevel, b: &RepeatLevel) -> RunComparison {
    let rows = a
        .metrics
        .iter()
        .filter_map(|(m, ia)| Some(row(m, ia, b.get(m.key)?)))
        .collect();
    RunComparison {
        label: format!(
            "{}: {} repeats in A, {} in B",
            a.level,
            a.runs.len(),
            b.runs.len()
        ),
        modes_differ: None,
        workload_differs: super::compare::workload_differs(&a.params, &b.params),
        rows,
        decided_by: DecidedBy::Intervals {
            a: a.runs.len(),
            b: b.runs.len(),
        },
    }
}

/// The comparisons of the levels repeated on both sides, and the labels of their runs
/// (on either side), which are then not compared one by one.
pub fn repeated_levels(a: &[SavedRun], b: &[SavedRun]) -> (Vec<RunComparison>, Vec<String>) {
    let (la, lb) = (repeat_levels(a), repeat_levels(b));
    let mut out = Vec::new();
    let mut covered = Vec::new();
    for level in &la {
        let Some(other) = lb.iter().find(|l| l.level == level.level) else {
            continue;
        };
        out.push(level_comparison(level, other));
        covered.extend(level.runs.iter().chain(&other.runs).cloned());
    }
    (out, covered)
}

/// The line under a level's heading saying which rule decided.
pub fn decided_by_note(d: DecidedBy) -> Option<String> {
    match d {
        DecidedBy::NoiseBand => None,
        DecidedBy::Intervals { .. } => Some(
            "decided by the 95% intervals of the means (no overlap → better/worse, else noise); A and B: mean (95% CI)".into(),
        ),
    }
}

/// A side's cell (`side` 0: A, 1: B): the value, with its interval for a repeated level.
pub fn shown_ci(r: &Row, side: usize) -> String {
    let v = if side == 0 { r.a } else { r.b };
    match r.ci {
        Some(ci) => format!(
            "{} ({} – {})",
            shown(r.metric, v),
            shown(r.metric, Some(ci[side][0])),
            shown(r.metric, Some(ci[side][1]))
        ),
        None => shown(r.metric, v),
    }
}
