//! `--profile`: the engine's profiler started and stopped around each run (vLLM's and
//! SGLang's `/start_profile` and `/stop_profile`, or the `--profile-url-*` routes).
//! With `--profile-requests N` only a window is profiled: the start call is made when
//! the first measured request is about to go (after the warm-up), and every measured
//! request waits until it returned; the stop call is made once N measured requests
//! have finished, while the run goes on. Under concurrency the window therefore holds
//! N whole measured requests and parts of those in flight at its edges.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;

use super::cache_reset::route;
use super::target::Target;
use crate::client::HttpClient;
use crate::clock::RunClock;
use crate::console::printable;
use crate::error::Error;
use crate::metrics::Summary;
use crate::metrics::profile_record::{ProfileCall, ProfileRecord};
use crate::metrics::server::same_origin;
use crate::metrics::validity::{Flag, raise};
use crate::schedule::MeasuredWatch;
use crate::settings::ProfileSettings;
use crate::shutdown::Shutdown;

/// Starting a profiler is quick.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// vLLM's and SGLang's stop calls return once the trace is written: vLLM's docs
/// count about 10 minutes for 100 requests of a 70B model, and suggest a 30-minute
/// VLLM_RPC_TIMEOUT; the same here.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(1800);
/// After a signal the stop call still goes (a profiler left running fills the
/// server's disk), but is given only this long.
const STOP_AFTER_SIGNAL: Duration = Duration::from_secs(5);

/// The routes and the window, resolved once per session.
#[derive(Clone)]
pub struct Profiler {
    client: HttpClient,
    start: Url,
    stop: Url,
    /// The API key and `-H` headers go to a route only on the benchmarked origin.
    start_key: bool,
    stop_key: bool,
    window: Option<usize>,
}

impl Profiler {
    pub fn new(target: &Target, p: &ProfileSettings) -> Result<Profiler, Error> {
        let root = &target.endpoint.server_root;
        let url = |flag: &str, given: Option<&str>, default: &str| {
            route(root, given.unwrap_or(default))
                .map_err(|e| Error::Input(format!("{flag} {}: {e}", given.unwrap_or(default))))
        };
        let start = url("--profile-url-start", p.start.as_deref(), "/start_profile")?;
        let stop = url("--profile-url-stop", p.stop.as_deref(), "/stop_profile")?;
        Ok(Profiler {
            client: target.client.clone(),
            start_key: same_origin(&start, &target.endpoint.url),
            stop_key: same_origin(&stop, &target.endpoint.url),
            start,
            stop,
            window: p.requests,
        })
    }

    async fn call_start(&self) -> Call {
        let c = Call::make(&self.client, &self.start, self.start_key, START_TIMEOUT).await;
        if let Some(e) = &c.error {
            errln!(
                "WARNING: the profiler did not start (POST {}: {}); the run goes on unprofiled",
                self.start,
                printable(e)
            );
        }
        c
    }

    async fn call_stop(&self) -> Call {
        let c = Call::make(&self.client, &self.stop, self.stop_key, STOP_TIMEOUT).await;
        if let Some(e) = &c.error {
            errln!(
                "WARNING: the profiler did not stop (POST {}: {}); it may still be running on the server",
                self.stop,
                printable(e)
            );
        }
        c
    }
}

/// One call to a route: when it went, when it was answered, and why it failed.
struct Call {
    sent: Instant,
    answered: Instant,
    error: Option<String>,
}

impl Call {
    async fn make(client: &HttpClient, url: &Url, with_key: bool, limit: Duration) -> Call {
        let sent = Instant::now();
        let error = client.post_empty_within(url, with_key, limit).await.err();
        Call {
            sent,
            answered: Instant::now(),
            error,
        }
    }

    /// The server refused or failed it: a stop would fail the same way. A call that
    /// timed out may have started the profiler anyway.
    fn refused(&self) -> bool {
        self.error
            .as_deref()
            .is_some_and(|e| !e.starts_with("no answer within"))
    }

    fn saved(&self, zero: Instant) -> ProfileCall {
        let s = |t: Instant| match t.checked_duration_since(zero) {
            Some(d) => d.as_secs_f64(),
            None => -zero.duration_since(t).as_secs_f64(),
        };
        ProfileCall {
            sent_s: s(self.sent),
            answered_s: s(self.answered),
            ok: self.error.is_none(),
            error: self.error.clone(),
        }
    }
}

/// One run's profiling, from just before its first request to after its last.
pub struct Profiling {
    state: Arc<State>,
}

struct State {
    profiler: Profiler,
    shutdown: Arc<Shutdown>,
    /// Set once the start call returned (the window's first measured request waits).
    started: tokio::sync::OnceCell<()>,
    start: Mutex<Option<Call>>,
    /// Measured requests finished (window).
    finished: AtomicUsize,
    /// The window's stop call, made while the run goes on, and the count it saw.
    stop: Mutex<Option<(tokio::task::JoinHandle<Call>, usize)>>,
}

impl Profiling {
    /// The whole run's start call, made now (the run's first request waits for it);
    /// for a window, armed for its first measured request.
    pub fn start(profiler: &Profiler, target: &Target) -> Profiling {
        let state = Arc::new(State {
            profiler: profiler.clone(),
            shutdown: target.shutdown.clone(),
            started: tokio::sync::OnceCell::new(),
            start: Mutex::new(None),
            finished: AtomicUsize::new(0),
            stop: Mutex::new(None),
        });
        if profiler.window.is_none()
            && let Ok(call) = target.block_unless_stopped(profiler.call_start())
        {
            *lock(&state.start) = Some(call);
        }
        Profiling { state }
    }

    /// What the schedule tells of measured requests: only a window needs it.
    pub fn watch(&self) -> Option<Arc<dyn MeasuredWatch>> {
        self.state.profiler.window?;
        Some(self.state.clone())
    }

    /// Stop the profiler if the run left it running, and keep what was done in the
    /// summary (a failed call is also a validity flag).
    pub fn finish(self, target: &Target, clock: Option<RunClock>, summary: &mut Summary) {
        let s = &self.state;
        let p = &s.profiler;
        let start = lock(&s.start).take();
        let spawned = lock(&s.stop).take();
        let in_window = s.finished.load(Ordering::SeqCst);
        let (stop, finished) = match (spawned, &start) {
            (Some((task, seen)), _) => (wait_stop(target, async { task.await.ok() }), seen),
            (None, Some(c)) if !c.refused() => {
                errln!(
                    "Stopping the profiler (POST {}): the engine writes its trace first, which can take minutes",
                    p.stop
                );
                (
                    wait_stop(target, async { Some(p.call_stop().await) }),
                    in_window,
                )
            }
            _ => (None, in_window),
        };
        let zero = clock.map_or_else(Instant::now, |c| c.instant_at(0));
        let record = ProfileRecord {
            start_url: p.start.to_string(),
            stop_url: p.stop.to_string(),
            window_requests: p.window.map(|n| n as u64),
            finished_in_window: p.window.map(|_| finished as u64),
            start: start.as_ref().map(|c| c.saved(zero)),
            stop: stop.as_ref().map(|c| c.saved(zero)),
        };
        if let Some(flag) = failed_flag(&record) {
            raise(&mut summary.validity, flag);
        }
        summary.profile = Some(record);
    }
}

/// The stop call's answer; after a signal, given only `STOP_AFTER_SIGNAL`.
fn wait_stop(target: &Target, call: impl Future<Output = Option<Call>>) -> Option<Call> {
    let shutdown = &target.shutdown;
    target.rt.block_on(async {
        tokio::select! {
            c = call => c,
            () = async {
                shutdown.wait().await;
                tokio::time::sleep(STOP_AFTER_SIGNAL).await;
            } => None,
        }
    })
}

/// The flag for a profile whose calls did not all succeed.
fn failed_flag(r: &ProfileRecord) -> Option<Flag> {
    if r.start.is_none() && r.stop.is_none() {
        return None; // a window whose first measured request never went
    }
    if r.succeeded() {
        return None;
    }
    let what = |c: &Option<ProfileCall>, url: &str, name: &str| match c {
        Some(ProfileCall { error: Some(e), .. }) => Some(format!("{name} ({url}): {e}")),
        None => Some(format!("{name} ({url}): not made")),
        _ => None,
    };
    let failed: Vec<String> = [
        what(&r.start, &r.start_url, "start"),
        what(&r.stop, &r.stop_url, "stop"),
    ]
    .into_iter()
    .flatten()
    .collect();
    Some(Flag::new(
        "profile_failed",
        format!(
            "profiling was asked for but the profiler's calls failed ({}): the trace is missing or covers another span. \
             Check that the server has its profiler on (vLLM: --profiler-config or VLLM_TORCH_PROFILER_DIR; \
             SGLang: SGLANG_TORCH_PROFILER_DIR) or give --profile-url-start/--profile-url-stop",
            printable(&failed.join("; "))
        ),
    ))
}

impl MeasuredWatch for State {
    fn before(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if self.started.initialized() {
                return;
            }
            let start = self.started.get_or_init(|| async {
                let call = self.profiler.call_start().await;
                *lock(&self.start) = Some(call);
            });
            // A signal releases the waiting requests, which then see the stop.
            tokio::select! {
                _ = start => {}
                () = self.shutdown.wait() => {}
            }
        })
    }

    fn after(&self) {
        let Some(window) = self.profiler.window else {
            return;
        };
        let n = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        if n != window {
            return;
        }
        // A start the server refused is not followed by a stop.
        if lock(&self.start).as_ref().is_some_and(Call::refused) {
            return;
        }
        let profiler = self.profiler.clone();
        let task = tokio::spawn(async move { profiler.call_stop().await });
        *lock(&self.stop) = Some((task, n));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
