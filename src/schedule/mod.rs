//! When requests are sent: all at once (a batch), a closed loop that keeps a fixed
//! number in flight, or an open-loop timeline (request rates, trace replay).

pub mod arrivals;
mod chat;
mod failures;
pub mod open_loop;
#[cfg(test)]
mod tests_ramp;

pub use chat::{ChatTurn, Conversations, SendChat, Sent};
pub use failures::{FailureCounter, MIN_ENDED_FOR_ERROR_RATE};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use reqwest::Url;
use tokio::task::JoinSet;

use crate::client::HttpClient;
use crate::clock::RunClock;
use crate::progress::Live;
use crate::recorder::{Finished, RecorderHandle};
use crate::workload::prepare::PreparedRequest;
use crate::workload::trace::TraceRequest;

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

/// What the server generated for a request, for the requests that continue it.
pub struct Answer {
    pub text: String,
    /// As the server counted them (its usage), when it reported them.
    pub tokens: Option<u32>,
}

/// Sends a due request: with a body of its own and its input tokens (`None`: the
/// prepared one), keeping the answer when asked (`true`).
pub type SendTurn<'a> = Box<
    dyn FnOnce(
            Option<(Bytes, u32)>,
            bool,
        ) -> Pin<Box<dyn Future<Output = Option<Answer>> + Send + 'a>>
        + Send
        + 'a,
>;
pub type TurnFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Requests that continue earlier ones (a trace's multi-turn sessions): the workload
/// decides what a due request sends and keeps what it needs of the answer; the schedule
/// only says when, and sends.
pub trait Continuations: Send + Sync {
    /// Request `id` (trace request `trace`) is due: wait for what it continues, then send
    /// it once through `send`.
    fn turn<'a>(&'a self, id: u64, trace: &'a TraceRequest, send: SendTurn<'a>) -> TurnFuture<'a>;

    /// Request `id`'s session and turn, for its record.
    fn tag(&self, id: u64, tag: &mut crate::record::RequestTag) {
        let _ = (id, tag);
    }
}

/// What every request task of one run shares.
pub struct RunContext {
    pub client: HttpClient,
    pub url: Url,
    pub clock: RunClock,
    /// Subscribers to every request's progress: the display and the failure counter.
    pub live: Arc<Live>,
    pub failures: Arc<FailureCounter>,
    pub recorder: RecorderHandle,
    pub label: Arc<str>,
    /// Multi-turn sessions of a trace replay (`--sessions`).
    pub sessions: Option<Arc<dyn Continuations>>,
    /// Synthetic multi-turn sessions (`--sessions`): each request is a session's first
    /// turn, and the workload builds the rest.
    pub chats: Option<Arc<dyn Conversations>>,
    /// `--max-error-rate`: stop sending once more than this share failed.
    pub max_error_rate: Option<f64>,
    /// Set by SIGINT / SIGTERM.
    pub shutdown: Arc<crate::shutdown::Shutdown>,
    /// Set when the grace period after a signal ends: requests still in flight stop
    /// and are recorded as cancelled.
    pub abandon: Abandon,
    /// Sees every measured request before it is sent and once it ended (a profiler
    /// window); None for most runs.
    pub watch: Option<Arc<dyn MeasuredWatch>>,
    /// Requests ask for `ignore_eos`: records keep their `max_tokens` as the output
    /// they should reach (the run's `ignore_eos` check).
    pub ignore_eos: bool,
}

/// Watches a run's measured requests (not its warm-up) from the sending side.
pub trait MeasuredWatch: Send + Sync {
    /// Awaited before each measured request is sent: it may hold the request back
    /// (until a profiler has started).
    fn before(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// A measured request ended (whatever its outcome).
    fn after(&self);
}

/// The end of a stopped run's grace period, for every request task at once (one clock
/// for all, whenever each started).
#[derive(Debug, Default)]
pub struct Abandon {
    why: std::sync::OnceLock<String>,
    notify: tokio::sync::Notify,
}

impl Abandon {
    /// Abandon every request still in flight, saying why.
    pub fn now(&self, why: String) {
        let _ = self.why.set(why);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.why.get().is_some()
    }

    /// Completes (with the reason) once the requests in flight are abandoned.
    pub fn wait(&self) -> AbandonWait<'_> {
        AbandonWait {
            abandon: self,
            // Made now: a notification from here on is not lost.
            notified: Box::pin(self.notify.notified()),
            waker: None,
        }
    }
}

/// `Abandon::wait`. Polled beside every read of a request's stream, so a poll is one
/// atomic load once registered: a `Notified` re-polled takes the `Notify`'s lock, which
/// every request in flight would contend for.
pub struct AbandonWait<'a> {
    abandon: &'a Abandon,
    notified: Pin<Box<tokio::sync::futures::Notified<'a>>>,
    /// The waker the `Notified` holds.
    waker: Option<std::task::Waker>,
}

impl Future for AbandonWait<'_> {
    type Output = String;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<String> {
        use std::task::Poll;
        let this = self.get_mut();
        if let Some(why) = this.abandon.why.get() {
            return Poll::Ready(why.clone());
        }
        if this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        match this.notified.as_mut().poll(cx) {
            // The reason is set before the notification.
            Poll::Ready(()) => Poll::Ready(this.abandon.why.get().cloned().unwrap_or_default()),
            Poll::Pending => {
                this.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// How long tasks get to record their cancellation once abandoned; what still runs
/// after that waits for something that will not come (a slot, a parent turn) and sent
/// nothing.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl RunContext {
    /// Too many failures, or a signal: send nothing more (requests in flight still
    /// finish, within the grace period after a signal).
    pub fn should_stop(&self) -> bool {
        self.shutdown.requested().is_some() || self.failures.exceeded(self.max_error_rate)
    }
}

/// Wait for every task; after a signal's grace period, abandon the requests still
/// running: each is recorded as cancelled, with what had arrived.
pub(crate) async fn join_all(tasks: &mut JoinSet<()>, ctx: &RunContext) {
    tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => return,
        _ = ctx.shutdown.grace_over() => {}
    }
    let signal = ctx
        .shutdown
        .requested()
        .map_or("a signal".into(), crate::shutdown::signal_name);
    ctx.abandon.now(format!(
        "cancelled after {signal}: still in flight when the grace period ended"
    ));
    let _ = tokio::time::timeout(ABANDON_WAIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}

/// What the record of a request says about its sending besides its own exchange.
#[derive(Clone, Debug, Default)]
pub struct Sending {
    /// Open loop: when the schedule wanted it sent (µs).
    pub scheduled_at: Option<u64>,
    /// Time spent waiting for a slot or a parent turn (µs).
    pub queue_wait: Option<u64>,
    /// Part of the run's warm-up: recorded, flagged, measured by nothing.
    pub warmup: bool,
    /// Session, turn and model, for the record.
    pub tag: crate::record::RequestTag,
    /// The request's `max_tokens`.
    pub max_tokens: Option<u32>,
}

impl RunContext {
    async fn send(&self, req: &PreparedRequest, warmup: bool) {
        if let Some(chats) = self.chats.as_deref().filter(|_| req.chat.is_some()) {
            let how = chat::ChatSending {
                warmup,
                first_due: None,
                slots: None,
            };
            return self.send_session(chats, req, how).await;
        }
        let body = req.body.clone();
        let how = Sending {
            warmup,
            tag: req.tag.clone(),
            max_tokens: Some(req.max_tokens),
            ..Sending::default()
        };
        self.send_body(req.id, body, req.input_tokens, how, false)
            .await;
    }

    /// Send a body; returns the generated text of a successful request when asked
    /// (`keep_answer`), for a session's next turn.
    pub(crate) async fn send_body(
        &self,
        id: u64,
        body: bytes::Bytes,
        input_tokens: u32,
        how: Sending,
        keep_answer: bool,
    ) -> Option<Answer> {
        // Not sent once abandoned (a task that only now got its turn).
        if self.abandon.is_set() {
            return None;
        }
        let watch = self.watch.as_deref().filter(|_| !how.warmup);
        // Time held for a profiler's start: the schedule's wish moves by it, so the
        // schedule lag stays the client's own (not blamed on a busy client).
        let mut held_us = 0;
        if let Some(w) = watch {
            let t0 = self.clock.now_us();
            w.before().await;
            held_us = self.clock.now_us().saturating_sub(t0);
        }
        let (url, clock, stop) = (&self.url, &self.clock, self.abandon.wait());
        // A warm-up failure does not count towards --max-error-rate: the server may
        // still be cold, which is why there is a warm-up.
        let outcome = if how.warmup {
            let obs = &*self.live;
            self.client
                .execute_until(url, body, clock, &obs, stop)
                .await
        } else {
            let obs = (&*self.live, &*self.failures);
            self.client
                .execute_until(url, body, clock, &obs, stop)
                .await
        };
        if let Some(w) = watch {
            w.after();
        }
        let answer = (keep_answer && outcome.failure.is_none()).then(|| Answer {
            text: outcome.text.clone(),
            tokens: outcome.usage.and_then(|u| u.completion_tokens),
        });
        self.recorder.submit(Finished {
            run: self.label.clone(),
            id,
            scheduled_at: how.scheduled_at.map(|at| at + held_us),
            queue_wait: how.queue_wait,
            input_tokens,
            outcome,
            warmup: how.warmup,
            tag: how.tag,
            expected_output_tokens: how.max_tokens.filter(|_| self.ignore_eos),
        });
        answer
    }
}

/// The requests of a closed-loop or batch run: the warm-up's first, if any, then those
/// prepared before the run, then those a producer prepares while it goes (so memory
/// holds a bounded number of prompts).
pub struct Feed {
    ready: std::sync::Mutex<std::vec::IntoIter<PreparedRequest>>,
    rest: Option<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<PreparedRequest>>>,
    warm: Option<WarmFeed>,
}

/// The warm-up's requests, from a producer of their own: a counted warm-up ends when
/// its producer has sent them all; a timed one when its time is over.
struct WarmFeed {
    rx: tokio::sync::Mutex<Option<tokio::sync::mpsc::Receiver<PreparedRequest>>>,
    until_us: Option<u64>,
    over: std::sync::atomic::AtomicBool,
}

impl Feed {
    pub fn new(
        ready: Vec<PreparedRequest>,
        rest: Option<tokio::sync::mpsc::Receiver<PreparedRequest>>,
    ) -> Self {
        Feed {
            ready: std::sync::Mutex::new(ready.into_iter()),
            rest: rest.map(tokio::sync::Mutex::new),
            warm: None,
        }
    }

    /// Warm-up requests come first, from `rx`: all it gives, or (`until_us`) those
    /// taken before that instant of the run.
    pub fn warming(
        mut self,
        rx: tokio::sync::mpsc::Receiver<PreparedRequest>,
        until_us: Option<u64>,
    ) -> Self {
        self.warm = Some(WarmFeed {
            rx: tokio::sync::Mutex::new(Some(rx)),
            until_us,
            over: Default::default(),
        });
        self
    }

    /// The next request to send, and whether it is a warm-up request.
    async fn next(&self, clock: &RunClock) -> Option<(PreparedRequest, bool)> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(w) = &self.warm
            && !w.over.load(Relaxed)
        {
            let mut rx = w.rx.lock().await;
            let due = w.until_us.is_none_or(|end| clock.now_us() < end);
            if due
                && let Some(r) = rx.as_mut()
                && let Some(req) = r.recv().await
            {
                return Some((req, true));
            }
            // Over: dropping the receiver ends its producer.
            *rx = None;
            w.over.store(true, Relaxed);
        }
        let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner()).next();
        let req = match (ready, &self.rest) {
            (Some(r), _) => Some(r),
            (None, Some(rest)) => rest.lock().await.recv().await,
            (None, None) => None,
        };
        req.map(|r| (r, false))
    }
}

/// `--ramp-up-s` in a closed loop: slot g of the whole run's `of` starts at g·`us`/`of`;
/// this process's slot j is slot `first + j·step` (a shard's slots interleave with the
/// others', so all of them together still start evenly).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlotRamp {
    pub us: u64,
    pub first: usize,
    pub step: usize,
    pub of: usize,
}

impl SlotRamp {
    pub fn start_us(&self, slot: usize) -> u64 {
        let g = (self.first + slot * self.step) as u128;
        // A shard with a slot past the whole run's (more shards than slots) starts last.
        ((self.us as u128 * g / self.of.max(1) as u128) as u64).min(self.us)
    }
}

/// Send every request — all at once (`concurrency` None) or in a closed loop — and
/// return when all have finished. Open-loop runs go through `open_loop::drive_open`.
/// All at once, a warm-up goes as a burst of its own, finished before the measured one;
/// in a closed loop, slots start one by one by `slot_ramp` (`--ramp-up-s`).
pub async fn drive(
    concurrency: Option<usize>,
    feed: Feed,
    slot_ramp: Option<SlotRamp>,
    ctx: Arc<RunContext>,
) {
    let mut tasks = JoinSet::new();
    match concurrency {
        None => {
            let mut warming = true;
            while let Some((req, warmup)) = feed.next(&ctx.clock).await {
                if warming && !warmup {
                    warming = false;
                    join_all(&mut tasks, &ctx).await;
                }
                if ctx.should_stop() {
                    break;
                }
                let ctx = ctx.clone();
                tasks.spawn(async move { ctx.send(&req, warmup).await });
            }
        }
        Some(concurrency) => {
            let feed = Arc::new(feed);
            for slot in 0..concurrency {
                let (feed, ctx) = (feed.clone(), ctx.clone());
                let start_us = slot_ramp.map(|r| r.start_us(slot));
                tasks.spawn(async move {
                    if let Some(at) = start_us {
                        let due = tokio::time::Instant::from_std(ctx.clock.instant_at(at));
                        tokio::select! {
                            () = tokio::time::sleep_until(due) => {}
                            () = ctx.shutdown.wait() => return,
                        }
                    }
                    while !ctx.should_stop() {
                        let Some((req, warmup)) = feed.next(&ctx.clock).await else {
                            break;
                        };
                        ctx.send(&req, warmup).await;
                    }
                });
            }
        }
    }
    join_all(&mut tasks, &ctx).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_is_woken_once_abandoned() {
        let abandon = Arc::new(Abandon::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let a = abandon.clone();
                tokio::spawn(async move {
                    // Polled again and again before the end, as beside a stream.
                    let mut wait = a.wait();
                    let mut ticks = 0;
                    loop {
                        tokio::select! {
                            why = &mut wait => return (why, ticks),
                            _ = tokio::time::sleep(std::time::Duration::from_millis(2)) => ticks += 1,
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        abandon.now("stop".into());
        for w in waiters {
            let (why, ticks) = tokio::time::timeout(std::time::Duration::from_secs(1), w)
                .await
                .expect("woken")
                .unwrap();
            assert_eq!(why, "stop");
            assert!(ticks > 1);
        }
        assert_eq!(
            abandon.wait().await,
            "stop",
            "a late waiter returns at once"
        );
    }
}
