//! Every reported metric, defined once: its key in a saved summary (`ttft_ms.p99`), its
//! label, unit and better direction, and how it is read from a `Summary`. The terminal
//! table, `compare` (direction-aware verdicts), the dual-round comparison and the HTML
//! charts take their metrics from here.

use super::Stats;
use super::stats::percentile_key;
use super::steady::Steady;
use super::summary::Summary;

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Ms,
    TokensPerS,
    RequestsPerS,
    /// Embeddings inputs (prompts) per second.
    InputsPerS,
    /// A count of requests.
    Requests,
    /// A fraction, shown in percent.
    Share,
    /// A count of tokens (per request).
    Tokens,
}

/// A distribution a summary carries as STATS (a latency, in ms).
#[derive(Debug)]
pub struct Distribution {
    /// The summary key (`ttft_ms`).
    pub key: &'static str,
    /// Its row in the terminal table.
    pub short: &'static str,
    pub get: fn(&Summary) -> Option<&Stats>,
}

pub const TTFT: Distribution = Distribution {
    key: "ttft_ms",
    short: "TTFT",
    get: |s| s.ttft_ms.as_ref(),
};
pub const TPOT: Distribution = Distribution {
    key: "tpot_ms",
    short: "TPOT",
    get: |s| s.tpot_ms.as_ref(),
};
pub const ITL: Distribution = Distribution {
    key: "itl_ms",
    short: "ITL",
    get: |s| s.itl_ms.as_ref(),
};
pub const E2E: Distribution = Distribution {
    key: "e2e_ms",
    short: "E2E",
    get: |s| s.e2e_ms.as_ref(),
};
pub const TTFT_FROM_SCHEDULE: Distribution = Distribution {
    key: "ttft_from_scheduled_ms",
    short: "TTFT sched.",
    get: |s| s.ttft_from_scheduled_ms.as_ref(),
};
pub const E2E_FROM_SCHEDULE: Distribution = Distribution {
    key: "e2e_from_scheduled_ms",
    short: "E2E sched.",
    get: |s| s.e2e_from_scheduled_ms.as_ref(),
};
pub const QUEUE_WAIT: Distribution = Distribution {
    key: "queue_wait_ms",
    short: "queue wait",
    get: |s| s.queue_wait_ms.as_ref(),
};
pub const SCHEDULE_LAG: Distribution = Distribution {
    key: "schedule_lag_ms",
    short: "sched. lag",
    get: |s| s.schedule_lag_ms.as_ref(),
};

/// Output tokens/s per user (tok/s, not ms: not a row of the latency table).
pub const PER_USER: Distribution = Distribution {
    key: "per_user_tok_s",
    short: "per-user tok/s",
    get: |s| s.per_user_tok_s.as_ref(),
};

/// Time from a request's start to its first tool-call event, over requests that called
/// a tool (`tools.rs`).
pub const FIRST_TOOL_CALL: Distribution = Distribution {
    key: "tools.first_call_ms",
    short: "first tool call",
    get: |s| s.tools.as_ref()?.first_call_ms.as_ref(),
};

/// Tool-call argument tokens per request that called a tool (not ms: no table row).
pub const TOOL_ARGUMENT_TOKENS: Distribution = Distribution {
    key: "tools.argument_tokens",
    short: "tool argument tokens",
    get: |s| s.tools.as_ref()?.argument_tokens.as_ref(),
};

// The phases of a reasoning model's responses (`phases.rs`): absent from plain runs.
pub const TTFA: Distribution = Distribution {
    key: "ttfa_ms",
    short: "TTFA",
    get: |s| s.phases.as_ref()?.ttfa_ms.as_ref(),
};
pub const REASONING: Distribution = Distribution {
    key: "reasoning_ms",
    short: "reasoning",
    get: |s| s.phases.as_ref()?.reasoning_ms.as_ref(),
};
pub const ANSWER_TPOT: Distribution = Distribution {
    key: "answer_tpot_ms",
    short: "answer TPOT",
    get: |s| s.phases.as_ref()?.answer_tpot_ms.as_ref(),
};

/// One statistic of a distribution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    Mean,
    P(f64),
}

/// How a metric is read from a summary.
#[derive(Clone, Copy, Debug)]
pub enum Read {
    Stat(&'static Distribution, Stat),
    Value(fn(&Summary) -> Option<f64>),
}

/// One reported metric.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// Where it is in a saved summary (`ttft_ms.p99`, `throughput.req_s`).
    pub key: &'static str,
    pub label: &'static str,
    pub unit: Unit,
    pub better: Better,
    pub read: Read,
}

impl Metric {
    /// The label without its unit, for chart legends: `TTFT p99`, `output tok/s`.
    pub fn short_label(&self) -> String {
        match self.read {
            Read::Stat(d, Stat::Mean) => format!("{} mean", d.short),
            Read::Stat(d, Stat::P(p)) => format!("{} {}", d.short, percentile_key(p)),
            Read::Value(_) => self.label.to_string(),
        }
    }

    pub fn value(&self, s: &Summary) -> Option<f64> {
        match self.read {
            Read::Stat(d, stat) => {
                let Some(st) = (d.get)(s) else {
                    // An open-loop run without a cap saves no queue wait: it had none.
                    let had_none = d.key == QUEUE_WAIT.key && s.schedule_lag_ms.is_some();
                    return had_none.then_some(0.0);
                };
                let v = match stat {
                    Stat::Mean => Some(st.mean),
                    Stat::P(p) => st.percentile(p),
                };
                // NaN: not in the (hand-made) file.
                v.filter(|v| !v.is_nan())
            }
            Read::Value(f) => f(s),
        }
    }
}

const fn latency(
    key: &'static str,
    label: &'static str,
    d: &'static Distribution,
    stat: Stat,
) -> Metric {
    Metric {
        key,
        label,
        unit: Unit::Ms,
        better: Better::Lower,
        read: Read::Stat(d, stat),
    }
}

const fn value(
    key: &'static str,
    label: &'static str,
    unit: Unit,
    better: Better,
    f: fn(&Summary) -> Option<f64>,
) -> Metric {
    Metric {
        key,
        label,
        unit,
        better,
        read: Read::Value(f),
    }
}

use Stat::{Mean, P};

/// Every metric, in the order `compare` lists them.
pub const METRICS: [Metric; 53] = [
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

/// The steady-state window of a summary, when it has one.
fn steady(s: &Summary) -> Option<&Steady> {
    s.steady.as_ref()?.window()
}

/// The distributions of the terminal table, in its row order.
pub const TABLE_ROWS: [&Distribution; 12] = [
    &TTFT,
    &TPOT,
    &ITL,
    &E2E,
    &TTFA,
    &REASONING,
    &ANSWER_TPOT,
    &TTFT_FROM_SCHEDULE,
    &E2E_FROM_SCHEDULE,
    &QUEUE_WAIT,
    &SCHEDULE_LAG,
    &FIRST_TOOL_CALL,
];

/// The metric saved under `key`.
pub fn metric(key: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.key == key)
}

/// The metric under `key`; for keys fixed in the code, where a typo is a bug.
pub fn known(key: &str) -> &'static Metric {
    metric(key).unwrap_or_else(|| panic!("{key} is not in the metric catalogue"))
}
