//! The checks made from a run's records: each flags the run that needs it and leaves
//! a sound run alone.

use super::*;
use crate::metrics::{RunData, summarize};
use crate::record::{RequestRecord, RequestTag};

/// A successful request of `out` usage-counted tokens that was sent with `ignore_eos`
/// and `max_tokens` = `max` (None: sent without `ignore_eos`).
fn asked(out: u32, max: Option<u32>) -> RequestRecord {
    RequestRecord {
        expected_output_tokens: max,
        ..RequestRecord::ok_for_test("t", 0, vec![1_000, 2_000], 3_000, 10, out)
    }
}

fn checks(s: &Summary) -> Vec<&str> {
    s.validity.iter().map(|f| f.check.as_str()).collect()
}

fn run(records: &[RequestRecord]) -> Summary {
    let mut d = RunData::default();
    for r in records {
        d.push(r);
    }
    summarize(&d, &[])
}

#[test]
fn a_server_that_stops_early_is_flagged() {
    // 3 of 4 stop well short of 100 tokens.
    let s = run(&[
        asked(100, Some(100)),
        asked(40, Some(100)),
        asked(12, Some(100)),
        asked(89, Some(100)),
    ]);
    assert_eq!(checks(&s), ["ignore_eos"]);
    let m = &s.validity[0].message;
    assert!(m.contains("the server stopped early: 3 of 4"), "{m}");
    assert!(
        m.contains("ignore_eos is not honoured by this server"),
        "{m}"
    );
}

#[test]
fn outputs_near_max_tokens_or_few_short_ones_are_not_flagged() {
    // Within 10 % of max_tokens counts as reached; 2 short of 4 is not most.
    let s = run(&[
        asked(90, Some(100)),
        asked(100, Some(100)),
        asked(3, Some(100)),
        asked(5, Some(100)),
    ]);
    assert!(s.validity.is_empty(), "{:?}", s.validity);
}

#[test]
fn only_requests_sent_with_ignore_eos_and_counted_by_the_server_are_judged() {
    // Without ignore_eos a short output is the server's choice.
    assert!(run(&[asked(3, None), asked(4, None)]).validity.is_empty());
    // A client-side count (events, a tokenizer) may differ from the server's.
    let mut events = asked(3, Some(100));
    events.output_tokens_source = TokenSource::Events;
    assert!(run(&[events.clone(), events]).validity.is_empty());
    // A failed request says nothing about end of sequence.
    let mut failed = asked(3, Some(100));
    failed.failure = Some(crate::record::FailureKind::HttpStatus);
    assert!(
        run(&[failed.clone(), failed, asked(100, Some(100))])
            .validity
            .is_empty()
    );
}

/// A request scheduled at 0 that started `late_ms` later after waiting `wait_ms` for a
/// slot.
fn timed(late_ms: u64, wait_ms: Option<u64>) -> RequestRecord {
    RequestRecord {
        scheduled_at: Some(0),
        queue_wait: wait_ms.map(|w| w * 1_000),
        ..RequestRecord::ok_for_test("t", late_ms * 1_000, vec![], late_ms * 1_000 + 10, 1, 1)
    }
}

#[test]
fn schedule_lag_is_a_flag_of_the_summary() {
    let late: Vec<RequestRecord> = (0..10).map(|i| timed(1 + i * 2, None)).collect();
    let s = run(&late);
    assert_eq!(checks(&s), ["schedule_lag"]);
    assert!(
        s.validity[0]
            .message
            .contains("the client, not the server, limited this run")
    );
    let on_time: Vec<RequestRecord> = (0..10).map(|_| timed(1, None)).collect();
    assert!(run(&on_time).validity.is_empty());
}

#[test]
fn a_max_concurrency_cap_holding_arrivals_back_is_flagged() {
    // Started late, but because they waited for a slot: no lag, a queue wait.
    let held: Vec<RequestRecord> = (0..10).map(|i| timed(20 * i, Some(20 * i))).collect();
    let s = run(&held);
    assert_eq!(checks(&s), ["queue_wait"]);
    assert!(s.validity[0].message.contains("raise --max-concurrency"));
    // Nearly every slot free at once: not flagged.
    let free: Vec<RequestRecord> = (0..10).map(|_| timed(0, Some(1))).collect();
    assert!(run(&free).validity.is_empty());
    // In a session, waiting for the earlier turn is the workload, not the cap.
    let turns: Vec<RequestRecord> = (0..10)
        .map(|i| RequestRecord {
            tag: RequestTag {
                session: Some(i % 2),
                turn: Some((i / 2) as u32),
                model: None,
                ..RequestTag::default()
            },
            ..timed(20 * i, Some(20 * i))
        })
        .collect();
    assert!(!checks(&run(&turns)).contains(&"queue_wait"));
}

#[test]
fn a_saved_summary_without_the_lag_flag_gets_it_on_load() {
    let late: Vec<RequestRecord> = (0..10).map(|i| timed(1 + i * 2, None)).collect();
    let mut s = run(&late);
    s.validity.clear();
    let back: Summary = serde_json::from_value(s.to_json()).unwrap();
    assert_eq!(checks(&back), ["schedule_lag"]);
}
