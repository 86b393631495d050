//! What an embeddings run adds to a summary: the inputs its successful requests
//! carried, and inputs/s over the run's span. Its latency is E2E (start → the whole
//! answer); it has no output events, so no TTFT, TPOT, ITL or output throughput.

use serde::{Deserialize, Serialize};

use super::summary::Sample;

/// The `embeddings` object of a summary (absent for generation runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EmbeddingTotals {
    /// Inputs (prompts) of the successful requests.
    pub inputs: u64,
    /// `inputs` / the run's duration.
    pub inputs_s: f64,
    /// Inputs per request (the run's `--batch-inputs`), over every request sent.
    pub inputs_per_request: f64,
}

/// The totals of a run whose requests carried inputs (embeddings), `None` otherwise.
pub fn totals(samples: &[Sample], duration_s: f64) -> Option<EmbeddingTotals> {
    let sent: Vec<u32> = samples.iter().filter_map(|s| s.inputs).collect();
    if sent.is_empty() {
        return None;
    }
    let inputs: u64 = samples
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| s.inputs)
        .map(u64::from)
        .sum();
    Some(EmbeddingTotals {
        inputs,
        inputs_s: if duration_s > 0.0 {
            inputs as f64 / duration_s
        } else {
            0.0
        },
        inputs_per_request: sent.iter().map(|&n| f64::from(n)).sum::<f64>() / sent.len() as f64,
    })
}

#[cfg(test)]
#[path = "tests_embeddings.rs"]
mod tests;
