//! A run's steady-state window and its statistics, beside the whole run's: the part of
//! the run where the load was what the run asked for. Closed loop: from when the
//! target concurrency is first in flight to the last send; open loop: from the end of
//! ramp-up to the last send; a batch sent at once has none. Definitions: README,
//! "Steady state".

use serde::{Deserialize, Serialize};

use super::slices::{Latencies, Slices, SlicesJson, saved, slice};
use super::stats::SavedStats;
use super::summary::{RunData, Sample, Summary};

/// A window shorter than this share of the run says little about it: absent.
pub const MIN_SHARE: f64 = 0.10;
/// Fewer successful requests started in the window than this: absent.
pub const MIN_REQUESTS: usize = 2;

/// How a run sent its requests, as far as its steady state goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// Every request at once (batch, throughput): no steady state.
    AllAtOnce,
    /// `concurrency` requests in flight (this process's part when sharded).
    ClosedLoop { concurrency: usize },
    /// Sent on a timeline; ramp-up (if any) ends `settle_us` after the run's start.
    OpenLoop { settle_us: u64 },
}

/// What a summary needs besides the records: how the run was paced (`None`: unknown,
/// no steady state computed) and the slice width (`--slice-s`), in µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunShape {
    pub pacing: Option<Pacing>,
    pub slice_us: Option<u64>,
}

/// The statistics of a span of a run, [start_s, end_s] in s from its start: the
/// steady-state window, or one `--slice-s` slice (`slices::Slice`).
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub start_s: f64,
    /// A slice's end is the run's (its last request's end) for the last slice.
    pub end_s: f64,
    /// Requests started in the span, and those of them that succeeded.
    pub requests: u64,
    pub succeeded: u64,
    /// Output tokens of events inside the span ÷ its length.
    pub output_tok_s: f64,
    /// Successful requests that ended inside the span ÷ its length.
    pub req_s: f64,
    /// Of the successful requests started in the span.
    pub latencies: Latencies,
}

/// The steady-state window's statistics.
pub type Steady = Span;

/// A run's steady state: its window, or why it has none.
#[derive(Clone, Debug, PartialEq)]
pub enum SteadyState {
    Window(Box<Steady>),
    Absent(String),
}

impl SteadyState {
    pub fn window(&self) -> Option<&Steady> {
        match self {
            SteadyState::Window(w) => Some(w.as_ref()),
            SteadyState::Absent(_) => None,
        }
    }
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

/// When `concurrency` requests were first in flight at once (in-flight intervals are
/// [started, ended); at equal times ends count first), or the most ever in flight.
fn first_reached(samples: &[Sample], concurrency: usize) -> Result<u64, u64> {
    let mut edges: Vec<(u64, i8)> = samples
        .iter()
        .flat_map(|s| [(s.started, 1), (s.ended, -1)])
        .collect();
    edges.sort_unstable();
    let (mut cur, mut max) = (0i64, 0i64);
    for (t, d) in edges {
        cur += d as i64;
        max = max.max(cur);
        if cur >= concurrency as i64 {
            return Ok(t);
        }
    }
    Err(max as u64)
}

/// The steady state of the run in `data`, paced by `pacing`.
pub fn steady_state(data: &RunData, pacing: Pacing, pcts: &[f64]) -> SteadyState {
    let samples = data.samples();
    let absent = |why: String| SteadyState::Absent(why);
    let Some(last_send) = samples.iter().map(|s| s.started).max() else {
        return absent("no requests".into());
    };
    let begin = samples
        .iter()
        .map(|s| s.scheduled.map_or(s.started, |t| t.min(s.started)))
        .min()
        .unwrap_or(0);
    let run_us = samples.iter().map(|s| s.ended).max().unwrap_or(0) - begin;
    let start = match pacing {
        Pacing::AllAtOnce => {
            return absent("every request was sent at once".into());
        }
        Pacing::ClosedLoop { concurrency } => match first_reached(samples, concurrency) {
            Ok(t) => t,
            Err(max) => {
                return absent(format!(
                    "the target concurrency {concurrency} was never reached (at most {max} in flight)"
                ));
            }
        },
        // Warm-up requests, left out of `data`, may have filled part of the ramp.
        Pacing::OpenLoop { settle_us } => begin.max(settle_us),
    };
    let len = last_send.saturating_sub(start);
    if (len as f64) < MIN_SHARE * run_us as f64 || len == 0 {
        return absent(format!(
            "too short: from {:.3} s to the last send at {:.3} s is under {:.0} % of the run ({:.3} s)",
            secs(start),
            secs(last_send),
            MIN_SHARE * 100.0,
            secs(run_us)
        ));
    }
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| (start..=last_send).contains(&s.started))
        .collect();
    let succeeded = inside.iter().filter(|s| s.ok).count();
    if succeeded < MIN_REQUESTS {
        return absent(format!(
            "too few requests: {succeeded} successful started from {:.3} s to the last send at {:.3} s (at least {MIN_REQUESTS} needed)",
            secs(start),
            secs(last_send)
        ));
    }
    let ended = samples
        .iter()
        .filter(|s| s.ok && (start..=last_send).contains(&s.ended))
        .count();
    SteadyState::Window(Box::new(Steady {
        start_s: secs(start),
        end_s: secs(last_send),
        requests: inside.len() as u64,
        succeeded: succeeded as u64,
        output_tok_s: data.token_timeline().between(start, last_send) / secs(len),
        req_s: ended as f64 / secs(len),
        latencies: Latencies::of(inside.into_iter(), pcts),
    }))
}

impl Summary {
    /// Add the steady state and the time slices the run's `shape` asks for, computed
    /// from the same requests.
    pub fn with_shape(mut self, data: &RunData, shape: &RunShape) -> Self {
        let pcts = self.percentiles.clone();
        self.steady = shape.pacing.map(|p| steady_state(data, p, &pcts));
        self.slices = shape.slice_us.map(|w| slice(data, w, &pcts));
        self
    }
}

/// `steady` in results.json (inside the summary): the window and its statistics, or
/// `absent` with the reason.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub(super) struct SteadyJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    absent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    succeeded: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tok_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    req_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttft_ms: Option<SavedStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tpot_ms: Option<SavedStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e2e_ms: Option<SavedStats>,
    /// Only when some request in the window reasoned (`metrics::phases`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttfa_ms: Option<SavedStats>,
}

impl SteadyJson {
    pub(super) fn new(s: &SteadyState, pcts: &[f64]) -> SteadyJson {
        match s {
            SteadyState::Absent(why) => SteadyJson {
                absent: Some(why.clone()),
                ..SteadyJson::default()
            },
            SteadyState::Window(w) => SteadyJson {
                absent: None,
                start_s: Some(w.start_s),
                end_s: Some(w.end_s),
                requests: Some(w.requests),
                succeeded: Some(w.succeeded),
                output_tok_s: Some(w.output_tok_s),
                req_s: Some(w.req_s),
                ttft_ms: Some(saved(&w.latencies.ttft_ms, pcts)),
                tpot_ms: Some(saved(&w.latencies.tpot_ms, pcts)),
                e2e_ms: Some(saved(&w.latencies.e2e_ms, pcts)),
                ttfa_ms: w
                    .latencies
                    .ttfa_ms
                    .as_ref()
                    .map(|_| saved(&w.latencies.ttfa_ms, pcts)),
            },
        }
    }

    pub(super) fn read(self) -> SteadyState {
        if let Some(why) = self.absent {
            return SteadyState::Absent(why);
        }
        let stats = |s: Option<SavedStats>| s.and_then(|s| s.stats);
        SteadyState::Window(Box::new(Steady {
            start_s: self.start_s.unwrap_or(f64::NAN),
            end_s: self.end_s.unwrap_or(f64::NAN),
            requests: self.requests.unwrap_or(0),
            succeeded: self.succeeded.unwrap_or(0),
            output_tok_s: self.output_tok_s.unwrap_or(f64::NAN),
            req_s: self.req_s.unwrap_or(f64::NAN),
            latencies: Latencies {
                ttft_ms: stats(self.ttft_ms),
                tpot_ms: stats(self.tpot_ms),
                e2e_ms: stats(self.e2e_ms),
                ttfa_ms: stats(self.ttfa_ms),
            },
        }))
    }
}

/// The JSON forms, for `summary_json`.
pub(super) fn to_json(
    steady: &Option<SteadyState>,
    slices: &Option<Slices>,
    pcts: &[f64],
) -> (Option<SteadyJson>, Option<SlicesJson>) {
    (
        steady.as_ref().map(|s| SteadyJson::new(s, pcts)),
        slices.as_ref().map(|s| SlicesJson::new(s, pcts)),
    )
}

#[cfg(test)]
#[path = "tests_steady.rs"]
mod tests;
