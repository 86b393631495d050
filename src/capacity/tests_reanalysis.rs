//! Probes judged again under another SLO: the capacity among the probed levels, and
//! the bracket when the new answer falls between levels probed far apart.

use super::*;
use crate::metrics::slo::{Goodput, Slo};
use crate::metrics::{RunData, summarize};
use crate::report::document::{CapacityProbe, RunMode};

fn run(label: &str, sent: u64, met: u64, complete: bool) -> SavedRun {
    let mut summary = summarize(&RunData::default(), &[]);
    summary.total = sent;
    summary.goodput = Some(Goodput {
        met,
        req_s: 0.0,
        tok_s: 0.0,
        request_share: met as f64 / sent as f64,
        token_share: 0.0,
        slo: Slo::default(),
    });
    SavedRun {
        label: label.into(),
        mode: RunMode::Concurrency,
        params: Default::default(),
        started: String::new(),
        started_unix: 0.0,
        complete: Some(complete),
        incomplete_reason: None,
        requests_planned: None,
        requests_sent: None,
        summary,
    }
}

/// A finished search 1, 2, 4, 8 (fail), 6 (fail), 5 (pass): capacity 5.
fn search() -> CapacityDoc {
    let probe = |level: f64, run: &str| CapacityProbe {
        level,
        attainment: 1.0,
        passed: Some(true),
        run: run.into(),
        sent: 100,
        met: 100,
    };
    CapacityDoc {
        by: "concurrency".into(),
        value: Some(5.0),
        outcome: "found".into(),
        attainment_target: 0.99,
        slo: "E2E ≤ 300 ms".into(),
        min: 1.0,
        max: 64.0,
        resolution: 0.05,
        confirm: 0,
        passing: None,
        failing: None,
        probes: [
            (1.0, "c1"),
            (2.0, "c2"),
            (4.0, "c4"),
            (8.0, "c8"),
            (6.0, "c6"),
            (5.0, "c5"),
        ]
        .iter()
        .map(|(l, r)| probe(*l, r))
        .collect(),
    }
}

#[test]
fn a_tighter_slo_lowers_the_capacity_to_a_bracket_of_probed_levels() {
    // Under the new SLO: 1 and 2 pass, 4 and up fail; 3 was never probed.
    let runs = [
        run("c1", 100, 100, true),
        run("c2", 100, 99, true),
        run("c4", 100, 90, true),
        run("c8", 100, 10, true),
        run("c6", 100, 20, true),
        run("c5", 100, 50, true),
    ];
    let doc = rejudge(&search(), &runs, "E2E ≤ 100 ms".into(), 0.99);
    assert_eq!(doc.value, Some(2.0));
    assert_eq!(doc.outcome, "bracket");
    assert_eq!(doc.passing.as_ref().unwrap().level, 2.0);
    assert_eq!(doc.failing.as_ref().unwrap().level, 4.0);
    assert_eq!(doc.failing.as_ref().unwrap().attainment, 0.9);
    assert_eq!(doc.slo, "E2E ≤ 100 ms");
    let verdicts: Vec<_> = doc.probes.iter().map(|p| p.passed).collect();
    assert_eq!(
        verdicts,
        [
            Some(true),
            Some(true),
            Some(false),
            Some(false),
            Some(false),
            Some(false)
        ]
    );
    let text = render(&doc);
    assert!(
        text.contains("the capacity lies in [2, 4)") && text.contains("--min 2 --max 4"),
        "{text}"
    );
}

#[test]
fn adjacent_levels_give_an_exact_answer_and_a_lower_target_raises_it() {
    let runs = [
        run("c1", 100, 100, true),
        run("c2", 100, 100, true),
        run("c4", 100, 100, true),
        run("c8", 100, 80, true),
        run("c6", 100, 96, true),
        run("c5", 100, 97, true),
    ];
    let doc = rejudge(&search(), &runs, "E2E ≤ 300 ms".into(), 0.99);
    assert_eq!((doc.value, doc.outcome.as_str()), (Some(4.0), "found"));
    let doc = rejudge(&search(), &runs, "E2E ≤ 300 ms".into(), 0.95);
    assert_eq!((doc.value, doc.outcome.as_str()), (Some(6.0), "bracket"));
    let doc = rejudge(&search(), &runs, "E2E ≤ 300 ms".into(), 0.5);
    assert_eq!(
        (doc.value, doc.outcome.as_str()),
        (Some(8.0), "at_least_probed")
    );
    assert!(render(&doc).contains("higher levels were not probed"));
}

#[test]
fn a_failing_first_level_or_an_incomplete_probe_fails() {
    let mut runs = vec![run("c1", 100, 10, true)];
    runs.extend(["c2", "c4", "c8", "c6", "c5"].map(|l| run(l, 100, 100, true)));
    let doc = rejudge(&search(), &runs, "x".into(), 0.99);
    assert_eq!((doc.value, doc.outcome.as_str()), (None, "below_min"));
    // A pass above the failing level is noted as non-monotone.
    assert!(render(&doc).contains("not monotone"), "{}", render(&doc));

    let mut runs: Vec<_> = ["c1", "c2", "c4", "c8", "c6"]
        .map(|l| run(l, 100, 100, true))
        .into();
    runs.push(run("c5", 100, 100, false));
    runs[3] = run("c8", 100, 0, true);
    runs[4] = run("c6", 100, 0, true);
    let doc = rejudge(&search(), &runs, "x".into(), 0.99);
    assert_eq!(doc.value, Some(4.0), "5 was interrupted: it cannot pass");
    assert_eq!(doc.probes[5].passed, Some(false));
    // Nor is it evidence against 5: the bracket is [4, 6).
    assert_eq!(doc.failing.as_ref().unwrap().level, 6.0);
    assert_eq!(doc.outcome, "bracket");
}
