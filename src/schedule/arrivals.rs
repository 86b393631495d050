//! Arrival times for open-loop runs, as offsets in µs from the run's start: request
//! rates with Poisson or gamma inter-arrivals, and trace timestamps scaled in time.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Gamma};

/// How many arrivals to draw: a count, a time span, or both (whichever ends first).
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub requests: Option<usize>,
    pub duration_us: Option<u64>,
}

/// Arrivals at `rate` requests/s (`None` = infinite: all at time 0). Inter-arrival
/// gaps are gamma-distributed with shape `burstiness` and mean 1/rate, as vLLM does:
/// burstiness 1 is a Poisson process; below 1 is burstier, above 1 more regular
/// (coefficient of variation 1/√burstiness). The first request goes at time 0.
pub fn rate_arrivals(rate: Option<f64>, burstiness: f64, span: Span, seed: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let Some(rate) = rate else {
        return vec![0; span.requests.unwrap_or(0)];
    };
    let gamma = Gamma::new(burstiness, 1.0 / (rate * burstiness))
        .expect("rate and burstiness are checked to be positive and finite");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = 0.0f64;
    loop {
        if span.requests.is_some_and(|n| out.len() >= n) {
            break;
        }
        let us = (t * 1e6).round() as u64;
        if span.duration_us.is_some_and(|d| us > d) {
            break;
        }
        out.push(us);
        t += gamma.sample(&mut rng);
    }
    out
}

/// Trace replay: request i at `(t_i − t_min) × scale`, rounded to the µs.
pub fn trace_offset(t_us: u64, t_min_us: u64, scale: f64) -> u64 {
    ((t_us - t_min_us) as f64 * scale).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(a: &[u64]) -> Vec<f64> {
        a.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e6).collect()
    }

    fn mean_cv(g: &[f64]) -> (f64, f64) {
        let m = g.iter().sum::<f64>() / g.len() as f64;
        let var = g.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / g.len() as f64;
        (m, var.sqrt() / m)
    }

    #[test]
    fn poisson_mean_and_cv_over_10000_draws() {
        let span = Span {
            requests: Some(10_001),
            duration_us: None,
        };
        let a = rate_arrivals(Some(50.0), 1.0, span, 7);
        assert_eq!(a.len(), 10_001);
        assert_eq!(a[0], 0);
        let (m, cv) = mean_cv(&gaps(&a));
        // Standard error of the mean gap is 2% of it over 10,000 draws: allow 3 σ.
        assert!((m - 0.02).abs() < 0.02 * 0.06, "mean gap {m}");
        assert!((cv - 1.0).abs() < 0.05, "CV {cv}");
    }

    #[test]
    fn burstiness_sets_the_coefficient_of_variation() {
        let span = Span {
            requests: Some(10_001),
            duration_us: None,
        };
        for (b, expected_cv) in [(0.25, 2.0), (4.0, 0.5)] {
            let (m, cv) = mean_cv(&gaps(&rate_arrivals(Some(10.0), b, span, 3)));
            assert!((m - 0.1).abs() < 0.1 * 0.1, "b={b}: mean gap {m}");
            assert!(
                (cv - expected_cv).abs() < expected_cv * 0.1,
                "b={b}: CV {cv}"
            );
        }
    }

    #[test]
    fn seeded_duration_and_infinite_rate() {
        let span = Span {
            requests: None,
            duration_us: Some(10_000_000),
        };
        let a = rate_arrivals(Some(100.0), 1.0, span, 1);
        assert_eq!(a, rate_arrivals(Some(100.0), 1.0, span, 1), "same seed");
        assert_ne!(a, rate_arrivals(Some(100.0), 1.0, span, 2));
        assert!(a.iter().all(|&t| t <= 10_000_000));
        assert!(
            (900..1100).contains(&a.len()),
            "{} arrivals in 10 s at 100/s",
            a.len()
        );
        let inf = rate_arrivals(
            None,
            1.0,
            Span {
                requests: Some(5),
                duration_us: None,
            },
            0,
        );
        assert_eq!(inf, vec![0; 5]);
    }

    #[test]
    fn trace_offsets_are_exact() {
        assert_eq!(trace_offset(40_000, 0, 0.5), 20_000);
        assert_eq!(trace_offset(61_114_000, 1_000_000, 0.4), 24_045_600);
        assert_eq!(trace_offset(5, 5, 1.6), 0);
    }
}
