//! Output tokens/s per user on hand-computed requests.

use super::*;

fn rec(started: u64, events: &[u64], ended: u64, out: u32) -> RequestRecord {
    RequestRecord::ok_for_test("t", started, events.to_vec(), ended, 10, out)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Times in µs. A: first event at 100 ms, ends 300 ms, 10 tokens → 10 / 0.2 s = 50;
/// B: first at 50 ms, ends 150 ms, 4 tokens → 40; C: first at 20 ms, ends 120 ms,
/// 30 tokens → 300. Excluded: D (1 token), E (ends at its only event: E2E == TTFT),
/// F (failed).
fn example() -> RunData {
    let mut d = RunData::default();
    d.push(&rec(0, &[100_000, 200_000, 290_000], 300_000, 10));
    d.push(&rec(0, &[50_000, 150_000], 150_000, 4));
    d.push(&rec(10_000, &[20_000, 110_000], 120_000, 30));
    d.push(&rec(0, &[40_000], 60_000, 1));
    d.push(&rec(0, &[80_000], 80_000, 5));
    let mut f = rec(0, &[10_000, 20_000], 30_000, 2);
    f.failure = Some(FailureKind::HttpStatus);
    d.push(&f);
    d
}

#[test]
fn per_user_speed_is_output_tokens_over_e2e_minus_ttft() {
    let s = summarize(&example(), &[]);
    let u = s.per_user_tok_s.as_ref().unwrap();
    assert_eq!(u.count, 3, "D, E and F are excluded");
    assert!(close(u.min, 40.0) && close(u.max, 300.0), "{u:?}");
    assert!(close(u.percentile(50.0).unwrap(), 50.0), "{u:?}");
    // p10 of [40, 50, 300]: 40 + 0.2 × 10 = 42.
    assert!(close(u.percentile(10.0).unwrap(), 42.0), "{u:?}");
    assert!(
        close(u.percentile(90.0).unwrap(), 50.0 + 0.8 * 250.0),
        "{u:?}"
    );
}

#[test]
fn per_user_speed_survives_results_json_and_is_absent_without_a_timed_request() {
    let s = summarize(&example(), &[99.0]);
    let back: Summary = serde_json::from_value(s.to_json()).unwrap();
    assert_eq!(back.per_user_tok_s, s.per_user_tok_s);
    let json = s.to_json();
    assert!(json["per_user_tok_s"]["p10"].is_number(), "{json}");
    let none = summarize(&RunData::default(), &[]);
    assert!(none.per_user_tok_s.is_none());
    assert!(none.to_json().get("per_user_tok_s").is_none(), "optional");
    let m = crate::metrics::catalogue::known("per_user_tok_s.p50");
    assert_eq!(m.value(&s), Some(50.0));
}
