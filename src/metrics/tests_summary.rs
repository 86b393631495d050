//! Summaries computed from hand-made records.

use super::*;

fn rec(started: u64, events: &[u64], ended: u64, out: u32) -> RequestRecord {
    RequestRecord {
        prompt_tokens: Some(12),
        ..RequestRecord::ok_for_test("t", started, events.to_vec(), ended, 10, out)
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Three requests worked out by hand (times in ms):
/// A starts 0, events 100/120/150, ends 160, 3 tokens;
/// B starts 10, events 210/250 carrying 4 tokens, ends 260;
/// C starts 20, fails with HTTP 500 at 30.
fn example() -> RunData {
    let mut d = RunData::default();
    let mut a = rec(0, &[100_000, 120_000, 150_000], 160_000, 3);
    a.text_tokens = Some(4);
    d.push(&a);
    d.push(&rec(10_000, &[210_000, 250_000], 260_000, 4));
    let mut c = rec(20_000, &[], 30_000, 0);
    c.failure = Some(FailureKind::HttpStatus);
    c.error = Some("HTTP 500: boom".into());
    c.output_tokens_source = TokenSource::Events;
    d.push(&c);
    d
}

#[test]
fn hand_computed_run() {
    let s = summarize(&example(), &[]);
    assert_eq!((s.total, s.succeeded), (3, 2));
    assert_eq!(s.failures.counts[&FailureKind::HttpStatus], 1);
    assert_eq!(
        s.failures.examples[&FailureKind::HttpStatus],
        ["HTTP 500: boom"]
    );
    // Duration: first start 0 → last end 260 ms, failed request included.
    assert!(close(s.duration_s, 0.26));
    assert!(close(s.output_tok_s, 7.0 / 0.26));
    assert!(close(s.input_tok_s, 20.0 / 0.26));
    assert!(close(s.req_s, 2.0 / 0.26));

    let ttft = s.ttft_ms.as_ref().unwrap();
    assert_eq!(ttft.count, 2);
    assert!(close(ttft.mean, 150.0) && close(ttft.std, 50.0));
    assert!(close(ttft.percentile(90.0).unwrap(), 190.0));
    // TPOT: A (150−100)/2 = 25; B (250−210)/3 = 13.333… (4 tokens in 2 events).
    let tpot = s.tpot_ms.as_ref().unwrap();
    assert!(close(tpot.min, 40.0 / 3.0) && close(tpot.max, 25.0));
    // ITL pools gaps of events: 20, 30 (A) and 40 (B).
    let itl = s.itl_ms.as_ref().unwrap();
    assert_eq!(itl.count, 3);
    assert!(close(itl.mean, 30.0));
    assert!(close(itl.percentile(90.0).unwrap(), 38.0));
    assert!(close(itl.std, (200.0f64 / 3.0).sqrt()));
    let e2e = s.e2e_ms.as_ref().unwrap();
    assert!(close(e2e.min, 160.0) && close(e2e.max, 250.0));
    assert!(close(s.tokens_per_event.unwrap(), 7.0 / 5.0));
    // In flight [0,160) [10,260) [20,30): 3 at once; mean = 420/260.
    assert_eq!(s.concurrency.max_in_flight, 3);
    assert!(close(s.concurrency.mean_in_flight, 420.0 / 260.0));
    // Queued until first event: [0,100) [10,210) [20,30).
    assert_eq!(s.concurrency.max_queued, 3);
    assert!(s.schedule_lag_ms.is_none());
    assert_eq!(s.tokens.prompt_gap_mean, Some(2.0));
    assert_eq!(s.tokens.output_gap_mean, Some(-1.0), "usage 3, tokenizer 4");
    assert_eq!(s.tokens.source_usage, 2);
}

#[test]
fn back_to_back_requests_do_not_overlap() {
    let mut d = RunData::default();
    d.push(&rec(0, &[5], 10, 1));
    d.push(&rec(10, &[15], 20, 1));
    let s = summarize(&d, &[]);
    assert_eq!(s.concurrency.max_in_flight, 1);
    assert!(close(s.concurrency.mean_in_flight, 1.0));
    assert!(s.tpot_ms.is_none(), "single-token requests have no TPOT");
}

#[test]
fn schedule_lag_and_duration_from_schedule() {
    let mut d = RunData::default();
    let mut a = rec(1_500, &[2_000], 3_000, 1);
    a.scheduled_at = Some(1_000);
    d.push(&a);
    let s = summarize(&d, &[]);
    let lag = s.schedule_lag_ms.as_ref().unwrap();
    assert!(close(lag.mean, 0.5));
    assert!(
        close(s.duration_s, 0.002),
        "duration starts at the schedule"
    );
    assert!(s.to_json().get("schedule_lag_ms").is_some());
}

#[test]
fn queue_wait_is_not_lag_and_latency_from_schedule_includes_it() {
    let mut d = RunData::default();
    // Scheduled at 1 ms, waited 4 ms for a slot, started at 5.2 ms, first token at
    // 7.2 ms, ended at 9.2 ms.
    let mut a = rec(5_200, &[7_200], 9_200, 1);
    a.scheduled_at = Some(1_000);
    a.queue_wait = Some(4_000);
    d.push(&a);
    let s = summarize(&d, &[]);
    assert!(close(s.schedule_lag_ms.as_ref().unwrap().mean, 0.2));
    assert!(close(s.queue_wait_ms.as_ref().unwrap().mean, 4.0));
    assert!(close(s.ttft_ms.as_ref().unwrap().mean, 2.0));
    assert!(close(s.ttft_from_scheduled_ms.as_ref().unwrap().mean, 6.2));
    assert!(close(s.e2e_from_scheduled_ms.as_ref().unwrap().mean, 8.2));
}

#[test]
fn json_shape_follows_results_spec() {
    let j = summarize(&example(), &[95.0]).to_json();
    assert_eq!(j["requests"]["failures"]["http_status"], 1);
    assert_eq!(j["requests"]["failed"], 1);
    assert!(j["ttft_ms"]["p95"].is_number());
    assert!(j["ttft_ms"]["p99"].is_number());
    assert!(
        j.get("schedule_lag_ms").is_none(),
        "closed-loop runs have no lag"
    );
    for k in ["output_tok_s", "input_tok_s", "total_tok_s", "req_s"] {
        assert!(j["throughput"][k].is_number());
    }
}

/// A request that failed after its first token waited only until that token: the
/// concurrency line's "waiting for a first token" (and the HTML's queued chart,
/// which uses the same intervals) does not count it for the rest of its life.
#[test]
fn a_request_failing_after_its_first_token_stops_waiting_at_that_token() {
    // A: first token at 1 ms, cut at 100 ms. B: [50 ms, first token 60 ms).
    let mut cut = RequestRecord::ok_for_test("r", 0, vec![1_000, 2_000], 100_000, 8, 2);
    cut.failure = Some(FailureKind::StreamCut);
    let b = RequestRecord::ok_for_test("r", 50_000, vec![60_000], 70_000, 8, 1);
    let mut d = RunData::default();
    d.push(&cut);
    d.push(&b);
    let s = summarize(&d, &[]);
    assert_eq!(s.concurrency.max_in_flight, 2);
    assert_eq!(s.concurrency.max_queued, 1, "A waited only until 1 ms");
    // The live counters agree: A leaves the waiting count at its first token.
    use crate::client::observe::RequestObserver;
    let live = crate::progress::Live::default();
    live.sent();
    live.output(1, true);
    live.output(1, false);
    live.ended(&crate::client::Outcome {
        events: vec![1_000, 2_000],
        failure: Some((crate::record::FailureKind::HttpStatus, "500".into())),
        ..Default::default()
    });
    assert_eq!(live.queued.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(live.failed.load(std::sync::atomic::Ordering::Relaxed), 1);
}
