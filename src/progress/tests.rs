use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::rolling::{Finished, Rolling, Snapshot, render};
use super::*;
use crate::client::openai::Usage;
use crate::record::FailureKind;

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn ttft(ms: f64) -> Finished {
    Finished {
        ttft_ms: ms,
        tpot_ms: Some(ms / 10.0),
    }
}

#[test]
fn percentiles_over_the_window_and_values_aging_out() {
    let mut r = Rolling::new(s(10), 1000);
    assert_eq!(r.snapshot(), Snapshot::default(), "nothing yet");
    r.add(s(1), (1..=100).map(|v| ttft(v as f64)));
    let snap = r.snapshot();
    assert_eq!(snap.requests, 100);
    // numpy's linear method: p50 between the 50th and 51st, p99 at 98.01 of 0..99.
    let (p50, p99) = snap.ttft_ms.unwrap();
    assert!(
        (p50 - 50.5).abs() < 1e-9 && (p99 - 99.01).abs() < 1e-9,
        "{snap:?}"
    );
    let (p50, p99) = snap.tpot_ms.unwrap();
    assert!(
        (p50 - 5.05).abs() < 1e-9 && (p99 - 9.901).abs() < 1e-9,
        "{snap:?}"
    );
    // Still inside at 11 s (the window starts at 1 s).
    r.add(s(11), []);
    assert_eq!(r.snapshot().requests, 100);
    // At 12 s the first 100 are older than 10 s: only the new two count.
    r.add(s(12), [ttft(200.0), ttft(300.0)]);
    let snap = r.snapshot();
    assert_eq!(snap.requests, 2);
    let (p50, p99) = snap.ttft_ms.unwrap();
    assert!(
        (p50 - 250.0).abs() < 1e-9 && (p99 - 299.0).abs() < 1e-9,
        "{snap:?}"
    );
    r.add(s(30), []);
    assert_eq!(r.snapshot().ttft_ms, None, "all aged out");
}

#[test]
fn requests_without_tpot_count_for_ttft_only_and_the_newest_are_kept() {
    let mut r = Rolling::new(s(10), 3);
    let one_token = Finished {
        ttft_ms: 7.0,
        tpot_ms: None,
    };
    r.add(
        s(0),
        [ttft(1.0), ttft(2.0), ttft(3.0), ttft(4.0), one_token],
    );
    let snap = r.snapshot();
    assert_eq!(snap.requests, 3, "capped at the newest 3");
    assert_eq!(snap.ttft_ms.unwrap().0, 4.0, "3, 4 and 7");
    assert_eq!(snap.tpot_ms.unwrap(), (0.35, 0.399), "3 and 4's TPOT only");
}

#[test]
fn output_throughput_spans_the_window() {
    let mut r = Rolling::new(s(10), 100);
    r.tokens(s(0), 0);
    assert_eq!(r.snapshot().output_tok_s, None, "one reading is no rate");
    r.tokens(s(5), 500);
    r.tokens(s(10), 1000);
    assert_eq!(r.snapshot().output_tok_s, Some(100.0));
    // At 15 s the window starts at 5 s: 500 tokens over 10 s.
    r.tokens(s(15), 1000);
    assert_eq!(r.snapshot().output_tok_s, Some(50.0));
}

#[test]
fn a_request_s_figures_come_from_its_outcome() {
    let three = || Outcome {
        started_at: 1_000,
        events: vec![51_000, 61_000, 71_000],
        usage: Some(Usage {
            completion_tokens: Some(5),
            ..Usage::default()
        }),
        ..Outcome::default()
    };
    let out = three();
    let f = Finished::of(&out).unwrap();
    assert_eq!(
        (f.ttft_ms, f.tpot_ms),
        (50.0, Some(5.0)),
        "20 ms over 4 tokens"
    );
    let no_usage = Outcome {
        usage: None,
        ..three()
    };
    assert_eq!(
        Finished::of(&no_usage).unwrap().tpot_ms,
        Some(10.0),
        "events"
    );
    let one = Outcome {
        events: vec![51_000],
        usage: None,
        ..three()
    };
    assert_eq!(Finished::of(&one).unwrap().tpot_ms, None);
    let failed = Outcome {
        failure: Some((FailureKind::StreamCut, "cut".into())),
        ..out
    };
    assert_eq!(Finished::of(&failed), None);
    assert_eq!(Finished::of(&Outcome::default()), None, "no output");
}

#[test]
fn the_live_line_renders_a_snapshot() {
    let snap = Snapshot {
        requests: 42,
        ttft_ms: Some((12.34, 456.7)),
        tpot_ms: Some((0.8421, 21.0)),
        output_tok_s: Some(1234.4),
    };
    assert_eq!(
        render(s(10), &snap),
        "last 10s: 42 req · TTFT p50 12.3 p99 457 ms · TPOT p50 0.842 p99 21.0 ms · output 1234 tok/s"
    );
    assert_eq!(
        render(s(10), &Snapshot::default()),
        "last 10s: 0 req · TTFT - · TPOT - · output - tok/s"
    );
}

fn finished_ok() -> Outcome {
    Outcome {
        started_at: 0,
        events: vec![10_000, 20_000],
        ..Outcome::default()
    }
}

#[test]
fn only_the_terminal_display_collects_finished_requests() {
    for mode in [ProgressMode::Lines, ProgressMode::Off] {
        let live = Live::for_mode(mode);
        assert!(!live.collects(), "{mode:?}");
        live.sent();
        live.ended(&finished_ok());
        assert!(live.take_finished().is_empty(), "{mode:?}");
        assert_eq!(live.done.load(Relaxed), 1);
    }
    let live = Live::for_mode(ProgressMode::Bars);
    assert!(live.collects());
    live.sent();
    live.output(2, true);
    live.ended(&finished_ok());
    assert_eq!(
        live.take_finished(),
        vec![Finished {
            ttft_ms: 10.0,
            tpot_ms: Some(10.0)
        }]
    );
    assert!(live.take_finished().is_empty(), "taken once");
}

/// The line printed when stderr is not a terminal keeps its exact form (log parsers
/// and CI logs read it).
#[test]
fn the_plain_line_is_unchanged() {
    let live = Live::for_mode(ProgressMode::Lines);
    for _ in 0..3 {
        live.sent();
    }
    live.output(5, true);
    live.ended(&finished_ok());
    assert_eq!(
        plain_line("concurrency 4", Duration::from_millis(10_400), &live, 8),
        "[concurrency 4]    10s sent 3/8 done 1 failed 0 prefill 1 decode tokens 5 in flight 2 queued 2"
    );
}
