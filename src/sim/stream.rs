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
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shared;
use super::conn::{self, Conn, Piece};
use super::faults::{self, FaultKind};
use super::http;
pub(super) use super::plan::Plan;
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
    pub(super) fn hash(&self) -> u64 {
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
