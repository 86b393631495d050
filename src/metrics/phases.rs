//! The phases of a run's responses (README, "Reasoning and answer"): time to first
//! answer token (TTFA), reasoning time, reasoning and answer tokens, and TPOT over the
//! answer. A summary carries them only when some successful request reasoned, so a
//! plain run's table, summary.csv and results.json stay as they were.

use serde::{Deserialize, Serialize};

use super::stats::{SavedStats, Stats};
use super::summary::{Sample, with_intervals};
use crate::record::RequestRecord;

/// What a summary needs of one request's phases. µs on the run clock; times are kept
/// with `NONE` for absent (48 bytes, not 80 with options: `report` holds one per record).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhaseFacts {
    /// Reasoning events arrived, or the server counted reasoning tokens.
    pub reasoned: bool,
    /// `Phases::reasoning_tokens`: the server's count, else one per reasoning event.
    pub reasoning_tokens: u32,
    /// Tool-call events (`metrics::tools` reads them with `first_tool`).
    pub tool_events: u32,
    first_reasoning: u64,
    last_reasoning: u64,
    first_answer: u64,
    first_tool: u64,
}

const NONE: u64 = u64::MAX;

fn at(t: u64) -> Option<u64> {
    (t != NONE).then_some(t)
}

impl Default for PhaseFacts {
    fn default() -> Self {
        PhaseFacts {
            reasoned: false,
            reasoning_tokens: 0,
            tool_events: 0,
            first_reasoning: NONE,
            last_reasoning: NONE,
            first_answer: NONE,
            first_tool: NONE,
        }
    }
}

impl PhaseFacts {
    pub fn of(r: &RequestRecord) -> PhaseFacts {
        // A plain record's phases: answer text throughout, from the first event.
        let p = r.phases();
        PhaseFacts {
            reasoned: p.reasoned(),
            reasoning_tokens: p.reasoning_tokens(),
            tool_events: p.tool_events,
            first_reasoning: p.first_reasoning_at.unwrap_or(NONE),
            last_reasoning: p.last_reasoning_at.unwrap_or(NONE),
            first_answer: p.first_non_reasoning_at().unwrap_or(NONE),
            first_tool: p.first_tool_at.unwrap_or(NONE),
        }
    }

    pub fn first_reasoning(&self) -> Option<u64> {
        at(self.first_reasoning)
    }

    pub fn last_reasoning(&self) -> Option<u64> {
        at(self.last_reasoning)
    }

    /// The first output that is not reasoning (answer text or a tool call).
    pub fn first_answer(&self) -> Option<u64> {
        at(self.first_answer)
    }

    /// The first tool-call event.
    pub fn first_tool(&self) -> Option<u64> {
        at(self.first_tool)
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl PhaseFacts {
    /// Some output was not answer text (reasoning, a tool call): drawn by phase.
    pub fn phased(&self) -> bool {
        self.reasoned || self.first_tool().is_some()
    }
}

impl Sample {
    /// TTFA: first non-reasoning output − started; `None` for a request that never
    /// answered.
    pub fn ttfa_ms(&self) -> Option<f64> {
        Some(ms(self.phase.first_answer()?.saturating_sub(self.started)))
    }

    /// Reasoning time: first non-reasoning output − first reasoning event; for a request
    /// that reasoned but never answered, last reasoning event − first. `None` without
    /// reasoning events.
    pub fn reasoning_ms(&self) -> Option<f64> {
        let first = self.phase.first_reasoning()?;
        let until = self.phase.first_answer().or(self.phase.last_reasoning())?;
        Some(ms(until.saturating_sub(first)))
    }

    /// Output tokens that were not reasoning (saturating: a server may count more
    /// reasoning tokens than it reports in all).
    pub fn answer_tokens(&self) -> u32 {
        self.output_tokens
            .saturating_sub(self.phase.reasoning_tokens)
    }

    /// Answer TPOT: (ended − first non-reasoning output) / (answer tokens − 1), in ms;
    /// `None` under two answer tokens.
    pub fn answer_tpot_ms(&self) -> Option<f64> {
        let n = self.answer_tokens();
        if n < 2 {
            return None;
        }
        Some(ms(self.ended.saturating_sub(self.phase.first_answer()?)) / f64::from(n - 1))
    }
}

/// The phase figures of a run, over its successful requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseSummary {
    /// Successful requests that reasoned.
    pub reasoned: u64,
    /// Successful requests with no answer output, left out of TTFA.
    pub without_answer: u64,
    pub ttfa_ms: Option<Stats>,
    pub reasoning_ms: Option<Stats>,
    pub answer_tpot_ms: Option<Stats>,
    pub reasoning_tokens: u64,
    pub answer_tokens: u64,
    /// Per successful request.
    pub reasoning_tokens_mean: f64,
    pub answer_tokens_mean: f64,
}

/// The phase figures of the successful requests `ok`; `None` when none reasoned.
pub fn summarize(ok: &[&Sample], pcts: &[f64]) -> Option<PhaseSummary> {
    let reasoned = ok.iter().filter(|s| s.phase.reasoned).count() as u64;
    if reasoned == 0 {
        return None;
    }
    let collect =
        |f: fn(&Sample) -> Option<f64>| -> Vec<f64> { ok.iter().filter_map(|s| f(s)).collect() };
    let mut ttfa = collect(Sample::ttfa_ms);
    let mut reasoning = collect(Sample::reasoning_ms);
    let mut answer_tpot = collect(Sample::answer_tpot_ms);
    let reasoning_tokens: u64 = ok.iter().map(|s| u64::from(s.phase.reasoning_tokens)).sum();
    let answer_tokens: u64 = ok.iter().map(|s| u64::from(s.answer_tokens())).sum();
    let n = ok.len() as f64;
    Some(PhaseSummary {
        reasoned,
        without_answer: (ok.len() - ttfa.len()) as u64,
        ttfa_ms: with_intervals(&mut ttfa, pcts),
        reasoning_ms: with_intervals(&mut reasoning, pcts),
        answer_tpot_ms: with_intervals(&mut answer_tpot, pcts),
        reasoning_tokens,
        answer_tokens,
        reasoning_tokens_mean: reasoning_tokens as f64 / n,
        answer_tokens_mean: answer_tokens as f64 / n,
    })
}

/// The phase distributions as results.json's summary holds them (beside `ttft_ms`),
/// each absent in a run where no request reasoned.
#[derive(Clone, Debug, Default)]
pub(super) struct PhaseStatsJson {
    pub ttfa_ms: Option<SavedStats>,
    pub reasoning_ms: Option<SavedStats>,
    pub answer_tpot_ms: Option<SavedStats>,
    pub counts: Option<PhaseCountsJson>,
}

/// The summary's `phases` object: requests and tokens by phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub(super) struct PhaseCountsJson {
    requests_reasoned: u64,
    requests_without_answer: u64,
    reasoning_tokens: u64,
    answer_tokens: u64,
    reasoning_tokens_mean: f64,
    answer_tokens_mean: f64,
}

impl PhaseStatsJson {
    pub fn write(p: Option<&PhaseSummary>, pcts: &[f64]) -> PhaseStatsJson {
        let Some(p) = p else {
            return PhaseStatsJson::default();
        };
        let saved = |st: &Option<Stats>| {
            Some(SavedStats {
                stats: st.clone(),
                percentiles: pcts.to_vec(),
            })
        };
        PhaseStatsJson {
            ttfa_ms: saved(&p.ttfa_ms),
            reasoning_ms: saved(&p.reasoning_ms),
            answer_tpot_ms: saved(&p.answer_tpot_ms),
            counts: Some(PhaseCountsJson {
                requests_reasoned: p.reasoned,
                requests_without_answer: p.without_answer,
                reasoning_tokens: p.reasoning_tokens,
                answer_tokens: p.answer_tokens,
                reasoning_tokens_mean: p.reasoning_tokens_mean,
                answer_tokens_mean: p.answer_tokens_mean,
            }),
        }
    }

    /// The phase figures saved; `None` for a file without the `phases` object.
    pub fn read(self) -> Option<PhaseSummary> {
        let c = self.counts?;
        let stats = |s: Option<SavedStats>| s.and_then(|s| s.stats);
        Some(PhaseSummary {
            reasoned: c.requests_reasoned,
            without_answer: c.requests_without_answer,
            ttfa_ms: stats(self.ttfa_ms),
            reasoning_ms: stats(self.reasoning_ms),
            answer_tpot_ms: stats(self.answer_tpot_ms),
            reasoning_tokens: c.reasoning_tokens,
            answer_tokens: c.answer_tokens,
            reasoning_tokens_mean: c.reasoning_tokens_mean,
            answer_tokens_mean: c.answer_tokens_mean,
        })
    }
}

#[cfg(test)]
#[path = "tests_phases.rs"]
mod tests;
