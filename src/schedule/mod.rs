//! When requests are sent: all at once (a batch), a closed loop that keeps a fixed
//! number in flight, or an open-loop timeline (request rates, trace replay).

pub mod arrivals;
pub mod open_loop;
pub mod sessions;

use std::sync::Arc;

use reqwest::Url;
use tokio::task::JoinSet;

use crate::client::HttpClient;
use crate::clock::RunClock;
use crate::progress::Live;
use crate::recorder::{Finished, RecorderHandle};
use crate::workload::prepare::PreparedRequest;

#[derive(Clone, Debug, Default, PartialEq)]
pub enum Load {
    /// Every request at once; wait for all (batch, throughput).
    #[default]
    AllAtOnce,
    /// `concurrency` workers; each starts its next request when its last one ends.
    ClosedLoop { concurrency: usize },
    /// Each request at its own time after the start, whatever the server does; with a
    /// cap, requests over it wait for a slot.
    OpenLoop { at: Arrivals, cap: Option<usize> },
}

/// When an open-loop run's requests are due.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrivals {
    /// Request i at `offsets[i]` µs (request rates).
    Offsets(Arc<Vec<u64>>),
    /// At the trace's timestamps, from its first, multiplied by `time_scale`.
    Trace { time_scale: f64 },
}

/// What every request task of one run shares.
pub struct RunContext {
    pub client: HttpClient,
    pub url: Url,
    pub clock: RunClock,
    pub live: Arc<Live>,
    pub recorder: RecorderHandle,
    pub label: Arc<str>,
    /// Multi-turn sessions of a trace replay (`--sessions`).
    pub sessions: Option<Arc<sessions::Sessions>>,
    /// `--max-error-rate`: stop sending once more than this share failed.
    pub max_error_rate: Option<f64>,
    /// Set by SIGINT / SIGTERM.
    pub shutdown: Arc<crate::shutdown::Shutdown>,
}

impl RunContext {
    /// Too many failures, or a signal: send nothing more (requests in flight still
    /// finish, within the grace period after a signal).
    pub fn should_stop(&self) -> bool {
        self.shutdown.requested().is_some() || self.live.error_rate_exceeded(self.max_error_rate)
    }
}

/// Wait for every task; after a signal's grace period, abandon those still running
/// (they did not finish, so they leave no record).
pub(crate) async fn join_all(tasks: &mut JoinSet<()>, shutdown: &crate::shutdown::Shutdown) {
    tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => {}
        _ = shutdown.grace_over() => tasks.abort_all(),
    }
    while tasks.join_next().await.is_some() {}
}

impl RunContext {
    async fn send(&self, req: &PreparedRequest) {
        self.send_at(req, None, None).await
    }

    /// Send one request; `scheduled_at` and `queue_wait` (µs) for open-loop runs.
    pub(crate) async fn send_at(
        &self,
        req: &PreparedRequest,
        scheduled_at: Option<u64>,
        queue_wait: Option<u64>,
    ) {
        let body = req.body.clone();
        self.send_body(
            req.id,
            body,
            req.input_tokens,
            scheduled_at,
            queue_wait,
            false,
        )
        .await;
    }

    /// Send a body; returns the generated text of a successful request when asked
    /// (`keep_answer`), for a session's next turn.
    pub(crate) async fn send_body(
        &self,
        id: u64,
        body: bytes::Bytes,
        input_tokens: u32,
        scheduled_at: Option<u64>,
        queue_wait: Option<u64>,
        keep_answer: bool,
    ) -> Option<sessions::Answer> {
        let outcome = self
            .client
            .execute(&self.url, body, &self.clock, &self.live)
            .await;
        let answer = (keep_answer && outcome.failure.is_none()).then(|| sessions::Answer {
            text: outcome.text.clone(),
            tokens: outcome.usage.and_then(|u| u.completion_tokens),
        });
        self.recorder.submit(Finished {
            run: self.label.clone(),
            id,
            scheduled_at,
            queue_wait,
            input_tokens,
            outcome,
        });
        answer
    }
}

/// The requests of a closed-loop or batch run: those prepared before it, then those a
/// producer prepares while it goes (so memory holds a bounded number of prompts).
pub struct Feed {
    ready: std::sync::Mutex<std::vec::IntoIter<PreparedRequest>>,
    rest: Option<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<PreparedRequest>>>,
}

impl Feed {
    pub fn new(
        ready: Vec<PreparedRequest>,
        rest: Option<tokio::sync::mpsc::Receiver<PreparedRequest>>,
    ) -> Self {
        Feed {
            ready: std::sync::Mutex::new(ready.into_iter()),
            rest: rest.map(tokio::sync::Mutex::new),
        }
    }

    async fn next(&self) -> Option<PreparedRequest> {
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner()).next();
        match (ready, &self.rest) {
            (Some(r), _) => Some(r),
            (None, Some(rest)) => rest.lock().await.recv().await,
            (None, None) => None,
        }
    }
}

/// Send every request — all at once (`concurrency` None) or in a closed loop — and
/// return when all have finished. Open-loop runs go through `open_loop::drive_open`.
pub async fn drive(concurrency: Option<usize>, feed: Feed, ctx: Arc<RunContext>) {
    let mut tasks = JoinSet::new();
    match concurrency {
        None => {
            while let Some(req) = feed.next().await {
                if ctx.should_stop() {
                    break;
                }
                let ctx = ctx.clone();
                tasks.spawn(async move { ctx.send(&req).await });
            }
        }
        Some(concurrency) => {
            let feed = Arc::new(feed);
            for _ in 0..concurrency {
                let (feed, ctx) = (feed.clone(), ctx.clone());
                tasks.spawn(async move {
                    while !ctx.should_stop() {
                        let Some(req) = feed.next().await else { break };
                        ctx.send(&req).await;
                    }
                });
            }
        }
    }
    join_all(&mut tasks, &ctx.shutdown).await;
}
