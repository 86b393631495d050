//! How sure a figure is: over repeats of a level, the mean with a 95 % Student-t
//! interval and the coefficient of variation; within one run, a bootstrap 95 %
//! interval of each latency percentile over the run's requests.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
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

/// Bootstrap resamples per run, when the run is small enough (see `resamples`).
pub const RESAMPLES: usize = 1000;
/// The work cap: at most this many draws per distribution (resamples × requests) ...
pub const MAX_DRAWS: usize = 20_000_000;
/// ... but never fewer resamples than this (past 200,000 requests the cost grows
/// linearly with the run, like the rest of the summary).
pub const MIN_RESAMPLES: usize = 100;
/// Fixed, so a report recomputed from the records gives the same intervals.
const SEED: u64 = 0x5EED_B007;

/// How many resamples a distribution of `n` samples gets.
pub fn resamples(n: usize) -> usize {
    (MAX_DRAWS / n.max(1)).clamp(MIN_RESAMPLES, RESAMPLES)
}

/// For each of `percentiles`, the 95 % percentile-bootstrap interval of that percentile
/// over `sorted` (ascending): resample the values with replacement, take the percentile
/// of each resample (numpy's linear method, as the point estimate), and keep the 2.5th
/// and 97.5th percentiles of those. Empty under two values.
pub fn bootstrap_percentiles(sorted: &[f64], percentiles: &[f64]) -> Vec<(f64, [f64; 2])> {
    let n = sorted.len();
    if n < 2 {
        return Vec::new();
    }
    // The order statistics each percentile reads, resolved by one scan per resample.
    let mut ranks: Vec<usize> = percentiles
        .iter()
        .flat_map(|&p| {
            let lo = (((p / 100.0) * (n - 1) as f64).floor() as usize).min(n - 1);
            [lo, (lo + 1).min(n - 1)]
        })
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    let b = resamples(n);
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut counts = vec![0u32; n];
    let mut at = vec![0.0; ranks.len()];
    let mut estimates: Vec<Vec<f64>> = vec![Vec::with_capacity(b); percentiles.len()];
    for _ in 0..b {
        counts.iter_mut().for_each(|c| *c = 0);
        for _ in 0..n {
            counts[rng.random_range(0..n)] += 1;
        }
        // The k-th smallest of the resample is the first value whose running count
        // passes k.
        let (mut seen, mut i) = (0usize, 0usize);
        for (j, &c) in counts.iter().enumerate() {
            seen += c as usize;
            while i < ranks.len() && ranks[i] < seen {
                at[i] = sorted[j];
                i += 1;
            }
            if i == ranks.len() {
                break;
            }
        }
        let nth = |k: usize| at[ranks.partition_point(|&r| r < k)];
        for (e, &p) in estimates.iter_mut().zip(percentiles) {
            e.push(lerp_percentile(n, p, nth));
        }
    }
    percentiles
        .iter()
        .zip(estimates)
        .map(|(&p, mut e)| {
            e.sort_unstable_by(f64::total_cmp);
            (p, [percentile_sorted(&e, 2.5), percentile_sorted(&e, 97.5)])
        })
        .collect()
}

#[cfg(test)]
#[path = "tests_confidence.rs"]
mod tests;
