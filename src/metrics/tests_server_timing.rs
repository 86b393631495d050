use super::*;
use crate::metrics::{RunData, summarize as summarize_run};
use crate::server_timings::ServerTimings;

/// A successful record: TTFT `ttft_ms`, the server's prompt time `prompt_ms`.
fn record(ttft_ms: u64, prompt_ms: f64) -> RequestRecord {
    let first = ttft_ms * 1000;
    let mut r =
        RequestRecord::ok_for_test("r", 0, vec![first, first + 10_000], first + 10_000, 20, 2);
    r.server_timings = Some(ServerTimings {
        prompt_ms: Some(prompt_ms),
        predicted_ms: Some(10.0),
        prompt_n: Some(20),
        cache_n: Some(0),
        predicted_n: Some(2),
    });
    r
}

fn run(records: &[RequestRecord]) -> crate::metrics::Summary {
    let mut data = RunData::default();
    records.iter().for_each(|r| data.push(r));
    summarize_run(&data, &[])
}

#[test]
fn the_gap_is_ttft_minus_the_servers_prompt_time_and_is_flagged_when_it_dominates() {
    // 40 ms TTFT, 10 ms of it the server's: a 30 ms gap dominates.
    let s = run(&[record(40, 10.0), record(40, 10.0), record(40, 10.0)]);
    let t = s.server_timings.as_ref().unwrap();
    assert_eq!(t.requests, 3);
    assert!((t.ttft_gap_ms.as_ref().unwrap().mean - 30.0).abs() < 1e-9);
    assert!((t.decode_ms_per_token.as_ref().unwrap().mean - 10.0).abs() < 1e-9);
    assert_eq!(s.validity.len(), 1, "{:?}", s.validity);
    assert_eq!(s.validity[0].check, "ttft_gap");
    // Saved and read back.
    let back: crate::metrics::Summary = serde_json::from_value(s.to_json()).unwrap();
    assert_eq!(back.server_timings, s.server_timings);

    // The server's prompt time is most of TTFT: no flag.
    let s = run(&[record(40, 36.0), record(40, 36.0)]);
    assert!(s.validity.is_empty(), "{:?}", s.validity);
    // A gap above the prompt time but under the floor: no flag.
    let s = run(&[record(4, 1.0)]);
    assert!(s.validity.is_empty(), "{:?}", s.validity);
    // No timings: no object, none saved.
    let mut plain = record(40, 1.0);
    plain.server_timings = None;
    let s = run(&[plain]);
    assert!(s.server_timings.is_none());
    assert!(s.to_json().get("server_timings").is_none());
}
