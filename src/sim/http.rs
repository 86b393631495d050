//! Routes and request parsing.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::Shared;
use super::conn::Conn;
use super::faults::{self, FaultKind};
use super::metrics;
use super::source::{self, Source};
use super::stream::{self, Events, Kind, Plan, Prompt};
use super::tools::{RawTool, RequestTools};

/// Bodies are read whole; 64 MiB fits any realistic prompt, even as a token-id list.
pub(super) const MAX_BODY_BYTES: usize = 64 << 20;

/// Used when a request gives neither `max_tokens` nor `max_completion_tokens` (OpenAI's default).
pub(super) const DEFAULT_MAX_TOKENS: u32 = 16;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/metrics", get(prometheus))
        // vLLM's and SGLang's prefix-cache resets, for cache studies (dual-round).
        .route("/reset_prefix_cache", post(reset_cache))
        .route("/flush_cache", post(reset_cache))
        // Profiler routes (vLLM, SGLang) and llama.cpp's slots (`profile.rs`).
        .route("/start_profile", post(super::profile::start_profile))
        .route("/stop_profile", post(super::profile::stop_profile))
        .route("/slots", get(super::profile::slots))
        .route("/slots/{id}", post(super::profile::slot_action))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/responses", post(super::responses::responses))
        // vLLM's tokenizer routes (`--tokenizer server`).
        .route("/tokenize", post(super::tokenize::tokenize))
        .route("/detokenize", post(super::tokenize::detokenize))
        .route("/v1/embeddings", post(super::embeddings::embeddings))
        .with_state(shared)
}

async fn models(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(super::lora::models_list(&shared.config))
}

async fn prometheus(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.counters().metrics.render(&shared.config.model);
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

async fn chat(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    complete(shared, Kind::Chat, req).await
}

async fn completions(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    complete(shared, Kind::Completion, req).await
}

async fn complete(shared: Arc<Shared>, kind: Kind, req: Request) -> Response {
    let image_tokens = shared.config.image_tokens;
    let read = move |body: &[u8]| parse_with(kind, body, image_tokens);
    serve(shared, kind, req, read, super::plan::Chunks).await
}

/// A request as it arrived: when, the fault it drew, its connection, its body.
pub(super) struct Arrived {
    pub t0: tokio::time::Instant,
    pub fault: Option<FaultKind>,
    pub conn: Option<Conn>,
    pub body: Bytes,
}

/// The arrival every route shares; `Err` is the answer already given (an unreadable
/// body, or a fault that answers before any response).
pub(super) async fn arrive(shared: &Shared, req: Request) -> Result<Arrived, Response> {
    // Deadlines count from here, before the body is even read: as close to arrival as we get.
    let t0 = tokio::time::Instant::now();
    // The ordinal too: arrival order is handler-start order.
    let fault = shared.config.faults.decide(shared.next_ordinal());
    let conn = req
        .extensions()
        .get::<ConnectInfo<Conn>>()
        .map(|c| c.0.clone());
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => return Err(bad_request(format!("could not read request body: {e}"))),
    };
    // Before parsing: these answer any request, valid or not, and skip generation.
    if let Some(kind) = fault.filter(|k| k.before_response()) {
        return Err(before_response(shared, kind, conn));
    }
    Ok(Arrived {
        t0,
        fault,
        conn,
        body,
    })
}

/// One generation request of any API: `read` parses its body, `events` writes the
/// answer; arrival, faults, the engine and pacing are the same for all.
pub(super) async fn serve(
    shared: Arc<Shared>,
    kind: Kind,
    req: Request,
    read: impl FnOnce(&[u8]) -> Result<Parsed, String>,
    events: impl Events,
) -> Response {
    let Arrived {
        t0,
        fault,
        conn,
        body,
    } = match arrive(&shared, req).await {
        Ok(a) => a,
        Err(answered) => return answered,
    };
    // With adapters served, a model not served gets vLLM's 404.
    let adapter = match super::lora::route(&shared.config, &body) {
        Ok(a) => a,
        Err(name) => return super::lora::not_found(&name),
    };
    // An invalid request gets its 400 and no fault (none is counted).
    let parsed = match read(&body) {
        Ok(parsed) => parsed,
        Err(message) => return bad_request(message),
    };
    // An adapter's own cost delays its request's start (`lora.rs`).
    let t0 = adapter
        .as_ref()
        .map_or(t0, |a| t0 + Duration::from_secs_f64(a.cost_ms / 1e3));
    let mut plan = Plan::new(&shared, kind, t0, &parsed);
    plan.fault = fault.filter(|k| k.mid_output());
    if let Some(a) = &adapter {
        plan.answer_as(&a.name);
        stream::sleep_until(t0).await;
    }
    let source = match (&shared.config.engine, &shared.engine) {
        (Some(cfg), Some(queue)) => {
            let engine = (cfg, queue);
            match source::submit(&shared, engine, &plan, parsed.prompt, parsed.max_tokens).await {
                Ok(source) => source,
                Err(message) => return bad_request(message),
            }
        }
        _ => {
            shared.count_request();
            Source::Ideal(parsed.prompt)
        }
    };
    let slow_headers = fault == Some(FaultKind::SlowHeaders);
    if slow_headers {
        shared.count_fault(FaultKind::SlowHeaders);
    }
    let resp = if parsed.stream {
        stream::streaming(shared.clone(), plan, events, source, conn)
    } else {
        stream::whole(shared.clone(), plan, &events, source, conn).await
    };
    if slow_headers {
        // From arrival, like every deadline; generation goes on meanwhile.
        let delay = Duration::from_millis(shared.config.faults.slow_headers_ms);
        stream::sleep_until(t0 + delay).await;
    }
    resp
}

/// Answers with a fault instead of a response.
pub(super) fn before_response(shared: &Shared, kind: FaultKind, conn: Option<Conn>) -> Response {
    shared.count_fault(kind);
    match kind {
        FaultKind::Http429 => faults::http_429(shared.config.faults.retry_after_s),
        FaultKind::Drop => match conn {
            Some(conn) => {
                conn.drop_now();
                // Never written: the connection fails on the first write.
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            // Only when served without our listener (never by `SimServer` or `serve`).
            None => unavailable("servescope-sim cannot drop this connection"),
        },
        _ => faults::http_500(),
    }
}

/// A request reduced to what the simulator uses.
pub(super) struct Parsed {
    pub prompt: Prompt,
    pub max_tokens: u32,
    pub stream: bool,
    pub include_usage: bool,
    pub ignore_eos: bool,
    /// Chat requests' `tools` and `tool_choice` (`tools.rs`).
    pub tools: Option<RequestTools>,
}

// `Option` everywhere because clients send explicit `null`s; unknown fields are ignored.
#[derive(Deserialize)]
struct RawRequest {
    messages: Option<Vec<Message>>,
    prompt: Option<RawPrompt>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    ignore_eos: Option<bool>,
    tools: Option<Vec<RawTool>>,
    tool_choice: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// A content part: text, or an image (which costs `image_tokens`).
#[derive(Deserialize)]
struct Part {
    text: Option<String>,
    image_url: Option<super::images::ImageUrl>,
}

impl Part {
    /// What the part costs as prompt text.
    fn into_text(self, image_tokens: u32) -> Option<String> {
        match (self.text, self.image_url) {
            (Some(t), _) => Some(t),
            (None, Some(image)) => Some(super::images::image_text(&image, image_tokens)),
            (None, None) => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPrompt {
    Text(String),
    Ids(Vec<u32>),
    // Batched forms: only the first prompt is simulated.
    Texts(Vec<String>),
    IdLists(Vec<Vec<u32>>),
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[cfg(test)]
pub(super) fn parse(kind: Kind, body: &[u8]) -> Result<Parsed, String> {
    parse_with(kind, body, super::images::DEFAULT_IMAGE_TOKENS)
}

/// A request's body; each image part costs `image_tokens` prompt tokens.
pub(super) fn parse_with(kind: Kind, body: &[u8], image_tokens: u32) -> Result<Parsed, String> {
    let raw: RawRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let prompt = match kind {
        Kind::Chat => {
            let messages = raw.messages.ok_or("'messages' is required")?;
            let texts = messages
                .into_iter()
                .flat_map(|m| match m.content {
                    None => Vec::new(),
                    Some(Content::Text(text)) => vec![text],
                    Some(Content::Parts(parts)) => parts
                        .into_iter()
                        .filter_map(|p| p.into_text(image_tokens))
                        .collect(),
                })
                .collect();
            Prompt::Texts(texts)
        }
        Kind::Completion => match raw.prompt.ok_or("'prompt' is required")? {
            RawPrompt::Text(text) => Prompt::Texts(vec![text]),
            RawPrompt::Ids(ids) => Prompt::Ids(ids),
            RawPrompt::Texts(texts) => Prompt::Texts(texts.into_iter().take(1).collect()),
            RawPrompt::IdLists(lists) => Prompt::Ids(lists.into_iter().next().unwrap_or_default()),
        },
    };
    let max_tokens = match raw.max_tokens.or(raw.max_completion_tokens) {
        None => DEFAULT_MAX_TOKENS,
        Some(n) if n < 1 => return Err(format!("max_tokens must be at least 1, got {n}")),
        Some(n) => u32::try_from(n).map_err(|_| format!("max_tokens {n} is too large"))?,
    };
    // The completions API takes no tools: ignored there, as servers do.
    let tools = match kind {
        Kind::Chat => RequestTools::parse(raw.tools, raw.tool_choice)?,
        Kind::Completion => None,
    };
    Ok(Parsed {
        tools,
        prompt,
        max_tokens,
        stream: raw.stream.unwrap_or(false),
        include_usage: raw
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        ignore_eos: raw.ignore_eos.unwrap_or(false),
    })
}

pub(super) fn bad_request(message: String) -> Response {
    let body = json!({
        "error": {"message": message, "type": "invalid_request_error", "code": 400}
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn reset_cache(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared
        .reset_cache
        .store(true, std::sync::atomic::Ordering::SeqCst);
    StatusCode::OK
}

pub(super) fn unavailable(message: &str) -> Response {
    let body = json!({
        "error": {"message": message, "type": "server_error", "code": 503}
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// A finished JSON response (non-streaming path).
pub(super) fn json_response(value: serde_json::Value) -> Response {
    Json(value).into_response()
}

/// An SSE response whose events come from `body`.
pub(super) fn sse_response(body: Body) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
