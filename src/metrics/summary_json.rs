//! The `summary` object of results.json, mirrored field by field in the layout of the
//! results spec, so that a `Summary` is written and read back through serde alone.
//! Reading is lenient: a field missing from a hand-made or older file reads as empty.

use serde::{Deserialize, Serialize};

use super::by_model::ModelRow;
use super::by_turn::{SessionTotals, TurnRow};
use super::embeddings::EmbeddingTotals;
use super::ordered_map::OrderedMap;
use super::phases::{PhaseCountsJson, PhaseStatsJson};
use super::server::SpecDecode;
use super::server::energy::Energy;
use super::server_saved::ServerMetrics;
use super::server_timing::ServerTimingsJson;
use super::slices::SlicesJson;
use super::slo::{Goodput, Slo};
use super::stats::{DEFAULT_PERCENTILES, SavedStats, Stats};
use super::steady::SteadyJson;
use super::summary::{Concurrency, FailureTally, Summary, TokenTotals};
use super::tools::ToolsJson;
use super::validity::Flag;
use crate::record::FailureKind;

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub(super) struct SummaryJson {
    requests: RequestsJson,
    duration_s: f64,
    throughput: ThroughputJson,
    ttft_ms: SavedStats,
    tpot_ms: SavedStats,
    itl_ms: SavedStats,
    e2e_ms: SavedStats,
    tokens_per_event: Option<f64>,
    concurrency: ConcurrencyJson,
    tokens: TokensJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    goodput: Option<GoodputJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_metrics: Option<ServerMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule_lag_ms: Option<SavedStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    queue_wait_ms: Option<SavedStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttft_from_scheduled_ms: Option<SavedStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e2e_from_scheduled_ms: Option<SavedStats>,
    /// The steady-state window (`steady.rs`) and `--slice-s` slices (`slices.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steady: Option<SteadyJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slices: Option<SlicesJson>,
    /// Warm-up requests left out of every figure; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warmup_requests: Option<u64>,
    /// Output tokens/s per user (absent in older files and without a timed request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    per_user_tok_s: Option<SavedStats>,
    /// Tool calls; absent when no request called a tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tools: Option<ToolsJson>,
    /// Reasoning and answer phases (`phases.rs`): absent unless some request reasoned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttfa_ms: Option<SavedStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reasoning_ms: Option<SavedStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    answer_tpot_ms: Option<SavedStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phases: Option<PhaseCountsJson>,
    /// An embeddings run's inputs (absent for generation runs and in older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    embeddings: Option<EmbeddingTotals>,
    /// By turn index, per session, by model: absent unless the records carry the tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by_turn: Option<Vec<TurnRow>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sessions: Option<SessionTotals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by_model: Option<Vec<ModelRow>>,
    /// Reasons to doubt the run's figures; absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    validity: Vec<Flag>,
    /// Speculative decoding, from the server's metrics; absent without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec_decode: Option<SpecDecode>,
    /// `--metrics-url NAME=URL` sources other than the server's own, by name.
    #[serde(default, skip_serializing_if = "OrderedMap::is_empty")]
    metric_sources: OrderedMap<String, ServerMetrics>,
    /// The GPUs' energy over the run (`server/energy.rs`); absent without power data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    energy: Option<Energy>,
    /// The server's own timings (`server_timing.rs`); absent unless it sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_timings: Option<ServerTimingsJson>,
    /// `--profile`: the profiler's calls; absent when the run was not profiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<super::profile_record::ProfileRecord>,
    /// The client's own CPU over the run, when it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client: Option<super::client_use::ClientUse>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct RequestsJson {
    total: u64,
    succeeded: u64,
    /// total − succeeded; written for readers, recomputed when read.
    failed: u64,
    failures: OrderedMap<String, u64>,
    failure_examples: OrderedMap<String, Vec<String>>,
    retried: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct ThroughputJson {
    output_tok_s: f64,
    input_tok_s: f64,
    total_tok_s: f64,
    req_s: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct ConcurrencyJson {
    max_in_flight: u64,
    mean_in_flight: f64,
    max_queued: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct TokensJson {
    input: u64,
    output: u64,
    server_prompt: Option<u64>,
    cached: Option<u64>,
    prompt_gap_mean: Option<f64>,
    output_gap_mean: Option<f64>,
    output_source: OutputSourceJson,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct OutputSourceJson {
    usage: u64,
    tokenizer: u64,
    events: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct GoodputJson {
    req_s: f64,
    tok_s: f64,
    request_share: f64,
    token_share: f64,
    met: u64,
    slo: SloJson,
}

/// `Slo` as saved beside its goodput: every bound, null when unset.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct SloJson {
    ttft_ms: Option<f64>,
    tpot_ms: Option<f64>,
    e2e_ms: Option<f64>,
    min_output_tok_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttfa_ms: Option<f64>,
}

fn saved(stats: &Option<Stats>, percentiles: &[f64]) -> SavedStats {
    SavedStats {
        stats: stats.clone(),
        percentiles: percentiles.to_vec(),
    }
}

impl From<Summary> for SummaryJson {
    fn from(s: Summary) -> Self {
        let p = &s.percentiles;
        let some = |st: &Option<Stats>| st.as_ref().map(|_| saved(st, p));
        let (steady, slices) = super::steady::to_json(&s.steady, &s.slices, p);
        let phases = PhaseStatsJson::write(s.phases.as_ref(), p);
        SummaryJson {
            ttfa_ms: phases.ttfa_ms,
            reasoning_ms: phases.reasoning_ms,
            answer_tpot_ms: phases.answer_tpot_ms,
            phases: phases.counts,
            steady,
            slices,
            requests: RequestsJson {
                total: s.total,
                succeeded: s.succeeded,
                failed: s.total - s.succeeded,
                failures: OrderedMap(
                    s.failures
                        .counts
                        .iter()
                        .map(|(k, n)| (k.as_str().to_string(), *n))
                        .collect(),
                ),
                failure_examples: OrderedMap(
                    s.failures
                        .examples
                        .iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                        .collect(),
                ),
                retried: s.retried,
            },
            duration_s: s.duration_s,
            throughput: ThroughputJson {
                output_tok_s: s.output_tok_s,
                input_tok_s: s.input_tok_s,
                total_tok_s: s.total_tok_s,
                req_s: s.req_s,
            },
            ttft_ms: saved(&s.ttft_ms, p),
            tpot_ms: saved(&s.tpot_ms, p),
            itl_ms: saved(&s.itl_ms, p),
            e2e_ms: saved(&s.e2e_ms, p),
            tokens_per_event: s.tokens_per_event,
            concurrency: ConcurrencyJson {
                max_in_flight: s.concurrency.max_in_flight,
                mean_in_flight: s.concurrency.mean_in_flight,
                max_queued: s.concurrency.max_queued,
            },
            tokens: tokens_json(&s.tokens),
            goodput: s.goodput.as_ref().map(goodput_json),
            schedule_lag_ms: some(&s.schedule_lag_ms),
            queue_wait_ms: some(&s.queue_wait_ms),
            ttft_from_scheduled_ms: some(&s.ttft_from_scheduled_ms),
            e2e_from_scheduled_ms: some(&s.e2e_from_scheduled_ms),
            server_metrics: s.server_metrics,
            warmup_requests: (s.warmup_requests > 0).then_some(s.warmup_requests),
            per_user_tok_s: s.per_user_tok_s.as_ref().map(|st| SavedStats {
                percentiles: st.percentiles.iter().map(|(q, _)| *q).collect(),
                stats: Some(st.clone()),
            }),
            tools: s.tools.as_ref().map(|t| ToolsJson::write(t, p)),
            embeddings: s.embeddings,
            by_turn: s.by_turn,
            sessions: s.sessions,
            by_model: s.by_model,
            validity: s.validity,
            spec_decode: s.spec_decode,
            metric_sources: s.metric_sources,
            energy: s.energy,
            server_timings: s
                .server_timings
                .as_ref()
                .map(|t| ServerTimingsJson::write(t, p)),
            profile: s.profile,
            client: s.client,
        }
    }
}

fn tokens_json(t: &TokenTotals) -> TokensJson {
    TokensJson {
        input: t.input,
        output: t.output,
        server_prompt: t.server_prompt,
        cached: t.cached,
        prompt_gap_mean: t.prompt_gap_mean,
        output_gap_mean: t.output_gap_mean,
        output_source: OutputSourceJson {
            usage: t.source_usage,
            tokenizer: t.source_tokenizer,
            events: t.source_events,
        },
    }
}

fn goodput_json(g: &Goodput) -> GoodputJson {
    GoodputJson {
        req_s: g.req_s,
        tok_s: g.tok_s,
        request_share: g.request_share,
        token_share: g.token_share,
        met: g.met,
        slo: SloJson {
            ttft_ms: g.slo.ttft_ms,
            tpot_ms: g.slo.tpot_ms,
            e2e_ms: g.slo.e2e_ms,
            min_output_tok_s: g.slo.min_output_tok_s,
            ttfa_ms: g.slo.ttfa_ms,
        },
    }
}

impl From<SummaryJson> for Summary {
    fn from(j: SummaryJson) -> Self {
        // The percentiles a summary carries are the keys of its STATS objects.
        let percentiles = if j.ttft_ms.percentiles.is_empty() {
            DEFAULT_PERCENTILES.to_vec()
        } else {
            j.ttft_ms.percentiles.clone()
        };
        let kind = |k: &String| FailureKind::parse(k);
        let mut failures = FailureTally::default();
        for (k, n) in j.requests.failures.0 {
            // A failure kind a newer writer knows: counted in `total` only.
            if let Some(k) = kind(&k) {
                failures.counts.insert(k, n);
            }
        }
        for (k, v) in j.requests.failure_examples.0 {
            if let Some(k) = kind(&k) {
                failures.examples.insert(k, v);
            }
        }
        let t = j.tokens;
        let mut s = Summary {
            total: j.requests.total,
            succeeded: j.requests.succeeded,
            retried: j.requests.retried,
            failures,
            duration_s: j.duration_s,
            output_tok_s: j.throughput.output_tok_s,
            input_tok_s: j.throughput.input_tok_s,
            total_tok_s: j.throughput.total_tok_s,
            req_s: j.throughput.req_s,
            ttft_ms: j.ttft_ms.stats,
            tpot_ms: j.tpot_ms.stats,
            itl_ms: j.itl_ms.stats,
            e2e_ms: j.e2e_ms.stats,
            schedule_lag_ms: j.schedule_lag_ms.and_then(|s| s.stats),
            queue_wait_ms: j.queue_wait_ms.and_then(|s| s.stats),
            ttft_from_scheduled_ms: j.ttft_from_scheduled_ms.and_then(|s| s.stats),
            e2e_from_scheduled_ms: j.e2e_from_scheduled_ms.and_then(|s| s.stats),
            tokens_per_event: j.tokens_per_event,
            concurrency: Concurrency {
                max_in_flight: j.concurrency.max_in_flight,
                mean_in_flight: j.concurrency.mean_in_flight,
                max_queued: j.concurrency.max_queued,
            },
            tokens: TokenTotals {
                input: t.input,
                output: t.output,
                server_prompt: t.server_prompt,
                cached: t.cached,
                source_usage: t.output_source.usage,
                source_tokenizer: t.output_source.tokenizer,
                source_events: t.output_source.events,
                prompt_gap_mean: t.prompt_gap_mean,
                output_gap_mean: t.output_gap_mean,
            },
            percentiles,
            goodput: j.goodput.map(|g| Goodput {
                met: g.met,
                req_s: g.req_s,
                tok_s: g.tok_s,
                request_share: g.request_share,
                token_share: g.token_share,
                slo: Slo {
                    ttft_ms: g.slo.ttft_ms,
                    tpot_ms: g.slo.tpot_ms,
                    e2e_ms: g.slo.e2e_ms,
                    min_output_tok_s: g.slo.min_output_tok_s,
                    ttfa_ms: g.slo.ttfa_ms,
                },
            }),
            server_metrics: j.server_metrics,
            steady: j.steady.map(SteadyJson::read),
            slices: j.slices.map(SlicesJson::read),
            warmup_requests: j.warmup_requests.unwrap_or(0),
            per_user_tok_s: j.per_user_tok_s.and_then(|s| s.stats),
            tools: j.tools.map(ToolsJson::read),
            phases: PhaseStatsJson {
                ttfa_ms: j.ttfa_ms,
                reasoning_ms: j.reasoning_ms,
                answer_tpot_ms: j.answer_tpot_ms,
                counts: j.phases,
            }
            .read(),
            embeddings: j.embeddings,
            by_turn: j.by_turn,
            sessions: j.sessions,
            by_model: j.by_model,
            validity: j.validity,
            spec_decode: j.spec_decode,
            metric_sources: j.metric_sources,
            energy: j.energy,
            server_timings: j.server_timings.map(ServerTimingsJson::read),
            profile: j.profile,
            client: j.client,
        };
        // A file written before the schedule lag was a flag still shows it.
        s.raise_summary_checks();
        s
    }
}
