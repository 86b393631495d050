//! How sure a figure is: over repeats of a level, the mean with a 95 % Student-t
//! interval and the coefficient of variation; within one run, a bootstrap 95 %
//! interval of each latency percentile over the run's requests.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Beta, Distribution};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::stats::{lerp_percentile, percentile_sorted};

/// The 0.975 quantile of Student's t with `df` degrees of freedom: the half-width
/// factor of a two-sided 95 % interval. `None` for df = 0.
pub fn t975(df: u32) -> Option<f64> {
    let t = StudentsT::new(0.0, 1.0, f64::from(df)).ok()?;
    Some(t.inverse_cdf(0.975))
}

/// The mean of repeated measurements with its 95 % interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanInterval {
    pub n: usize,
    pub mean: f64,
    /// mean ± t(0.975, n−1)·s/√n, s the sample standard deviation (n − 1).
    pub ci95: [f64; 2],
    /// s / mean; `None` when the mean is 0.
    pub cv: Option<f64>,
}

impl MeanInterval {
    /// `None` under two values (no spread to estimate) or when one is not finite.
    pub fn of(values: &[f64]) -> Option<MeanInterval> {
        let n = values.len();
        if n < 2 || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
        let s = var.sqrt();
        let half = t975(n as u32 - 1)? * s / (n as f64).sqrt();
        Some(MeanInterval {
            n,
            mean,
            ci95: [mean - half, mean + half],
            cv: (mean != 0.0).then(|| s / mean.abs()),
        })
    }

    /// The two intervals share no point.
    pub fn apart(&self, other: &MeanInterval) -> bool {
        self.ci95[1] < other.ci95[0] || other.ci95[1] < self.ci95[0]
    }
}

/// Bootstrap resamples of each percentile. Their cost does not grow with the run (see
/// `bootstrap_percentiles`), so there is no cap to apply for long runs.
pub const RESAMPLES: usize = 1000;
/// Fixed, so a report recomputed from the records gives the same intervals.
const SEED: u64 = 0x5EED_B007;

/// For each of `percentiles`, the 95 % percentile-bootstrap interval of that percentile
/// over `sorted` (ascending): the percentile (numpy's linear method, as the point
/// estimate) of `RESAMPLES` resamples with replacement, and the 2.5th and 97.5th
/// percentiles of those. Empty under two values.
///
/// Each resample is drawn exactly without drawing its n values: a resample's k-th
/// smallest value is `sorted[⌊n·U₍ₖ₊₁₎⌋]`, U₍ₖ₊₁₎ the (k+1)-th smallest of n uniforms on
/// (0, 1), which is Beta(k + 1, n − k); the next one above it adds (1 − U₍ₖ₊₁₎) times
/// the least of the n − k − 1 uniforms left, Beta(1, n − k − 1). So the cost is
/// resamples × percentiles, whatever n.
pub fn bootstrap_percentiles(sorted: &[f64], percentiles: &[f64]) -> Vec<(f64, [f64; 2])> {
    let n = sorted.len();
    if n < 2 {
        return Vec::new();
    }
    // A named generator (not StdRng, whose algorithm may change): fixed draws.
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    let at = |u: f64| sorted[((u * n as f64) as usize).min(n - 1)];
    percentiles
        .iter()
        .map(|&p| {
            let lo = (((p / 100.0) * (n - 1) as f64).floor() as usize).min(n - 1);
            let hi = (lo + 1).min(n - 1);
            let mut e: Vec<f64> = (0..RESAMPLES)
                .map(|_| {
                    let u_lo = beta(&mut rng, (lo + 1) as f64, (n - lo) as f64);
                    let u_hi = if hi == lo {
                        u_lo
                    } else {
                        let least = beta(&mut rng, 1.0, (n - lo - 1) as f64);
                        u_lo + (1.0 - u_lo) * least
                    };
                    let (a, b) = (at(u_lo), at(u_hi));
                    lerp_percentile(n, p, |k| if k == lo { a } else { b })
                })
                .collect();
            e.sort_unstable_by(f64::total_cmp);
            (p, [percentile_sorted(&e, 2.5), percentile_sorted(&e, 97.5)])
        })
        .collect()
}

/// One draw of Beta(a, b), a and b ≥ 1 (always valid here).
fn beta(rng: &mut Xoshiro256PlusPlus, a: f64, b: f64) -> f64 {
    Beta::new(a, b).map_or(0.5, |d| d.sample(rng))
}

#[cfg(test)]
#[path = "tests_confidence.rs"]
mod tests;
