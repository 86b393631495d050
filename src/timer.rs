//! A timer accurate to well under a millisecond. tokio's timer wheel has 1 ms
//! granularity and fires 0–1 ms late; a simulated server paced by it adds that error to
//! every TTFT and ITL it is supposed to produce exactly. Here one OS thread sleeps on a
//! condition variable until the earliest deadline (the kernel's hrtimer wakes it within
//! tens of µs) and wakes the waiting tasks, on whatever runtime they run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

struct Slot {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

struct Entry {
    deadline: Instant,
    seq: u64,
    slot: Arc<Slot>,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.deadline, self.seq) == (o.deadline, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(o.deadline, o.seq))
    }
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

struct Timer {
    state: Mutex<State>,
    cv: Condvar,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let t: &'static Timer = Box::leak(Box::new(Timer {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("precise-timer".into())
            .spawn(move || run(t))
            .expect("cannot start the timer thread");
        t
    })
}

fn run(t: &Timer) {
    let mut due: Vec<Arc<Slot>> = Vec::new();
    let mut st = t.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = Instant::now();
        while st.heap.peek().is_some_and(|Reverse(e)| e.deadline <= now) {
            if let Some(Reverse(e)) = st.heap.pop() {
                due.push(e.slot);
            }
        }
        if !due.is_empty() {
            // Wake outside the lock so registering tasks never wait on a wake-up.
            drop(st);
            for slot in due.drain(..) {
                slot.fired.store(true, Ordering::Release);
                let w = slot.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(w) = w {
                    w.wake();
                }
            }
            st = t.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st = match st.heap.peek() {
            None => t.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
            Some(Reverse(e)) => {
                let wait = e.deadline.saturating_duration_since(now);
                t.cv.wait_timeout(st, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
    }
}

/// Completes at `deadline` (never before it).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        slot: None,
    }
}

pub struct Sleep {
    deadline: Instant,
    slot: Option<Arc<Slot>>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        match &self.slot {
            Some(slot) => {
                if slot.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                *slot.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
                // It may have fired between the check and storing the waker.
                if slot.fired.load(Ordering::Acquire) {
                    return Poll::Ready(());
                }
                Poll::Pending
            }
            None => {
                let slot = Arc::new(Slot {
                    fired: AtomicBool::new(false),
                    waker: Mutex::new(Some(cx.waker().clone())),
                });
                let t = timer();
                let mut st = t.state.lock().unwrap_or_else(|e| e.into_inner());
                st.seq += 1;
                let seq = st.seq;
                let earliest = st
                    .heap
                    .peek()
                    .is_none_or(|Reverse(e)| self.deadline < e.deadline);
                st.heap.push(Reverse(Entry {
                    deadline: self.deadline,
                    seq,
                    slot: slot.clone(),
                }));
                drop(st);
                if earliest {
                    t.cv.notify_one();
                }
                self.slot = Some(slot);
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn never_early_and_in_order() {
        // 200 ms ahead, so all four are waiting before the first deadline even on a
        // loaded machine: one first polled after its deadline returns at once.
        let t0 = Instant::now() + Duration::from_millis(200);
        let mut handles = Vec::new();
        for ms in [30u64, 10, 20, 0] {
            handles.push(tokio::spawn(async move {
                let d = t0 + Duration::from_millis(ms);
                sleep_until(d).await;
                let now = Instant::now();
                assert!(now >= d, "woke before its deadline");
                (ms, now)
            }));
        }
        let mut woke = Vec::new();
        for h in handles {
            woke.push(h.await.unwrap());
        }
        woke.sort_by_key(|(_, t)| *t);
        assert_eq!(
            woke.iter().map(|(ms, _)| *ms).collect::<Vec<_>>(),
            [0, 10, 20, 30]
        );
    }
}
