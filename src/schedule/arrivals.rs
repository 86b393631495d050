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
    let Some(rate) = rate else {
        return vec![0; span.requests.unwrap_or(0)];
    };
    let mut out = Vec::new();
    for us in RateArrivals::new(rate, burstiness, None, seed) {
        if span.requests.is_some_and(|n| out.len() >= n) || span.duration_us.is_some_and(|d| us > d)
        {
            break;
        }
        out.push(us);
    }
    out
}

/// How an open-loop rate rises to its target at the start of a run (`--ramp-up`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RampUp {
    /// From 0 to the target, in a straight line.
    Linear,
    /// From `EXP_RAMP_START` × the target, growing by the same factor every instant.
    Exponential,
}

impl RampUp {
    pub fn as_str(self) -> &'static str {
        match self {
            RampUp::Linear => "linear",
            RampUp::Exponential => "exponential",
        }
    }
}

/// Where an exponential ramp starts, as a share of the target rate: two decades below.
pub const EXP_RAMP_START: f64 = 0.01;

/// A rate ramp: the arrival rate rises to the target over `secs`, then holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ramp {
    pub strategy: RampUp,
    pub secs: f64,
}

impl Ramp {
    /// The run's time (s) at which the ramped process reaches `tau`, the time a process
    /// at the full rate would have reached: with λ(t) the ramped rate and R the target,
    /// t solves ∫₀ᵗ λ = R·τ. A time change keeps the gaps' distribution (Poisson stays a
    /// Poisson process, of rate λ(t)); past the ramp, time runs at the target rate.
    pub fn warp(&self, tau: f64) -> f64 {
        let s = self.secs;
        match self.strategy {
            // λ(t) = R·t/S: ∫ = R·t²/(2S), reaching R·S/2 at S.
            RampUp::Linear if tau < s / 2.0 => (2.0 * s * tau).sqrt(),
            RampUp::Linear => tau + s / 2.0,
            // λ(t) = R·a·e^(kt), a = EXP_RAMP_START, k = ln(1/a)/S: ∫ = R·(a/k)(e^(kt) − 1).
            RampUp::Exponential => {
                let a = EXP_RAMP_START;
                let k = (1.0 / a).ln() / s;
                let tau_s = (1.0 - a) / k;
                if tau < tau_s {
                    (1.0 + tau * k / a).ln() / k
                } else {
                    s + tau - tau_s
                }
            }
        }
    }
}

/// The endless arrival times (µs) of a finite rate, optionally ramped.
pub struct RateArrivals {
    gamma: Gamma<f64>,
    rng: StdRng,
    /// Time at the target rate (s).
    tau: f64,
    ramp: Option<Ramp>,
}

impl RateArrivals {
    pub fn new(rate: f64, burstiness: f64, ramp: Option<Ramp>, seed: u64) -> Self {
        RateArrivals {
            gamma: Gamma::new(burstiness, 1.0 / (rate * burstiness))
                .expect("rate and burstiness are checked to be positive and finite"),
            rng: StdRng::seed_from_u64(seed),
            tau: 0.0,
            ramp,
        }
    }
}

impl Iterator for RateArrivals {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let t = self.ramp.map_or(self.tau, |r| r.warp(self.tau));
        self.tau += self.gamma.sample(&mut self.rng);
        Some((t * 1e6).round() as u64)
    }
}

/// Which of a run's first requests are warm-up: a count, or those due in the first µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Warmup {
    #[default]
    None,
    Requests(usize),
    /// Requests sent (open loop: due) before this many µs from the run's start.
    Until(u64),
}

/// A rate run's arrivals: the warm-up's first, then the measured span's, counted from
/// the warm-up's end (with a duration: from `Warmup::Until`'s instant, or the first
/// measured arrival). Returns the offsets and how many of the first are warm-up.
pub fn planned_arrivals(
    rate: Option<f64>,
    burstiness: f64,
    ramp: Option<Ramp>,
    span: Span,
    warmup: Warmup,
    seed: u64,
) -> (Vec<u64>, usize) {
    let mut all: Box<dyn Iterator<Item = u64>> = match rate {
        Some(r) => Box::new(RateArrivals::new(r, burstiness, ramp, seed)),
        None => Box::new(std::iter::repeat(0)),
    };
    let mut out = Vec::new();
    let mut next = all.next();
    match warmup {
        // Every infinite-rate arrival is due at once: none is "before" an instant
        // (the settings refuse the pair).
        Warmup::None | Warmup::Until(_) if rate.is_none() => {}
        Warmup::None => {}
        Warmup::Requests(n) => {
            while out.len() < n {
                out.extend(next);
                next = all.next();
            }
        }
        Warmup::Until(end) => {
            while let Some(us) = next.filter(|&us| us < end) {
                out.push(us);
                next = all.next();
            }
        }
    }
    let warm = out.len();
    let from = match warmup {
        Warmup::Until(end) => end,
        _ => next.unwrap_or(0),
    };
    while let Some(us) = next {
        let measured = out.len() - warm;
        if span.requests.is_some_and(|n| measured >= n)
            || span
                .duration_us
                .is_some_and(|d| us.saturating_sub(from) > d)
        {
            break;
        }
        out.push(us);
        next = all.next();
    }
    (out, warm)
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
