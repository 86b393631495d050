//! Every reported metric, defined once: its key in a saved summary (`ttft_ms.p99`), its
//! label, unit and better direction, and how it is read from a `Summary`. The terminal
//! table, `compare` (direction-aware verdicts), the dual-round comparison and the HTML
//! charts take their metrics from here.

mod list;
mod server;

pub use list::METRICS;
pub use server::SERVER_METRICS;

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
    /// Energy over a run (the GPUs' `server/energy.rs`).
    Joules,
    JoulesPerToken,
    TokensPerJoule,
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

pub(crate) const fn latency(
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

pub(crate) const fn value(
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

/// The steady-state window of a summary, when it has one.
pub(crate) fn steady(s: &Summary) -> Option<&Steady> {
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

/// Every metric, in the order `compare` lists them: the client's own, then what the
/// server reported about itself (`server.rs`).
pub fn all() -> impl Iterator<Item = &'static Metric> + Clone {
    METRICS.iter().chain(SERVER_METRICS)
}

/// The metric saved under `key`.
pub fn metric(key: &str) -> Option<&'static Metric> {
    all().find(|m| m.key == key)
}

/// The metric under `key`; for keys fixed in the code, where a typo is a bug.
pub fn known(key: &str) -> &'static Metric {
    metric(key).unwrap_or_else(|| panic!("{key} is not in the metric catalogue"))
}
