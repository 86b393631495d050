//! Statistics over exact samples, computed the way numpy does by default so numbers
//! agree with vLLM's and SGLang's on the same samples: linear-interpolation
//! percentiles and the population standard deviation.

use serde_json::{Map, Value, json};

/// The percentiles every summary carries (the results spec's STATS keys).
pub const DEFAULT_PERCENTILES: [f64; 3] = [50.0, 90.0, 99.0];

#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// (percentile in 0..=100, value), in the order asked for.
    pub percentiles: Vec<(f64, f64)>,
}

impl Stats {
    /// `None` when there are no samples. Sorts `values` in place.
    pub fn compute(values: &mut [f64], percentiles: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        Some(Stats {
            count: n,
            mean,
            std: var.sqrt(),
            min: values[0],
            max: values[n - 1],
            percentiles: percentiles
                .iter()
                .map(|&p| (p, percentile_sorted(values, p)))
                .collect(),
        })
    }

    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, v)| *v)
    }
}

/// numpy's default ("linear") method on sorted data, including its two-sided lerp that
/// keeps results bit-identical to numpy's.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let virtual_index = (p / 100.0) * (n - 1) as f64;
    let lo = (virtual_index.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let t = virtual_index - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// `p99.9` style key for a percentile.
pub fn percentile_key(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("p{}", p as i64)
    } else {
        format!("p{p}")
    }
}

/// Parse `--percentiles 50,90,99.9`.
pub fn parse_percentiles(s: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let p: f64 = part
            .parse()
            .map_err(|_| format!("{part:?} is not a number (expected e.g. 50,90,99.9)"))?;
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("{part} is outside 0..100"));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err("no percentiles given (expected e.g. 50,90,99)".into());
    }
    Ok(out)
}

/// The STATS object of the results spec; nulls when there were no samples. The
/// default percentiles are always present, extra ones are added.
pub fn stats_json(stats: Option<&Stats>, percentiles: &[f64]) -> Value {
    let mut keys: Vec<f64> = DEFAULT_PERCENTILES.to_vec();
    for p in percentiles {
        if !keys.contains(p) {
            keys.push(*p);
        }
    }
    let mut m = Map::new();
    m.insert("mean".into(), stats.map_or(Value::Null, |s| json!(s.mean)));
    for p in keys {
        let v = stats
            .and_then(|s| s.percentile(p))
            .map_or(Value::Null, |v| json!(v));
        m.insert(percentile_key(p), v);
    }
    m.insert("min".into(), stats.map_or(Value::Null, |s| json!(s.min)));
    m.insert("max".into(), stats.map_or(Value::Null, |s| json!(s.max)));
    m.insert("std".into(), stats.map_or(Value::Null, |s| json!(s.std)));
    m.insert("count".into(), json!(stats.map_or(0, |s| s.count)));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn hand_computed_example() {
        // Sorted 1,2,3,4: p50 at index 1.5 → 2.5; p90 at 2.7 → 3.7; p99 at 2.97 → 3.97.
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        let s = Stats::compute(&mut v, &[50.0, 90.0, 99.0, 0.0, 100.0]).unwrap();
        assert_eq!(s.count, 4);
        assert!(close(s.mean, 2.5));
        assert!(close(s.std, 1.25f64.sqrt()), "population std");
        assert!(close(s.percentile(50.0).unwrap(), 2.5));
        assert!(close(s.percentile(90.0).unwrap(), 3.7));
        assert!(close(s.percentile(99.0).unwrap(), 3.97));
        assert_eq!(s.percentile(0.0), Some(1.0));
        assert_eq!(s.percentile(100.0), Some(4.0));
        assert_eq!((s.min, s.max), (1.0, 4.0));
    }

    #[test]
    fn matches_numpy_on_uneven_samples() {
        // numpy.percentile([10, 20, 35, 70, 71], [25, 50, 95]) = [20., 35., 70.8]
        let mut v = vec![70.0, 10.0, 35.0, 71.0, 20.0];
        let s = Stats::compute(&mut v, &[25.0, 50.0, 95.0]).unwrap();
        assert!(close(s.percentile(25.0).unwrap(), 20.0));
        assert!(close(s.percentile(50.0).unwrap(), 35.0));
        assert!(close(s.percentile(95.0).unwrap(), 70.8));
        // numpy.std([10, 20, 35, 70, 71]) = sqrt(635.76) = 25.21428166734083
        assert!(close(s.std, 25.21428166734083));
    }

    #[test]
    fn single_and_empty() {
        let mut one = vec![5.0];
        let s = Stats::compute(&mut one, &DEFAULT_PERCENTILES).unwrap();
        assert_eq!((s.mean, s.std, s.percentile(99.0)), (5.0, 0.0, Some(5.0)));
        assert!(Stats::compute(&mut [], &DEFAULT_PERCENTILES).is_none());
        let j = stats_json(None, &DEFAULT_PERCENTILES);
        assert!(j["mean"].is_null() && j["p99"].is_null());
        assert_eq!(j["count"], 0);
    }

    #[test]
    fn json_keys_and_percentile_parsing() {
        let mut v = vec![1.0, 2.0];
        let ps = parse_percentiles("50, 99.9,95").unwrap();
        assert_eq!(ps, vec![50.0, 99.9, 95.0]);
        let s = Stats::compute(&mut v, &ps).unwrap();
        let j = stats_json(Some(&s), &ps);
        for k in [
            "mean", "p50", "p90", "p99", "p99.9", "p95", "min", "max", "std", "count",
        ] {
            assert!(j.get(k).is_some(), "missing {k}");
        }
        // p90/p99 were not computed here, so they are null rather than made up.
        assert!(j["p90"].is_null());
        assert!(parse_percentiles("50,abc").unwrap_err().contains("abc"));
        assert!(parse_percentiles("101").is_err());
        assert!(parse_percentiles("").is_err());
    }
}
