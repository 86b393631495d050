//! What the server said of its own time per request (llama.cpp's `timings`, saved in
//! each record as `server_timings`): its prompt time, its decode time per token, and
//! the gap between the client's TTFT and the server's prompt time, which is what the
//! network, HTTP and any queue in front of the engine add. Present only when some
//! successful request carried timings.
//!
//! The gap is flagged (`ttft_gap`) when it dominates TTFT: its median is above the
//! server's median prompt time and at least `GAP_FLOOR_MS` (below that, a loopback
//! run's few ms of HTTP would be flagged against a tiny prompt).

use serde::{Deserialize, Serialize};

use super::stats::{SavedStats, Stats};
use super::validity::Flag;
use crate::record::RequestRecord;

/// The smallest median gap flagged, ms.
pub const GAP_FLOOR_MS: f64 = 5.0;

/// One successful request's server timings, ms.
#[derive(Clone, Copy, Debug)]
pub(super) struct TimingFacts {
    prompt_ms: Option<f64>,
    decode_ms_per_token: Option<f64>,
    /// Client TTFT − server prompt time.
    gap_ms: Option<f64>,
}

impl TimingFacts {
    /// `None` for a record without server timings.
    pub(super) fn of(r: &RequestRecord) -> Option<TimingFacts> {
        let t = r.server_timings.as_ref()?;
        let ttft_ms = r
            .events
            .first()
            .map(|f| f.saturating_sub(r.started_at) as f64 / 1000.0);
        Some(TimingFacts {
            prompt_ms: t.prompt_ms,
            decode_ms_per_token: t.decode_ms_per_token(),
            gap_ms: ttft_ms.zip(t.prompt_ms).map(|(c, s)| c - s),
        })
    }
}

/// The run's server timings.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerTimingSummary {
    /// Successful requests that carried timings.
    pub requests: u64,
    pub prompt_ms: Option<Stats>,
    pub decode_ms_per_token: Option<Stats>,
    /// Client TTFT − server prompt time, per request.
    pub ttft_gap_ms: Option<Stats>,
}

pub(super) fn summarize(facts: &[TimingFacts], pcts: &[f64]) -> Option<ServerTimingSummary> {
    if facts.is_empty() {
        return None;
    }
    let stats = |f: fn(&TimingFacts) -> Option<f64>| {
        let mut v: Vec<f64> = facts.iter().filter_map(f).collect();
        Stats::compute(&mut v, pcts)
    };
    Some(ServerTimingSummary {
        requests: facts.len() as u64,
        prompt_ms: stats(|t| t.prompt_ms),
        decode_ms_per_token: stats(|t| t.decode_ms_per_token),
        ttft_gap_ms: stats(|t| t.gap_ms),
    })
}

impl ServerTimingSummary {
    /// The `ttft_gap` flag, when the gap dominates TTFT (see the module docs).
    pub fn check(&self) -> Option<Flag> {
        let gap = self.ttft_gap_ms.as_ref()?.percentile(50.0)?;
        let prompt = self.prompt_ms.as_ref()?.percentile(50.0)?;
        (gap > prompt && gap >= GAP_FLOOR_MS).then(|| {
            Flag::new(
                "ttft_gap",
                format!(
                    "TTFT is mostly not the server's prompt time: the client's TTFT exceeds \
                     it by {gap:.1} ms at the median, the server took {prompt:.1} ms \
                     (its own timings); the network, HTTP and queueing in front of the \
                     engine dominate, so read TTFT as the path's, not the engine's prefill"
                ),
            )
        })
    }
}

impl ServerTimingSummary {
    /// The table's line: the server's prompt and decode times, and what the path adds.
    pub fn table_line(&self, succeeded: u64) -> String {
        let p = |st: &Option<Stats>, q: f64| {
            st.as_ref()
                .and_then(|s| s.percentile(q))
                .map_or("-".to_string(), |v| format!("{v:.2}"))
        };
        format!(
            "server     timings of {} of {succeeded} requests: prompt p50 {} ms (p99 {}) · \
             decode p50 {} ms/token · TTFT − server prompt p50 {} ms (p99 {}): network, HTTP, queueing\n",
            self.requests,
            p(&self.prompt_ms, 50.0),
            p(&self.prompt_ms, 99.0),
            p(&self.decode_ms_per_token, 50.0),
            p(&self.ttft_gap_ms, 50.0),
            p(&self.ttft_gap_ms, 99.0),
        )
    }
}

/// The summary's `server_timings` object.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub(super) struct ServerTimingsJson {
    requests: u64,
    prompt_ms: SavedStats,
    decode_ms_per_token: SavedStats,
    ttft_gap_ms: SavedStats,
}

impl ServerTimingsJson {
    pub(super) fn write(s: &ServerTimingSummary, pcts: &[f64]) -> ServerTimingsJson {
        let saved = |st: &Option<Stats>| SavedStats {
            stats: st.clone(),
            percentiles: pcts.to_vec(),
        };
        ServerTimingsJson {
            requests: s.requests,
            prompt_ms: saved(&s.prompt_ms),
            decode_ms_per_token: saved(&s.decode_ms_per_token),
            ttft_gap_ms: saved(&s.ttft_gap_ms),
        }
    }

    pub(super) fn read(self) -> ServerTimingSummary {
        ServerTimingSummary {
            requests: self.requests,
            prompt_ms: self.prompt_ms.stats,
            decode_ms_per_token: self.decode_ms_per_token.stats,
            ttft_gap_ms: self.ttft_gap_ms.stats,
        }
    }
}

#[cfg(test)]
#[path = "tests_server_timing.rs"]
mod tests;
