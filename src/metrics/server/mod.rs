//! The server's own Prometheus metrics around a run: a scrape just before it, gauges
//! sampled every interval while it runs, a scrape just after. Counters become deltas
//! and rates over the run, gauges statistics over the samples, each label set its own
//! series (the results spec's `server_metrics`).
//!
//! Use: `Scraper::new(auth, timeout)` once, then per run `scraper.start(&spec)` right
//! before the first request and `running.finish()` right after the last one ends.

mod collect;
mod derive;
mod presets;
mod scrape;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::prometheus::series_key;
use super::stats::{DEFAULT_PERCENTILES, Stats, stats_json};
pub use presets::{MetricsSpec, parse_names, preset};
pub use scrape::{RunningScrape, Scraper, same_origin};

/// `--metrics-interval` default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// A suggested bound on one scrape.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the scrapes showed over one run.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    /// In the order the names were asked for, then of first appearance.
    pub series: Vec<Series>,
    pub derived: Vec<Derived>,
    /// Names asked for that no scrape showed.
    pub missing: Vec<String>,
    /// Scrapes during or after the run that failed.
    pub failed_samples: usize,
    /// The last of those failures, for a warning.
    pub last_error: Option<String>,
    /// Successful scrapes, the one before the run included.
    pub scrapes: usize,
    /// From the scrape before the run to the last successful one.
    pub duration_s: f64,
}

#[derive(Clone, Debug)]
pub struct Series {
    /// `name{label="value",...}`.
    pub key: String,
    /// The sample name as the server exposes it (`vllm:prompt_tokens_total`).
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: SeriesValue,
}

#[derive(Clone, Debug)]
pub enum SeriesValue {
    Counter(CounterChange),
    Gauge {
        /// Every sample in scrape order, NaN left out.
        samples: Vec<f64>,
        /// When each sample was taken: seconds since the scrape before the run (for a
        /// chart of the gauge over time).
        times: Vec<f64>,
        /// With the default percentiles; `None` when no sample was a number.
        stats: Option<Stats>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct CounterChange {
    /// `None` when the series first appeared during the run (counted from 0).
    pub before: Option<f64>,
    pub after: f64,
    pub delta: f64,
    /// Per second between the two scrapes; `None` when no time passed.
    pub rate: Option<f64>,
    /// Why the delta is not simply `after - before`.
    pub notes: Vec<String>,
}

/// A value computed from several series of one label set.
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    /// `prefix_cache_hit_rate` (0..1) or `mean_ttft_ms`.
    pub name: &'static str,
    pub labels: Vec<(String, String)>,
    /// `None` when the denominator did not move during the run.
    pub value: Option<f64>,
    /// How it was computed, e.g. `Δvllm:prefix_cache_hits_total / Δvllm:prefix_cache_queries_total`.
    pub from: String,
}

impl Derived {
    pub fn key(&self) -> String {
        series_key(self.name, &self.labels)
    }
}

impl ServerMetrics {
    pub fn get(&self, key: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.key == key)
    }

    /// A derived value by name when exactly one label set has it (the usual single-model
    /// server); `None` when there is none or several, which are never mixed.
    pub fn derived_value(&self, name: &str) -> Option<f64> {
        let mut it = self.derived.iter().filter(|d| d.name == name);
        match (it.next(), it.next()) {
            (Some(d), None) => d.value,
            _ => None,
        }
    }

    /// The results spec's `server_metrics` object, with the default percentiles.
    pub fn to_json(&self) -> Value {
        self.to_json_with(&DEFAULT_PERCENTILES)
    }

    /// Series keys, then `derived`, then `missing` and `failed_samples` when there are
    /// any. Gauge statistics carry `percentiles` beside the default ones.
    pub fn to_json_with(&self, percentiles: &[f64]) -> Value {
        let mut m = Map::new();
        for s in &self.series {
            let v = match &s.value {
                SeriesValue::Counter(c) => {
                    let mut o = Map::new();
                    o.insert("type".into(), json!("counter"));
                    o.insert("before".into(), num(c.before));
                    o.insert("after".into(), num(Some(c.after)));
                    o.insert("delta".into(), num(Some(c.delta)));
                    o.insert("rate".into(), num(c.rate));
                    if !c.notes.is_empty() {
                        o.insert("note".into(), json!(c.notes.join("; ")));
                    }
                    Value::Object(o)
                }
                SeriesValue::Gauge {
                    samples,
                    times,
                    stats,
                } => {
                    let mut o = Map::new();
                    o.insert("type".into(), json!("gauge"));
                    // Extra percentiles need the samples again; the default ones are ready.
                    let extra = percentiles.iter().any(|p| !DEFAULT_PERCENTILES.contains(p));
                    let recomputed = extra
                        .then(|| {
                            let mut all = DEFAULT_PERCENTILES.to_vec();
                            all.extend(percentiles);
                            Stats::compute(&mut samples.clone(), &all)
                        })
                        .flatten();
                    let stats = if extra {
                        recomputed.as_ref()
                    } else {
                        stats.as_ref()
                    };
                    if let Value::Object(st) = stats_json(stats, percentiles) {
                        o.extend(st);
                    }
                    // [seconds since the scrape before the run, value], for charts.
                    let timed: Vec<Value> = times
                        .iter()
                        .zip(samples)
                        .map(|(t, v)| json!([(t * 1e3).round() / 1e3, v]))
                        .collect();
                    o.insert("samples".into(), Value::Array(timed));
                    Value::Object(o)
                }
            };
            m.insert(s.key.clone(), v);
        }
        let derived: Map<String, Value> = self
            .derived
            .iter()
            .map(|d| (d.key(), num(d.value)))
            .collect();
        m.insert("derived".into(), Value::Object(derived));
        if !self.missing.is_empty() {
            m.insert("missing".into(), json!(self.missing));
        }
        if self.failed_samples > 0 {
            m.insert("failed_samples".into(), json!(self.failed_samples));
        }
        Value::Object(m)
    }
}

/// A number, or null for none and for NaN/infinities (which JSON cannot hold).
fn num(v: Option<f64>) -> Value {
    match v {
        Some(x) if x.is_finite() => json!(x),
        _ => Value::Null,
    }
}
