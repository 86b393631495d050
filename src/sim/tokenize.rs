//! vLLM-shaped `/tokenize` and `/detokenize`, with the simulator's own tokenizer, so
//! `--tokenizer server` has a server to talk to in every test.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;
use serde_json::json;

use super::Shared;

/// What the simulator reports as its context window (vLLM's `max_model_len`).
const MAX_MODEL_LEN: u32 = 131_072;

#[derive(Deserialize)]
struct TokenizeReq {
    prompt: String,
    /// Accepted as vLLM does; the simulator's tokenizer adds no special tokens anyway.
    #[serde(default)]
    #[allow(dead_code)]
    add_special_tokens: Option<bool>,
}

#[derive(Deserialize)]
struct DetokenizeReq {
    tokens: Vec<u32>,
}

pub(super) async fn tokenize(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: TokenizeReq = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return invalid(format!("expected {{\"prompt\": \"...\"}}: {e}")),
    };
    let tok = shared.tokenizer.clone();
    // A long prompt takes a while to encode: off the runtime's threads.
    let tokens = match tokio::task::spawn_blocking(move || tok.encode(&req.prompt)).await {
        Ok(t) => t,
        Err(e) => return invalid(format!("tokenizer failed: {e}")),
    };
    Json(json!({
        "count": tokens.len(),
        "max_model_len": MAX_MODEL_LEN,
        "tokens": tokens,
        "token_strs": null,
    }))
    .into_response()
}

pub(super) async fn detokenize(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: DetokenizeReq = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return invalid(format!("expected {{\"tokens\": [ids]}}: {e}")),
    };
    let tok = shared.tokenizer.clone();
    match tokio::task::spawn_blocking(move || tok.decode(&req.tokens)).await {
        Ok(prompt) => Json(json!({ "prompt": prompt })).into_response(),
        Err(e) => invalid(format!("tokenizer failed: {e}")),
    }
}

fn invalid(message: String) -> Response {
    let body =
        json!({"object": "error", "message": message, "type": "BadRequestError", "code": 400});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}
