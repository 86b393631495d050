//! A run's load settings as results.json keeps them (`runs[].params`): each mode writes
//! its own subset, and the steady-state window reads back how the run was paced.

use serde::{Deserialize, Serialize};

use super::document::RunMode;
use crate::metrics::steady::Pacing;

/// A run's load settings (`params`). Each mode writes its own subset; a field is left
/// out when `None`. Fields that can be written as null are `Option<Option<_>>`:
/// `Some(None)` is written as null (an unset cap, an infinite rate).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Closed loop: requests in flight (the whole run's, when sharded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Dual-round: which round of the level, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
    /// `--repeat`: which repeat of the level this run is, from 1, and how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u32>,
    /// Requests per second; null for inf.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    #[schemars(with = "Option<f64>")]
    pub rate: Option<Option<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burstiness: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_requests: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    #[schemars(with = "Option<f64>")]
    pub duration_s: Option<Option<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    #[schemars(with = "Option<usize>")]
    pub max_concurrency: Option<Option<usize>>,
    /// Trace replay: the file, its format and how it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    #[schemars(with = "Option<usize>")]
    pub limit: Option<Option<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "nullable")]
    #[schemars(with = "Option<u32>")]
    pub max_context: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipped: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<usize>,
    /// CSV traces: `--model-filter`, and the rows left out for 0 request or response
    /// tokens (BurstGPT's failed requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_rows: Option<usize>,
    /// Trace runs (and dual-round `--trace`): the lengths that replaced the trace's own
    /// (`--input-len`, `--output-len`), each only when replaced; requests.jsonl keeps
    /// each request's own as `trace_input_len`, `trace_output_len`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_len: Option<LengthRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len: Option<LengthRange>,
    /// Trace runs: what the prompts share, `hash-ids` (the trace's prefix blocks) or
    /// `unique` (`--prompts unique`, and the CSV traces, which have no hash ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<crate::workload::trace_reshape::TracePrompts>,
    /// Dual-round: sent in a shuffled order; the cache was reset before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_reset_before: Option<bool>,
    /// `--shard`: this process's part of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardParams>,
    /// `sweep`: which kind of run: "synchronous", "throughput" or "rate".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<String>,
    /// `merge`: how many processes' records the run holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_processes: Option<usize>,
    /// A probe of a `capacity` search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_probe: Option<bool>,
    /// `--warmup N`: warm-up requests before the measured ones (rate `--warmup-s`: the
    /// arrivals due in its first seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_requests: Option<usize>,
    /// `--warmup-s`: requests sent in the run's first seconds were warm-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_s: Option<f64>,
    /// How the load rose to its target: `linear` or `exponential` (rate), `slots`
    /// (closed loop: slot i of c started at i·S/c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up: Option<String>,
    /// `--ramp-up-s`, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up_s: Option<f64>,
    /// When the target load was reached, µs from the run's start: the ramp's end
    /// (closed loop: when the last slot started, (c−1)·S/c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_up_end_us: Option<u64>,
}

impl RunParams {
    /// How a run of `mode` with these parameters was paced, for its steady state
    /// (`None`: a mode this build does not know).
    pub fn pacing(&self, mode: &RunMode) -> Option<Pacing> {
        // A sweep's runs are paced as the mode each kind of run stands for.
        let mode = match (mode, self.sweep.as_deref()) {
            (RunMode::Sweep, Some("synchronous")) => &RunMode::Concurrency,
            (RunMode::Sweep, Some("throughput")) if self.max_concurrency.flatten().is_some() => {
                return Some(Pacing::ClosedLoop {
                    concurrency: self.max_concurrency.flatten()?,
                });
            }
            (RunMode::Sweep, Some("throughput")) => &RunMode::Throughput,
            (RunMode::Sweep, Some("rate")) => &RunMode::Rate,
            _ => mode,
        };
        match mode {
            RunMode::Batch | RunMode::Throughput => Some(Pacing::AllAtOnce),
            RunMode::Concurrency | RunMode::DualRound => {
                // A shard keeps its part of the concurrency in flight.
                let part = self.shard.as_ref().and_then(|s| s.concurrency);
                let concurrency = part.or(self.concurrency)?;
                Some(Pacing::ClosedLoop { concurrency })
            }
            // The ramp (`--ramp-up-s`) ends this long after the run's start.
            RunMode::Rate | RunMode::Trace => Some(Pacing::OpenLoop {
                settle_us: self.ramp_up_end_us.unwrap_or(0),
            }),
            RunMode::Sweep | RunMode::Other(_) => None,
        }
    }
}

/// A length given as N (`min` = `max`) or LO:HI, drawn uniformly per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LengthRange {
    pub min: u32,
    pub max: u32,
}

impl From<crate::workload::synthetic::LengthSpec> for LengthRange {
    fn from(l: crate::workload::synthetic::LengthSpec) -> Self {
        use crate::workload::synthetic::LengthSpec;
        match l {
            LengthSpec::Fixed(n) => LengthRange { min: n, max: n },
            LengthSpec::Range { lo, hi } => LengthRange { min: lo, max: hi },
        }
    }
}

impl std::fmt::Display for LengthRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.min == self.max {
            true => write!(f, "{}", self.min),
            false => write!(f, "{}:{}", self.min, self.max),
        }
    }
}

/// One shard's part of a run: its requests and its share of the concurrency limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardParams {
    pub index: u32,
    pub count: u32,
    #[serde(default)]
    pub num_requests: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<usize>,
}

/// `Option<Option<T>>` as a field that may be absent (outer `None`), null or a value.
mod nullable {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}
