//! The routes a benchmark client calls around its runs: vLLM's and SGLang's
//! `/start_profile` and `/stop_profile` (each call recorded, for tests to check when
//! they came), and llama.cpp's `/slots` (list; `POST /slots/{id}?action=erase`), whose
//! erasing of every slot empties the prefix cache.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Shared;

/// Which profiler route was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProfileAction {
    Start,
    Stop,
}

/// One call to a profiler route.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileCall {
    pub action: ProfileAction,
    /// When it arrived and when it was answered, since the server started.
    pub received: Duration,
    pub answered: Duration,
    /// Generation requests the server had accepted when it arrived, and when it answered
    /// (`SimStats::requests`).
    pub requests_before: u64,
    pub requests_after: u64,
}

/// The calls so far, and the slots erased since the cache was last emptied.
pub(super) struct Log {
    began: Instant,
    calls: Mutex<Vec<ProfileCall>>,
    erased: Mutex<BTreeSet<u32>>,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            began: Instant::now(),
            calls: Mutex::default(),
            erased: Mutex::default(),
        }
    }
}

impl Log {
    pub(super) fn calls(&self) -> Vec<ProfileCall> {
        lock(&self.calls).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) async fn start_profile(State(shared): State<Arc<Shared>>) -> StatusCode {
    profile_call(&shared, ProfileAction::Start).await
}

pub(super) async fn stop_profile(State(shared): State<Arc<Shared>>) -> StatusCode {
    profile_call(&shared, ProfileAction::Stop).await
}

/// A call takes `profile_delay_ms` (a real stop writes its trace first).
async fn profile_call(shared: &Shared, action: ProfileAction) -> StatusCode {
    let log = &shared.profile;
    let received = log.began.elapsed();
    let requests_before = shared.stats().requests;
    let delay = shared.config.profile_delay_ms;
    if delay > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(delay / 1e3)).await;
    }
    lock(&log.calls).push(ProfileCall {
        action,
        received,
        answered: log.began.elapsed(),
        requests_before,
        requests_after: shared.stats().requests,
    });
    StatusCode::OK
}

/// `GET /slots`: llama.cpp's list (the fields a client reads).
pub(super) async fn slots(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let n_ctx = shared
        .config
        .engine
        .as_ref()
        .map_or(8192, |e| e.max_model_len);
    let list: Vec<_> = (0..shared.config.slots)
        .map(|id| json!({"id": id, "n_ctx": n_ctx, "is_processing": false}))
        .collect();
    Json(json!(list))
}

/// `POST /slots/{id}?action=erase`: once every slot is erased, the prefix cache is
/// emptied (the simulator's cache is shared by all; llama.cpp's is per slot).
pub(super) async fn slot_action(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u32>,
    uri: Uri,
) -> Response {
    let err = |code: StatusCode, msg: &str| {
        let body = json!({"error": {"code": code.as_u16(), "message": msg}});
        (code, Json(body)).into_response()
    };
    if id >= shared.config.slots {
        return err(StatusCode::BAD_REQUEST, "Invalid slot ID");
    }
    let erase = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "action=erase"));
    if !erase {
        return err(
            StatusCode::NOT_IMPLEMENTED,
            "servescope-sim supports only action=erase",
        );
    }
    let mut erased = lock(&shared.profile.erased);
    erased.insert(id);
    if erased.len() == shared.config.slots as usize {
        erased.clear();
        shared
            .reset_cache
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    Json(json!({"id_slot": id, "n_erased": 0})).into_response()
}
