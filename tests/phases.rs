//! Reasoning and answer phases end to end, in-process, against the simulator's
//! reasoning phase (`--reasoning-tokens`): TTFA, reasoning time and tokens, answer
//! TPOT, the `ttfa_ms` SLO, the HTML report and `compare`.

mod common;

use std::path::Path;

use serde_json::Value;
use servescope::metrics::Summary;
use servescope::sim::{ReasoningField, ReasoningTokens, SimConfig, SimServer};
use servescope::{Outcome, run_args};

/// TTFT 20 ms, then 5 ms per token; the first `reasoning` tokens are reasoning.
fn reasoning_sim(reasoning: u32, field: ReasoningField, tokens_per_chunk: u32) -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 20.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 5.0,
        tokens_per_chunk,
        reasoning_tokens: Some(ReasoningTokens {
            min: reasoning,
            max: reasoning,
        }),
        reasoning_field: field,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One concurrency run of `n` requests of `output_len` tokens; its summary.
fn run(url: &str, dir: &Path, n: &str, output_len: &str, extra: &[&str]) -> Summary {
    let mut args = vec![
        "concurrency",
        "--endpoint",
        url,
        "--concurrency",
        "4",
        "--num-requests",
        n,
        "--input-len",
        "16",
        "--output-len",
        output_len,
        "--output-dir",
        s(dir),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let mut out = common::session(&args);
    out.runs.remove(0).1
}

fn secs_us(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 1e6).round() as i64
}

#[test]
fn a_reasoning_run_times_the_answer_apart_from_the_reasoning() {
    let server = reasoning_sim(10, ReasoningField::ReasoningContent, 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let page = dir.path().join("r.html");
    let sum = run(
        &server.url(),
        &out,
        "8",
        "30",
        &["--slo", "ttfa_ms=60000", "--html", s(&page)],
    );
    let p = sum.phases.as_ref().expect("the run reasoned");
    assert_eq!((p.reasoned, p.without_answer), (8, 0));
    // Exactly the simulator's setting: 10 of every 30 tokens, counted by the server.
    assert_eq!((p.reasoning_tokens, p.answer_tokens), (80, 160));
    assert_eq!(
        (p.reasoning_tokens_mean, p.answer_tokens_mean),
        (10.0, 20.0)
    );
    assert!(p.ttfa_ms.as_ref().unwrap().mean > sum.ttft_ms.as_ref().unwrap().mean);
    let records = common::records(&out);
    let mut answer_tpot = Vec::new();
    for r in &records {
        assert_eq!(r["reasoning_tokens"], 10, "{r}");
        assert_eq!(
            (r["reasoning_events"].as_u64(), r["answer_events"].as_u64()),
            (Some(10), Some(20))
        );
        let started = secs_us(&r["started_at"]);
        let first = secs_us(&r["events"][0]);
        let answer = secs_us(&r["first_answer_at"]);
        assert_eq!(secs_us(&r["first_reasoning_at"]), first, "{r}");
        // Never early: the answer's first token (the 11th) is due 20 + 10 × 5 ms after
        // the simulator's handler started, which is after `started_at`.
        assert!(answer - started >= 70_000, "{r}");
        assert!(answer > first);
        answer_tpot.push((secs_us(&r["ended_at"]) - answer) as f64 / 1000.0 / 19.0);
    }
    // Answer TPOT as defined, recomputed from the records: (ended − first answer) / 19.
    let mean = answer_tpot.iter().sum::<f64>() / answer_tpot.len() as f64;
    let got = p.answer_tpot_ms.as_ref().unwrap();
    assert!((got.mean - mean).abs() < 1e-6, "{} vs {mean}", got.mean);
    assert!(got.min >= 1.0 && got.percentile(50.0).unwrap() < 5.0 + 25.0);
    assert_eq!(
        sum.goodput.as_ref().unwrap().met,
        8,
        "every request answered in time"
    );
    // results.json and summary.csv carry the phases.
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let saved = &doc["runs"][0]["summary"];
    assert_eq!(saved["phases"]["reasoning_tokens"], 80);
    assert!(saved["ttfa_ms"]["p99"].as_f64().unwrap() >= 70.0);
    assert_eq!(saved["goodput"]["slo"]["ttfa_ms"], 60000.0);
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("ttfa_ms.p50,")), "{csv}");
    // The page: a TTFA CDF beside TTFT's, and the timeline coloured by phase.
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"cdf-ttfa\""));
    for legend in [
        "reasoning (first reasoning → first answer)",
        "answer (first answer token → end)",
    ] {
        assert!(html.contains(legend), "{legend}");
    }
    assert!(!html.contains("bar-decode"), "decode is split by phase");
}

#[test]
fn reasoning_that_fills_max_tokens_never_answers() {
    // `reasoning` (newer vLLM's field), several tokens per chunk: one chunk carries the
    // end of the reasoning and the start of the answer.
    let server = reasoning_sim(10, ReasoningField::Reasoning, 4);
    let dir = tempfile::tempdir().unwrap();
    let mixed = run(&server.url(), &dir.path().join("m"), "4", "16", &[]);
    let p = mixed.phases.as_ref().unwrap();
    assert_eq!(
        (p.reasoning_tokens, p.answer_tokens, p.without_answer),
        (40, 24, 0)
    );
    for r in common::records(&dir.path().join("m")) {
        // Chunks 0–3, 4–7 and 8–11 carry reasoning, 8–11 and 12–15 the answer.
        assert_eq!(
            (r["reasoning_events"].as_u64(), r["answer_events"].as_u64()),
            (Some(3), Some(2)),
            "{r}"
        );
    }
    // max_tokens 8 < 10 reasoning tokens: every token is reasoning, nothing answers.
    let none = run(
        &server.url(),
        &dir.path().join("n"),
        "4",
        "8",
        &["--slo", "ttfa_ms=60000"],
    );
    let p = none.phases.as_ref().unwrap();
    assert_eq!((p.reasoned, p.without_answer), (4, 4));
    assert_eq!((p.reasoning_tokens, p.answer_tokens), (32, 0));
    assert!(p.ttfa_ms.is_none() && p.answer_tpot_ms.is_none());
    assert!(p.reasoning_ms.is_some(), "first to last reasoning event");
    assert_eq!(none.succeeded, 4);
    assert_eq!(
        none.goodput.as_ref().unwrap().met,
        0,
        "no answer misses a TTFA bound"
    );
}

#[test]
fn compare_shows_ttfa_and_a_plain_run_has_none() {
    let server = reasoning_sim(6, ReasoningField::ReasoningContent, 1);
    let plain = SimServer::start(
        SimConfig {
            ttft_base_ms: 20.0,
            tpot_ms: 5.0,
            ..SimConfig::ideal()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    run(&server.url(), &a, "4", "12", &[]);
    run(&server.url(), &b, "4", "12", &[]);
    let page = dir.path().join("c.html");
    let plain_sum = run(&plain.url(), &c, "4", "12", &["--html", s(&page)]);
    assert!(plain_sum.phases.is_none());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("cdf-ttfa") && !html.contains("first reasoning"));
    let doc = std::fs::read_to_string(c.join("results.json")).unwrap();
    assert!(
        !doc.contains("ttfa") && !doc.contains("\"phases\""),
        "{doc}"
    );
    let compare = |x: &Path, y: &Path| {
        let argv = ["servescope", "compare", s(x), s(y)];
        match run_args(argv) {
            Ok(Outcome::Compared(c)) => c,
            other => panic!("{other:?}"),
        }
    };
    let cmp = compare(&a, &b);
    let labels: Vec<&str> = cmp.runs[0].rows.iter().map(|r| r.metric.label).collect();
    assert!(labels.contains(&"TTFA p99 (ms)"), "{labels:?}");
    assert!(cmp.render().contains("TTFA p50 (ms)"));
    let cmp = compare(&c, &c);
    assert!(!cmp.render().contains("TTFA"));
}

#[test]
fn the_built_in_simulator_reasons_with_sim_reasoning_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::session(&[
        "concurrency",
        "--concurrency",
        "2",
        "--num-requests",
        "4",
        "--input-len",
        "16",
        "--output-len",
        "12",
        "--sim-reasoning-tokens",
        "3:5",
        "--output-dir",
        s(dir.path()),
        "--quiet",
    ]);
    let p = out.runs[0].1.phases.clone().unwrap();
    assert_eq!(p.reasoned, 4);
    for r in common::records(dir.path()) {
        let n = r["reasoning_tokens"].as_u64().unwrap();
        assert!((3..=5).contains(&n), "{r}");
    }
    let argv = [
        "servescope",
        "concurrency",
        "--endpoint",
        "http://127.0.0.1:9",
        "--sim-reasoning-tokens",
        "3",
    ];
    let e = run_args(argv).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--sim-reasoning-tokens"), "{e}");
    let e = run_args(["servescope", "sim", "--reasoning-tokens", "5:3"]).unwrap_err();
    assert!(e.to_string().contains("5:3"), "{e}");
}

/// The Responses route reasons as the chat route does: `response.reasoning_text.delta`
/// events first, then `response.output_text.delta`, and `reasoning_tokens` in usage.
#[test]
fn the_responses_api_reasons_like_chat() {
    let server = reasoning_sim(10, ReasoningField::ReasoningContent, 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let sum = run(&server.url(), &out, "4", "30", &["--api", "responses"]);
    assert_eq!(sum.succeeded, 4);
    let p = sum.phases.as_ref().expect("the run reasoned");
    assert_eq!((p.reasoning_tokens, p.answer_tokens), (40, 80));
    assert!(p.ttfa_ms.as_ref().unwrap().mean > sum.ttft_ms.as_ref().unwrap().mean);
    for r in &common::records(&out) {
        assert_eq!(r["reasoning_tokens"], 10, "{r}");
        assert_eq!(
            (r["reasoning_events"].as_u64(), r["answer_events"].as_u64()),
            (Some(10), Some(20)),
            "{r}"
        );
    }
}
