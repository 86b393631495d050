//! Ctrl-C (SIGINT) and SIGTERM: stop sending, give requests in flight a short grace
//! period, then stop; whatever finished is saved and shown. A second signal ends the
//! grace period at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// How long requests in flight may still finish after a signal.
pub const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Shutdown {
    /// The signal received (0: none).
    signal: AtomicI32,
    /// Counts signals: the second one ends the grace period.
    count: AtomicI32,
    notify: Notify,
}

impl Shutdown {
    /// The signal that asked to stop, if any.
    pub fn requested(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    pub fn trigger(&self, signal: i32) {
        let _ = self
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Completes once a signal asked to stop.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.requested().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Completes when requests in flight must be abandoned: the grace period after the
    /// first signal ran out, or a second signal came. Never completes without a signal.
    pub async fn grace_over(&self) {
        loop {
            let notified = self.notify.notified();
            if self.count.load(Ordering::SeqCst) >= 2 {
                return;
            }
            if self.requested().is_some() {
                tokio::select! {
                    _ = tokio::time::sleep(GRACE) => return,
                    _ = notified => continue,
                }
            }
            notified.await;
        }
    }

    /// Listen for SIGINT and SIGTERM on the current runtime (replacing their default
    /// action of killing the process at once).
    pub fn listen(self: &Arc<Self>) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let sig = tokio::select! {
                    Some(()) = int.recv() => 2,
                    Some(()) = term.recv() => 15,
                    else => return,
                };
                if me.requested().is_none() {
                    errln!(
                        "\nStopping: no new requests; those in flight have {} s to finish (signal again to stop now).",
                        GRACE.as_secs()
                    );
                }
                me.trigger(sig);
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_signal_ends_the_grace_period() {
        let s = Arc::new(Shutdown::default());
        assert_eq!(s.requested(), None);
        s.trigger(2);
        assert_eq!(s.requested(), Some(2));
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.grace_over().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the grace period is running");
        s.trigger(15);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("a second signal ends it")
            .unwrap();
        assert_eq!(
            s.requested(),
            Some(2),
            "the first signal decides the exit status"
        );
    }
}
