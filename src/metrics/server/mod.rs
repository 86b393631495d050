//! The server's own Prometheus metrics around a run: a scrape just before it, gauges
//! sampled every interval while it runs, a scrape just after. Counters become deltas
//! and rates over the run, gauges statistics over the samples, each label set its own
//! series (the results spec's `server_metrics`).
//!
//! Use: `Scraper::new(auth, timeout)` once, then per run `scraper.start(&spec)` right
//! before the first request and `running.finish()` right after the last one ends.

mod collect;
mod derive;
pub mod energy;
mod presets;
mod scrape;
mod sources;
mod spec;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_spec;

use std::time::Duration;

use serde_json::Value;

use super::ordered_map::OrderedMap;
use super::prometheus::series_key;
use super::server_saved as saved;
use super::stats::{DEFAULT_PERCENTILES, SavedStats, Stats};
pub use presets::{MetricsSpec, only_in_some_versions, parse_names, preset};
pub use scrape::{RunningScrape, Scraper, same_origin};
pub use sources::{ENGINE, Source};
pub use spec::{SpecDecode, figures as spec_decode};

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
    /// (seconds since the scrape before the run, value) of every scrape that had it;
    /// not saved.
    pub points: Vec<(f64, f64)>,
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

    /// The results spec's `server_metrics` object: series keys, then `derived`, then
    /// `missing` and `failed_samples` when there are any.
    pub fn to_json_with(&self, percentiles: &[f64]) -> Value {
        // Serialising numbers, strings and options into a Value cannot fail.
        serde_json::to_value(self.to_saved(percentiles)).unwrap_or(Value::Null)
    }

    /// The run's metrics as results.json holds them. Gauge statistics carry
    /// `percentiles` beside the default ones.
    pub fn to_saved(&self, percentiles: &[f64]) -> saved::ServerMetrics {
        let series = self
            .series
            .iter()
            .map(|s| (s.key.clone(), saved_series(&s.value, percentiles)))
            .collect();
        let mut derived = OrderedMap::default();
        for d in &self.derived {
            derived.insert(d.key(), finite(d.value));
        }
        saved::ServerMetrics {
            series,
            derived,
            missing: self.missing.clone(),
            failed_samples: self.failed_samples as u64,
        }
    }
}

fn saved_series(value: &SeriesValue, percentiles: &[f64]) -> saved::Series {
    match value {
        SeriesValue::Counter(c) => saved::Series::Counter(saved::Counter {
            before: finite(c.before),
            after: finite(Some(c.after)),
            delta: finite(Some(c.delta)),
            rate: finite(c.rate),
            note: (!c.notes.is_empty()).then(|| c.notes.join("; ")),
        }),
        SeriesValue::Gauge {
            samples,
            times,
            stats,
        } => {
            // Extra percentiles need the samples again; the default ones are ready.
            let extra = percentiles.iter().any(|p| !DEFAULT_PERCENTILES.contains(p));
            let stats = if extra {
                let mut all = DEFAULT_PERCENTILES.to_vec();
                all.extend(percentiles);
                Stats::compute(&mut samples.clone(), &all)
            } else {
                stats.clone()
            };
            saved::Series::Gauge(saved::Gauge {
                stats: SavedStats {
                    stats,
                    percentiles: percentiles.to_vec(),
                },
                // [seconds since the scrape before the run, value], for charts.
                samples: times
                    .iter()
                    .zip(samples)
                    .map(|(t, v)| ((t * 1e3).round() / 1e3, finite(Some(*v))))
                    .collect(),
            })
        }
    }
}

/// None for NaN and infinities too, which JSON cannot hold (written as null).
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}
