//! Live progress like mini-sglang's console: requests sent and done, prefill (first
//! output events) and decode (output events), with in-flight and queued counters.
//! Requests only bump atomics; a separate thread draws. On a terminal a last line adds
//! rolling p50/p99 TTFT and TPOT and the output throughput of the last seconds
//! (`rolling`): each finished request pushes its two figures, taken from its outcome,
//! onto a short list the drawing thread empties; off a terminal nothing is collected.

pub mod rolling;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::{Outcome, RequestObserver};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rolling::{Finished, Rolling};

/// Counters the request tasks update (relaxed atomics: display only, never measurement).
#[derive(Debug, Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub first_events: AtomicU64,
    pub events: AtomicU64,
    pub in_flight: AtomicU64,
    pub queued: AtomicU64,
    /// Requests finished since the drawing thread last looked; `None` (nothing
    /// collected) unless the display shows the rolling figures.
    recent: Option<Mutex<Vec<Finished>>>,
}

/// Finished requests waiting for the drawing thread beyond this are dropped (it takes
/// them 4 times a second, so only a stalled display gets there).
const MAX_WAITING: usize = 1 << 16;

impl Live {
    /// The counters for a display in `mode`: the rolling figures are collected only
    /// for the terminal's bars.
    pub fn for_mode(mode: ProgressMode) -> Live {
        Live {
            recent: (mode == ProgressMode::Bars).then(Mutex::default),
            ..Live::default()
        }
    }

    /// Whether finished requests' figures are collected.
    pub fn collects(&self) -> bool {
        self.recent.is_some()
    }

    /// The finished requests since the last call (the drawing thread's).
    pub fn take_finished(&self) -> Vec<Finished> {
        match &self.recent {
            Some(m) => m
                .lock()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

/// The live display subscribes to each request's progress.
impl RequestObserver for Live {
    fn sent(&self) {
        self.sent.fetch_add(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
        self.queued.fetch_add(1, Relaxed);
    }
    fn output(&self, n: u64, first: bool) {
        self.events.fetch_add(n, Relaxed);
        if first {
            self.first_events.fetch_add(1, Relaxed);
            self.queued.fetch_sub(1, Relaxed);
        }
    }
    /// The decode counter moves from events to tokens.
    fn tokens_counted(&self, n: i64) {
        if n >= 0 {
            self.events.fetch_add(n as u64, Relaxed);
        } else {
            self.events.fetch_sub(n.unsigned_abs(), Relaxed);
        }
    }

    fn ended(&self, out: &Outcome) {
        if !out.had_output() {
            self.queued.fetch_sub(1, Relaxed);
        }
        if !out.ok() {
            self.failed.fetch_add(1, Relaxed);
        }
        self.in_flight.fetch_sub(1, Relaxed);
        self.done.fetch_add(1, Relaxed);
        if let Some(recent) = &self.recent
            && let Some(f) = Finished::of(out)
            && let Ok(mut v) = recent.lock()
            && v.len() < MAX_WAITING
        {
            v.push(f);
        }
    }
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    Off,
    /// Bars on stderr (a terminal).
    Bars,
    /// A plain line on stderr every few seconds (logs, CI).
    Lines,
}

impl ProgressMode {
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            ProgressMode::Off
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bars
        } else {
            ProgressMode::Lines
        }
    }
}

/// Draws one run's progress until dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// `expected_tokens`: total output tokens asked for (max_tokens summed), for the
    /// decode bar.
    pub fn start(
        mode: ProgressMode,
        label: &str,
        live: Arc<Live>,
        requests: u64,
        expected_tokens: u64,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = match mode {
            ProgressMode::Off => None,
            ProgressMode::Bars => {
                let (stop, label) = (stop.clone(), label.to_string());
                Some(std::thread::spawn(move || {
                    draw_bars(&label, &live, requests, expected_tokens, &stop)
                }))
            }
            ProgressMode::Lines => {
                let (stop, label) = (stop.clone(), label.to_string());
                Some(std::thread::spawn(move || {
                    draw_lines(&label, &live, requests, &stop)
                }))
            }
        };
        Progress { stop, thread }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn draw_bars(label: &str, live: &Live, requests: u64, tokens: u64, stop: &AtomicBool) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos:>7}/{len:7} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bar = |name: &str, len: u64| {
        let b = multi.add(ProgressBar::new(len));
        b.set_style(style.clone());
        b.set_prefix(name.to_string());
        b
    };
    let sent = bar("sent", requests);
    let done = bar("done", requests);
    let prefill = bar("prefill", requests);
    let decode = bar("decode", tokens.max(1));
    let recent = multi.add(ProgressBar::new(0));
    recent.set_style(
        ProgressStyle::with_template("{prefix:>10} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    recent.set_prefix("rolling");
    let mut rolling = Rolling::new(rolling::WINDOW, rolling::MAX_REQUESTS);
    let t0 = Instant::now();
    let mut next_stats = t0;
    sent.set_message(label.to_string());
    loop {
        let finished = stop.load(Relaxed);
        sent.set_position(live.sent.load(Relaxed));
        done.set_position(live.done.load(Relaxed));
        done.set_message(format!("failed {}", live.failed.load(Relaxed)));
        prefill.set_position(live.first_events.load(Relaxed));
        prefill.set_message(format!(
            "in flight {} queued {}",
            live.in_flight.load(Relaxed),
            live.queued.load(Relaxed)
        ));
        decode.set_position(live.events.load(Relaxed));
        decode.set_message("output tokens".to_string());
        // The percentiles 4 times a second: a sort of at most MAX_REQUESTS values.
        if Instant::now() >= next_stats {
            next_stats += Duration::from_millis(250);
            let at = t0.elapsed();
            rolling.add(at, live.take_finished());
            rolling.tokens(at, live.events.load(Relaxed));
            recent.set_message(rolling::render(rolling::WINDOW, &rolling.snapshot()));
        }
        if finished {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for b in [sent, done, prefill, decode, recent] {
        b.finish_and_clear();
    }
    let _ = multi.clear();
}

fn draw_lines(label: &str, live: &Live, requests: u64, stop: &AtomicBool) {
    const EVERY: Duration = Duration::from_secs(5);
    let t0 = Instant::now();
    let mut next = t0 + EVERY;
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next {
            next += EVERY;
            errln!("{}", plain_line(label, t0.elapsed(), live, requests));
        }
    }
}

/// The progress line printed every few seconds when stderr is not a terminal (logs, CI).
pub fn plain_line(label: &str, elapsed: Duration, live: &Live, requests: u64) -> String {
    format!(
        "[{label}] {:>5.0}s sent {}/{requests} done {} failed {} prefill {} decode tokens {} in flight {} queued {}",
        elapsed.as_secs_f64(),
        live.sent.load(Relaxed),
        live.done.load(Relaxed),
        live.failed.load(Relaxed),
        live.first_events.load(Relaxed),
        live.events.load(Relaxed),
        live.in_flight.load(Relaxed),
        live.queued.load(Relaxed),
    )
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
