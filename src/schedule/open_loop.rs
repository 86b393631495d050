//! Open-loop sending on an absolute timeline: request i goes at `start + offset_i`
//! whatever the server does. A dedicated thread keeps the time (`timer::wait_until`:
//! it sleeps until ~200 µs before each deadline and spins the rest) and hands the
//! request to the async runtime (tokio's own timer fires up to 1 ms late and merges
//! sub-millisecond gaps). Offsets are absolute, never relative to the previous send, so
//! lateness cannot accumulate.

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::RunContext;
use crate::timer::wait_until_unless;
use crate::workload::prepare::PreparedRequest;
use crate::workload::trace::TraceRequest;

/// One request and when to send it (µs after the run's start).
#[derive(Debug)]
pub struct Timed {
    pub at_us: u64,
    pub req: PreparedRequest,
    /// The trace request it was made from, when a session's turn is decided at send time.
    pub turn: Option<Box<TraceRequest>>,
    /// One of the run's warm-up requests.
    pub warmup: bool,
}

/// Send every request from `incoming` (in time order) at its time; with `cap`, at most
/// that many are in flight and the rest wait for a slot (their wait is recorded).
/// Returns when all have finished.
pub async fn drive_open(incoming: Receiver<Timed>, cap: Option<usize>, ctx: Arc<RunContext>) {
    let clock = ctx.clock;
    let keeper_ctx = ctx.clone();
    let runtime = tokio::runtime::Handle::current();
    let slots = cap.map(|c| Arc::new(Semaphore::new(c)));
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    // The timekeeper spawns each request's task itself, the moment it is due: one hop
    // into the runtime, not a wake-up of a dispatching task and then a spawn.
    let timekeeper = std::thread::Builder::new()
        .name("schedule".into())
        .spawn(move || {
            let mut tasks = JoinSet::new();
            for timed in incoming {
                let due = clock.instant_at(timed.at_us);
                if !wait_until_unless(due, || keeper_ctx.should_stop()) || keeper_ctx.should_stop()
                {
                    break;
                }
                tasks.spawn_on(
                    send_timed(timed, cap, slots.clone(), keeper_ctx.clone()),
                    &runtime,
                );
                // Reap finished tasks as we go: memory stays bounded by what is in flight.
                while tasks.try_join_next().is_some() {}
            }
            // Dropping `incoming` stops the preparation behind it.
            let _ = done_tx.send(tasks);
        })
        .expect("cannot start the schedule thread");
    // On a stop the timekeeper notices within 50 ms (`should_stop` covers signals) and
    // hands over the tasks in flight, which then get the usual grace period.
    let mut tasks = done_rx.await.unwrap_or_default();
    let _ = tokio::task::spawn_blocking(move || timekeeper.join()).await;
    super::join_all(&mut tasks, &ctx).await;
}

/// One open-loop request: a session's turn first waits for its parent, then any request
/// for a slot under `cap`; both waits are recorded.
async fn send_timed(
    timed: Timed,
    cap: Option<usize>,
    slots: Option<Arc<Semaphore>>,
    ctx: Arc<RunContext>,
) {
    if let Some(chats) = ctx.chats.as_deref().filter(|_| timed.req.chat.is_some()) {
        let how = super::chat::ChatSending {
            warmup: timed.warmup,
            first_due: Some(timed.at_us),
            slots: slots.as_deref(),
        };
        return ctx.send_session(chats, &timed.req, how).await;
    }
    let t0 = ctx.clock.now_us();
    let Timed {
        at_us,
        req,
        turn,
        warmup,
    } = timed;
    // Waits for a slot, then sends; `None` sends the prepared body.
    let send = |body: Option<(Bytes, u32)>, keep_answer: bool| {
        let (slots, ctx, req) = (&slots, &ctx, &req);
        async move {
            let _permit = match slots {
                Some(s) => s.acquire().await.ok(),
                None => None,
            };
            // A slot freed after the run was stopped: nothing more is sent.
            if ctx.should_stop() {
                return None;
            }
            let waited = ctx.clock.now_us() - t0;
            let mut tag = req.tag.clone();
            if let Some(s) = &ctx.sessions {
                s.tag(req.id, &mut tag);
            }
            let how = super::Sending {
                scheduled_at: Some(at_us),
                queue_wait: (cap.is_some() || ctx.sessions.is_some()).then_some(waited),
                warmup,
                tag,
                max_tokens: Some(req.max_tokens),
            };
            let (body, tokens) = body.unwrap_or_else(|| (req.body.clone(), req.input_tokens));
            ctx.send_body(req.id, body, tokens, how, keep_answer).await
        }
    };
    match (&ctx.sessions, turn) {
        (Some(s), Some(t)) => {
            s.turn(
                req.id,
                &t,
                Box::new(|body, keep| Box::pin(send(body, keep))),
            )
            .await
        }
        _ => {
            send(None, false).await;
        }
    }
}
