use super::*;
use crate::metrics::catalogue::{self, Better};
use crate::report::compare::{Verdict, compare};
use crate::report::compare_repeats::interval_verdict;
use crate::report::document::{RunMode, RunParams};
use serde_json::{Value, json};
use std::path::Path;

/// A saved run of repeat `k` of `n` whose output tok/s is `tok_s`.
fn run(level: &str, k: u32, n: u32, tok_s: f64) -> SavedRun {
    let summary = json!({"requests": {"total": 10, "succeeded": 10},
                         "throughput": {"output_tok_s": tok_s, "req_s": 1.0},
                         "ttft_ms": {"mean": 10.0, "p50": 10.0, "p90": 12.0, "p99": 15.0, "count": 10}});
    SavedRun {
        label: label(level, k, n),
        mode: RunMode::Concurrency,
        params: RunParams {
            repeat: Some(k),
            repeats: Some(n),
            ..RunParams::default()
        },
        started: String::new(),
        started_unix: 0.0,
        complete: None,
        incomplete_reason: None,
        requests_planned: None,
        requests_sent: None,
        summary: serde_json::from_value(summary).unwrap(),
    }
}

fn level_runs(level: &str, values: &[f64]) -> Vec<SavedRun> {
    let n = values.len() as u32;
    (1..=n)
        .zip(values)
        .map(|(k, &v)| run(level, k, n, v))
        .collect()
}

#[test]
fn mean_interval_and_cv_of_three_repeats() {
    let runs = level_runs("concurrency 8", &[10.0, 12.0, 14.0]);
    let levels = repeat_levels(&runs);
    assert_eq!(levels.len(), 1);
    let l = &levels[0];
    assert_eq!(l.level, "concurrency 8");
    assert_eq!(
        l.runs,
        [
            "concurrency 8 · rep 1/3",
            "concurrency 8 · rep 2/3",
            "concurrency 8 · rep 3/3"
        ]
    );
    let i = l.get("throughput.output_tok_s").unwrap();
    // mean 12, s 2, half-width t(0.975, 2)·2/√3 = 4.3027·1.1547 = 4.968.
    assert!((i.mean - 12.0).abs() < 1e-12);
    assert!(
        (i.ci95[0] - 7.0317).abs() < 1e-3 && (i.ci95[1] - 16.9683).abs() < 1e-3,
        "{i:?}"
    );
    assert!((i.cv.unwrap() - 1.0 / 6.0).abs() < 1e-12);
    // Equal on every repeat: a zero-width interval.
    assert_eq!(l.get("ttft_ms.p99").unwrap().ci95, [15.0, 15.0]);
    let doc: Value = serde_json::to_value(l.to_doc()).unwrap();
    let m = &doc["metrics"]["throughput.output_tok_s"];
    assert_eq!(m["n"], 3);
    assert_eq!(m["mean"], 12.0);
    assert!(
        m["ci95"].as_array().unwrap().len() == 2 && m["cv"].is_number(),
        "{doc}"
    );
    let text = l.render();
    assert!(text.contains("── concurrency 8: 3 repeats ──"), "{text}");
    assert!(text.contains("7.03 – 16.97"), "{text}");
    assert!(
        !text.contains("TTFT mean"),
        "the table shows the key metrics: {text}"
    );
}

#[test]
fn grouping_needs_two_complete_repeats_in_a_row() {
    let mut runs = level_runs("c 1", &[1.0, 2.0]);
    runs.extend(level_runs("c 2", &[1.0]));
    // An appended session's repeats of the same level are a group of their own.
    let mut again = level_runs("c 1", &[5.0, 6.0, 7.0]);
    again[0].label.push_str(" #2");
    runs.extend(again);
    let levels = repeat_levels(&runs);
    let names: Vec<(&str, usize)> = levels
        .iter()
        .map(|l| (l.level.as_str(), l.runs.len()))
        .collect();
    assert_eq!(names, [("c 1", 2), ("c 1", 3)]);
    // An interrupted repeat is left out of the figures.
    let mut cut = level_runs("c 4", &[1.0, 2.0, 3.0]);
    cut[2].complete = Some(false);
    assert_eq!(repeat_levels(&cut)[0].runs.len(), 2);
    cut[1].complete = Some(false);
    assert!(
        repeat_levels(&cut).is_empty(),
        "one complete run has no spread"
    );
    // The session prints a level after its last repeat only.
    let three = level_runs("c 8", &[1.0, 2.0, 3.0]);
    assert!(finished_level(&three[..2]).is_none());
    assert_eq!(finished_level(&three).unwrap().runs.len(), 3);
}

#[test]
fn interval_verdicts_need_intervals_apart() {
    use crate::metrics::confidence::MeanInterval;
    let of = |v: &[f64]| MeanInterval::of(v).unwrap();
    let a = of(&[10.0, 12.0, 14.0]); // ≈ [7.03, 16.97]
    let overlapping = of(&[15.0, 16.0, 17.0]); // ≈ [13.52, 18.48]
    let far = of(&[30.0, 31.0, 32.0]);
    // A 33 % higher mean is still noise when the intervals overlap.
    assert_eq!(
        interval_verdict(&a, &overlapping, Better::Higher),
        Verdict::Noise
    );
    assert_eq!(interval_verdict(&a, &far, Better::Higher), Verdict::Better);
    assert_eq!(interval_verdict(&a, &far, Better::Lower), Verdict::Worse);
    assert_eq!(interval_verdict(&far, &a, Better::Lower), Verdict::Better);
    // Tight intervals: a 2 % change is decided, where the ±5 % band calls it noise.
    let (x, y) = (of(&[100.0, 100.1, 99.9]), of(&[102.0, 102.1, 101.9]));
    assert_eq!(interval_verdict(&x, &y, Better::Higher), Verdict::Better);
    assert!(catalogue::metric("throughput.output_tok_s").is_some());
}

fn write(dir: &Path, runs: &[SavedRun]) {
    let doc = crate::report::document::ResultsDoc {
        runs: runs.to_vec(),
        ..Default::default()
    };
    doc.write(dir).unwrap();
}

#[test]
fn compare_uses_intervals_only_when_both_sides_repeat() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A: c 1 repeated (≈ [7, 17]); B: c 1 repeated higher but overlapping, c 2 repeated
    // far apart from A's; a single run on both sides keeps the band.
    let mut ra = level_runs("c 1", &[10.0, 12.0, 14.0]);
    ra.extend(level_runs("c 2", &[10.0, 12.0, 14.0]));
    ra.push(run("single", 1, 1, 100.0));
    ra.last_mut().unwrap().params = RunParams::default();
    ra.last_mut().unwrap().label = "single".into();
    let mut rb = level_runs("c 1", &[15.0, 16.0, 17.0]);
    rb.extend(level_runs("c 2", &[30.0, 31.0, 32.0]));
    let mut single = ra.last().unwrap().clone();
    single.summary.output_tok_s = 120.0;
    rb.push(single);
    write(a.path(), &ra);
    write(b.path(), &rb);
    let c = compare(a.path(), b.path(), 5.0).unwrap();
    let labels: Vec<&str> = c.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "c 1: 3 repeats in A, 3 in B",
            "c 2: 3 repeats in A, 3 in B",
            "single"
        ]
    );
    let tok = |i: usize| {
        c.runs[i]
            .rows
            .iter()
            .find(|r| r.metric.key == "throughput.output_tok_s")
            .unwrap()
            .clone()
    };
    assert_eq!(tok(0).verdict, Verdict::Noise, "overlapping intervals");
    assert_eq!(tok(1).verdict, Verdict::Better, "intervals apart");
    assert_eq!(tok(2).verdict, Verdict::Better, "the ±5% band: +20%");
    assert_eq!(tok(2).ci, None);
    assert!(
        c.only_a.is_empty() && c.only_b.is_empty(),
        "{:?} {:?}",
        c.only_a,
        c.only_b
    );
    let text = c.render();
    assert!(text.contains("do not overlap"), "{text}");
    assert!(text.contains("12.00 (7.03 – 16.97)"), "{text}");
}
