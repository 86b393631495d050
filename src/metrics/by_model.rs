//! Latency by model, for runs whose records name the model (or LoRA adapter) each
//! request went to (`--model a,b`). Computed over the same requests as the summary's
//! main figures (warm-up excluded), from the records' tags alone.

use serde::{Deserialize, Serialize};

use super::by_turn::{Group, pct};
use super::summary::Sample;
use super::tags::RunTags;

/// One model's figures; latencies over its successful requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ModelRow {
    /// As the records name it (from the user or the server: escape where shown).
    pub model: String,
    pub requests: u64,
    pub succeeded: u64,
    pub ttft_ms_p50: Option<f64>,
    pub ttft_ms_p99: Option<f64>,
    pub tpot_ms_p50: Option<f64>,
    pub tpot_ms_p99: Option<f64>,
    pub e2e_ms_p50: Option<f64>,
    pub e2e_ms_p99: Option<f64>,
    /// Its successful requests' output tokens ÷ the run's duration: the rows add up to
    /// the run's output tok/s.
    pub output_tok_s: f64,
}

/// One row per model, by name (the order requests finished in is not the same twice);
/// `None` when no request named its model.
pub fn by_model(samples: &[Sample], tags: &RunTags, duration_s: f64) -> Option<Vec<ModelRow>> {
    if tags.models().is_empty() {
        return None;
    }
    let mut groups: Vec<Group> = tags.models().iter().map(|_| Group::default()).collect();
    for (i, s) in samples.iter().enumerate() {
        if let Some(m) = tags.get(i).model() {
            groups[m as usize].add(s);
        }
    }
    let mut rows: Vec<ModelRow> = groups
        .into_iter()
        .zip(tags.models())
        .map(|(mut g, name)| {
            g.sort();
            ModelRow {
                model: name.to_string(),
                requests: g.requests,
                succeeded: g.ok,
                ttft_ms_p50: pct(&g.ttft, 50.0),
                ttft_ms_p99: pct(&g.ttft, 99.0),
                tpot_ms_p50: pct(&g.tpot, 50.0),
                tpot_ms_p99: pct(&g.tpot, 99.0),
                e2e_ms_p50: pct(&g.e2e, 50.0),
                e2e_ms_p99: pct(&g.e2e, 99.0),
                output_tok_s: if duration_s > 0.0 {
                    g.output as f64 / duration_s
                } else {
                    0.0
                },
            }
        })
        .collect();
    rows.sort_by(|a, b| a.model.cmp(&b.model));
    Some(rows)
}
