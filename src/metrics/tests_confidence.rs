use super::*;
use crate::metrics::stats::percentile_sorted;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn t_quantiles_match_the_tables() {
    for (df, t) in [
        (1, 12.706),
        (2, 4.303),
        (4, 2.776),
        (9, 2.262),
        (29, 2.045),
        (100, 1.984),
    ] {
        let got = t975(df).unwrap();
        assert!(close(got, t, 0.0005), "t(0.975, {df}) = {got}, table {t}");
    }
    assert!(
        close(t975(1_000_000).unwrap(), 1.960, 0.0005),
        "normal limit"
    );
    assert_eq!(t975(0), None);
}

#[test]
fn mean_interval_and_cv_of_three_values() {
    // 10, 12, 14: mean 12, s = 2, s/√3 = 1.1547, t(0.975, 2) = 4.3027 → ± 4.9683.
    let m = MeanInterval::of(&[10.0, 12.0, 14.0]).unwrap();
    assert_eq!(m.n, 3);
    assert!(close(m.mean, 12.0, 1e-12));
    let half = 4.302_652_729_911 * 2.0 / 3f64.sqrt();
    assert!(close(m.ci95[0], 12.0 - half, 1e-9), "{:?}", m.ci95);
    assert!(close(m.ci95[1], 12.0 + half, 1e-9), "{:?}", m.ci95);
    assert!(close(m.cv.unwrap(), 2.0 / 12.0, 1e-12));
    // Equal values: a zero-width interval; a zero mean has no CV.
    let flat = MeanInterval::of(&[5.0, 5.0]).unwrap();
    assert_eq!(flat.ci95, [5.0, 5.0]);
    assert_eq!(MeanInterval::of(&[0.0, 0.0]).unwrap().cv, None);
    assert_eq!(MeanInterval::of(&[1.0]), None, "one value has no spread");
    assert_eq!(MeanInterval::of(&[1.0, f64::NAN]), None);
}

#[test]
fn intervals_apart_only_without_overlap() {
    let a = MeanInterval::of(&[10.0, 12.0, 14.0]).unwrap(); // ≈ [7.03, 16.97]
    let near = MeanInterval::of(&[15.0, 16.0, 17.0]).unwrap(); // ≈ [13.52, 18.48]
    let far = MeanInterval::of(&[30.0, 31.0, 32.0]).unwrap(); // ≈ [28.52, 33.48]
    assert!(!a.apart(&near) && !near.apart(&a));
    assert!(a.apart(&far) && far.apart(&a));
}

/// The plain bootstrap, drawing every resample's values: the oracle for the exact
/// order-statistic draws.
fn plain_bootstrap(sorted: &[f64], p: f64, resamples: usize) -> [f64; 2] {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};
    let mut rng = StdRng::seed_from_u64(1);
    let n = sorted.len();
    let mut e: Vec<f64> = (0..resamples)
        .map(|_| {
            let mut r: Vec<f64> = (0..n).map(|_| sorted[rng.random_range(0..n)]).collect();
            r.sort_by(f64::total_cmp);
            percentile_sorted(&r, p)
        })
        .collect();
    e.sort_by(f64::total_cmp);
    [percentile_sorted(&e, 2.5), percentile_sorted(&e, 97.5)]
}

#[test]
fn order_statistic_draws_agree_with_the_plain_bootstrap() {
    // A skewed, latency-like sample, smooth enough that one rank is a small step.
    let sorted: Vec<f64> = (0..400).map(|i| (i * i) as f64 / 400.0).collect();
    for p in [25.0, 50.0, 90.0, 95.0] {
        let fast = bootstrap_percentiles(&sorted, &[p])[0].1;
        let plain = plain_bootstrap(&sorted, p, 4000);
        let width = plain[1] - plain[0];
        // Monte Carlo error of the ends: about 2 % of the width for 1000 resamples (the seeds are fixed).
        for (f, q) in fast.iter().zip(plain) {
            assert!(
                (f - q).abs() <= 0.05 * width,
                "p{p}: {fast:?} against the plain bootstrap's {plain:?}"
            );
        }
    }
}

#[test]
fn bootstrap_is_deterministic_and_holds_the_estimate() {
    // A skewed latency-like sample: the quantiles of an exponential distribution.
    let n = 1000.0;
    let sorted: Vec<f64> = (1..=1000)
        .map(|i| -(1.0 - (i as f64 - 0.5) / n).ln())
        .collect();
    let pcts = [50.0, 90.0, 99.0];
    let a = bootstrap_percentiles(&sorted, &pcts);
    assert_eq!(a, bootstrap_percentiles(&sorted, &pcts), "same every time");
    assert_eq!(a.len(), 3);
    for (p, [lo, hi]) in &a {
        let est = percentile_sorted(&sorted, *p);
        assert!(*lo <= est && est <= *hi, "p{p}: {est} in [{lo}, {hi}]");
        assert!(lo < hi, "p{p}: a spread sample has a wide interval");
    }
    // The tail percentile is less certain than the median (relative width).
    let rel = |i: usize| (a[i].1[1] - a[i].1[0]) / percentile_sorted(&sorted, a[i].0);
    assert!(rel(0) < rel(2), "{a:?}");
    // No interval under two values; identical values give a point.
    assert!(bootstrap_percentiles(&[3.0], &pcts).is_empty());
    let flat = bootstrap_percentiles(&[2.0; 50], &pcts);
    assert!(flat.iter().all(|(_, c)| *c == [2.0, 2.0]), "{flat:?}");
}

#[test]
fn bootstrap_median_interval_is_about_the_normal_theory_width() {
    // For n uniform values on [0, 1) the median's standard error is 1/(2√n); the 95 %
    // interval is about ±1.96 of it.
    let n = 2000;
    let sorted: Vec<f64> = (0..n).map(|i| i as f64 / n as f64).collect();
    let ci = bootstrap_percentiles(&sorted, &[50.0])[0].1;
    let width = ci[1] - ci[0];
    let expected = 2.0 * 1.96 / (2.0 * (n as f64).sqrt());
    assert!(
        (width / expected - 1.0).abs() < 0.25,
        "width {width}, expected ≈ {expected}"
    );
}

/// The cost the intervals add to a summary: `cargo test --release --lib bootstrap_cost
/// -- --ignored --nocapture` (recorded in the README).
#[test]
#[ignore]
fn bootstrap_cost() {
    use crate::metrics::{RunData, summarize};
    use crate::record::RequestRecord;
    use std::time::Instant;
    for n in [10_000u64, 100_000, 1_000_000] {
        let mut d = RunData::default();
        for i in 0..n {
            let t = 20_000 + (i * 7919) % 50_000;
            let ev: Vec<u64> = (0..16)
                .map(|k| t + k * 5_000 + (i * 31 + k * 17) % 900)
                .collect();
            let end = *ev.last().unwrap();
            d.push(&RequestRecord {
                id: i,
                ..RequestRecord::ok_for_test("r", 0, ev, end, 100, 16)
            });
        }
        let t0 = Instant::now();
        let s = summarize(&d, &[]);
        let total = t0.elapsed();
        let mut v: Vec<f64> = (0..n).map(|i| ((i * 7919) % 50_000) as f64).collect();
        v.sort_by(f64::total_cmp);
        let t1 = Instant::now();
        let _ = bootstrap_percentiles(&v, &[50.0, 90.0, 99.0]);
        eprintln!(
            "{n} requests: summarize {:?}, of which 3 bootstraps ≈ 3 × {:?}",
            total,
            t1.elapsed(),
        );
        assert!(!s.ttft_ms.unwrap().ci95.is_empty());
    }
}
