//! The search's answer: the `capacity` object of results.json, and the text printed at
//! the end ("max concurrency meeting the SLO: 24 — 24 met it for 99.4 % of requests,
//! 26 for 97.1 %", the figures at that level, the probes in order).

use std::fmt::Write;

use super::search::{Search, round_sig};
use crate::metrics::slo::Slo;
use crate::metrics::stats::Stats;
use crate::report::document::{CapacityDoc, CapacityLevel, CapacityProbe, SavedRun};
use crate::settings::CapacitySettings;

/// A level as labels and messages show it: whole concurrency levels, rates to four
/// significant digits.
pub fn level_text(level: f64) -> String {
    format!("{}", round_sig(level, 4))
}

fn pct(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// The `capacity` object for the search as it stands; `runs[i]` is probe i's run.
pub fn to_doc(
    search: &Search,
    runs: &[String],
    settings: &CapacitySettings,
    slo: &Slo,
) -> CapacityDoc {
    let probes: Vec<CapacityProbe> = search
        .probes()
        .iter()
        .zip(runs)
        .map(|(p, run)| CapacityProbe {
            level: p.level,
            attainment: p.obs.attainment(),
            passed: p.passed,
            run: run.clone(),
            sent: p.obs.sent,
            met: p.obs.met,
        })
        .collect();
    let (pass, fail) = search.bracket();
    let at = |level: Option<f64>| {
        let level = level?;
        let run = probes.iter().rev().find(|p| p.level == level)?.run.clone();
        Some(CapacityLevel {
            level,
            attainment: search.pooled(level),
            run,
        })
    };
    CapacityDoc {
        by: settings.by.as_str().into(),
        value: search.value(),
        outcome: search.verdict().as_str().into(),
        attainment_target: settings.attainment,
        slo: slo.to_string(),
        min: settings.min,
        max: settings.max,
        resolution: settings.resolution,
        confirm: settings.confirm,
        passing: at(pass),
        failing: at(fail),
        probes,
    }
}

/// "concurrency" / "request rate", and the unit after a level.
fn names(by: &str) -> (&'static str, &'static str) {
    if by == "rate" {
        ("request rate", " req/s")
    } else {
        ("concurrency", "")
    }
}

/// The answer line with its bracket, from the doc's passing and failing levels.
pub fn answer_line(doc: &CapacityDoc) -> String {
    let (what, unit) = names(&doc.by);
    let lv = |l: &CapacityLevel| format!("{}{unit}", level_text(l.level));
    let met = |l: &CapacityLevel| format!("{} met it for {} of requests", lv(l), pct(l.attainment));
    match (doc.outcome.as_str(), &doc.passing, &doc.failing) {
        ("found", Some(p), Some(f)) => format!(
            "max {what} meeting the SLO: {} — {}, {} for {}",
            lv(p),
            met(p),
            lv(f),
            pct(f.attainment)
        ),
        ("at_least_max", Some(p), _) => format!(
            "max {what} meeting the SLO: ≥ {} (--max passed; probe higher to find the limit) — {}",
            lv(p),
            met(p)
        ),
        ("below_min", _, Some(f)) => format!(
            "no {what} meets the SLO down to --min: {} met it for only {} of requests; the capacity is below {}",
            lv(f),
            pct(f.attainment),
            lv(f)
        ),
        (_, p, f) => {
            let side = |l: &Option<CapacityLevel>, none: &str| {
                l.as_ref().map_or(none.to_string(), |l| {
                    format!("{} ({})", lv(l), pct(l.attainment))
                })
            };
            format!(
                "the search stopped before it ended: max {what} meeting the SLO is at least {} and below {}",
                side(p, "unknown (nothing passed yet)"),
                side(f, "unknown (nothing failed yet)")
            )
        }
    }
}

fn pcts(s: &Option<Stats>) -> String {
    let p = |q: f64| {
        s.as_ref()
            .and_then(|s| s.percentile(q))
            .map_or("–".to_string(), |v| format!("{v:.1}"))
    };
    format!("p50 {} ms, p99 {} ms", p(50.0), p(99.0))
}

/// Everything printed at the end: the answer, the figures at the passing level, and
/// every probe in order.
pub fn render(doc: &CapacityDoc, done: &[SavedRun]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nCapacity by {} — SLO: {}, met by ≥ {} of sent requests",
        doc.by,
        doc.slo,
        pct(doc.attainment_target)
    );
    let _ = writeln!(out, "{}", answer_line(doc));
    if let Some(p) = &doc.passing
        && let Some(run) = done.iter().find(|r| r.label == p.run)
    {
        let s = &run.summary;
        // A reasoning model's answer starts at TTFA, not TTFT: shown when it has one.
        let ttfa = s
            .phases
            .as_ref()
            .map_or(String::new(), |ph| format!("; TTFA {}", pcts(&ph.ttfa_ms)));
        let _ = writeln!(
            out,
            "at {} ({}): {:.2} req/s, {:.1} output tok/s; TTFT {}{ttfa}; TPOT {}",
            level_text(p.level),
            p.run,
            s.req_s,
            s.output_tok_s,
            pcts(&s.ttft_ms),
            pcts(&s.tpot_ms)
        );
    }
    out.push_str(&probe_table(&doc.by, &doc.probes));
    out
}

/// The probes in order: level, attainment, verdict, run.
pub fn probe_table(by: &str, probes: &[CapacityProbe]) -> String {
    let mut out = format!(
        "{:>4}  {:>12}  {:>10}  {:<8}  run\n",
        "#", by, "attainment", "verdict"
    );
    for (i, p) in probes.iter().enumerate() {
        let verdict = match p.passed {
            Some(true) => "pass",
            Some(false) => "fail",
            None => "pending",
        };
        let _ = writeln!(
            out,
            "{:>4}  {:>12}  {:>10}  {:<8}  {}",
            i + 1,
            level_text(p.level),
            pct(p.attainment),
            verdict,
            crate::console::printable(&p.run)
        );
    }
    out
}
