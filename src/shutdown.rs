//! Ctrl-C (SIGINT) and SIGTERM, in every phase of a load command. The listener is
//! installed first ([`Signals::install`], on a thread of its own, before the workload is
//! read), so a signal is seen whatever the session is doing. The first signal asks every
//! phase to stop: nothing more is prepared, the model listing and the connection test are
//! abandoned, a `--start-at` wait ends, no request or run is started, and requests in
//! flight get a grace period; what finished is saved and the exit status is 128 + the
//! signal. A second signal ends the grace period. A process still busy shortly after
//! (in work that cannot look at the signal, such as parsing a huge dataset) is ended by
//! the listener itself, as it is at a third signal.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::error::Error;

/// How long requests in flight may still finish after a signal.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long stopping may take after the first signal (after a run's grace period)
/// before the listener ends the process without waiting.
const SLACK: Duration = Duration::from_secs(2);
/// The same after a second signal.
const SLACK_AFTER_SECOND: Duration = Duration::from_secs(1);

/// What the session is doing, for what a signal says it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Reading the workload and building prompts, before anything is sent.
    Preparing = 0,
    /// Listing the models, the connection test.
    Connecting = 1,
    /// Waiting for `--start-at`.
    Waiting = 2,
    /// A run is sending requests.
    Running = 3,
    /// Between runs: saving one; preparing, resetting the cache or warming up for the next.
    Between = 4,
    /// Writing the reports at the end.
    Saving = 5,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        [
            Phase::Preparing,
            Phase::Connecting,
            Phase::Waiting,
            Phase::Running,
            Phase::Between,
        ]
        .into_iter()
        .find(|p| *p as u8 == v)
        .unwrap_or(Phase::Saving)
    }

    /// What the first signal does in this phase.
    fn stopping(self) -> String {
        match self {
            Phase::Preparing => {
                "Stopping before the first run: nothing more is prepared or sent.".into()
            }
            Phase::Connecting => {
                "Stopping: the model listing and the connection test are abandoned; nothing was sent."
                    .into()
            }
            Phase::Waiting => "Stopping: no longer waiting for --start-at; nothing was sent.".into(),
            Phase::Running => format!(
                "Stopping: no new requests; those in flight have {} s to finish (signal again to stop now).",
                GRACE.as_secs()
            ),
            Phase::Between => {
                "Stopping: no further runs; the finished ones are saved.".into()
            }
            Phase::Saving => "Stopping once the result files are written.".into(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Shutdown {
    /// The signal received (0: none).
    signal: AtomicI32,
    /// Counts signals: the second one ends the grace period.
    count: AtomicI32,
    /// A `Phase`.
    phase: AtomicU8,
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

    /// Record a signal; returns how many came so far.
    pub fn trigger(&self, signal: i32) -> i32 {
        let _ = self
            .signal
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        self.notify.notify_waiters();
        n
    }

    /// The session moves on to `phase`.
    pub fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::SeqCst))
    }

    /// `Error::Interrupted` once a signal asked to stop: a phase that ends here has
    /// nothing to save (the session counts the runs it saved itself).
    pub fn check(&self) -> Result<(), Error> {
        match self.requested() {
            Some(_) => Err(self.interrupted()),
            None => Ok(()),
        }
    }

    /// The error of a phase a signal ended (see `check`).
    pub fn interrupted(&self) -> Error {
        Error::Interrupted {
            signal: self.requested().unwrap_or_default(),
            runs: 0,
        }
    }

    /// `fut`'s output, or `Error::Interrupted` as soon as a signal comes (`fut` is then
    /// dropped: a request is abandoned).
    pub async fn unless_stopped<T>(&self, fut: impl Future<Output = T>) -> Result<T, Error> {
        tokio::select! {
            biased;
            () = self.wait() => Err(self.interrupted()),
            out = fut => Ok(out),
        }
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
}

/// "SIGINT", "SIGTERM" (or "signal N").
pub fn signal_name(signal: i32) -> String {
    match signal {
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// The signal listener of one session; stops listening when dropped.
pub struct Signals {
    shutdown: Arc<Shutdown>,
    ended: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Signals {
    /// Listen for SIGINT and SIGTERM from now on (replacing their default action of
    /// killing the process at once), on a thread of its own: the session's threads may
    /// all be busy or blocked.
    pub fn install() -> std::io::Result<Signals> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Registered before returning: a signal right after is not missed.
        let (int, term) = {
            let _in_rt = rt.enter();
            (
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            )
        };
        let shutdown = Arc::new(Shutdown::default());
        let (ended, ending) = oneshot::channel();
        let me = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || rt.block_on(watch(me, int, term, ending)))?;
        Ok(Signals {
            shutdown,
            ended: Some(ended),
            thread: Some(thread),
        })
    }

    pub fn shutdown(&self) -> Arc<Shutdown> {
        self.shutdown.clone()
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        drop(self.ended.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn watch(
    shutdown: Arc<Shutdown>,
    mut int: Signal,
    mut term: Signal,
    mut ended: oneshot::Receiver<()>,
) {
    // When the process ends even if stopping has not finished by then.
    let mut deadline: Option<Instant> = None;
    loop {
        let sig = tokio::select! {
            _ = &mut ended => return,
            Some(()) = int.recv() => 2,
            Some(()) = term.recv() => 15,
            () = until(deadline) => {
                // Writing what finished is never cut short on the first signal's clock
                // (a big run's summary or HTML may take longer); a second signal still is.
                if shutdown.count.load(Ordering::SeqCst) < 2
                    && matches!(shutdown.phase(), Phase::Between | Phase::Saving)
                {
                    deadline = None;
                    continue;
                }
                end_now(&shutdown, "still busy after the signal; exiting now without waiting")
            }
        };
        let now = Instant::now();
        // Said before the session sees the signal, so it comes before what the session prints.
        match shutdown.count.load(Ordering::SeqCst) {
            0 => {
                let phase = shutdown.phase();
                errln!("\n{}", phase.stopping());
                let grace = if phase == Phase::Running {
                    GRACE
                } else {
                    Duration::ZERO
                };
                deadline = Some(now + grace + SLACK);
            }
            1 => {
                errln!("Stopping now (signal again to quit at once).");
                let soon = now + SLACK_AFTER_SECOND;
                deadline = Some(deadline.map_or(soon, |d| d.min(soon)));
            }
            _ => end_now(&shutdown, "exiting now"),
        }
        shutdown.trigger(sig);
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Process groups of servers a study started (`study::servers`): killed when the
/// process ends here, so no server outlives servescope.
static CHILD_GROUPS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// A server's process group to kill if the process is ended by a signal.
pub fn child_group_started(pgid: i32) {
    if let Ok(mut g) = CHILD_GROUPS.lock() {
        g.push(pgid);
    }
}

/// The group was stopped.
pub fn child_group_ended(pgid: i32) {
    if let Ok(mut g) = CHILD_GROUPS.lock() {
        g.retain(|p| *p != pgid);
    }
}

fn kill_child_groups() {
    let groups = CHILD_GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
    for pgid in groups {
        crate::study::servers::kill_group(pgid);
    }
}

/// End the process with the first signal's status, after a best-effort flush (on a
/// thread of its own, as a blocked stdout must not hold the exit back).
fn end_now(shutdown: &Shutdown, why: &'static str) -> ! {
    kill_child_groups();
    let code = 128 + shutdown.requested().unwrap_or(2);
    let (done, flushed) = std::sync::mpsc::channel();
    let _ = std::thread::Builder::new().spawn(move || {
        errln!("servescope: {why}");
        crate::console::flush();
        let _ = done.send(());
    });
    let _ = flushed.recv_timeout(Duration::from_millis(200));
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_signal_ends_the_grace_period() {
        let s = Arc::new(Shutdown::default());
        assert_eq!(s.requested(), None);
        assert_eq!(s.trigger(2), 1);
        assert_eq!(s.requested(), Some(2));
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.grace_over().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the grace period is running");
        assert_eq!(s.trigger(15), 2);
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

    #[tokio::test]
    async fn a_signal_abandons_what_waits_for_the_network() {
        let s = Arc::new(Shutdown::default());
        assert!(s.check().is_ok());
        assert_eq!(s.unless_stopped(async { 7 }).await.unwrap(), 7);
        let s2 = s.clone();
        let stalled =
            tokio::spawn(async move { s2.unless_stopped(std::future::pending::<()>()).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.trigger(15);
        let out = tokio::time::timeout(Duration::from_secs(1), stalled)
            .await
            .expect("abandoned at the signal")
            .unwrap();
        assert!(matches!(out, Err(Error::Interrupted { signal: 15, .. })));
        assert!(matches!(
            s.check(),
            Err(Error::Interrupted { signal: 15, .. })
        ));
        // Once stopped, nothing new starts.
        let ran = s.unless_stopped(async { "sent" }).await;
        assert!(ran.is_err(), "not started after the signal");
    }

    #[test]
    fn phases_round_trip_and_say_what_stops() {
        let s = Shutdown::default();
        assert_eq!(s.phase(), Phase::Preparing);
        for p in [
            Phase::Preparing,
            Phase::Connecting,
            Phase::Waiting,
            Phase::Running,
            Phase::Between,
            Phase::Saving,
        ] {
            s.enter(p);
            assert_eq!(s.phase(), p);
            assert!(p.stopping().starts_with("Stopping"), "{p:?}");
        }
        assert!(Phase::Running.stopping().contains("5 s"));
    }
}
