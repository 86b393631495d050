//! Ramped arrivals and warm-up arrivals, against offsets worked out by hand.

use super::arrivals::*;

/// Burstiness so high that every gap is 1/rate to well under a µs: the offsets are
/// then the ramp's time change of i/rate alone.
const REGULAR: f64 = 1e12;

fn near(got: &[u64], want: &[u64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(g.abs_diff(*w) <= 2, "arrival {i}: {g} µs, expected {w}");
    }
}

fn span(requests: Option<usize>, duration_us: Option<u64>) -> Span {
    Span {
        requests,
        duration_us,
    }
}

#[test]
fn linear_ramp_offsets() {
    // Rate 10/s reached over S = 2 s: λ(t) = 10·t/2, so ∫₀ᵗ λ = 10·t²/4 and arrival i
    // (i/10 s at the full rate) comes at t = √(4·i/10) while i/10 < S/2 = 1, and at
    // i/10 + S/2 after: the ramp cost S/2 of full-rate time.
    let ramp = Ramp {
        strategy: RampUp::Linear,
        secs: 2.0,
    };
    let (a, warm) = planned_arrivals(
        Some(10.0),
        REGULAR,
        Some(ramp),
        span(Some(14), None),
        Warmup::None,
        1,
    );
    assert_eq!(warm, 0);
    near(
        &a,
        &[
            0, 632_456, 894_427, 1_095_445, 1_264_911, 1_414_214, 1_549_193, 1_673_320, 1_788_854,
            1_897_367, 2_000_000, 2_100_000, 2_200_000, 2_300_000,
        ],
    );
    assert_eq!(ramp.warp(0.25), 1.0);
    assert_eq!(ramp.warp(1.5), 2.5);
}

#[test]
fn exponential_ramp_offsets() {
    // λ(t) = R·a·e^(kt), a = 0.01, k = ln(100)/S: ∫₀ᵗ λ = R·(a/k)(e^(kt) − 1), so the
    // arrival at full-rate time τ comes at t = ln(1 + τk/a)/k until τ_S = (1 − a)/k
    // = 0.429952 s (S = 2), and at S + τ − τ_S after. At 10/s: τ = 0.1 gives
    // ln(1 + 0.1·2.302585/0.01)/2.302585 = 1.380679 s.
    let ramp = Ramp {
        strategy: RampUp::Exponential,
        secs: 2.0,
    };
    let (a, _) = planned_arrivals(
        Some(10.0),
        REGULAR,
        Some(ramp),
        span(Some(8), None),
        Warmup::None,
        1,
    );
    near(
        &a,
        &[
            0, 1_380_679, 1_672_575, 1_845_579, 1_968_966, 2_070_048, 2_170_048, 2_270_048,
        ],
    );
    // The rate at the ramp's end is the target: gaps of 1/R from there.
    assert!((ramp.warp(1.0) - ramp.warp(0.9) - 0.1).abs() < 1e-12);
}

#[test]
fn without_ramp_or_warm_up_the_offsets_are_the_plain_rate_s() {
    for (rate, s) in [
        (Some(7.0), span(Some(50), None)),
        (Some(30.0), span(None, Some(2_000_000))),
        (Some(30.0), span(Some(20), Some(300_000))),
        (None, span(Some(5), None)),
    ] {
        let (a, warm) = planned_arrivals(rate, 1.0, None, s, Warmup::None, 9);
        assert_eq!(warm, 0);
        assert_eq!(a, rate_arrivals(rate, 1.0, s, 9), "{rate:?} {s:?}");
    }
}

#[test]
fn warm_up_arrivals_come_first_and_the_span_counts_after_them() {
    let at = |warmup, s| planned_arrivals(Some(10.0), REGULAR, None, s, warmup, 1);
    // Three warm-up arrivals, then five measured.
    let (a, warm) = at(Warmup::Requests(3), span(Some(5), None));
    assert_eq!(warm, 3);
    near(
        &a,
        &[
            0, 100_000, 200_000, 300_000, 400_000, 500_000, 600_000, 700_000,
        ],
    );
    // Those due before 0.25 s are warm-up (0, 0.1, 0.2); the measured 0.3 s from there.
    let (a, warm) = at(Warmup::Until(250_000), span(None, Some(300_000)));
    assert_eq!(warm, 3);
    near(&a, &[0, 100_000, 200_000, 300_000, 400_000, 500_000]);
    // By count, the measured duration runs from the first measured arrival (0.3 s).
    let (a, warm) = at(Warmup::Requests(3), span(None, Some(300_000)));
    assert_eq!(warm, 3);
    near(
        &a,
        &[0, 100_000, 200_000, 300_000, 400_000, 500_000, 600_000],
    );
    // At an infinite rate a counted warm-up is the first N of the burst.
    let (a, warm) = planned_arrivals(None, 1.0, None, span(Some(4), None), Warmup::Requests(2), 0);
    assert_eq!((a, warm), (vec![0; 6], 2));
}

#[test]
fn a_ramped_poisson_process_keeps_its_rate_and_its_spread() {
    // 100/s over a 10 s linear ramp: Λ(5 s) = 100·25/20 = 125 arrivals expected in the
    // first 5 s (σ ≈ 11), 500 by the ramp's end; after it, exponential gaps of 10 ms.
    let ramp = Ramp {
        strategy: RampUp::Linear,
        secs: 10.0,
    };
    let (a, _) = planned_arrivals(
        Some(100.0),
        1.0,
        Some(ramp),
        span(None, Some(60_000_000)),
        Warmup::None,
        3,
    );
    let first5 = a.iter().filter(|&&t| t < 5_000_000).count();
    assert!(
        (125 - 40..125 + 40).contains(&first5),
        "{first5} in the first 5 s"
    );
    let ramped = a.iter().filter(|&&t| t < 10_000_000).count();
    assert!(
        (500 - 80..500 + 80).contains(&ramped),
        "{ramped} in the ramp"
    );
    let after: Vec<f64> = a
        .windows(2)
        .filter(|w| w[0] >= 10_000_000)
        .map(|w| (w[1] - w[0]) as f64 / 1e6)
        .collect();
    let m = after.iter().sum::<f64>() / after.len() as f64;
    let sd = (after.iter().map(|g| (g - m) * (g - m)).sum::<f64>() / after.len() as f64).sqrt();
    assert!((m - 0.01).abs() < 0.0006, "mean gap {m}");
    assert!((sd / m - 1.0).abs() < 0.06, "CV {}", sd / m);
}
