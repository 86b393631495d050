//! Statistics over exact samples, computed the way numpy does by default so numbers
//! agree with vLLM's and SGLang's on the same samples: linear-interpolation
//! percentiles and the population standard deviation.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::ordered_map::OrderedMap;

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
    /// (percentile, bootstrap 95 % interval over the run's requests), when computed
    /// (`confidence::bootstrap_percentiles`); saved as `ci95`.
    pub ci95: Vec<(f64, [f64; 2])>,
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
            ci95: Vec::new(),
        })
    }

    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, v)| *v)
    }
}

/// Exact counts of whole-number samples (µs gaps): memory grows with the number of
/// distinct values, not of samples, while every statistic stays exact.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    map: std::collections::HashMap<u32, u64, BuildGapHasher>,
    n: u64,
}

/// Keys are µs gaps the client measured itself: one multiply spreads them, and SipHash's
/// resistance to chosen keys buys nothing here (it was 1.4% of the client's CPU).
type BuildGapHasher = std::hash::BuildHasherDefault<GapHasher>;

#[derive(Default)]
struct GapHasher(u64);

impl std::hash::Hasher for GapHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64((self.0 << 8) | u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing; the rotation brings the well-mixed high bits down to where
        // the table takes its bucket index.
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(26);
    }
}

impl Counts {
    pub fn add(&mut self, v: u32) {
        *self.map.entry(v).or_default() += 1;
        self.n += 1;
    }

    /// Samples added.
    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Distinct values held.
    pub fn distinct(&self) -> usize {
        self.map.len()
    }

    /// (value, count), by value.
    pub fn sorted(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = self.map.iter().map(|(&k, &c)| (k, c)).collect();
        v.sort_unstable();
        v
    }
}

impl Stats {
    /// The same statistics as `compute` over every sample ÷ `unit` (1000 for µs → ms),
    /// from counts.
    pub fn from_counts(counts: &Counts, unit: f64, percentiles: &[f64]) -> Option<Stats> {
        if counts.is_empty() {
            return None;
        }
        let runs = counts.sorted();
        let n = counts.len();
        let mean = runs
            .iter()
            .map(|&(v, c)| v as f64 / unit * c as f64)
            .sum::<f64>()
            / n as f64;
        let var = runs
            .iter()
            .map(|&(v, c)| {
                let d = v as f64 / unit - mean;
                d * d * c as f64
            })
            .sum::<f64>()
            / n as f64;
        // The k-th smallest sample, by a search over the running counts.
        let mut upto = Vec::with_capacity(runs.len());
        let mut total = 0u64;
        for &(_, c) in &runs {
            total += c;
            upto.push(total);
        }
        let nth = |k: u64| runs[upto.partition_point(|&u| u <= k)].0 as f64 / unit;
        Some(Stats {
            count: n as usize,
            mean,
            std: var.sqrt(),
            min: runs[0].0 as f64 / unit,
            max: runs[runs.len() - 1].0 as f64 / unit,
            percentiles: percentiles
                .iter()
                .map(|&p| (p, lerp_percentile(n as usize, p, |k| nth(k as u64))))
                .collect(),
            ci95: Vec::new(),
        })
    }
}

/// numpy's default ("linear") method on sorted data, including its two-sided lerp that
/// keeps results bit-identical to numpy's.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    lerp_percentile(sorted.len(), p, |k| sorted[k])
}

/// The percentile of `n` sorted samples, the k-th of which `nth` gives.
pub(crate) fn lerp_percentile(n: usize, p: f64, nth: impl Fn(usize) -> f64) -> f64 {
    if n == 1 {
        return nth(0);
    }
    let virtual_index = (p / 100.0) * (n - 1) as f64;
    let lo = (virtual_index.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let t = virtual_index - lo as f64;
    let (a, b) = (nth(lo), nth(hi));
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
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// The default percentiles and `extra`, each once, in increasing order (the order of
/// every table's columns and of the saved keys).
pub fn with_defaults(extra: &[f64]) -> Vec<f64> {
    let mut all = DEFAULT_PERCENTILES.to_vec();
    for p in extra {
        if !all.contains(p) {
            all.push(*p);
        }
    }
    all.sort_by(f64::total_cmp);
    all
}

/// The STATS object of the results spec; nulls when there were no samples. The
/// default percentiles are always present, extra ones are added.
pub fn stats_json(stats: Option<&Stats>, percentiles: &[f64]) -> Value {
    let saved = SavedStats {
        stats: stats.cloned(),
        percentiles: percentiles.to_vec(),
    };
    // Serialising numbers and options into a Value cannot fail.
    serde_json::to_value(&saved).unwrap_or(Value::Null)
}

/// A STATS object as results.json holds it: the statistics (`None` without samples)
/// and the percentiles its keys name (the default ones, then any others).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SavedStats {
    pub stats: Option<Stats>,
    pub percentiles: Vec<f64>,
}

impl SavedStats {
    /// The percentile keys written: the defaults always and the others asked for, in
    /// increasing order.
    fn keys(&self) -> Vec<f64> {
        with_defaults(&self.percentiles)
    }
}

impl Serialize for SavedStats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = self.stats.as_ref();
        let keys = self.keys();
        let mut m = s.serialize_map(Some(keys.len() + 5))?;
        m.serialize_entry("mean", &st.map(|s| s.mean))?;
        for p in keys {
            m.serialize_entry(&percentile_key(p), &st.and_then(|s| s.percentile(p)))?;
        }
        m.serialize_entry("min", &st.map(|s| s.min))?;
        m.serialize_entry("max", &st.map(|s| s.max))?;
        m.serialize_entry("std", &st.map(|s| s.std))?;
        m.serialize_entry("count", &st.map_or(0, |s| s.count))?;
        if let Some(st) = st.filter(|s| !s.ci95.is_empty()) {
            let ci: OrderedMap<String, [f64; 2]> = OrderedMap(
                st.ci95
                    .iter()
                    .map(|(p, c)| (percentile_key(*p), *c))
                    .collect(),
            );
            m.serialize_entry("ci95", &ci)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for SavedStats {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StatsVisitor)
    }
}

struct StatsVisitor;

/// `ci95` as saved (`{"p50": [lo, hi], ...}`); keys that name no percentile are skipped.
fn ci95_read(m: Option<OrderedMap<String, [f64; 2]>>) -> Vec<(f64, [f64; 2])> {
    let mut v: Vec<(f64, [f64; 2])> = m
        .map_or_else(Vec::new, |m| m.0)
        .into_iter()
        .filter_map(|(k, c)| Some((k.strip_prefix('p')?.parse::<f64>().ok()?, c)))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

impl<'de> Visitor<'de> for StatsVisitor {
    type Value = SavedStats;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a STATS object (mean, p50, ..., min, max, std, count)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<SavedStats, A::Error> {
        let (mut mean, mut min, mut max, mut std, mut count) = (None, None, None, None, 0);
        let mut pcts: Vec<(f64, Option<f64>)> = Vec::new();
        let mut ci95 = Vec::new();
        while let Some(key) = a.next_key::<String>()? {
            match key.as_str() {
                "mean" => mean = a.next_value()?,
                "min" => min = a.next_value()?,
                "max" => max = a.next_value()?,
                "std" => std = a.next_value()?,
                "count" => count = a.next_value::<Option<usize>>()?.unwrap_or(0),
                "ci95" => ci95 = ci95_read(a.next_value()?),
                k => match k.strip_prefix('p').and_then(|p| p.parse::<f64>().ok()) {
                    Some(p) => pcts.push((p, a.next_value()?)),
                    // A field of a newer writer: not ours to read.
                    None => {
                        a.next_value::<IgnoredAny>()?;
                    }
                },
            }
        }
        // Files written before the keys were sorted may hold them in any order.
        pcts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let percentiles: Vec<f64> = pcts.iter().map(|(p, _)| *p).collect();
        // A hand-made file may give only some statistics: the others are NaN.
        let any = [mean, min, max, std].iter().any(Option::is_some)
            || pcts.iter().any(|(_, v)| v.is_some());
        let stats = any.then(|| Stats {
            count,
            mean: mean.unwrap_or(f64::NAN),
            std: std.unwrap_or(f64::NAN),
            min: min.unwrap_or(f64::NAN),
            max: max.unwrap_or(f64::NAN),
            percentiles: pcts
                .into_iter()
                .filter_map(|(p, v)| Some((p, v?)))
                .collect(),
            ci95,
        });
        Ok(SavedStats { stats, percentiles })
    }
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
        assert_eq!(ps, vec![50.0, 95.0, 99.9]);
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

    #[test]
    fn percentiles_come_in_increasing_order_each_once() {
        assert_eq!(
            parse_percentiles("99,50,90,50").unwrap(),
            [50.0, 90.0, 99.0]
        );
        assert_eq!(
            with_defaults(&[99.9, 75.0, 50.0]),
            [50.0, 75.0, 90.0, 99.0, 99.9]
        );
        // Written keys follow the same order, and keys read back in another order
        // (a hand-made or older file) are sorted too.
        let mut v = vec![1.0, 2.0, 3.0];
        let s = Stats::compute(&mut v, &with_defaults(&[75.0])).unwrap();
        let j = stats_json(Some(&s), &[75.0]).to_string();
        let at = |k: &str| j.find(&format!("\"{k}\"")).unwrap();
        assert!(at("p50") < at("p75") && at("p75") < at("p90"), "{j}");
        let back: SavedStats =
            serde_json::from_str(r#"{"mean":1,"p99":3,"p50":2,"p75":2.5,"count":3}"#).unwrap();
        assert_eq!(back.percentiles, [50.0, 75.0, 99.0]);
        let p: Vec<f64> = back
            .stats
            .unwrap()
            .percentiles
            .iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(p, [50.0, 75.0, 99.0]);
    }

    #[test]
    fn counts_give_the_same_statistics_as_the_samples() {
        // Gaps in µs with repeats, as an ideal server's ITLs have.
        let gaps: Vec<u32> = [
            10_000, 10_000, 9_998, 10_003, 10_000, 55_000, 7, 10_003, 10_000,
        ]
        .into_iter()
        .collect();
        let mut counts = Counts::default();
        for &g in &gaps {
            counts.add(g);
        }
        assert_eq!((counts.len(), counts.distinct()), (9, 5));
        let pcts = [0.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0];
        let mut ms: Vec<f64> = gaps.iter().map(|&g| g as f64 / 1000.0).collect();
        let a = Stats::compute(&mut ms, &pcts).unwrap();
        let b = Stats::from_counts(&counts, 1000.0, &pcts).unwrap();
        assert_eq!(a.count, b.count);
        assert_eq!((a.min, a.max), (b.min, b.max));
        assert_eq!(
            a.percentiles, b.percentiles,
            "percentiles are bit-identical"
        );
        assert!(close(a.mean, b.mean) && close(a.std, b.std));
        // Hand-computed: sorted 0.007, 9.998, 10, 10, 10, 10, 10.003, 10.003, 55;
        // p90 at index 7.2 → 10.003 + 0.2 × (55 − 10.003).
        assert!(close(
            b.percentile(90.0).unwrap(),
            10.003 + 0.2 * (55.0 - 10.003)
        ));
        assert!(Stats::from_counts(&Counts::default(), 1000.0, &pcts).is_none());
    }

    proptest::proptest! {
        #[test]
        fn counts_match_samples_on_any_gaps(
            gaps in proptest::collection::vec(0u32..200_000, 1..400),
            p in 0.0f64..=100.0,
        ) {
            let mut counts = Counts::default();
            gaps.iter().for_each(|&g| counts.add(g));
            let mut ms: Vec<f64> = gaps.iter().map(|&g| g as f64 / 1000.0).collect();
            let a = Stats::compute(&mut ms, &[p]).unwrap();
            let b = Stats::from_counts(&counts, 1000.0, &[p]).unwrap();
            proptest::prop_assert_eq!(a.percentiles, b.percentiles);
            proptest::prop_assert_eq!((a.count, a.min, a.max), (b.count, b.min, b.max));
            proptest::prop_assert!((a.mean - b.mean).abs() <= 1e-9 * a.mean.abs().max(1.0));
            proptest::prop_assert!((a.std - b.std).abs() <= 1e-6 * a.std.max(1.0));
        }
    }
}
