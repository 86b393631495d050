//! Tool calls in a run: how many successful requests called a tool, how soon the first
//! tool-call event came, and how many argument tokens each call streamed. Present only
//! when some request called a tool, so plain runs read and write exactly as before.
//!
//! Argument tokens are counted one per tool-call event (an event carrying function
//! arguments): the client already counts events by kind as it reads them, so this costs
//! the stream nothing, and it is how reasoning tokens are counted without the server's
//! detail. Usage gives no count of tool-call tokens apart from other output; a server
//! that sends several tokens in one arguments delta is undercounted, as the events per
//! output token of the run show.

use serde::{Deserialize, Serialize};

use super::stats::{SavedStats, Stats};
use super::summary::Sample;

/// One request's tool calls (absent: it called none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToolFacts {
    /// µs on the run clock.
    pub first_at: u64,
    pub events: u32,
}

impl ToolFacts {
    /// Read from the sample's phase facts (not kept twice: `report` holds one sample per
    /// record).
    pub fn of(s: &Sample) -> Option<ToolFacts> {
        Some(ToolFacts {
            first_at: s.phase.first_tool()?,
            events: s.phase.tool_events,
        })
    }
}

/// The run's tool calls, over its successful requests.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSummary {
    /// Successful requests that called a tool.
    pub requests: u64,
    /// `requests` / successful requests.
    pub share: f64,
    /// From the request's start to its first tool-call event, ms.
    pub first_call_ms: Option<Stats>,
    /// Argument tokens per request that called a tool (one per tool-call event).
    pub argument_tokens: Option<Stats>,
    pub argument_tokens_total: u64,
}

/// `None` when no successful request called a tool.
pub fn summarize(ok: &[&Sample], pcts: &[f64]) -> Option<ToolSummary> {
    let called: Vec<(u64, ToolFacts)> = ok
        .iter()
        .filter_map(|s| ToolFacts::of(s).map(|t| (s.started, t)))
        .collect();
    if called.is_empty() {
        return None;
    }
    let mut first: Vec<f64> = called
        .iter()
        .map(|(started, t)| t.first_at.saturating_sub(*started) as f64 / 1000.0)
        .collect();
    let mut tokens: Vec<f64> = called.iter().map(|(_, t)| f64::from(t.events)).collect();
    Some(ToolSummary {
        requests: called.len() as u64,
        share: called.len() as f64 / ok.len() as f64,
        first_call_ms: super::summary::with_intervals(&mut first, pcts),
        argument_tokens_total: called.iter().map(|(_, t)| u64::from(t.events)).sum(),
        argument_tokens: Stats::compute(&mut tokens, pcts),
    })
}

/// The `tools` object of a saved summary.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub(super) struct ToolsJson {
    requests: u64,
    share: f64,
    first_call_ms: SavedStats,
    argument_tokens: SavedStats,
    argument_tokens_total: u64,
    /// How argument tokens were counted, for readers of the file.
    argument_tokens_counted: String,
}

impl ToolsJson {
    pub(super) fn write(t: &ToolSummary, pcts: &[f64]) -> ToolsJson {
        let saved = |st: &Option<Stats>| SavedStats {
            stats: st.clone(),
            percentiles: pcts.to_vec(),
        };
        ToolsJson {
            requests: t.requests,
            share: t.share,
            first_call_ms: saved(&t.first_call_ms),
            argument_tokens: saved(&t.argument_tokens),
            argument_tokens_total: t.argument_tokens_total,
            argument_tokens_counted: "one per tool-call event".into(),
        }
    }

    pub(super) fn read(self) -> ToolSummary {
        ToolSummary {
            requests: self.requests,
            share: self.share,
            first_call_ms: self.first_call_ms.stats,
            argument_tokens: self.argument_tokens.stats,
            argument_tokens_total: self.argument_tokens_total,
        }
    }
}

/// The terminal table's line (the time to the first call is a row of the latency table).
pub fn table_line(t: &ToolSummary, succeeded: u64) -> String {
    let tokens = t.argument_tokens.as_ref().map_or_else(
        || "-".to_string(),
        |a| {
            format!(
                "{:.1} mean, {} p50, {} p99",
                a.mean,
                a.percentile(50.0).map_or("-".into(), |v| format!("{v:.0}")),
                a.percentile(99.0).map_or("-".into(), |v| format!("{v:.0}"))
            )
        },
    );
    format!(
        "tools      {} of {} ok requests called a tool ({:.1}%) · argument tokens per call {tokens} (one per tool-call event; {} in all)\n",
        t.requests,
        succeeded,
        t.share * 100.0,
        t.argument_tokens_total
    )
}
