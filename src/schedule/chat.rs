//! Synthetic sessions (`--sessions`) as the schedule sees them: one unit of the load
//! (a closed-loop slot's next job, an open-loop arrival, one of a batch) is a whole
//! session. The workload (`Conversations`) builds each turn from the answers so far;
//! the schedule waits each turn's think time and sends it, and stops starting turns
//! once the run is stopped.

use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::Semaphore;

use super::{Answer, RunContext, Sending, TurnFuture};
use crate::record::RequestTag;
use crate::workload::prepare::PreparedRequest;

/// One turn of a session, ready to go once its think time has passed.
pub struct ChatTurn {
    pub id: u64,
    pub body: Bytes,
    pub input_tokens: u32,
    pub tag: RequestTag,
    /// Wait this long (µs) after the previous answer before sending.
    pub think_us: u64,
    pub max_tokens: u32,
}

/// What became of a turn.
pub enum Sent {
    Answered(Answer),
    /// Sent and failed (recorded).
    Failed,
    /// Not sent: the run was stopped.
    Stopped,
}

/// Sends a session's turns, one at a time.
pub type SendChat<'a> =
    Box<dyn Fn(ChatTurn) -> Pin<Box<dyn Future<Output = Sent> + Send + 'a>> + Send + Sync + 'a>;

/// Synthetic sessions: the workload runs one session (its first turn prepared) turn by
/// turn, sending each through `send`.
pub trait Conversations: Send + Sync {
    fn run<'a>(&'a self, first: &'a PreparedRequest, send: SendChat<'a>) -> TurnFuture<'a>;
}

/// How the turns of one session are sent.
#[derive(Clone, Copy)]
pub(crate) struct ChatSending<'a> {
    pub warmup: bool,
    /// Open loop: turn 0's due time (µs); later turns are due when their think time
    /// ends. `None`: a closed loop or batch, where nothing is scheduled.
    pub first_due: Option<u64>,
    /// Open loop `--max-concurrency`: each turn waits for a slot.
    pub slots: Option<&'a Semaphore>,
}

impl RunContext {
    /// Run session `req` to its end (or the run's stop).
    pub(crate) async fn send_session(
        &self,
        chats: &dyn Conversations,
        req: &PreparedRequest,
        how: ChatSending<'_>,
    ) {
        let send = move |turn: ChatTurn| -> Pin<Box<dyn Future<Output = Sent> + Send + '_>> {
            Box::pin(self.send_turn(turn, how))
        };
        chats.run(req, Box::new(send)).await;
    }

    async fn send_turn(&self, turn: ChatTurn, how: ChatSending<'_>) -> Sent {
        if turn.think_us > 0 {
            let at = self.clock.now_us() + turn.think_us;
            let deadline = tokio::time::Instant::from_std(self.clock.instant_at(at));
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = self.shutdown.wait() => return Sent::Stopped,
            }
        }
        let t0 = self.clock.now_us();
        // A later turn is due when its user is done thinking: when the (ms-grained)
        // timer let it go, so the timer's slack counts as thinking, not as client lag.
        let due = match turn.tag.turn {
            Some(0) | None => how.first_due,
            Some(_) => how.first_due.map(|_| t0),
        };
        let _permit = match how.slots {
            Some(s) => s.acquire().await.ok(),
            None => None,
        };
        if self.should_stop() || self.abandon.is_set() {
            return Sent::Stopped;
        }
        let sending = Sending {
            scheduled_at: due,
            queue_wait: how.slots.map(|_| self.clock.now_us() - t0),
            warmup: how.warmup,
            tag: turn.tag,
            max_tokens: Some(turn.max_tokens),
        };
        match self
            .send_body(turn.id, turn.body, turn.input_tokens, sending, true)
            .await
        {
            Some(answer) => Sent::Answered(answer),
            None => Sent::Failed,
        }
    }
}
