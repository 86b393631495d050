//! When requests are sent: all at once (a batch), or a closed loop that keeps a fixed
//! number in flight. Open-loop timelines (rates, trace replay) come with the trace work.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Url;
use tokio::task::JoinSet;

use crate::client::HttpClient;
use crate::clock::RunClock;
use crate::progress::Live;
use crate::recorder::{Finished, RecorderHandle};
use crate::workload::prepare::PreparedRequest;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Every request at once; wait for all (batch, throughput).
    AllAtOnce,
    /// `concurrency` workers; each starts its next request when its last one ends.
    ClosedLoop { concurrency: usize },
}

/// What every request task of one run shares.
pub struct RunContext {
    pub client: HttpClient,
    pub url: Url,
    pub clock: RunClock,
    pub live: Arc<Live>,
    pub recorder: RecorderHandle,
    pub label: Arc<str>,
}

impl RunContext {
    async fn send(&self, req: &PreparedRequest) {
        let outcome = self
            .client
            .execute(&self.url, req.body.clone(), &self.clock, &self.live)
            .await;
        self.recorder.submit(Finished {
            run: self.label.clone(),
            id: req.id,
            scheduled_at: None,
            input_tokens: req.input_tokens,
            outcome,
        });
    }
}

/// Send every request as `load` says and return when all have finished.
pub async fn drive(load: Load, requests: Arc<Vec<PreparedRequest>>, ctx: Arc<RunContext>) {
    let mut tasks = JoinSet::new();
    match load {
        Load::AllAtOnce => {
            for i in 0..requests.len() {
                let (reqs, ctx) = (requests.clone(), ctx.clone());
                tasks.spawn(async move { ctx.send(&reqs[i]).await });
            }
        }
        Load::ClosedLoop { concurrency } => {
            let next = Arc::new(AtomicUsize::new(0));
            for _ in 0..concurrency.min(requests.len()) {
                let (reqs, ctx, next) = (requests.clone(), ctx.clone(), next.clone());
                tasks.spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(req) = reqs.get(i) else { break };
                        ctx.send(req).await;
                    }
                });
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}
