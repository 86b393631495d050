//! `report DIR --slo ... --attainment A` on a capacity directory: every saved probe
//! judged again from its records under the new SLO and target, and the capacity among
//! the probed levels. Levels that were not probed stay unknown: when the new answer
//! falls between two probed levels with a gap wider than the resolution, the bracket is
//! what is known, and the message says so. An interrupted probe never passes and is
//! left out of its level's verdict, as in the search.

use std::fmt::Write;

use super::answer::{answer_line, level_text, probe_table};
use super::observe;
use crate::report::document::{CapacityDoc, CapacityLevel, SavedRun};

/// Each probed level's pooled verdict, lowest level first.
struct Level {
    level: f64,
    attainment: f64,
    passed: bool,
    run: String,
}

/// `old` judged again: its probes' attainment recomputed from `runs` (summaries with
/// goodput under the new SLO, `slo_text`), against `target`.
pub fn rejudge(old: &CapacityDoc, runs: &[SavedRun], slo_text: String, target: f64) -> CapacityDoc {
    let mut doc = CapacityDoc {
        attainment_target: target,
        slo: slo_text,
        ..old.clone()
    };
    for p in &mut doc.probes {
        let obs = runs.iter().find(|r| r.label == p.run).map(observe);
        p.sent = obs.map_or(0, |o| o.sent);
        p.met = obs.map_or(0, |o| o.met);
        p.attainment = obs.map_or(0.0, |o| o.attainment());
        p.passed = None;
    }
    let complete = |run: &str| runs.iter().any(|r| r.label == run && r.is_complete());
    let levels = levels(&doc, &complete, target);
    for p in &mut doc.probes {
        // An interrupted probe never passes, and its level is judged without it.
        p.passed = match complete(&p.run) {
            true => levels.iter().find(|l| l.level == p.level).map(|l| l.passed),
            false => Some(false),
        };
    }
    let as_doc = |l: &Level| CapacityLevel {
        level: l.level,
        attainment: l.attainment,
        run: l.run.clone(),
    };
    // Capacity: the highest pass below the lowest fail (a pass above it is noted apart).
    let fail = levels.iter().find(|l| !l.passed);
    let pass = levels
        .iter()
        .rev()
        .find(|l| l.passed && fail.is_none_or(|f| l.level < f.level));
    doc.passing = pass.map(as_doc);
    doc.failing = fail.map(as_doc);
    doc.value = pass.map(|p| p.level);
    doc.outcome = match (pass, fail) {
        (None, _) => "below_min",
        (Some(p), None) if p.level >= old.max => "at_least_max",
        (Some(_), None) => "at_least_probed",
        (Some(p), Some(f)) if f.level - p.level <= step(&doc, p.level) => "found",
        (Some(_), Some(_)) => "bracket",
    }
    .into();
    doc
}

/// The bracket width the search would stop at.
fn step(doc: &CapacityDoc, level: f64) -> f64 {
    let s = doc.resolution * level;
    if doc.by == "rate" { s } else { s.max(1.0) }
}

/// Probed levels with their attainment pooled over their complete probes (a level
/// probed only by interrupted runs is not judged).
fn levels(doc: &CapacityDoc, complete: &dyn Fn(&str) -> bool, target: f64) -> Vec<Level> {
    let mut out: Vec<Level> = Vec::new();
    let probes: Vec<_> = doc.probes.iter().filter(|p| complete(&p.run)).collect();
    let mut sorted: Vec<f64> = probes.iter().map(|p| p.level).collect();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    for level in sorted {
        let at: Vec<_> = probes.iter().filter(|p| p.level == level).collect();
        let (sent, met) = at.iter().fold((0, 0), |(s, m), p| (s + p.sent, m + p.met));
        let attainment = if sent == 0 {
            0.0
        } else {
            met as f64 / sent as f64
        };
        out.push(Level {
            level,
            attainment,
            passed: sent > 0 && attainment >= target,
            run: at.last().map(|p| p.run.clone()).unwrap_or_default(),
        });
    }
    out
}

/// The re-judged search, as `report` prints it.
pub fn render(doc: &CapacityDoc) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nCapacity re-judged from the saved probes — SLO: {}, met by ≥ {:.1} % of sent requests",
        doc.slo,
        doc.attainment_target * 100.0
    );
    let (what, unit) = if doc.by == "rate" {
        ("request rate", " req/s")
    } else {
        ("concurrency", "")
    };
    match (doc.outcome.as_str(), &doc.passing, &doc.failing) {
        ("bracket", Some(p), Some(f)) => {
            let _ = writeln!(
                out,
                "max {what} meeting the SLO among the probed levels: {}{unit} ({:.1} %); the next probed level, {}{unit}, failed ({:.1} %).\n\
                 Levels between them were not probed: the capacity lies in [{}, {}){unit}; run capacity with --min {} --max {} to resolve it",
                level_text(p.level),
                p.attainment * 100.0,
                level_text(f.level),
                f.attainment * 100.0,
                level_text(p.level),
                level_text(f.level),
                level_text(p.level),
                level_text(f.level)
            );
        }
        ("at_least_probed", Some(p), _) => {
            let _ = writeln!(
                out,
                "every probed level passed: max {what} meeting the SLO is at least {}{unit} ({:.1} %); higher levels were not probed",
                level_text(p.level),
                p.attainment * 100.0
            );
        }
        _ => {
            let _ = writeln!(out, "{}", answer_line(doc));
        }
    }
    if let Some(f) = &doc.failing
        && let Some(above) = doc
            .probes
            .iter()
            .find(|p| p.level > f.level && p.passed == Some(true))
    {
        let _ = writeln!(
            out,
            "note: {} passed although the lower {} failed: attainment is not monotone in the load here (noise, or too few requests per probe)",
            level_text(above.level),
            level_text(f.level)
        );
    }
    out.push_str(&probe_table(&doc.by, &doc.probes));
    out
}

#[cfg(test)]
#[path = "tests_reanalysis.rs"]
mod tests;
