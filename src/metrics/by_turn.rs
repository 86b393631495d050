//! Latency by turn index and per-session totals, for runs whose records carry a session
//! and turn (README, "What the numbers mean": by turn, sessions). TTFT against the turn
//! shows what a prefix cache saves as a conversation's history grows. Computed over the
//! same requests as the summary's main figures (warm-up excluded), from the tags alone.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::percentile_sorted;
use super::summary::Sample;
use super::tags::RunTags;

/// The latencies and tokens of a group of requests (a turn index, a model).
#[derive(Default)]
pub(super) struct Group {
    pub requests: u64,
    pub ok: u64,
    pub ttft: Vec<f64>,
    pub tpot: Vec<f64>,
    pub e2e: Vec<f64>,
    pub input: u64,
    pub output: u64,
    /// Σ cached tokens and the successful requests that reported them.
    pub cached: (u64, u64),
}

impl Group {
    pub fn add(&mut self, s: &Sample) {
        self.requests += 1;
        if !s.ok {
            return;
        }
        self.ok += 1;
        if let Some(first) = s.first {
            self.ttft.push(ms(first.saturating_sub(s.started)));
        }
        self.tpot.extend(s.tpot_ms());
        self.e2e.push(ms(s.ended.saturating_sub(s.started)));
        self.input += u64::from(s.input_tokens);
        self.output += u64::from(s.output_tokens);
        if let Some(c) = s.cached_tokens {
            self.cached.0 += u64::from(c);
            self.cached.1 += 1;
        }
    }

    /// Sorts the latency samples, for `pct`.
    pub fn sort(&mut self) {
        for v in [&mut self.ttft, &mut self.tpot, &mut self.e2e] {
            v.sort_by(f64::total_cmp);
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Percentile `p` of sorted values (linear interpolation, as every statistic); `None`
/// when there are none.
pub(super) fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| percentile_sorted(sorted, p))
}

fn mean(sum: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}

/// One turn index's figures. Latencies and token means over its successful requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TurnRow {
    pub turn: u32,
    pub requests: u64,
    pub succeeded: u64,
    pub ttft_ms_mean: Option<f64>,
    pub ttft_ms_p50: Option<f64>,
    pub ttft_ms_p90: Option<f64>,
    pub ttft_ms_p99: Option<f64>,
    pub tpot_ms_p50: Option<f64>,
    pub e2e_ms_p50: Option<f64>,
    pub e2e_ms_p99: Option<f64>,
    /// The client's input tokens (the whole history resent).
    pub input_tokens_mean: Option<f64>,
    /// Over the successful requests whose server reported cached tokens; absent when
    /// none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens_mean: Option<f64>,
}

/// The run's sessions: every request tagged with a session belongs to one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SessionTotals {
    pub count: u64,
    /// Sessions whose every recorded request succeeded.
    pub completed: u64,
    /// Requests per session.
    pub turns_mean: f64,
    /// First request start → last request end of a session, think time included.
    pub duration_ms_p50: Option<f64>,
    pub duration_ms_p99: Option<f64>,
    /// Σ tokens of a session's successful requests, per session.
    pub input_tokens_mean: f64,
    pub output_tokens_mean: f64,
}

/// Rows by turn index, ascending; `None` when no request carried a turn.
pub fn by_turn(samples: &[Sample], tags: &RunTags) -> Option<Vec<TurnRow>> {
    if !tags.any() {
        return None;
    }
    let mut turns: BTreeMap<u32, Group> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        if let Some(t) = tags.get(i).turn() {
            turns.entry(t).or_default().add(s);
        }
    }
    if turns.is_empty() {
        return None;
    }
    let rows = turns
        .into_iter()
        .map(|(turn, mut g)| {
            g.sort();
            TurnRow {
                turn,
                requests: g.requests,
                succeeded: g.ok,
                ttft_ms_mean: mean(g.ttft.iter().sum(), g.ttft.len() as u64),
                ttft_ms_p50: pct(&g.ttft, 50.0),
                ttft_ms_p90: pct(&g.ttft, 90.0),
                ttft_ms_p99: pct(&g.ttft, 99.0),
                tpot_ms_p50: pct(&g.tpot, 50.0),
                e2e_ms_p50: pct(&g.e2e, 50.0),
                e2e_ms_p99: pct(&g.e2e, 99.0),
                input_tokens_mean: mean(g.input as f64, g.ok),
                cached_tokens_mean: mean(g.cached.0 as f64, g.cached.1),
            }
        })
        .collect();
    Some(rows)
}

/// One session's accumulated facts.
#[derive(Clone, Copy)]
struct Session {
    requests: u32,
    all_ok: bool,
    first_start: u64,
    last_end: u64,
    input: u64,
    output: u64,
}

/// Per-session totals; `None` when no request carried a session.
pub fn sessions(samples: &[Sample], tags: &RunTags) -> Option<SessionTotals> {
    if tags.session_count() == 0 {
        return None;
    }
    let empty = Session {
        requests: 0,
        all_ok: true,
        first_start: u64::MAX,
        last_end: 0,
        input: 0,
        output: 0,
    };
    let mut all = vec![empty; tags.session_count()];
    for (i, s) in samples.iter().enumerate() {
        let Some(k) = tags.get(i).session() else {
            continue;
        };
        let x = &mut all[k as usize];
        x.requests += 1;
        x.all_ok &= s.ok;
        x.first_start = x.first_start.min(s.started);
        x.last_end = x.last_end.max(s.ended);
        if s.ok {
            x.input += u64::from(s.input_tokens);
            x.output += u64::from(s.output_tokens);
        }
    }
    let n = all.len() as u64;
    let mut duration: Vec<f64> = all
        .iter()
        .map(|x| ms(x.last_end.saturating_sub(x.first_start)))
        .collect();
    duration.sort_by(f64::total_cmp);
    let sum = |f: fn(&Session) -> u64| all.iter().map(f).sum::<u64>() as f64;
    Some(SessionTotals {
        count: n,
        completed: all.iter().filter(|x| x.all_ok).count() as u64,
        turns_mean: sum(|x| u64::from(x.requests)) / n as f64,
        duration_ms_p50: pct(&duration, 50.0),
        duration_ms_p99: pct(&duration, 99.0),
        input_tokens_mean: sum(|x| x.input) / n as f64,
        output_tokens_mean: sum(|x| x.output) / n as f64,
    })
}

#[cfg(test)]
#[path = "tests_breakdown.rs"]
mod tests;
