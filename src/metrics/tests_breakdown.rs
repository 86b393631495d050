//! By turn, per session and by model, from hand-made tagged records.

use std::sync::Arc;

use crate::metrics::summary::{RunData, Summary, summarize};
use crate::record::{FailureKind, RequestRecord, RequestTag};

fn tagged(
    (session, turn, model): (u64, u32, &str),
    started_ms: u64,
    events_ms: &[u64],
    ended_ms: u64,
    (input, output): (u32, u32),
) -> RequestRecord {
    let us = |v: u64| v * 1000;
    RequestRecord {
        tag: RequestTag {
            session: Some(session),
            turn: Some(turn),
            model: Some(Arc::from(model)),
            ..RequestTag::default()
        },
        ..RequestRecord::ok_for_test(
            "t",
            us(started_ms),
            events_ms.iter().map(|&e| us(e)).collect(),
            us(ended_ms),
            input,
            output,
        )
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

/// Two sessions of two turns worked out by hand (times in ms), after an untagged
/// request and beside a tagged warm-up one:
/// session 10 on model a: turn 0 starts 0, events 100/110/130, ends 140, 100 in, 3 out,
///   0 cached; turn 1 starts 1000, events 1050/1060/1080, ends 1090, 250 in, 3 out, 96 cached.
/// session 20 on model b: turn 0 starts 10, events 210/230, ends 240, 120 in, 2 out;
///   turn 1 starts 1100, fails (HTTP 500) at 1120, 300 in.
fn example() -> RunData {
    let mut d = RunData::default();
    d.push(&RequestRecord::ok_for_test(
        "t",
        5_000,
        vec![50_000],
        60_000,
        7,
        1,
    ));
    let mut warm = tagged((30, 0, "c"), 0, &[5], 6, (1, 1));
    warm.warmup = true;
    d.push(&warm);
    let mut a0 = tagged((10, 0, "a"), 0, &[100, 110, 130], 140, (100, 3));
    a0.cached_tokens = Some(0);
    d.push(&a0);
    d.push(&tagged((20, 0, "b"), 10, &[210, 230], 240, (120, 2)));
    let mut a1 = tagged((10, 1, "a"), 1000, &[1050, 1060, 1080], 1090, (250, 3));
    a1.cached_tokens = Some(96);
    d.push(&a1);
    let mut b1 = tagged((20, 1, "b"), 1100, &[], 1120, (300, 0));
    b1.failure = Some(FailureKind::HttpStatus);
    d.push(&b1);
    d
}

#[test]
fn latency_by_turn_index() {
    let s = summarize(&example(), &[]);
    let t = s.by_turn.expect("records carry turns");
    assert_eq!(
        t.len(),
        2,
        "the warm-up and untagged requests are in no turn"
    );
    let t0 = &t[0];
    assert_eq!((t0.turn, t0.requests, t0.succeeded), (0, 2, 2));
    assert!(close(t0.ttft_ms_mean, 150.0));
    assert!(close(t0.ttft_ms_p50, 150.0));
    assert!(close(t0.ttft_ms_p90, 190.0));
    assert!(close(t0.ttft_ms_p99, 199.0));
    assert!(close(t0.tpot_ms_p50, 17.5), "TPOT 15 and 20");
    assert!(close(t0.e2e_ms_p50, 185.0));
    assert!(close(t0.e2e_ms_p99, 229.1));
    assert!(close(t0.input_tokens_mean, 110.0));
    assert!(
        close(t0.cached_tokens_mean, 0.0),
        "over the request that reported cached tokens"
    );
    let t1 = &t[1];
    assert_eq!((t1.turn, t1.requests, t1.succeeded), (1, 2, 1));
    assert!(close(t1.ttft_ms_p99, 50.0));
    assert!(close(t1.tpot_ms_p50, 15.0));
    assert!(close(t1.e2e_ms_p50, 90.0));
    assert!(
        close(t1.input_tokens_mean, 250.0),
        "successful requests only"
    );
    assert!(close(t1.cached_tokens_mean, 96.0));
}

#[test]
fn per_session_totals() {
    let s = summarize(&example(), &[])
        .sessions
        .expect("records carry sessions");
    assert_eq!((s.count, s.completed), (2, 1), "session 20's turn 1 failed");
    assert!((s.turns_mean - 2.0).abs() < 1e-9);
    // Session 10: 0 → 1090 ms; session 20: 10 → 1120 ms (its failed turn's end).
    assert!(close(s.duration_ms_p50, 1100.0));
    assert!(close(s.duration_ms_p99, 1109.8));
    // Successful requests' tokens: 350 and 120 in, 6 and 2 out.
    assert!((s.input_tokens_mean - 235.0).abs() < 1e-9);
    assert!((s.output_tokens_mean - 4.0).abs() < 1e-9);
}

#[test]
fn latency_by_model() {
    let s = summarize(&example(), &[]);
    assert!((s.duration_s - 1.12).abs() < 1e-9);
    let m = s.by_model.expect("records name models");
    let names: Vec<&str> = m.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(
        names,
        ["a", "b"],
        "by name; the warm-up's model c is left out"
    );
    let a = &m[0];
    assert_eq!((a.requests, a.succeeded), (2, 2));
    assert!(close(a.ttft_ms_p50, 75.0));
    assert!(close(a.ttft_ms_p99, 99.5));
    assert!(close(a.tpot_ms_p50, 15.0) && close(a.tpot_ms_p99, 15.0));
    assert!(close(a.e2e_ms_p50, 115.0));
    assert!(close(a.e2e_ms_p99, 139.5));
    assert!((a.output_tok_s - 6.0 / 1.12).abs() < 1e-9);
    let b = &m[1];
    assert_eq!((b.requests, b.succeeded), (2, 1));
    assert!(close(b.ttft_ms_p50, 200.0) && close(b.e2e_ms_p99, 230.0));
    assert!((b.output_tok_s - 2.0 / 1.12).abs() < 1e-9);
    // The rows add up to the run's output throughput (the untagged request's 1 token
    // is the rest).
    assert!((a.output_tok_s + b.output_tok_s + 1.0 / 1.12 - s.output_tok_s).abs() < 1e-9);
}

#[test]
fn a_model_mix_without_sessions_has_no_turns() {
    let mut d = RunData::default();
    let mut r = RequestRecord::ok_for_test("t", 0, vec![10], 20, 5, 1);
    r.tag.model = Some(Arc::from("lora-1"));
    d.push(&r);
    let s = summarize(&d, &[]);
    assert!(s.by_turn.is_none() && s.sessions.is_none());
    assert_eq!(s.by_model.expect("a model").len(), 1);
}

#[test]
fn untagged_runs_have_no_breakdown_and_save_none() {
    let mut d = RunData::default();
    d.push(&RequestRecord::ok_for_test("t", 0, vec![10, 20], 30, 5, 2));
    let s = summarize(&d, &[]);
    assert!(s.by_turn.is_none() && s.sessions.is_none() && s.by_model.is_none());
    let json = s.to_json();
    for key in ["by_turn", "sessions", "by_model"] {
        assert!(json.get(key).is_none(), "{key} written for an untagged run");
    }
}

#[test]
fn breakdown_survives_results_json() {
    let s = summarize(&example(), &[]);
    let back: Summary = serde_json::from_value(s.to_json()).unwrap();
    assert_eq!(back.by_turn, s.by_turn);
    assert_eq!(back.sessions, s.sessions);
    assert_eq!(back.by_model, s.by_model);
    let json = s.to_json();
    assert_eq!(json["by_turn"][1]["cached_tokens_mean"], 96.0);
    assert!(
        json["by_turn"][0].get("turn").is_some() && json["sessions"]["completed"] == 1,
        "{json}"
    );
}
