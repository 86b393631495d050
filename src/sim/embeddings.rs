//! `/v1/embeddings`: a deterministic unit vector per input, `usage.prompt_tokens`
//! counted with the simulator's tokenizer, and the latency of prefilling the inputs:
//! the ideal timetable's prefill (`ttft_base_ms + prefill_ms_per_token × tokens`), or,
//! with the engine, one engine request per input (a pooling pass: prefill, then one
//! step), batched with everything else the engine runs. Faults apply as to the other
//! routes: before the answer, at its headers, or in place of it (an error object for
//! `error_event`, a cut body, a stall, a body that is not JSON).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::Shared;
use super::conn::Conn;
use super::driver::Arrival;
use super::faults::FaultKind;
use super::http::{Arrived, arrive, bad_request, unavailable};
use super::sched::NewRequest;
use super::stream::{INLINE_COUNT_BYTES, mix, off_thread, sleep_until};

/// Vector length unless the request asks for `dimensions` (`--embedding-dim`).
pub const DEFAULT_DIM: u32 = 384;
/// The most `dimensions` a request may ask for.
const MAX_DIM: u32 = 16_384;

#[derive(Deserialize)]
struct RawRequest {
    input: Option<RawInput>,
    encoding_format: Option<String>,
    dimensions: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawInput {
    Text(String),
    Ids(Vec<u32>),
    Texts(Vec<String>),
    IdLists(Vec<Vec<u32>>),
}

enum Input {
    Text(String),
    Ids(Vec<u32>),
}

struct Parsed {
    inputs: Vec<Input>,
    dim: u32,
}

fn parse(body: &[u8], default_dim: u32) -> Result<Parsed, String> {
    let raw: RawRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let inputs = match raw.input.ok_or("'input' is required")? {
        RawInput::Text(t) => vec![Input::Text(t)],
        // `[]` reads as an empty id list: an empty input list all the same.
        RawInput::Ids(ids) if ids.is_empty() => Vec::new(),
        RawInput::Ids(ids) => vec![Input::Ids(ids)],
        RawInput::Texts(t) => t.into_iter().map(Input::Text).collect(),
        RawInput::IdLists(l) => l.into_iter().map(Input::Ids).collect(),
    };
    if inputs.is_empty() {
        return Err("'input' must not be an empty list".into());
    }
    match raw.encoding_format.as_deref() {
        None | Some("float") => {}
        Some(other) => {
            return Err(format!(
                "encoding_format {other:?} is not supported (expected \"float\")"
            ));
        }
    }
    let dim = match raw.dimensions {
        None => default_dim,
        Some(d) if (1..=i64::from(MAX_DIM)).contains(&d) => d as u32,
        Some(d) => return Err(format!("dimensions must be in 1..={MAX_DIM}, got {d}")),
    };
    Ok(Parsed { inputs, dim })
}

pub(super) async fn embeddings(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let Arrived {
        t0,
        fault,
        conn,
        body,
    } = match arrive(&shared, req).await {
        Ok(a) => a,
        Err(answered) => return answered,
    };
    let parsed = match parse(&body, shared.config.embedding_dim) {
        Ok(p) => p,
        Err(message) => return bad_request(message),
    };
    let (tokens, hashes) = count(&shared, parsed.inputs).await;
    if let Some(max) = shared.config.engine.as_ref().map(|e| e.max_model_len)
        && let Some((i, n)) = tokens
            .iter()
            .enumerate()
            .find(|(_, n)| **n > u64::from(max))
    {
        return bad_request(format!(
            "This model's maximum context length is {max} tokens. However, input {i} has {n} tokens. Please reduce the length of the input."
        ));
    }
    shared.count_request();
    if !prefill(&shared, t0, &tokens).await {
        return unavailable("the engine stopped");
    }
    if let Some(kind) = fault {
        shared.count_fault(kind);
        if let Some(r) = faulty(&shared, kind, t0, conn).await {
            return r;
        }
    }
    let prompt_tokens: u64 = tokens.iter().sum();
    if !fault.is_some_and(FaultKind::spoils) {
        shared.record_completed(prompt_tokens, 0, 0);
    }
    answer(
        &shared.config.model,
        shared.config.seed,
        &hashes,
        parsed.dim,
        prompt_tokens,
    )
}

/// Each input's tokens and a hash of it (the seed of its vector).
async fn count(shared: &Shared, inputs: Vec<Input>) -> (Vec<u64>, Vec<u64>) {
    let work = move |tok: &crate::workload::Tokenizer, inputs: Vec<Input>| {
        inputs
            .iter()
            .map(|i| match i {
                Input::Text(t) => (tok.count(t) as u64, fnv(t.as_bytes())),
                Input::Ids(ids) => {
                    let bytes: Vec<u8> = ids.iter().flat_map(|t| t.to_le_bytes()).collect();
                    (ids.len() as u64, fnv(&bytes))
                }
            })
            .unzip()
    };
    let bytes: usize = inputs
        .iter()
        .map(|i| match i {
            Input::Text(t) => t.len(),
            Input::Ids(ids) => ids.len() * 4,
        })
        .sum();
    if bytes <= INLINE_COUNT_BYTES {
        return work(&shared.tokenizer, inputs);
    }
    let tok = shared.tokenizer.clone();
    off_thread(move || work(&tok, inputs)).await
}

/// Wait for the inputs' prefill; false if the engine dropped them.
async fn prefill(shared: &Shared, t0: tokio::time::Instant, tokens: &[u64]) -> bool {
    let Some(queue) = &shared.engine else {
        let cfg = &shared.config;
        let total: u64 = tokens.iter().sum();
        let ms = cfg.ttft_base_ms + cfg.prefill_ms_per_token * total as f64;
        let wait = Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX);
        sleep_until(
            t0.checked_add(wait)
                .unwrap_or(t0 + Duration::from_secs(86_400)),
        )
        .await;
        return true;
    };
    let mut waits = Vec::with_capacity(tokens.len());
    for &n in tokens {
        let (tx, rx) = mpsc::unbounded_channel();
        let req = NewRequest {
            id: shared.next_id(),
            prompt_len: u32::try_from(n).unwrap_or(u32::MAX).max(1),
            // Pooling models keep no prefix cache.
            block_keys: Vec::new(),
            output_tokens: 1,
            spec_key: 0,
        };
        let _ = queue.send(Arrival {
            req,
            t0: t0.into_std(),
            tx,
        });
        waits.push(rx);
    }
    for mut rx in waits {
        if rx.recv().await.is_none() {
            return false;
        }
    }
    true
}

/// A fault in place of (or before) the answer; `None`: answer as usual.
async fn faulty(
    shared: &Shared,
    kind: FaultKind,
    t0: tokio::time::Instant,
    conn: Option<Conn>,
) -> Option<Response> {
    let faults = &shared.config.faults;
    match kind {
        FaultKind::SlowHeaders => {
            sleep_until(t0 + Duration::from_millis(faults.slow_headers_ms)).await;
            None
        }
        FaultKind::Stall => {
            match faults.stall_ms {
                Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                None => std::future::pending::<()>().await,
            }
            None
        }
        FaultKind::ErrorEvent => Some(
            axum::Json(json!({"error": {"message": "simulated error", "type": "server_error", "code": 500}}))
                .into_response(),
        ),
        FaultKind::Malformed => Some(
            ([(header::CONTENT_TYPE, "application/json")], "{\"data\": [{\"embedding\": [0.1,")
                .into_response(),
        ),
        FaultKind::Cut => {
            if let Some(c) = conn {
                c.drop_now();
            }
            Some(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        // Answered before the inputs were read.
        FaultKind::Drop | FaultKind::Http500 | FaultKind::Http429 => None,
    }
}

/// The OpenAI-shaped answer, written directly (a float list through serde_json's
/// `Value` would allocate a node per number).
fn answer(model: &str, seed: u64, hashes: &[u64], dim: u32, prompt_tokens: u64) -> Response {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64 + hashes.len() * (dim as usize * 11 + 48));
    out.push_str("{\"object\":\"list\",\"data\":[");
    for (i, &h) in hashes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"object\":\"embedding\",\"index\":{i},\"embedding\":["
        );
        let v = vector(seed ^ h, dim);
        for (k, x) in v.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            let _ = write!(out, "{x:.6}");
        }
        out.push_str("]}");
    }
    let _ = write!(
        out,
        "],\"model\":{},\"usage\":{{\"prompt_tokens\":{prompt_tokens},\"total_tokens\":{prompt_tokens}}}}}",
        serde_json::Value::String(model.to_string())
    );
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

/// A unit vector drawn from `seed`: the same input always gets the same one.
pub(super) fn vector(seed: u64, dim: u32) -> Vec<f32> {
    let mut v: Vec<f32> = (0..u64::from(dim))
        .map(|k| (mix(seed ^ k.wrapping_mul(0x9E37_79B9)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0)
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// FNV-1a over an input's bytes.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
