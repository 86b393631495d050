//! The steady-state window and the time slices on hand-computed examples.

use super::*;
use crate::metrics::slices::{self, BIN_US, TokenTimeline};
use crate::metrics::summarize;
use crate::record::{FailureKind, RequestRecord};

fn rec(started: u64, events: &[u64], ended: u64, out: u32) -> RequestRecord {
    RequestRecord::ok_for_test("t", started, events.to_vec(), ended, 10, out)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Four requests (times in ms), worked out by hand:
/// A starts 0, events 100/200/300 (1 token each), ends 300;
/// B starts 50, events 150/250 (4 tokens: 2 each), ends 1000;
/// C starts 300, events 400/500 (1 each), ends 600;
/// D starts 600, event 650 (1 token), ends 800.
/// Two are in flight from 50 ms (A and B) on; the last send is D's, at 600 ms.
fn example() -> RunData {
    let mut d = RunData::default();
    d.push(&rec(0, &[100_000, 200_000, 300_000], 300_000, 3));
    d.push(&rec(50_000, &[150_000, 250_000], 1_000_000, 4));
    d.push(&rec(300_000, &[400_000, 500_000], 600_000, 2));
    d.push(&rec(600_000, &[650_000], 800_000, 1));
    d
}

fn window(s: SteadyState) -> Steady {
    match s {
        SteadyState::Window(w) => *w,
        SteadyState::Absent(why) => panic!("no window: {why}"),
    }
}

fn absent(s: SteadyState) -> String {
    match s {
        SteadyState::Absent(why) => why,
        SteadyState::Window(w) => panic!("a window: {w:?}"),
    }
}

#[test]
fn closed_loop_window_runs_from_the_target_concurrency_to_the_last_send() {
    let w = window(steady_state(
        &example(),
        Pacing::ClosedLoop { concurrency: 2 },
        &[],
    ));
    assert!(close(w.start_s, 0.05) && close(w.end_s, 0.6), "{w:?}");
    // B, C and D started in [50, 600] ms.
    assert_eq!((w.requests, w.succeeded), (3, 3));
    // Events in [50, 600) ms: A's three (3 tokens), B's two (4), C's two (2) = 9 tokens.
    assert!(close(w.output_tok_s, 9.0 / 0.55), "{}", w.output_tok_s);
    // A (300 ms) and C (600 ms) ended inside it.
    assert!(close(w.req_s, 2.0 / 0.55), "{}", w.req_s);
    let ttft = w.latencies.ttft_ms.unwrap();
    assert_eq!(ttft.count, 3);
    assert!(close(ttft.mean, (100.0 + 100.0 + 50.0) / 3.0));
    let e2e = w.latencies.e2e_ms.unwrap();
    assert!(close(e2e.min, 200.0) && close(e2e.max, 950.0));
}

#[test]
fn open_loop_window_starts_when_ramp_up_ends() {
    let w = window(steady_state(
        &example(),
        Pacing::OpenLoop { settle_us: 100_000 },
        &[],
    ));
    assert!(close(w.start_s, 0.1) && close(w.end_s, 0.6), "{w:?}");
    // C and D started in [100, 600] ms.
    assert_eq!(w.requests, 2);
    // Events in [100, 600) ms: A 3, B 4, C 2.
    assert!(close(w.output_tok_s, 9.0 / 0.5), "{}", w.output_tok_s);
    assert!(close(w.req_s, 2.0 / 0.5));
}

#[test]
fn a_run_without_a_meaningful_window_says_why() {
    let d = example();
    let why = absent(steady_state(&d, Pacing::AllAtOnce, &[]));
    assert_eq!(why, "every request was sent at once");
    let why = absent(steady_state(&d, Pacing::ClosedLoop { concurrency: 5 }, &[]));
    assert_eq!(
        why,
        "the target concurrency 5 was never reached (at most 2 in flight)"
    );
    // 560 → 600 ms is 4 % of the 1 s run.
    let why = absent(steady_state(
        &d,
        Pacing::OpenLoop { settle_us: 560_000 },
        &[],
    ));
    assert!(
        why.starts_with("too short: from 0.560 s to the last send at 0.600 s is under 10 %"),
        "{why}"
    );
    // Ramp-up past the last send.
    let why = absent(steady_state(
        &d,
        Pacing::OpenLoop { settle_us: 700_000 },
        &[],
    ));
    assert!(why.starts_with("too short"), "{why}");
    // 300 → 600 ms is long enough, but only C and D started in it and D failed.
    let mut d2 = RunData::default();
    for (i, r) in [
        rec(0, &[100_000, 200_000, 300_000], 300_000, 3),
        rec(50_000, &[150_000, 250_000], 1_000_000, 4),
        rec(300_000, &[400_000, 500_000], 600_000, 2),
        rec(600_000, &[650_000], 800_000, 1),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = r;
        if i == 3 {
            r.failure = Some(FailureKind::Timeout);
        }
        d2.push(&r);
    }
    let why = absent(steady_state(
        &d2,
        Pacing::OpenLoop { settle_us: 300_000 },
        &[],
    ));
    assert!(why.starts_with("too few requests: 1 successful"), "{why}");
    assert_eq!(
        absent(steady_state(&RunData::default(), Pacing::AllAtOnce, &[])),
        "no requests"
    );
}

#[test]
fn the_timeline_counts_a_bin_an_edge_cuts_in_proportion() {
    let mut t = TokenTimeline::default();
    t.add(5_000, 10.0);
    t.add(15_000, 4.0);
    // A bin a minute away lives in a chunk of its own.
    t.add(61 * 1_000_000, 1.0);
    assert!(close(t.between(0, 20_000), 14.0));
    assert!(close(t.between(2_500, BIN_US), 7.5));
    assert!(close(t.between(5_000, 15_000), 5.0 + 2.0));
    assert!(close(t.between(0, 100_000_000), 15.0));
    assert_eq!(t.between(7, 7), 0.0);
}

/// R1 starts 0, events 200/400/1200 ms carrying 6 tokens (2 each), ends 1300;
/// R2 starts 500, events 900/1100 carrying 5 (2.5 each), ends 1500;
/// R3 starts 100 and times out at 350 after one event: its 7 tokens are not output.
fn two_requests() -> RunData {
    let mut d = RunData::default();
    d.push(&rec(0, &[200_000, 400_000, 1_200_000], 1_300_000, 6));
    d.push(&rec(500_000, &[900_000, 1_100_000], 1_500_000, 5));
    let mut r3 = rec(100_000, &[300_000], 350_000, 7);
    r3.failure = Some(FailureKind::Timeout);
    d.push(&r3);
    d
}

#[test]
fn slices_weight_each_event_by_its_tokens() {
    let s = slices::slice(&two_requests(), 1_000_000, &[50.0, 99.0]);
    assert_eq!(s.slices.len(), 2);
    let (a, b) = (&s.slices[0], &s.slices[1]);
    // [0, 1) s: R1's 2 + 2 and R2's 2.5 tokens.
    assert!(close(a.output_tok_s, 6.5), "{}", a.output_tok_s);
    assert_eq!((a.requests, a.succeeded), (3, 2));
    assert_eq!(a.req_s, 0.0);
    let ttft = a.latencies.ttft_ms.as_ref().unwrap();
    assert!(close(ttft.percentile(50.0).unwrap(), 300.0));
    // [1, 1.5) s, cut at the run's end: R1's 2 and R2's 2.5 tokens in half a second.
    assert!(close(b.start_s, 1.0) && close(b.end_s, 1.5));
    assert!(close(b.output_tok_s, 9.0), "{}", b.output_tok_s);
    assert_eq!((b.requests, b.succeeded), (0, 0));
    assert!(close(b.req_s, 4.0));
    assert!(b.latencies.ttft_ms.is_none());
    // Slices of 0.5 s: 4, 2.5, 4.5 tokens.
    let s = slices::slice(&two_requests(), 500_000, &[]);
    let tok: Vec<f64> = s.slices.iter().map(|x| x.output_tok_s).collect();
    assert!(
        close(tok[0], 8.0) && close(tok[1], 5.0) && close(tok[2], 9.0),
        "{tok:?}"
    );
}

#[test]
fn steady_state_and_slices_survive_results_json() {
    let d = example();
    let shape = RunShape {
        pacing: Some(Pacing::ClosedLoop { concurrency: 2 }),
        slice_us: Some(200_000),
    };
    let s = summarize(&d, &[99.9]).with_shape(&d, &shape);
    let json = s.to_json();
    assert_eq!(json["steady"]["requests"], 3);
    assert_eq!(json["slices"]["slice_s"], 0.2);
    assert_eq!(json["slices"]["slices"].as_array().unwrap().len(), 5);
    assert!(json["steady"]["ttft_ms"]["p99.9"].is_number(), "{json}");
    let back: Summary = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back.steady, s.steady);
    assert_eq!(back.slices, s.slices);
    // An absent window keeps its reason; a summary without either writes neither.
    let s = summarize(&d, &[]).with_shape(
        &d,
        &RunShape {
            pacing: Some(Pacing::AllAtOnce),
            slice_us: None,
        },
    );
    let json = s.to_json();
    assert_eq!(
        json["steady"],
        serde_json::json!({"absent": "every request was sent at once"})
    );
    assert!(json.get("slices").is_none());
    let plain = summarize(&d, &[]).to_json();
    assert!(plain.get("steady").is_none() && plain.get("slices").is_none());
}

#[test]
fn the_table_adds_a_steady_block_and_compare_reads_steady_metrics() {
    let d = example();
    let closed = RunShape {
        pacing: Some(Pacing::ClosedLoop { concurrency: 2 }),
        slice_us: None,
    };
    let s = summarize(&d, &[]).with_shape(&d, &closed);
    let text = crate::report::table::render("concurrency 2", &s);
    // The whole run's table as before; then the window and a table headed "steady ms".
    let plain = crate::report::table::render("concurrency 2", &summarize(&d, &[]));
    assert!(text.starts_with(plain.split("requests ").next().unwrap()));
    let block = text.split_once("\nsteady     ").unwrap().1;
    assert!(
        block.starts_with("window 0.050–0.600 s (0.550 s; 3 requests started in it, 3 ok): 16.4 output tok/s · 3.636 req/s"),
        "{text}"
    );
    assert!(block.contains("│ steady ms ┆"), "{text}");
    assert!(block.contains("│ TTFT      ┆  83.33 ┆"), "{text}");
    assert!(block.contains("│ E2E       ┆ 483.33 ┆"), "{text}");
    let m = crate::metrics::catalogue::known("steady.output_tok_s");
    assert!(close(m.value(&s).unwrap(), 9.0 / 0.55));
    let p99 = crate::metrics::catalogue::known("steady.ttft_ms.p99");
    assert!(p99.value(&s).is_some());
    // Without a window: a line saying why, no rows, no value to compare.
    let none = summarize(&d, &[]).with_shape(
        &d,
        &RunShape {
            pacing: Some(Pacing::ClosedLoop { concurrency: 9 }),
            slice_us: None,
        },
    );
    let text = crate::report::table::render("concurrency 9", &none);
    assert!(!text.contains("steady ms"), "{text}");
    assert!(
        text.contains("steady     none: the target concurrency 9 was never reached"),
        "{text}"
    );
    assert_eq!(m.value(&none), None);
}

#[test]
fn slices_past_the_limit_are_counted_not_kept() {
    let mut d = RunData::default();
    // 200 s in 10 ms slices: 20 000 slices, half of them kept.
    d.push(&rec(0, &[1_000, 199_999_000], 200_000_000, 2));
    let s = slices::slice(&d, BIN_US, &[]);
    assert_eq!(s.slices.len(), slices::MAX_SLICES);
    assert_eq!(s.dropped, 20_000 - slices::MAX_SLICES as u64);
    assert!(close(s.slices[0].output_tok_s, 1.0 / 0.01));
}

/// A sweep's runs are paced as the load each stands for, and a rate ramp's end (µs
/// from the run's start) is where an open loop's window may begin.
#[test]
fn pacing_follows_the_kind_of_sweep_run_and_the_ramp() {
    use crate::report::document::{RunMode, RunParams};
    let kind = |k: &str, cap: Option<usize>| RunParams {
        sweep: Some(k.into()),
        concurrency: (k == "synchronous").then_some(1),
        max_concurrency: Some(cap),
        ..RunParams::default()
    };
    let sweep = RunMode::Sweep;
    assert_eq!(
        kind("synchronous", None).pacing(&sweep),
        Some(Pacing::ClosedLoop { concurrency: 1 })
    );
    assert_eq!(
        kind("throughput", None).pacing(&sweep),
        Some(Pacing::AllAtOnce)
    );
    assert_eq!(
        kind("throughput", Some(8)).pacing(&sweep),
        Some(Pacing::ClosedLoop { concurrency: 8 })
    );
    let ramped = RunParams {
        ramp_up_end_us: Some(2_000_000),
        ..kind("rate", None)
    };
    assert_eq!(
        ramped.pacing(&sweep),
        Some(Pacing::OpenLoop {
            settle_us: 2_000_000
        })
    );
    assert_eq!(
        RunParams {
            ramp_up_end_us: Some(5),
            ..RunParams::default()
        }
        .pacing(&RunMode::Rate),
        Some(Pacing::OpenLoop { settle_us: 5 })
    );
}
