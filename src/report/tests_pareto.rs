use super::*;
use crate::metrics::{RunData, summarize};

#[test]
fn the_frontier_keeps_the_points_no_other_beats_on_both_axes() {
    // (per-user, total): a: fast users, little total; b, d: trade-offs; c is beaten by
    // b on both; e ties b on x but is lower; f equals d (both kept).
    let pts = [
        (100.0, 50.0), // a
        (60.0, 300.0), // b
        (50.0, 200.0), // c: b is better on both
        (20.0, 900.0), // d
        (60.0, 250.0), // e: same x as b, lower y
        (20.0, 900.0), // f: equal to d
        (10.0, 850.0), // g: d is better on both
        (100.0, 40.0), // h: same x as a, lower
        (5.0, 900.0),  // i: same y as d, lower x
        (150.0, 10.0), // j: the fastest per user
    ];
    let on = frontier(&pts);
    assert_eq!(
        on,
        [
            true, true, false, true, false, true, false, false, false, true
        ]
    );
    assert!(frontier(&[]).is_empty());
    assert_eq!(frontier(&[(1.0, 1.0)]), [true]);
}

#[test]
fn points_carry_the_median_per_user_speed_and_the_throughput_per_gpu() {
    let mut s = summarize(&RunData::default(), &[]);
    assert!(
        interactivity([("none", &s)], Some(2)).is_none(),
        "no per-user speed"
    );
    s.output_tok_s = 800.0;
    s.per_user_tok_s = crate::metrics::Stats::compute(&mut [10.0, 30.0, 20.0], &[50.0]);
    let mut t = s.clone();
    t.output_tok_s = 100.0;
    t.per_user_tok_s = crate::metrics::Stats::compute(&mut [40.0], &[50.0]);
    let pts = interactivity([("a", &s), ("b", &t)], Some(4)).unwrap();
    assert_eq!(pts[0].label, "a");
    assert_eq!(pts[0].per_user_tok_s, 20.0);
    assert_eq!(pts[0].output_tok_s, 800.0);
    assert_eq!(pts[0].per_gpu, Some(200.0));
    assert_eq!(pts[1].per_gpu, Some(25.0));
    assert!(pts[0].on_frontier && pts[1].on_frontier);
    let none = interactivity([("a", &s)], None).unwrap();
    assert_eq!(none[0].per_gpu, None);
}
