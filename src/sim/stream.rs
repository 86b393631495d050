//! Response generation and pacing.
//!
//! Ideal-mode timing contract (tests and users rely on it): with t0 the moment the
//! handler starts, output token j (0-based) is produced at
//! `t0 + ttft_base_ms + prefill_ms_per_token × prompt_tokens + j × tpot_ms`.
//! In engine mode a token is produced at the end of the engine step that sampled it.
//! Either way tokens are grouped into chunks of `tokens_per_chunk`; a chunk is sent
//! when its last token is produced. A chat stream may open with a role-only chunk,
//! sent as soon as the response starts.
//!
//! A mid-output fault (`faults.rs`) comes right after the chunk that completes the
//! fault point (half the output tokens, at least one); a non-streamed response with
//! one is answered there (stalls excepted: they resume and answer at the end).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use super::conn::{self, Conn, Piece};
use super::faults::{self, FaultKind};
use super::http::{self, Parsed};
use super::reasoning;
use super::source::Source;
use super::tools::ToolCall;
use crate::workload::Tokenizer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Chat,
    Completion,
}

/// The prompt as sent; counted only once the response is under way.
pub(super) enum Prompt {
    Texts(Vec<String>),
    Ids(Vec<u32>),
}

/// Prompts longer than this are tokenized off the runtime thread, so one long prompt
/// does not delay every other stream's chunks (a few ms for 8k tokens).
pub(super) const INLINE_COUNT_BYTES: usize = 2048;

impl Prompt {
    fn hash(&self) -> u64 {
        let mut h = Fnv::new();
        match self {
            Prompt::Texts(texts) => texts.iter().for_each(|t| {
                h.write(t.as_bytes());
                h.write(&[0xff]); // separator: ["ab","c"] and ["a","bc"] differ
            }),
            Prompt::Ids(ids) => ids.iter().for_each(|id| h.write(&id.to_le_bytes())),
        }
        h.0
    }

    pub(super) async fn count(self, tokenizer: &Tokenizer) -> u64 {
        let texts = match self {
            Prompt::Ids(ids) => return ids.len() as u64,
            Prompt::Texts(texts) => texts,
        };
        let count = |tok: &Tokenizer, texts: &[String]| -> u64 {
            texts.iter().map(|t| tok.count(t) as u64).sum()
        };
        if texts.iter().map(String::len).sum::<usize>() <= INLINE_COUNT_BYTES {
            return count(tokenizer, &texts);
        }
        let tok = tokenizer.clone();
        off_thread(move || count(&tok, &texts)).await
    }
}

pub(super) async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// FNV-1a: a stable hash, so output lengths do not change between Rust versions.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// splitmix64 finalizer: spreads (seed, hash) over all bits before taking a remainder.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Output words. Each is a single cl100k token, and so is each with its neighbours'
/// spaces, so re-tokenizing the output gives back the token count.
pub(super) const WORDS: [&str; 16] = [
    " the", " model", " serves", " tokens", " at", " a", " steady", " rate", " and", " each",
    " request", " gets", " its", " own", " stream", " of",
];

/// Everything about one response that does not depend on the prompt token count.
pub(super) struct Plan {
    kind: Kind,
    /// Numeric id: the engine's key for the request.
    pub(super) seq: u64,
    id: String,
    pub(super) created: u64,
    pub(super) model: String,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`, shared by every event.
    head: String,
    pub(super) t0: Instant,
    pub(super) output_tokens: u32,
    pub(super) finish_reason: &'static str,
    first_word: usize,
    include_usage: bool,
    send_role: bool,
    pub(super) tokens_per_chunk: u32,
    ttft_base_ms: f64,
    prefill_ms_per_token: f64,
    tpot_ms: f64,
    /// A mid-output fault to inject (set by the handler).
    pub(super) fault: Option<FaultKind>,
    stall_ms: Option<u64>,
    /// The tool this response calls instead of answering (`tools.rs`).
    tool: Option<ToolCall>,
    /// The first output tokens that are reasoning, and the delta field they go in;
    /// `None` without a reasoning phase (chat only).
    reasoning: Option<(u32, &'static str)>,
    /// Speculative decoding (`spec.rs`), and the key of this request's draws.
    pub(super) spec: Option<super::spec::SpecDecoding>,
    pub(super) spec_key: u64,
}

impl Plan {
    /// Answer under this name (a LoRA adapter's) instead of the simulator's model.
    pub(super) fn answer_as(&mut self, name: &str) {
        let from = format!(",\"model\":{},", json_str(&self.model));
        let to = format!(",\"model\":{},", json_str(name));
        self.head = self.head.replacen(&from, &to, 1);
        self.model = name.to_string();
    }

    pub(super) fn new(shared: &Shared, kind: Kind, t0: Instant, req: &Parsed) -> Plan {
        let cfg = &shared.config;
        let hash = req.prompt.hash();
        // Reasoning is a chat answer's (vLLM's reasoning parsers serve chat only).
        let reasoning = match (kind, cfg.reasoning_tokens) {
            (Kind::Chat, Some(r)) => r.draw(cfg.seed, hash),
            _ => 0,
        };
        // Deterministic "EOS": the same (seed, prompt) always stops at the same length.
        let output_tokens = reasoning::output_tokens(
            reasoning,
            req.max_tokens,
            req.ignore_eos && !cfg.ignore_ignore_eos,
            mix(cfg.seed ^ hash),
        );
        let prefix = match kind {
            Kind::Chat => "chatcmpl",
            Kind::Completion => "cmpl",
        };
        let seq = shared.next_id();
        let id = format!("{prefix}-{seq}");
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let first_word = (hash >> 32) as usize % WORDS.len();
        let tool = req
            .tools
            .as_ref()
            .and_then(|t| t.decide(cfg.seed, hash, cfg.tool_call_share))
            .map(|name| ToolCall {
                name,
                id: format!("call_{seq}"),
                tokens: output_tokens,
                first_word,
            });
        let head = format!(
            "data: {{\"id\":{},\"object\":\"{}\",\"created\":{created},\"model\":{},\"choices\":[",
            json_str(&id),
            object(kind, true),
            json_str(&cfg.model),
        );
        Plan {
            kind,
            seq,
            id,
            created,
            model: cfg.model.clone(),
            head,
            t0,
            output_tokens,
            finish_reason: if tool.is_some() {
                "tool_calls"
            } else if output_tokens == req.max_tokens {
                "length"
            } else {
                "stop"
            },
            first_word,
            include_usage: req.include_usage,
            send_role: cfg.role_chunk && kind == Kind::Chat,
            tokens_per_chunk: cfg.tokens_per_chunk.max(1),
            ttft_base_ms: cfg.ttft_base_ms,
            prefill_ms_per_token: cfg.prefill_ms_per_token,
            tpot_ms: cfg.tpot_ms,
            fault: None,
            stall_ms: cfg.faults.stall_ms,
            // A response that calls a tool does so at once, without a reasoning phase.
            reasoning: (kind == Kind::Chat && cfg.reasoning_tokens.is_some() && tool.is_none())
                .then(|| (reasoning.min(output_tokens), cfg.reasoning_field.key())),
            tool,
            spec: cfg.spec,
            spec_key: mix(cfg.seed.rotate_left(17) ^ hash),
        }
    }

    /// When output token `j` is produced (see the module docs).
    pub(super) fn deadline(&self, prompt_tokens: u64, j: u32) -> Instant {
        let ms = self.ttft_base_ms
            + self.prefill_ms_per_token * prompt_tokens as f64
            + self.tpot_ms * f64::from(j);
        // NaN or negative settings mean "now"; absurdly large ones mean "in a year".
        Duration::try_from_secs_f64(ms.max(0.0) / 1000.0)
            .ok()
            .and_then(|d| self.t0.checked_add(d))
            .unwrap_or_else(|| self.t0 + Duration::from_secs(365 * 86_400))
    }

    pub(super) fn text(&self, tokens: std::ops::Range<u32>) -> String {
        tokens
            .map(|j| WORDS[(self.first_word + j as usize) % WORDS.len()])
            .collect()
    }

    /// `cached`: prefix-cache hit tokens, reported by the engine only.
    fn usage(&self, prompt_tokens: u64, cached: Option<u64>) -> Value {
        let completion = u64::from(self.output_tokens);
        let mut usage = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        });
        if let Some(cached) = cached {
            usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
        }
        if let Some((r, _)) = self.reasoning {
            usage["completion_tokens_details"] = json!({"reasoning_tokens": r});
        }
        usage
    }

    /// `{"index":0,<body>,"finish_reason":<finish>}` as one SSE event. Chunks are
    /// written as text around a pre-rendered head: building a `Value` per chunk cost a
    /// third of the server's CPU with thousands of streams.
    fn choice_event(&self, body: &str, finish_reason: Option<&str>) -> String {
        let finish = finish_reason.map_or_else(|| "null".to_string(), json_str);
        let head = &self.head;
        format!("{head}{{\"index\":0,{body},\"finish_reason\":{finish}}}]}}\n\n")
    }

    fn role_chunk(&self) -> Bytes {
        self.choice_event(r#""delta":{"role":"assistant","content":""}"#, None)
            .into()
    }

    fn content_chunk(&self, tokens: std::ops::Range<u32>) -> Bytes {
        if let Some(call) = &self.tool {
            // The call's id and name lead its first arguments, in the same write.
            let mut out = String::new();
            if tokens.start == 0 {
                out = self.choice_event(&call.header_delta(), None);
            }
            out += &self.choice_event(&call.arguments_delta(tokens), None);
            return out.into();
        }
        if let Some((r, key)) = self.reasoning
            && tokens.start < r
        {
            return self
                .choice_event(&self.reasoning_delta(tokens, r, key), None)
                .into();
        }
        let text = json_str(&self.text(tokens));
        let body = match self.kind {
            Kind::Chat => format!(r#""delta":{{"content":{text}}}"#),
            Kind::Completion => format!(r#""text":{text}"#),
        };
        self.choice_event(&body, None).into()
    }

    /// The tool this response calls instead of answering, if it calls one.
    pub(super) fn tool_call(&self) -> Option<&ToolCall> {
        self.tool.as_ref()
    }

    /// How many of the first output tokens are reasoning (0 without a reasoning phase).
    pub(super) fn reasoning_tokens(&self) -> u32 {
        self.reasoning.map_or(0, |(r, _)| r)
    }

    /// A chat delta of tokens starting in the reasoning (the first `r`): the reasoning
    /// part under `key`, and any answer part after it in the same delta.
    fn reasoning_delta(&self, tokens: std::ops::Range<u32>, r: u32, key: &str) -> String {
        let split = tokens.end.min(r);
        let thought = json_str(&self.text(tokens.start..split));
        if split == tokens.end {
            return format!(r#""delta":{{"{key}":{thought}}}"#);
        }
        let answer = json_str(&self.text(split..tokens.end));
        format!(r#""delta":{{"{key}":{thought},"content":{answer}}}"#)
    }

    /// Final chunk, the usage chunk if asked for, and `[DONE]`, in one write; `timings`
    /// (llama.cpp's member) goes in the last chunk.
    fn tail(&self, prompt_tokens: u64, cached: Option<u64>, timings: Option<&str>) -> Bytes {
        let body = match self.kind {
            Kind::Chat => r#""delta":{}"#,
            Kind::Completion => r#""text":"""#,
        };
        let mut out = self.choice_event(body, Some(self.finish_reason));
        if self.include_usage {
            let usage = self.usage(prompt_tokens, cached);
            let mut last = format!("{}],\"usage\":{usage}}}\n\n", self.head);
            timings.inspect(|t| super::timings::append(&mut last, t));
            out += &last;
        } else if let Some(t) = timings {
            super::timings::append(&mut out, t);
        }
        out += "data: [DONE]\n\n";
        out.into()
    }
}

fn object(kind: Kind, streaming: bool) -> &'static str {
    match (kind, streaming) {
        (Kind::Chat, true) => "chat.completion.chunk",
        (Kind::Chat, false) => "chat.completion",
        (Kind::Completion, _) => "text_completion",
    }
}

/// `s` as a JSON string literal, quotes and escapes included.
fn json_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// How one response is written: the chat and completions chunks (`Chunks`), or another
/// API's events (`responses.rs`) over the same engine, timing and faults.
pub(super) trait Events: Send + 'static {
    /// Sent as soon as the response starts, before its first token.
    fn opening(&mut self, plan: &Plan) -> Option<Bytes>;
    /// The event(s) carrying output tokens `tokens`.
    fn output(&mut self, plan: &Plan, tokens: std::ops::Range<u32>) -> Bytes;
    /// What ends a complete stream, usage included (and llama.cpp's `timings` member,
    /// where the API has a place for it).
    fn tail(
        &mut self,
        plan: &Plan,
        prompt_tokens: u64,
        cached: Option<u64>,
        timings: Option<&str>,
    ) -> Bytes;
    /// The `error_event` fault's event; the body ends after it.
    fn error(&mut self, plan: &Plan) -> Bytes;
    /// The whole non-streamed response.
    fn document(&self, plan: &Plan, prompt_tokens: u64, cached: Option<u64>) -> Value;
}

/// Chat and completions chunks, as `Plan` writes them.
pub(super) struct Chunks;

impl Events for Chunks {
    fn opening(&mut self, plan: &Plan) -> Option<Bytes> {
        plan.send_role.then(|| plan.role_chunk())
    }
    fn output(&mut self, plan: &Plan, tokens: std::ops::Range<u32>) -> Bytes {
        plan.content_chunk(tokens)
    }
    fn tail(
        &mut self,
        plan: &Plan,
        prompt_tokens: u64,
        cached: Option<u64>,
        timings: Option<&str>,
    ) -> Bytes {
        plan.tail(prompt_tokens, cached, timings)
    }
    fn error(&mut self, _: &Plan) -> Bytes {
        format!("data: {}\n\n", faults::error_json()).into()
    }
    fn document(&self, plan: &Plan, prompt_tokens: u64, cached: Option<u64>) -> Value {
        plan.document(prompt_tokens, cached)
    }
}

/// A streamed (SSE) response; a task per request paces the chunks into a channel.
/// `conn` is the request's connection, which a `cut` fault breaks.
pub(super) fn streaming(
    shared: Arc<Shared>,
    plan: Plan,
    events: impl Events,
    source: Source,
    conn: Option<Conn>,
) -> Response {
    // Small: the producer runs ahead of the socket by at most a few chunks.
    let (tx, rx) = mpsc::channel::<Piece>(4);
    let close_after = shared.config.close_after_stream;
    tokio::spawn(produce(shared, plan, events, source, tx));
    http::sse_response(conn::body(rx, conn, close_after))
}

/// Pace on the precise timer: tokio's would add 0–1 ms to every simulated interval.
pub(super) async fn sleep_until(deadline: Instant) {
    crate::timer::sleep_until(deadline.into_std()).await
}

/// False once the client went away.
async fn put(tx: &mpsc::Sender<Piece>, bytes: impl Into<Bytes>) -> bool {
    tx.send(Piece::Data(bytes.into())).await.is_ok()
}

async fn produce(
    shared: Arc<Shared>,
    plan: Plan,
    mut events: impl Events,
    source: Source,
    tx: mpsc::Sender<Piece>,
) {
    // A closed channel means the client went away: stop (which also drops the request's
    // receiver, so the engine frees its blocks), and do not count it as completed.
    if let Some(opening) = events.opening(&plan)
        && !put(&tx, opening).await
    {
        return;
    }
    let engine = matches!(source, Source::Engine { .. });
    let begun = if engine {
        std::time::Instant::now()
    } else {
        plan.t0.into_std()
    };
    let mut clock = shared
        .config
        .timings
        .then(|| super::timings::Clock::start(begun));
    let mut tokens = source.start(&shared).await;
    let n = plan.output_tokens;
    let mut fault = plan.fault.map(|kind| (kind, faults::fault_point(n)));
    let mut spoiled = false;
    let mut start = 0;
    let mut chunks = super::spec::EventCuts::new(&plan, engine);
    while start < n {
        let (mut end, at) = chunks.next(&shared, start, n);
        // Ideal mode sleeps to absolute deadlines: relative sleeps would accumulate
        // timer lateness.
        let ready = tokio::select! {
            ready = tokens.wait_step(&shared, &plan, end - 1, at) => ready,
            () = tx.closed() => false,
        };
        if chunks.engine_steps {
            // One event per engine step: whatever it produced.
            end = tokens.ready().clamp(end, n);
        }
        if !ready {
            return;
        }
        if let Some(c) = clock.as_mut() {
            c.token();
        }
        if !put(&tx, events.output(&plan, start..end)).await {
            return;
        }
        start = end;
        if let Some((kind, at)) = fault
            && start >= at
        {
            fault = None;
            // Returning drops `tokens`: the engine frees the request's resources.
            if !inject(&shared, &plan, &mut events, kind, &tx).await {
                return;
            }
            spoiled = kind.spoils();
        }
    }
    // Counted before `[DONE]` goes out, so a client that saw it also sees the stats.
    let cached = tokens.cached;
    if !spoiled {
        shared.record_completed(tokens.prompt_tokens, u64::from(n), cached.unwrap_or(0));
    }
    let timings = clock.map(|c| c.member(tokens.prompt_tokens, cached, n));
    let tail = events.tail(&plan, tokens.prompt_tokens, cached, timings.as_deref());
    let _ = tx.send(Piece::Data(tail)).await;
}

/// Injects a mid-output fault into a stream; false if the stream ends here. A fault
/// is counted once it is handed to the connection.
async fn inject(
    shared: &Shared,
    plan: &Plan,
    events: &mut impl Events,
    kind: FaultKind,
    tx: &mpsc::Sender<Piece>,
) -> bool {
    match kind {
        FaultKind::Cut => {
            if tx.send(Piece::Cut).await.is_ok() {
                shared.count_fault(kind);
            }
            false
        }
        FaultKind::ErrorEvent => {
            // The body then ends cleanly, without `[DONE]`.
            if put(tx, events.error(plan)).await {
                shared.count_fault(kind);
            }
            false
        }
        FaultKind::Malformed => {
            // The stream goes on to `[DONE]`: a client must not take the rest as success.
            let ok = put(tx, format!("data: {}\n\n", faults::MALFORMED_JSON)).await;
            if ok {
                shared.count_fault(kind);
            }
            ok
        }
        FaultKind::Stall => {
            shared.count_fault(kind);
            stall(plan, tx.closed()).await
        }
        _ => true,
    }
}

/// Waits out a stall; false if `gone` (the client left) came first. Tokens produced
/// meanwhile come out together afterwards, as from a stalled network.
async fn stall(plan: &Plan, gone: impl Future<Output = ()>) -> bool {
    match plan.stall_ms {
        Some(ms) => tokio::select! {
            () = sleep_until(Instant::now() + Duration::from_millis(ms)) => true,
            () = gone => false,
        },
        None => {
            gone.await;
            false
        }
    }
}

/// A non-streamed response, sent when its last token is produced. If the client goes
/// away, axum drops this future, and with it the engine's receiver.
pub(super) async fn whole(
    shared: Arc<Shared>,
    plan: Plan,
    events: &impl Events,
    source: Source,
    conn: Option<Conn>,
) -> Response {
    let engine = matches!(source, Source::Engine { .. });
    let mut tokens = source.start(&shared).await;
    let n = plan.output_tokens;
    if let Some(kind) = plan.fault {
        if !tokens
            .wait_for(&shared, &plan, faults::fault_point(n) - 1)
            .await
        {
            return http::unavailable("the engine stopped");
        }
        shared.count_fault(kind);
        let json =
            |body: String| ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        match kind {
            FaultKind::ErrorEvent => return json(faults::error_json()),
            FaultKind::Malformed => return json(faults::MALFORMED_JSON.to_string()),
            FaultKind::Cut => {
                // Half of the document, then the connection closes.
                let doc = events.document(&plan, tokens.prompt_tokens, tokens.cached);
                let mut bytes = Bytes::from(doc.to_string());
                let half = bytes.split_to(bytes.len() / 2);
                let (tx, rx) = mpsc::channel(2);
                let _ = tx.try_send(Piece::Data(half));
                let _ = tx.try_send(Piece::Cut);
                return Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(conn::body(rx, conn, false))
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
            // Without end, this waits until axum drops the future (the client left).
            FaultKind::Stall => {
                stall(&plan, std::future::pending()).await;
            }
            _ => {}
        }
    }
    let at = super::spec::EventCuts::new(&plan, engine).last_at(&shared, n);
    if !tokens.wait_step(&shared, &plan, n - 1, at).await {
        return http::unavailable("the engine stopped");
    }
    let body = events.document(&plan, tokens.prompt_tokens, tokens.cached);
    shared.record_completed(
        tokens.prompt_tokens,
        u64::from(n),
        tokens.cached.unwrap_or(0),
    );
    http::json_response(body)
}

impl Plan {
    /// The whole non-streamed response.
    fn document(&self, prompt_tokens: u64, cached: Option<u64>) -> Value {
        let text = self.text(0..self.output_tokens);
        let choice = match self.kind {
            Kind::Chat if self.tool.is_some() => json!({
                "index": 0,
                "message": self.tool.as_ref().map(ToolCall::message),
                "finish_reason": self.finish_reason,
            }),
            Kind::Chat => {
                let mut message = json!({"role": "assistant", "content": text});
                if let Some((r, key)) = self.reasoning {
                    message[key] = json!(self.text(0..r));
                    message["content"] = json!(self.text(r..self.output_tokens));
                }
                json!({"index": 0, "message": message, "finish_reason": self.finish_reason})
            }
            Kind::Completion => {
                json!({"index": 0, "text": text, "finish_reason": self.finish_reason})
            }
        };
        json!({
            "id": self.id,
            "object": object(self.kind, false),
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage(prompt_tokens, cached),
        })
    }
}
