//! The per-run summary, per the metrics spec. It is computed from compact per-request
//! facts (`RunData`), which both a live run and `servescope report` build from the same
//! records, so both print the same numbers.

use std::collections::BTreeMap;

use serde_json::Value;

use super::by_model::ModelRow;
use super::by_turn::{SessionTotals, TurnRow};
use super::confidence::bootstrap_percentiles;
use super::embeddings::EmbeddingTotals;
use super::phases::{PhaseFacts, PhaseSummary};
use super::server_saved::ServerMetrics;
use super::slices::{Slices, TokenTimeline, add_events};
use super::slo::{Goodput, Slo, goodput};
use super::stats::{Counts, Stats, with_defaults};
use super::steady::SteadyState;
use super::summary_json::SummaryJson;
use super::tags::RunTags;
use super::tools::ToolSummary;
use crate::record::{FailureKind, RequestRecord, TokenSource};

/// How many messages are kept per failure kind (the rest are only counted).
const EXAMPLES_PER_KIND: usize = 3;

/// The facts of one request the summary needs (events reduced to first/last and gaps).
/// Times in µs from the run's start.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub scheduled: Option<u64>,
    pub queue_wait: Option<u64>,
    pub started: u64,
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub ended: u64,
    pub events: u32,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub text_tokens: Option<u32>,
    pub prompt_tokens: Option<u32>,
    pub cached_tokens: Option<u32>,
    pub source: TokenSource,
    pub ok: bool,
    pub retries: u32,
    /// Reasoning and answer phases (`metrics::phases`).
    pub phase: PhaseFacts,
    /// Embeddings: the inputs the request carried.
    pub inputs: Option<u32>,
    /// The output it should reach (`ignore_eos` with `max_tokens`), when known.
    pub expected_output: Option<u32>,
}

impl Sample {
    /// TPOT: (last output event − first) / (output tokens − 1), in ms; `None` under two
    /// tokens. The only place it is computed (summary, goodput and charts call it).
    pub fn tpot_ms(&self) -> Option<f64> {
        if self.output_tokens < 2 {
            return None;
        }
        Some(ms(self.last?.saturating_sub(self.first?)) / (self.output_tokens - 1) as f64)
    }

    /// Output tokens/s per user: output tokens / (E2E − TTFT) s, the speed one user
    /// sees once the answer starts. `None` under two tokens (no decode to time) or when
    /// the stream ended at its first event (E2E == TTFT: no time to divide by).
    pub fn per_user_tok_s(&self) -> Option<f64> {
        if self.output_tokens < 2 {
            return None;
        }
        let decode_us = self.ended.checked_sub(self.first?).filter(|&d| d > 0)?;
        Some(self.output_tokens as f64 / (decode_us as f64 / 1e6))
    }
}

/// The percentiles per-user tok/s carries besides the summary's: p10, its slow tail
/// (higher is better, so the low percentiles are the bad ones).
pub const PER_USER_EXTRA_PERCENTILES: [f64; 1] = [10.0];

/// Failures counted by kind, with the first few messages of each.
#[derive(Clone, Debug, Default)]
pub struct FailureTally {
    pub counts: BTreeMap<FailureKind, u64>,
    pub examples: BTreeMap<FailureKind, Vec<String>>,
}

impl FailureTally {
    pub fn add(&mut self, kind: FailureKind, message: Option<&str>) {
        *self.counts.entry(kind).or_default() += 1;
        let ex = self.examples.entry(kind).or_default();
        if ex.len() < EXAMPLES_PER_KIND
            && let Some(m) = message
        {
            ex.push(m.to_string());
        }
    }
    /// Failures of one kind.
    pub fn count(&self, kind: FailureKind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// Everything one run's summary is computed from: about 170 bytes per request (12 more
/// when records carry a session, turn or model), plus the inter-token gaps counted by
/// distinct value.
#[derive(Clone, Debug, Default)]
pub struct RunData {
    samples: Vec<Sample>,
    /// Gaps between consecutive output events of successful requests, in µs, counted
    /// by value: bounded memory however many tokens a run streams.
    itl_us: Counts,
    pub failures: FailureTally,
    /// Output tokens of successful requests over time (steady state, time slices).
    tokens: TokenTimeline,
    /// Warm-up records seen and left out (`--warmup`, `--warmup-s`).
    pub warmup: u64,
    /// Session, turn and model per sample, when records carry them (`tags.rs`).
    tags: RunTags,
    /// Successful requests' server timings, when they carried some (`server_timing.rs`).
    server_timings: Vec<super::server_timing::TimingFacts>,
}

impl RunData {
    pub fn push(&mut self, r: &RequestRecord) {
        // Warm-up requests are saved but measured by nothing: no statistic, no span.
        if r.warmup {
            self.warmup += 1;
            return;
        }
        let ok = r.ok();
        if ok {
            for w in r.events.windows(2) {
                self.itl_us
                    .add(w[1].saturating_sub(w[0]).min(u32::MAX as u64) as u32);
            }
            add_events(&mut self.tokens, &r.events, r.output_tokens);
            self.server_timings
                .extend(super::server_timing::TimingFacts::of(r));
        } else if let Some(kind) = r.failure {
            self.failures.add(kind, r.error.as_deref());
        }
        self.tags.push(self.samples.len(), &r.tag);
        self.samples.push(Sample {
            scheduled: r.scheduled_at,
            queue_wait: r.queue_wait,
            started: r.started_at,
            first: r.events.first().copied(),
            last: r.events.last().copied(),
            ended: r.ended_at,
            events: r.events.len() as u32,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            text_tokens: r.text_tokens,
            prompt_tokens: r.prompt_tokens,
            cached_tokens: r.cached_tokens,
            source: r.output_tokens_source,
            ok,
            retries: r.retries,
            phase: PhaseFacts::of(r),
            inputs: r.inputs,
            expected_output: r.expected_output_tokens,
        });
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Every request's facts, in the order they finished.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Each sample's session, turn and model (`samples()[i]` has `tags().get(i)`).
    pub fn tags(&self) -> &RunTags {
        &self.tags
    }

    /// The inter-token gaps (µs) of successful requests, counted by value.
    pub fn itl_us(&self) -> &Counts {
        &self.itl_us
    }

    /// Output tokens of successful requests by when their events arrived.
    pub fn token_timeline(&self) -> &TokenTimeline {
        &self.tokens
    }
}

/// Token totals over successful requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenTotals {
    pub input: u64,
    pub output: u64,
    /// Server-reported prompt tokens, over requests that reported them.
    pub server_prompt: Option<u64>,
    pub cached: Option<u64>,
    /// Requests whose output count came from usage / the tokenizer / event counting.
    pub source_usage: u64,
    pub source_tokenizer: u64,
    pub source_events: u64,
    /// Mean of (server prompt tokens − client input tokens): the chat template, mostly.
    pub prompt_gap_mean: Option<f64>,
    /// Mean of (server output tokens − client tokenizer's count of the text), over
    /// requests with both: what counting with the client's tokenizer would get wrong.
    pub output_gap_mean: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Concurrency {
    pub max_in_flight: u64,
    pub mean_in_flight: f64,
    pub max_queued: u64,
}

/// One run's summary; serialised as the `summary` object of results.json (the layout
/// lives in `summary_json`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(into = "SummaryJson", from = "SummaryJson")]
pub struct Summary {
    pub total: u64,
    pub succeeded: u64,
    /// Requests that needed more than one try (`--retries`).
    pub retried: u64,
    pub failures: FailureTally,
    pub duration_s: f64,
    pub output_tok_s: f64,
    pub input_tok_s: f64,
    pub total_tok_s: f64,
    pub req_s: f64,
    pub ttft_ms: Option<Stats>,
    pub tpot_ms: Option<Stats>,
    pub itl_ms: Option<Stats>,
    pub e2e_ms: Option<Stats>,
    /// Open-loop runs only: the client's own lateness (started − scheduled − queue wait).
    pub schedule_lag_ms: Option<Stats>,
    /// Time requests waited for a concurrency slot (open loop with a cap).
    pub queue_wait_ms: Option<Stats>,
    /// Open-loop latency counted from when the schedule wanted the request sent, so
    /// client-side waiting is never hidden (coordinated omission).
    pub ttft_from_scheduled_ms: Option<Stats>,
    pub e2e_from_scheduled_ms: Option<Stats>,
    pub tokens_per_event: Option<f64>,
    pub concurrency: Concurrency,
    pub tokens: TokenTotals,
    /// The percentiles the stats carry (defaults plus any asked for).
    pub percentiles: Vec<f64>,
    /// Requests meeting the SLO, when one was given.
    pub goodput: Option<Goodput>,
    /// The server's own metrics over the run (`--metrics`), as saved in results.json.
    pub server_metrics: Option<ServerMetrics>,
    /// The steady-state window and its statistics (`with_shape`), or why there is none.
    pub steady: Option<SteadyState>,
    /// `--slice-s`: the run in fixed time slices.
    pub slices: Option<Slices>,
    /// Warm-up requests sent before the measured ones and excluded from every figure.
    pub warmup_requests: u64,
    /// Output tokens/s per user over successful requests (`Sample::per_user_tok_s`),
    /// with p10 besides the summary's percentiles.
    pub per_user_tok_s: Option<Stats>,
    /// Tool calls, when some successful request called a tool.
    pub tools: Option<ToolSummary>,
    /// TTFA, reasoning time and tokens, answer TPOT: only when some request reasoned.
    pub phases: Option<PhaseSummary>,
    /// An embeddings run's inputs and inputs/s (`--api embeddings`).
    pub embeddings: Option<EmbeddingTotals>,
    /// Latency by turn index, per-session totals, latency by model: only when the
    /// records carry turns, sessions, models (`by_turn.rs`, `by_model.rs`).
    pub by_turn: Option<Vec<TurnRow>>,
    pub sessions: Option<SessionTotals>,
    pub by_model: Option<Vec<ModelRow>>,
    /// Reasons to doubt this run's figures (`validity.rs`); empty when none was found.
    pub validity: Vec<super::validity::Flag>,
    /// Speculative decoding's acceptance, from the server's metrics (`server/spec.rs`).
    pub spec_decode: Option<super::server::SpecDecode>,
    /// `--metrics-url NAME=URL`: each other source's metrics by name (the engine's stay
    /// in `server_metrics`); empty without such a source.
    pub metric_sources: super::ordered_map::OrderedMap<String, ServerMetrics>,
    /// The GPUs' energy over the run, from DCGM-style series (`server/energy.rs`).
    pub energy: Option<super::server::energy::Energy>,
    /// The server's own timings of its requests (llama.cpp's `timings`), when it sent
    /// them (`server_timing.rs`).
    pub server_timings: Option<super::server_timing::ServerTimingSummary>,
    /// `--profile`: the profiler's calls around the run (`profile_record.rs`).
    pub profile: Option<super::profile_record::ProfileRecord>,
    /// The client's own CPU use over the run (`client_use.rs`), when it was measured.
    pub client: Option<super::client_use::ClientUse>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn summarize(data: &RunData, extra_percentiles: &[f64]) -> Summary {
    let pcts = percentiles(extra_percentiles);
    let ok: Vec<&Sample> = data.samples.iter().filter(|s| s.ok).collect();
    let duration_us = span_us(&data.samples);
    let duration_s = duration_us as f64 / 1e6;
    let per_s = |x: f64| {
        if duration_s > 0.0 {
            x / duration_s
        } else {
            0.0
        }
    };
    let (tokens, events_total) = token_totals(&ok);
    let lat = LatencyStats::compute(&data.samples, &ok, &pcts);
    let per_user_tok_s = per_user(&ok, &pcts);
    let tools = super::tools::summarize(&ok, &pcts);
    let phases = super::phases::summarize(&ok, &pcts);
    let server_timings = super::server_timing::summarize(&data.server_timings, &pcts);
    let validity = server_timings.iter().filter_map(|t| t.check()).collect();
    Summary {
        total: data.samples.len() as u64,
        succeeded: ok.len() as u64,
        retried: data.samples.iter().filter(|s| s.retries > 0).count() as u64,
        failures: data.failures.clone(),
        duration_s,
        output_tok_s: per_s(tokens.output as f64),
        input_tok_s: per_s(tokens.input as f64),
        total_tok_s: per_s((tokens.input + tokens.output) as f64),
        req_s: per_s(ok.len() as f64),
        ttft_ms: lat.ttft,
        tpot_ms: lat.tpot,
        itl_ms: Stats::from_counts(&data.itl_us, 1000.0, &pcts),
        e2e_ms: lat.e2e,
        schedule_lag_ms: lat.schedule_lag,
        queue_wait_ms: lat.queue_wait,
        ttft_from_scheduled_ms: lat.ttft_from_scheduled,
        e2e_from_scheduled_ms: lat.e2e_from_scheduled,
        tokens_per_event: (events_total > 0).then(|| tokens.output as f64 / events_total as f64),
        concurrency: concurrency(&data.samples, duration_us),
        tokens,
        percentiles: pcts,
        goodput: None,
        server_metrics: None,
        steady: None,
        slices: None,
        warmup_requests: data.warmup,
        per_user_tok_s,
        tools,
        phases,
        embeddings: super::embeddings::totals(&data.samples, duration_s),
        by_turn: super::by_turn::by_turn(&data.samples, &data.tags),
        sessions: super::by_turn::sessions(&data.samples, &data.tags),
        by_model: super::by_model::by_model(&data.samples, &data.tags, duration_s),
        spec_decode: None,
        metric_sources: Default::default(),
        energy: None,
        validity,
        server_timings,
        profile: None,
        client: None,
    }
    .with_run_checks(&data.samples)
}

/// Per-user tok/s of the successful requests that have one.
fn per_user(ok: &[&Sample], pcts: &[f64]) -> Option<Stats> {
    let mut v: Vec<f64> = ok.iter().filter_map(|s| s.per_user_tok_s()).collect();
    Stats::compute(
        &mut v,
        &with_defaults(&[pcts, &PER_USER_EXTRA_PERCENTILES].concat()),
    )
}

/// The default percentiles and any others asked for, in increasing order.
fn percentiles(extra: &[f64]) -> Vec<f64> {
    with_defaults(extra)
}

/// The run's span in µs: from the first request scheduled or started (whichever is
/// earlier) to the last one ended, failed requests included.
fn span_us(samples: &[Sample]) -> u64 {
    let begin = samples
        .iter()
        .map(|s| s.scheduled.map_or(s.started, |t| t.min(s.started)))
        .min()
        .unwrap_or(0);
    let end = samples.iter().map(|s| s.ended).max().unwrap_or(0);
    end.saturating_sub(begin)
}

/// The per-request latency distributions of a run, in ms.
struct LatencyStats {
    ttft: Option<Stats>,
    tpot: Option<Stats>,
    e2e: Option<Stats>,
    schedule_lag: Option<Stats>,
    queue_wait: Option<Stats>,
    ttft_from_scheduled: Option<Stats>,
    e2e_from_scheduled: Option<Stats>,
}

impl LatencyStats {
    /// Latencies over the successful requests `ok`; the client's schedule lag and
    /// queue wait over all of `samples`, failed ones included.
    fn compute(samples: &[Sample], ok: &[&Sample], pcts: &[f64]) -> Self {
        let mut ttft: Vec<f64> = ok
            .iter()
            .filter_map(|s| s.first.map(|f| ms(f.saturating_sub(s.started))))
            .collect();
        let mut e2e: Vec<f64> = ok
            .iter()
            .map(|s| ms(s.ended.saturating_sub(s.started)))
            .collect();
        let mut tpot: Vec<f64> = ok.iter().filter_map(|s| s.tpot_ms()).collect();
        let mut lag: Vec<f64> = samples
            .iter()
            .filter_map(|s| {
                let t = s.scheduled?;
                Some(ms(s
                    .started
                    .saturating_sub(t)
                    .saturating_sub(s.queue_wait.unwrap_or(0))))
            })
            .collect();
        let mut queue_wait: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.queue_wait.map(ms))
            .collect();
        let mut ttft_sched: Vec<f64> = ok
            .iter()
            .filter_map(|s| Some(ms(s.first?.saturating_sub(s.scheduled?))))
            .collect();
        let mut e2e_sched: Vec<f64> = ok
            .iter()
            .filter_map(|s| Some(ms(s.ended.saturating_sub(s.scheduled?))))
            .collect();
        LatencyStats {
            ttft: with_intervals(&mut ttft, pcts),
            tpot: with_intervals(&mut tpot, pcts),
            e2e: with_intervals(&mut e2e, pcts),
            schedule_lag: Stats::compute(&mut lag, pcts),
            queue_wait: Stats::compute(&mut queue_wait, pcts),
            ttft_from_scheduled: Stats::compute(&mut ttft_sched, pcts),
            e2e_from_scheduled: Stats::compute(&mut e2e_sched, pcts),
        }
    }
}

/// The statistics of a per-request latency with a bootstrap interval of each
/// percentile (the client's own timings, queue wait and lag, go without).
pub(super) fn with_intervals(values: &mut [f64], pcts: &[f64]) -> Option<Stats> {
    let mut stats = Stats::compute(values, pcts)?;
    // `compute` left the values sorted.
    stats.ci95 = bootstrap_percentiles(values, pcts);
    Some(stats)
}

/// Token totals over successful requests, and how many output events carried them.
fn token_totals(ok: &[&Sample]) -> (TokenTotals, u64) {
    let mut tokens = TokenTotals::default();
    let mut gap_sum = 0i64;
    let mut gap_n = 0u64;
    let mut events_total = 0u64;
    let (mut out_gap_sum, mut out_gap_n) = (0i64, 0u64);
    for s in ok {
        if let (TokenSource::Usage, Some(t)) = (s.source, s.text_tokens) {
            out_gap_sum += s.output_tokens as i64 - t as i64;
            out_gap_n += 1;
        }
        tokens.input += s.input_tokens as u64;
        tokens.output += s.output_tokens as u64;
        events_total += s.events as u64;
        if let Some(p) = s.prompt_tokens {
            *tokens.server_prompt.get_or_insert(0) += p as u64;
            gap_sum += p as i64 - s.input_tokens as i64;
            gap_n += 1;
        }
        if let Some(c) = s.cached_tokens {
            *tokens.cached.get_or_insert(0) += c as u64;
        }
        match s.source {
            TokenSource::Usage => tokens.source_usage += 1,
            TokenSource::Tokenizer => tokens.source_tokenizer += 1,
            TokenSource::Events => tokens.source_events += 1,
        }
    }
    tokens.prompt_gap_mean = (gap_n > 0).then(|| gap_sum as f64 / gap_n as f64);
    tokens.output_gap_mean = (out_gap_n > 0).then(|| out_gap_sum as f64 / out_gap_n as f64);
    (tokens, events_total)
}

impl Summary {
    /// Add goodput under `slo`, computed from the same requests.
    pub fn with_goodput(mut self, data: &RunData, slo: Option<&Slo>) -> Self {
        self.goodput = slo.map(|slo| goodput(data, slo, self.duration_s));
        self
    }
}

/// In-flight = [started, ended); queued = [started, first output event or end). At equal
/// times, ends are counted before starts (half-open intervals).
fn concurrency(samples: &[Sample], duration_us: u64) -> Concurrency {
    let max_overlap = |intervals: &mut Vec<(u64, i32)>| -> u64 {
        intervals.sort_unstable();
        let (mut cur, mut max) = (0i64, 0i64);
        for &(_, d) in intervals.iter() {
            cur += d as i64;
            max = max.max(cur);
        }
        max as u64
    };
    let mut flight: Vec<(u64, i32)> = Vec::with_capacity(samples.len() * 2);
    let mut queued: Vec<(u64, i32)> = Vec::with_capacity(samples.len() * 2);
    let mut busy_us = 0u64;
    for s in samples {
        flight.push((s.started, 1));
        flight.push((s.ended, -1));
        queued.push((s.started, 1));
        queued.push((s.first.unwrap_or(s.ended), -1));
        busy_us += s.ended.saturating_sub(s.started);
    }
    Concurrency {
        max_in_flight: max_overlap(&mut flight),
        mean_in_flight: if duration_us > 0 {
            busy_us as f64 / duration_us as f64
        } else {
            0.0
        },
        max_queued: max_overlap(&mut queued),
    }
}

impl Summary {
    /// The `summary` object of results.json.
    pub fn to_json(&self) -> Value {
        // Serialising numbers, strings and options into a Value cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
#[path = "tests_summary.rs"]
mod tests;

#[cfg(test)]
#[path = "tests_per_user.rs"]
mod tests_per_user;
