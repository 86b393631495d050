//! One record per request: what happened, timed in integer microseconds from the run's
//! start. Integer times make `servescope report` reproduce a run's numbers exactly: the
//! file stores the same microseconds the live summary was computed from.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Deserialize;

use crate::phases::Phases;
use crate::server_timings::ServerTimings;

/// Why a request failed. The names are the `status` values in requests.jsonl.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureKind {
    ConnectError,
    Timeout,
    /// No bytes for `--idle-timeout` seconds (a stalled stream).
    IdleTimeout,
    HttpStatus,
    ErrorEvent,
    StreamCut,
    InvalidResponse,
    /// Still in flight when a stopped run's grace period ended; its record keeps what
    /// had arrived by then.
    Cancelled,
}

impl FailureKind {
    pub const ALL: [FailureKind; 8] = [
        FailureKind::ConnectError,
        FailureKind::Timeout,
        FailureKind::IdleTimeout,
        FailureKind::HttpStatus,
        FailureKind::ErrorEvent,
        FailureKind::StreamCut,
        FailureKind::InvalidResponse,
        FailureKind::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::ConnectError => "connect_error",
            FailureKind::Timeout => "timeout",
            FailureKind::IdleTimeout => "idle_timeout",
            FailureKind::HttpStatus => "http_status",
            FailureKind::ErrorEvent => "error_event",
            FailureKind::StreamCut => "stream_cut",
            FailureKind::InvalidResponse => "invalid_response",
            FailureKind::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where `output_tokens` came from, best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    Usage,
    Tokenizer,
    Events,
}

impl TokenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenSource::Usage => "usage",
            TokenSource::Tokenizer => "tokenizer",
            TokenSource::Events => "events",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "usage" => Some(TokenSource::Usage),
            "tokenizer" => Some(TokenSource::Tokenizer),
            "events" => Some(TokenSource::Events),
            _ => None,
        }
    }
}

/// What a request belongs to besides its run: a session and its turn (synthetic
/// sessions, a trace's conversations) and the model of a `--model` mix. Each field is
/// written to requests.jsonl only when set, so other records' lines are unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RequestTag {
    /// The session (a conversation of several turns) the request is a turn of.
    pub session: Option<u64>,
    /// Its turn in the session, counting from 0.
    pub turn: Option<u32>,
    /// The model (or LoRA adapter) it was sent to, when the run mixes several.
    pub model: Option<Arc<str>>,
    /// A trace request's own lengths where `--input-len`/`--output-len` replaced them.
    pub trace: TraceLengths,
}

impl RequestTag {
    /// No session, turn or model: the request belongs to no group of its run (the
    /// trace's lengths group nothing).
    pub fn is_ungrouped(&self) -> bool {
        self.session.is_none() && self.turn.is_none() && self.model.is_none()
    }
}

/// The lengths a trace gave a request, each only where it was replaced (requests.jsonl's
/// `trace_input_len` and `trace_output_len`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TraceLengths {
    pub input_len: Option<u32>,
    pub output_len: Option<u32>,
}

/// Everything known about one finished request. Times are µs since the run's start.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    pub run: Arc<str>,
    pub id: u64,
    pub scheduled_at: Option<u64>,
    /// µs spent waiting for a free concurrency slot (open loop with a cap); the
    /// request's own HTTP exchange starts at `started_at`, after the wait.
    pub queue_wait: Option<u64>,
    pub started_at: u64,
    pub ended_at: u64,
    /// Arrival time of every output event; the first is the first token.
    pub events: Vec<u64>,
    /// The events by kind, when some were not answer text (reasoning, tool calls) or the
    /// server counted reasoning tokens; `None`: every event was answer text.
    pub phases: Option<Phases>,
    pub input_tokens: u32,
    pub prompt_tokens: Option<u32>,
    pub cached_tokens: Option<u32>,
    pub output_tokens: u32,
    pub output_tokens_source: TokenSource,
    /// The client tokenizer's count of the generated text (beside the server's usage, so
    /// the gap between the two sources can be reported).
    pub text_tokens: Option<u32>,
    /// `None` = success.
    pub failure: Option<FailureKind>,
    pub error: Option<String>,
    pub http_status: Option<u16>,
    /// Tries after the first (`--retries`); 0 when the first try stood.
    pub retries: u32,
    /// Sent during the run's warm-up (`--warmup`, `--warmup-s`): saved, but in no
    /// statistic. Written only when true, so other records' lines are unchanged.
    pub warmup: bool,
    /// Embeddings: the prompts the request carried (`--batch-inputs`); written only
    /// then, so other records' lines are unchanged.
    pub inputs: Option<u32>,
    /// Session, turn and model, when the workload set them.
    pub tag: RequestTag,
    /// What the server said of its own timings (llama.cpp's `timings`); written only
    /// when it did.
    pub server_timings: Option<ServerTimings>,
    /// The request's `max_tokens` when it was sent with `ignore_eos`: the output length
    /// it should reach (the `ignore_eos` check); written only then.
    pub expected_output_tokens: Option<u32>,
}

#[cfg(test)]
impl RequestRecord {
    /// A successful request for unit tests: HTTP 200, output counted from usage, nothing
    /// else set; tests override the fields they need.
    pub(crate) fn ok_for_test(
        run: &str,
        started_at: u64,
        events: Vec<u64>,
        ended_at: u64,
        input_tokens: u32,
        output_tokens: u32,
    ) -> Self {
        RequestRecord {
            run: Arc::from(run),
            id: 0,
            scheduled_at: None,
            queue_wait: None,
            started_at,
            ended_at,
            events,
            phases: None,
            input_tokens,
            prompt_tokens: None,
            cached_tokens: None,
            output_tokens,
            output_tokens_source: TokenSource::Usage,
            text_tokens: None,
            failure: None,
            error: None,
            http_status: Some(200),
            retries: 0,
            warmup: false,
            inputs: None,
            tag: RequestTag::default(),
            server_timings: None,
            expected_output_tokens: None,
        }
    }
}

impl RequestRecord {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    pub fn first_token_at(&self) -> Option<u64> {
        self.events.first().copied()
    }

    /// The events by kind; a record without phases was answer text throughout.
    pub fn phases(&self) -> Phases {
        self.phases.unwrap_or_else(|| Phases::plain(&self.events))
    }

    pub fn status(&self) -> &'static str {
        self.failure.map_or("ok", FailureKind::as_str)
    }

    /// One requests.jsonl line (with its newline), in the results spec's field order.
    pub fn write_json_line(&self, out: &mut String) {
        out.push_str("{\"run\":");
        push_json_str(out, &self.run);
        let _ = write!(out, ",\"id\":{},\"scheduled_at\":", self.id);
        push_opt_secs(out, self.scheduled_at);
        out.push_str(",\"queue_wait\":");
        push_opt_secs(out, self.queue_wait);
        out.push_str(",\"started_at\":");
        push_secs(out, self.started_at);
        out.push_str(",\"first_token_at\":");
        push_opt_secs(out, self.first_token_at());
        out.push_str(",\"ended_at\":");
        push_secs(out, self.ended_at);
        out.push_str(",\"events\":[");
        for (i, t) in self.events.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_secs(out, *t);
        }
        let _ = write!(out, "],\"input_tokens\":{}", self.input_tokens);
        out.push_str(",\"prompt_tokens\":");
        push_opt_num(out, self.prompt_tokens);
        out.push_str(",\"cached_tokens\":");
        push_opt_num(out, self.cached_tokens);
        let _ = write!(
            out,
            ",\"output_tokens\":{},\"output_tokens_source\":\"{}\",\"text_tokens\":",
            self.output_tokens,
            self.output_tokens_source.as_str(),
        );
        push_opt_num(out, self.text_tokens);
        let _ = write!(out, ",\"status\":\"{}\",\"error\":", self.status());
        match &self.error {
            Some(e) => push_json_str(out, e),
            None => out.push_str("null"),
        }
        out.push_str(",\"http_status\":");
        push_opt_num(out, self.http_status);
        let _ = write!(out, ",\"retries\":{}", self.retries);
        if self.warmup {
            out.push_str(",\"warmup\":true");
        }
        if let Some(p) = &self.phases {
            write_phases(out, p);
        }
        if let Some(n) = self.inputs {
            let _ = write!(out, ",\"inputs\":{n}");
        }
        write_tag(out, &self.tag);
        if let Some(t) = &self.server_timings {
            t.write_json_member(out);
        }
        if let Some(n) = self.expected_output_tokens {
            let _ = write!(out, ",\"expected_output_tokens\":{n}");
        }
        out.push_str("}\n");
    }

    /// Parse one requests.jsonl line (as written by `write_json_line`, or by another
    /// tool following the results spec).
    pub fn parse_json_line(line: &str) -> Result<RequestRecord, String> {
        let raw: RawRecord = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let failure = match raw.status.as_str() {
            "ok" => None,
            s => Some(FailureKind::parse(s).ok_or_else(|| {
                format!("unknown status {s:?} (expected \"ok\" or a failure kind)")
            })?),
        };
        let output_tokens_source =
            TokenSource::parse(&raw.output_tokens_source).ok_or_else(|| {
                format!(
                    "unknown output_tokens_source {:?} (expected usage, tokenizer or events)",
                    raw.output_tokens_source
                )
            })?;
        let us = |field: &str, s: f64| -> Result<u64, String> {
            if s.is_finite() && s >= 0.0 {
                Ok((s * 1e6).round() as u64)
            } else {
                Err(format!("{field} must be a non-negative number of seconds"))
            }
        };
        let events = raw
            .events
            .iter()
            .map(|&t| us("events", t))
            .collect::<Result<Vec<_>, _>>()?;
        let started_at = us("started_at", raw.started_at)?;
        let ended_at = us("ended_at", raw.ended_at)?;
        // Every interval is computed from these; out-of-order times would be nonsense.
        let mut prev = started_at;
        for &t in events.iter().chain([&ended_at]) {
            if t < prev {
                return Err(
                    "times out of order (expected started_at ≤ events, in order, ≤ ended_at)"
                        .into(),
                );
            }
            prev = t;
        }
        let phases = raw.phases(started_at, ended_at)?;
        Ok(RequestRecord {
            run: Arc::from(raw.run),
            id: raw.id,
            scheduled_at: raw
                .scheduled_at
                .map(|s| us("scheduled_at", s))
                .transpose()?,
            queue_wait: raw.queue_wait.map(|s| us("queue_wait", s)).transpose()?,
            started_at,
            ended_at,
            events,
            phases,
            input_tokens: raw.input_tokens,
            prompt_tokens: raw.prompt_tokens,
            cached_tokens: raw.cached_tokens,
            output_tokens: raw.output_tokens,
            output_tokens_source,
            text_tokens: raw.text_tokens,
            failure,
            error: raw.error,
            http_status: raw.http_status,
            retries: raw.retries,
            warmup: raw.warmup,
            inputs: raw.inputs,
            tag: RequestTag {
                session: raw.session,
                turn: raw.turn,
                model: raw.model.map(Arc::from),
                trace: TraceLengths {
                    input_len: raw.trace_input_len,
                    output_len: raw.trace_output_len,
                },
            },
            server_timings: raw.server_timings,
            expected_output_tokens: raw.expected_output_tokens,
        })
    }
}

#[derive(Deserialize)]
struct RawRecord {
    run: String,
    id: u64,
    scheduled_at: Option<f64>,
    #[serde(default)]
    queue_wait: Option<f64>,
    started_at: f64,
    ended_at: f64,
    #[serde(default)]
    events: Vec<f64>,
    input_tokens: u32,
    prompt_tokens: Option<u32>,
    cached_tokens: Option<u32>,
    output_tokens: u32,
    output_tokens_source: String,
    #[serde(default)]
    text_tokens: Option<u32>,
    status: String,
    error: Option<String>,
    http_status: Option<u16>,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    warmup: bool,
    #[serde(default)]
    inputs: Option<u32>,
    #[serde(default)]
    session: Option<u64>,
    #[serde(default)]
    turn: Option<u32>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    trace_input_len: Option<u32>,
    #[serde(default)]
    trace_output_len: Option<u32>,
    #[serde(default)]
    server_timings: Option<ServerTimings>,
    expected_output_tokens: Option<u32>,
    #[serde(flatten)]
    phases: RawPhases,
}

/// The tag's fields, each only when set.
fn write_tag(out: &mut String, tag: &RequestTag) {
    if let Some(s) = tag.session {
        let _ = write!(out, ",\"session\":{s}");
    }
    if let Some(t) = tag.turn {
        let _ = write!(out, ",\"turn\":{t}");
    }
    if let Some(m) = &tag.model {
        out.push_str(",\"model\":");
        push_json_str(out, m);
    }
    if let Some(n) = tag.trace.input_len {
        let _ = write!(out, ",\"trace_input_len\":{n}");
    }
    if let Some(n) = tag.trace.output_len {
        let _ = write!(out, ",\"trace_output_len\":{n}");
    }
}

/// The phase fields, written only for a record with phases (`answer_events` marks them).
#[derive(Deserialize)]
struct RawPhases {
    #[serde(default)]
    first_reasoning_at: Option<f64>,
    #[serde(default)]
    last_reasoning_at: Option<f64>,
    #[serde(default)]
    first_answer_at: Option<f64>,
    #[serde(default)]
    first_tool_at: Option<f64>,
    #[serde(default)]
    reasoning_events: u32,
    #[serde(default)]
    answer_events: Option<u32>,
    #[serde(default)]
    tool_events: u32,
    #[serde(default)]
    reasoning_tokens: Option<u32>,
}

impl RawRecord {
    fn phases(&self, started_at: u64, ended_at: u64) -> Result<Option<Phases>, String> {
        let p = &self.phases;
        let Some(answer_events) = p.answer_events else {
            return Ok(None);
        };
        let at = |field: &str, s: Option<f64>| -> Result<Option<u64>, String> {
            let Some(s) = s else { return Ok(None) };
            let us = (s * 1e6).round();
            if s.is_finite() && us >= started_at as f64 && us <= ended_at as f64 {
                Ok(Some(us as u64))
            } else {
                Err(format!("{field} must lie between started_at and ended_at"))
            }
        };
        Ok(Some(Phases {
            first_reasoning_at: at("first_reasoning_at", p.first_reasoning_at)?,
            last_reasoning_at: at("last_reasoning_at", p.last_reasoning_at)?,
            first_answer_at: at("first_answer_at", p.first_answer_at)?,
            first_tool_at: at("first_tool_at", p.first_tool_at)?,
            reasoning_events: p.reasoning_events,
            answer_events,
            tool_events: p.tool_events,
            usage_reasoning_tokens: p.reasoning_tokens,
        }))
    }
}

/// The phase fields of a requests.jsonl line (after the spec's fields).
fn write_phases(out: &mut String, p: &Phases) {
    for (key, t) in [
        ("first_reasoning_at", p.first_reasoning_at),
        ("last_reasoning_at", p.last_reasoning_at),
        ("first_answer_at", p.first_answer_at),
        ("first_tool_at", p.first_tool_at),
    ] {
        let _ = write!(out, ",\"{key}\":");
        push_opt_secs(out, t);
    }
    let _ = write!(
        out,
        ",\"reasoning_events\":{},\"answer_events\":{},\"tool_events\":{},\"reasoning_tokens\":",
        p.reasoning_events, p.answer_events, p.tool_events
    );
    push_opt_num(out, p.usage_reasoning_tokens);
}

/// Seconds with exactly six decimals: the microsecond is the unit of record.
fn push_secs(out: &mut String, us: u64) {
    let _ = write!(out, "{}.{:06}", us / 1_000_000, us % 1_000_000);
}

fn push_opt_secs(out: &mut String, us: Option<u64>) {
    match us {
        Some(v) => push_secs(out, v),
        None => out.push_str("null"),
    }
}

fn push_opt_num<T: std::fmt::Display>(out: &mut String, v: Option<T>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push_str("null"),
    }
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json's escaping is correct for every control and non-ASCII character.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
#[path = "tests_record.rs"]
mod tests;
