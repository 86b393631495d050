//! The catalogue's client-side metrics: what the client itself measured.

use super::Stat::{Mean, P};
use super::{ANSWER_TPOT, E2E, E2E_FROM_SCHEDULE, FIRST_TOOL_CALL, ITL, PER_USER, QUEUE_WAIT};
use super::{Better, Metric, Read, SCHEDULE_LAG, TOOL_ARGUMENT_TOKENS, TPOT, TTFA, TTFT};
use super::{REASONING, TTFT_FROM_SCHEDULE, Unit, latency, steady, value};

/// The client-side metrics, in the order `compare` lists them.
pub const METRICS: &[Metric] = &[
    // An embeddings run generates nothing: no output throughput, not a zero.
    value(
        "throughput.output_tok_s",
        "output tok/s",
        Unit::TokensPerS,
        Better::Higher,
        |s| s.embeddings.is_none().then_some(s.output_tok_s),
    ),
    value(
        "throughput.total_tok_s",
        "total tok/s",
        Unit::TokensPerS,
        Better::Higher,
        |s| Some(s.total_tok_s),
    ),
    value(
        "throughput.req_s",
        "requests/s",
        Unit::RequestsPerS,
        Better::Higher,
        |s| Some(s.req_s),
    ),
    // Embeddings runs only: prompts embedded per second, and their tokens.
    value(
        "embeddings.inputs_s",
        "inputs/s",
        Unit::InputsPerS,
        Better::Higher,
        |s| s.embeddings.as_ref().map(|e| e.inputs_s),
    ),
    value(
        "throughput.input_tok_s",
        "input tok/s",
        Unit::TokensPerS,
        Better::Higher,
        |s| s.embeddings.as_ref().map(|_| s.input_tok_s),
    ),
    value(
        "requests.success_rate",
        "success rate",
        Unit::Share,
        Better::Higher,
        |s| (s.total > 0).then(|| s.succeeded as f64 / s.total as f64),
    ),
    value(
        "requests.failed",
        "failed requests",
        Unit::Requests,
        Better::Lower,
        |s| Some((s.total - s.succeeded) as f64),
    ),
    latency("ttft_ms.mean", "TTFT mean (ms)", &TTFT, Mean),
    latency("ttft_ms.p50", "TTFT p50 (ms)", &TTFT, P(50.0)),
    latency("ttft_ms.p90", "TTFT p90 (ms)", &TTFT, P(90.0)),
    latency("ttft_ms.p99", "TTFT p99 (ms)", &TTFT, P(99.0)),
    latency("tpot_ms.mean", "TPOT mean (ms)", &TPOT, Mean),
    latency("tpot_ms.p50", "TPOT p50 (ms)", &TPOT, P(50.0)),
    latency("tpot_ms.p90", "TPOT p90 (ms)", &TPOT, P(90.0)),
    latency("tpot_ms.p99", "TPOT p99 (ms)", &TPOT, P(99.0)),
    latency("itl_ms.mean", "ITL mean (ms)", &ITL, Mean),
    latency("itl_ms.p50", "ITL p50 (ms)", &ITL, P(50.0)),
    latency("itl_ms.p99", "ITL p99 (ms)", &ITL, P(99.0)),
    latency("e2e_ms.mean", "E2E mean (ms)", &E2E, Mean),
    latency("e2e_ms.p50", "E2E p50 (ms)", &E2E, P(50.0)),
    latency("e2e_ms.p90", "E2E p90 (ms)", &E2E, P(90.0)),
    latency("e2e_ms.p99", "E2E p99 (ms)", &E2E, P(99.0)),
    // Open loop: latency from when the schedule wanted the request sent, so a client
    // that held requests back (--max-concurrency) does not look faster.
    latency(
        "ttft_from_scheduled_ms.p50",
        "TTFT p50 from schedule (ms)",
        &TTFT_FROM_SCHEDULE,
        P(50.0),
    ),
    latency(
        "ttft_from_scheduled_ms.p99",
        "TTFT p99 from schedule (ms)",
        &TTFT_FROM_SCHEDULE,
        P(99.0),
    ),
    latency(
        "e2e_from_scheduled_ms.p50",
        "E2E p50 from schedule (ms)",
        &E2E_FROM_SCHEDULE,
        P(50.0),
    ),
    latency(
        "e2e_from_scheduled_ms.p99",
        "E2E p99 from schedule (ms)",
        &E2E_FROM_SCHEDULE,
        P(99.0),
    ),
    latency(
        "queue_wait_ms.p99",
        "queue wait p99 (ms)",
        &QUEUE_WAIT,
        P(99.0),
    ),
    value(
        "goodput.req_s",
        "goodput req/s",
        Unit::RequestsPerS,
        Better::Higher,
        |s| s.goodput.as_ref().map(|g| g.req_s),
    ),
    value(
        "goodput.request_share",
        "share meeting the SLO",
        Unit::Share,
        Better::Higher,
        |s| s.goodput.as_ref().map(|g| g.request_share),
    ),
    latency(
        "schedule_lag_ms.p99",
        "schedule lag p99 (ms)",
        &SCHEDULE_LAG,
        P(99.0),
    ),
    // Over the steady-state window only (`steady.rs`); absent when the run has none.
    value(
        "steady.output_tok_s",
        "steady output tok/s",
        Unit::TokensPerS,
        Better::Higher,
        |s| {
            steady(s)
                .filter(|_| s.embeddings.is_none())
                .map(|w| w.output_tok_s)
        },
    ),
    value(
        "steady.req_s",
        "steady requests/s",
        Unit::RequestsPerS,
        Better::Higher,
        |s| steady(s).map(|w| w.req_s),
    ),
    value(
        "steady.ttft_ms.p99",
        "steady TTFT p99 (ms)",
        Unit::Ms,
        Better::Lower,
        |s| steady(s)?.latencies.ttft_ms.as_ref()?.percentile(99.0),
    ),
    value(
        "steady.tpot_ms.p99",
        "steady TPOT p99 (ms)",
        Unit::Ms,
        Better::Lower,
        |s| steady(s)?.latencies.tpot_ms.as_ref()?.percentile(99.0),
    ),
    // The interactivity side of the throughput–interactivity trade-off.
    Metric {
        key: "per_user_tok_s.p50",
        label: "per-user tok/s p50",
        unit: Unit::TokensPerS,
        better: Better::Higher,
        read: Read::Stat(&PER_USER, P(50.0)),
    },
    // Tool calls (`tools.rs`): absent from runs where no request called a tool.
    value(
        "tools.share",
        "share calling a tool",
        Unit::Share,
        Better::Higher,
        |s| s.tools.as_ref().map(|t| t.share),
    ),
    latency(
        "tools.first_call_ms.mean",
        "first tool call mean (ms)",
        &FIRST_TOOL_CALL,
        Mean,
    ),
    latency(
        "tools.first_call_ms.p50",
        "first tool call p50 (ms)",
        &FIRST_TOOL_CALL,
        P(50.0),
    ),
    latency(
        "tools.first_call_ms.p99",
        "first tool call p99 (ms)",
        &FIRST_TOOL_CALL,
        P(99.0),
    ),
    Metric {
        key: "tools.argument_tokens.mean",
        label: "tool argument tokens mean",
        unit: Unit::Tokens,
        // The same calls in fewer tokens cost less; more means longer calls were made.
        better: Better::Lower,
        read: Read::Stat(&TOOL_ARGUMENT_TOKENS, Mean),
    },
    // Reasoning and answer phases: present only when some request reasoned.
    latency("ttfa_ms.mean", "TTFA mean (ms)", &TTFA, Mean),
    latency("ttfa_ms.p50", "TTFA p50 (ms)", &TTFA, P(50.0)),
    latency("ttfa_ms.p90", "TTFA p90 (ms)", &TTFA, P(90.0)),
    latency("ttfa_ms.p99", "TTFA p99 (ms)", &TTFA, P(99.0)),
    latency(
        "reasoning_ms.p50",
        "reasoning p50 (ms)",
        &REASONING,
        P(50.0),
    ),
    latency(
        "reasoning_ms.p99",
        "reasoning p99 (ms)",
        &REASONING,
        P(99.0),
    ),
    latency(
        "answer_tpot_ms.mean",
        "answer TPOT mean (ms)",
        &ANSWER_TPOT,
        Mean,
    ),
    latency(
        "answer_tpot_ms.p50",
        "answer TPOT p50 (ms)",
        &ANSWER_TPOT,
        P(50.0),
    ),
    latency(
        "answer_tpot_ms.p99",
        "answer TPOT p99 (ms)",
        &ANSWER_TPOT,
        P(99.0),
    ),
    value(
        "steady.ttfa_ms.p99",
        "steady TTFA p99 (ms)",
        Unit::Ms,
        Better::Lower,
        |s| steady(s)?.latencies.ttfa_ms.as_ref()?.percentile(99.0),
    ),
    // Fewer tokens spent thinking reach the answer sooner.
    value(
        "phases.reasoning_tokens_mean",
        "reasoning tokens per request",
        Unit::Tokens,
        Better::Lower,
        |s| Some(s.phases.as_ref()?.reasoning_tokens_mean),
    ),
    // Sessions (`by_turn.rs`): present only when the records carry a session.
    value(
        "sessions.duration_ms_p50",
        "session duration p50 (ms)",
        Unit::Ms,
        Better::Lower,
        |s| s.sessions.as_ref()?.duration_ms_p50,
    ),
    value(
        "sessions.duration_ms_p99",
        "session duration p99 (ms)",
        Unit::Ms,
        Better::Lower,
        |s| s.sessions.as_ref()?.duration_ms_p99,
    ),
];
