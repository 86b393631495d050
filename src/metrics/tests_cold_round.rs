use super::*;
use crate::metrics::{RunData, summarize};
use crate::record::RequestRecord;

/// Requests (started µs, first token µs, cached of 100 prompt tokens).
fn run(reqs: &[(u64, u64, Option<u32>)]) -> RunData {
    let mut d = RunData::default();
    for (i, &(start, first, cached)) in reqs.iter().enumerate() {
        d.push(&RequestRecord {
            id: i as u64,
            prompt_tokens: Some(100),
            cached_tokens: cached,
            ..RequestRecord::ok_for_test(
                "r",
                start,
                vec![first, first + 1_000],
                first + 1_000,
                90,
                2,
            )
        });
    }
    d
}

fn flag(d: &RunData) -> Option<Flag> {
    check(d.samples(), &summarize(d, &[]), "concurrency 2")
}

#[test]
fn the_opening_requests_decide() {
    // Two sent together find nothing; later ones hit what the round itself computed
    // (a shared template): still cold.
    let cold = run(&[
        (0, 50_000, Some(0)),
        (10, 60_000, Some(0)),
        (70_000, 80_000, Some(60)),
        (90_000, 95_000, Some(60)),
    ]);
    assert_eq!(opening_cached_share(cold.samples()), Some((0.0, 2)));
    assert_eq!(flag(&cold), None);
    // The opening requests found half their prompts cached: left by an earlier run.
    let warm = run(&[
        (0, 50_000, Some(60)),
        (10, 60_000, Some(60)),
        (70_000, 80_000, Some(0)),
    ]);
    assert_eq!(opening_cached_share(warm.samples()), Some((0.5, 2)));
    let f = flag(&warm).expect("a warm round 1 is flagged");
    assert_eq!(f.check, CHECK);
    assert!(
        f.message.contains("concurrency 2")
            && f.message.contains("50.0 %")
            && f.message.contains("--reset-cache-url")
            && f.message.contains("--seed"),
        "{}",
        f.message
    );
}

#[test]
fn a_cached_chat_template_is_allowed() {
    // 100 prompt tokens for 90 of the client's: a 10-token template, which the
    // connection test left cached; beyond it, nothing.
    let template = run(&[(0, 50_000, Some(10)), (10, 60_000, Some(8))]);
    assert_eq!(opening_cached_share(template.samples()), Some((0.0, 2)));
    assert_eq!(flag(&template), None);
    let warm = run(&[(0, 50_000, Some(99)), (10, 60_000, Some(99))]);
    assert_eq!(opening_cached_share(warm.samples()), Some((0.89, 2)));
}

#[test]
fn a_small_share_is_cold_and_no_report_is_no_verdict() {
    let small = run(&[(0, 50_000, Some(14)), (10, 60_000, Some(15))]);
    assert_eq!(flag(&small), None, "4.5 % is under the threshold");
    let unreported = run(&[(0, 50_000, None), (10, 60_000, None)]);
    assert_eq!(opening_cached_share(unreported.samples()), None);
    assert_eq!(flag(&unreported), None, "no usage and no server metrics");
}
