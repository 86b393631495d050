//! What a session concluded across its runs, as results.json keeps it beside them: a
//! capacity search's answer, the throughput–interactivity points, dual-round levels
//! compared round by round, and levels run `--repeat` times. Part of the typed results
//! document (`document.rs` re-exports these).

use serde::{Deserialize, Serialize};

use crate::metrics::ordered_map::OrderedMap;

/// The `capacity` object: the largest level found to meet the SLO, with its bracket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct CapacityDoc {
    /// "concurrency" or "rate".
    pub by: String,
    /// The largest passing level; null while searching or when --min failed.
    pub value: Option<f64>,
    /// "found", "at_least_max", "below_min" or "searching" (stopped before the end).
    pub outcome: String,
    pub attainment_target: f64,
    /// The SLO's bounds, as text ("TTFT ≤ 500 ms, TPOT ≤ 50 ms").
    pub slo: String,
    pub min: f64,
    pub max: f64,
    pub resolution: f64,
    pub confirm: usize,
    /// The highest level that passed and the lowest that failed (attainment pooled over
    /// a level's probes).
    pub passing: Option<CapacityLevel>,
    pub failing: Option<CapacityLevel>,
    /// Every probe, in the order run.
    pub probes: Vec<CapacityProbe>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct CapacityLevel {
    pub level: f64,
    pub attainment: f64,
    pub run: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct CapacityProbe {
    pub level: f64,
    /// Met / sent for this probe alone.
    pub attainment: f64,
    /// The level's verdict; null while a confirmation was pending.
    pub passed: Option<bool>,
    pub run: String,
    pub sent: u64,
    pub met: u64,
}

/// One run on the throughput–interactivity plane.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InteractivityPoint {
    pub label: String,
    /// Median output tokens/s per user.
    pub per_user_tok_s: f64,
    /// Total output tokens/s of the run.
    pub output_tok_s: f64,
    /// `output_tok_s` / `--gpus`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_gpu: Option<f64>,
    /// No other run is at least as good on both axes and better on one.
    pub on_frontier: bool,
}

/// One dual-round level: each round's figures and their ratios to round 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundsDoc {
    pub level: String,
    pub rounds: Vec<RoundFigures>,
    pub ratios_to_round_1: Vec<RoundRatios>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundFigures {
    pub round: u32,
    /// By catalogue key (`ttft_ms.mean`, ...).
    #[serde(flatten)]
    pub values: OrderedMap<String, Option<f64>>,
    pub cached_share: Option<f64>,
    pub server_hit_rate: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RoundRatios {
    pub round: u32,
    #[serde(flatten)]
    pub values: OrderedMap<String, Option<f64>>,
    pub ttft_speedup: Option<f64>,
}

/// One level run `--repeat` times: its runs' labels and each metric over them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RepeatsDoc {
    pub level: String,
    pub runs: Vec<String>,
    /// By catalogue key (`ttft_ms.p99`).
    pub metrics: OrderedMap<String, RepeatInterval>,
}

/// One metric over the repeats of a level.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RepeatInterval {
    pub mean: f64,
    /// mean ± t(0.975, n − 1)·s/√n.
    pub ci95: [f64; 2],
    /// s / |mean|; null when the mean is 0.
    pub cv: Option<f64>,
    pub n: usize,
}
