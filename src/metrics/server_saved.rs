//! The server's metrics of one run as results.json holds them (`summary.server_metrics`):
//! each series by its Prometheus name, then `derived` values, then what was missing.
//! Series names are open-ended (whatever the server exposes), so this is a map in file
//! order; each entry is typed.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::ordered_map::OrderedMap;
use super::stats::SavedStats;

/// `server_metrics` of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerMetrics {
    pub series: Vec<(String, Series)>,
    /// Values computed from the series (e.g. `prefix_cache_hit_rate{...}`), null when
    /// they could not be.
    pub derived: OrderedMap<String, Option<f64>>,
    /// Series asked for that the server did not expose (written only when some were).
    pub missing: Vec<String>,
    /// Scrapes that failed during the run (written only when some did).
    pub failed_samples: u64,
}

/// One series over the run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Series {
    Counter(Counter),
    Gauge(Gauge),
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Counter {
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub delta: Option<f64>,
    /// delta per second of the run.
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Gauge {
    /// Statistics over the samples taken during the run.
    #[serde(flatten)]
    pub stats: SavedStats,
    /// [seconds since the scrape before the run, value], for charts.
    #[serde(default)]
    pub samples: Vec<(f64, Option<f64>)>,
}

impl ServerMetrics {
    /// From the object `metrics::server` builds.
    pub fn from_json(v: Value) -> serde_json::Result<Self> {
        serde_json::from_value(v)
    }

    /// The first derived value whose name starts with `prefix` (names carry labels).
    pub fn derived_starting(&self, prefix: &str) -> Option<f64> {
        self.derived
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .and_then(|(_, v)| *v)
    }
}

impl Serialize for ServerMetrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in &self.series {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry("derived", &self.derived)?;
        if !self.missing.is_empty() {
            m.serialize_entry("missing", &self.missing)?;
        }
        if self.failed_samples > 0 {
            m.serialize_entry("failed_samples", &self.failed_samples)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for ServerMetrics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MetricsVisitor)
    }
}

struct MetricsVisitor;

impl<'de> Visitor<'de> for MetricsVisitor {
    type Value = ServerMetrics;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a server_metrics object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<ServerMetrics, A::Error> {
        let mut out = ServerMetrics::default();
        while let Some(key) = a.next_key::<String>()? {
            match key.as_str() {
                "derived" => out.derived = a.next_value()?,
                "missing" => out.missing = a.next_value()?,
                "failed_samples" => out.failed_samples = a.next_value()?,
                _ => {
                    // A series of a kind a newer writer adds is skipped, not an error.
                    let v: Value = a.next_value()?;
                    if let Ok(series) = serde_json::from_value(v) {
                        out.series.push((key, series));
                    }
                }
            }
        }
        Ok(out)
    }
}
