//! Response generation and pacing.
//!
//! Ideal-mode timing contract (tests and users rely on it): with t0 the moment the
//! handler starts, output token j (0-based) is produced at
//! `t0 + ttft_base_ms + prefill_ms_per_token × prompt_tokens + j × tpot_ms`.
//! In engine mode a token is produced at the end of the engine step that sampled it.
//! Either way tokens are grouped into chunks of `tokens_per_chunk`; a chunk is sent
//! when its last token is produced. A chat stream may open with a role-only chunk,
//! sent as soon as the response starts.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use super::http::{self, Parsed};
use super::source::Source;
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
fn mix(mut z: u64) -> u64 {
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
    created: u64,
    model: String,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`, shared by every event.
    head: String,
    pub(super) t0: Instant,
    pub(super) output_tokens: u32,
    finish_reason: &'static str,
    first_word: usize,
    include_usage: bool,
    send_role: bool,
    tokens_per_chunk: u32,
    ttft_base_ms: f64,
    prefill_ms_per_token: f64,
    tpot_ms: f64,
}

impl Plan {
    pub(super) fn new(shared: &Shared, kind: Kind, t0: Instant, req: &Parsed) -> Plan {
        let cfg = &shared.config;
        let hash = req.prompt.hash();
        let output_tokens = if req.ignore_eos {
            req.max_tokens
        } else {
            // Deterministic "EOS": the same (seed, prompt) always stops at the same length.
            1 + (mix(cfg.seed ^ hash) % u64::from(req.max_tokens)) as u32
        };
        let prefix = match kind {
            Kind::Chat => "chatcmpl",
            Kind::Completion => "cmpl",
        };
        let seq = shared.next_id();
        let id = format!("{prefix}-{seq}");
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
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
            finish_reason: if output_tokens == req.max_tokens {
                "length"
            } else {
                "stop"
            },
            first_word: (hash >> 32) as usize % WORDS.len(),
            include_usage: req.include_usage,
            send_role: cfg.role_chunk && kind == Kind::Chat,
            tokens_per_chunk: cfg.tokens_per_chunk.max(1),
            ttft_base_ms: cfg.ttft_base_ms,
            prefill_ms_per_token: cfg.prefill_ms_per_token,
            tpot_ms: cfg.tpot_ms,
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

    fn text(&self, tokens: std::ops::Range<u32>) -> String {
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
        let text = json_str(&self.text(tokens));
        let body = match self.kind {
            Kind::Chat => format!(r#""delta":{{"content":{text}}}"#),
            Kind::Completion => format!(r#""text":{text}"#),
        };
        self.choice_event(&body, None).into()
    }

    /// Final chunk, the usage chunk if asked for, and `[DONE]`, in one write.
    fn tail(&self, prompt_tokens: u64, cached: Option<u64>) -> Bytes {
        let body = match self.kind {
            Kind::Chat => r#""delta":{}"#,
            Kind::Completion => r#""text":"""#,
        };
        let mut out = self.choice_event(body, Some(self.finish_reason));
        if self.include_usage {
            let usage = self.usage(prompt_tokens, cached);
            out += &format!("{}],\"usage\":{usage}}}\n\n", self.head);
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

/// A streamed (SSE) response; a task per request paces the chunks into a channel.
pub(super) fn streaming(shared: Arc<Shared>, plan: Plan, source: Source) -> Response {
    // Small: the producer runs ahead of the socket by at most a few chunks.
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(produce(shared, plan, source, tx));
    let events = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|b| b.map(Ok::<_, Infallible>))
    });
    http::sse_response(Body::from_stream(events))
}

/// Pace on the precise timer: tokio's would add 0–1 ms to every simulated interval.
pub(super) async fn sleep_until(deadline: Instant) {
    crate::timer::sleep_until(deadline.into_std()).await
}

async fn produce(shared: Arc<Shared>, plan: Plan, source: Source, tx: mpsc::Sender<Bytes>) {
    // A closed channel means the client went away: stop (which also drops the request's
    // receiver, so the engine frees its blocks), and do not count it as completed.
    if plan.send_role && tx.send(plan.role_chunk()).await.is_err() {
        return;
    }
    let mut tokens = source.start(&shared).await;
    let n = plan.output_tokens;
    let mut start = 0;
    while start < n {
        let end = n.min(start.saturating_add(plan.tokens_per_chunk));
        // Ideal mode sleeps to absolute deadlines: relative sleeps would accumulate
        // timer lateness.
        let ready = tokio::select! {
            ready = tokens.wait_for(&shared, &plan, end - 1) => ready,
            () = tx.closed() => false,
        };
        if !ready || tx.send(plan.content_chunk(start..end)).await.is_err() {
            return;
        }
        start = end;
    }
    // Counted before `[DONE]` goes out, so a client that saw it also sees the stats.
    let cached = tokens.cached;
    shared.record_completed(tokens.prompt_tokens, u64::from(n), cached.unwrap_or(0));
    let _ = tx.send(plan.tail(tokens.prompt_tokens, cached)).await;
}

/// A non-streamed response, sent when its last token is produced. If the client goes
/// away, axum drops this future, and with it the engine's receiver.
pub(super) async fn whole(shared: Arc<Shared>, plan: Plan, source: Source) -> Response {
    let mut tokens = source.start(&shared).await;
    let n = plan.output_tokens;
    if !tokens.wait_for(&shared, &plan, n - 1).await {
        return http::unavailable("the engine stopped");
    }
    let text = plan.text(0..n);
    let choice = match plan.kind {
        Kind::Chat => json!({
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": plan.finish_reason,
        }),
        Kind::Completion => json!({"index": 0, "text": text, "finish_reason": plan.finish_reason}),
    };
    let body = json!({
        "id": plan.id,
        "object": object(plan.kind, false),
        "created": plan.created,
        "model": plan.model,
        "choices": [choice],
        "usage": plan.usage(tokens.prompt_tokens, tokens.cached),
    });
    shared.record_completed(
        tokens.prompt_tokens,
        u64::from(n),
        tokens.cached.unwrap_or(0),
    );
    http::json_response(body)
}
