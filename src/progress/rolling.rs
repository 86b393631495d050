//! The live view's rolling figures: p50/p99 TTFT and TPOT over the requests that
//! finished in the last few seconds, and output throughput over the same window. Pure:
//! times are given (`Duration`s since the run's display started), so tests can age
//! values out by hand. Only the drawing thread touches it.

use std::collections::VecDeque;
use std::time::Duration;

use crate::client::Outcome;
use crate::metrics::stats::percentile_sorted;

/// The window: long enough to hold a steady p99 at a few requests per second, short
/// enough that a drift (a queue building up above capacity) shows within seconds.
pub const WINDOW: Duration = Duration::from_secs(10);
/// At most this many requests in the window (the newest), so a sort at each draw stays
/// well under a millisecond at any request rate.
pub const MAX_REQUESTS: usize = 4096;

/// One finished request's figures, taken from its outcome (µs, as the client timed them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finished {
    pub ttft_ms: f64,
    /// `None` for fewer than two output tokens.
    pub tpot_ms: Option<f64>,
}

impl Finished {
    /// A successful request with output; others have no TTFT to show (as in the
    /// summary, which takes its latencies from successful requests).
    pub fn of(out: &Outcome) -> Option<Finished> {
        let (&first, &last) = (out.events.first()?, out.events.last()?);
        if !out.ok() {
            return None;
        }
        let tokens = out
            .usage
            .and_then(|u| u.completion_tokens)
            .map_or(out.events.len() as u64, u64::from);
        Some(Finished {
            ttft_ms: first.saturating_sub(out.started_at) as f64 / 1e3,
            tpot_ms: (tokens >= 2).then(|| (last - first) as f64 / 1e3 / (tokens - 1) as f64),
        })
    }
}

/// What the live line shows at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Requests in the window.
    pub requests: usize,
    /// (p50, p99), ms.
    pub ttft_ms: Option<(f64, f64)>,
    pub tpot_ms: Option<(f64, f64)>,
    /// Output tokens per second over the window.
    pub output_tok_s: Option<f64>,
}

#[derive(Debug)]
pub struct Rolling {
    window: Duration,
    cap: usize,
    /// (when the drawing thread collected it, figures), oldest first.
    finished: VecDeque<(Duration, Finished)>,
    /// (when, the live output-token counter then), oldest first.
    tokens: VecDeque<(Duration, u64)>,
}

impl Rolling {
    pub fn new(window: Duration, cap: usize) -> Self {
        Rolling {
            window,
            cap,
            finished: VecDeque::new(),
            tokens: VecDeque::new(),
        }
    }

    /// Requests collected at `at`.
    pub fn add(&mut self, at: Duration, finished: impl IntoIterator<Item = Finished>) {
        self.finished.extend(finished.into_iter().map(|f| (at, f)));
        while self.finished.len() > self.cap {
            self.finished.pop_front();
        }
        self.age(at);
    }

    /// The output-token counter read at `at`.
    pub fn tokens(&mut self, at: Duration, total: u64) {
        self.tokens.push_back((at, total));
        self.age(at);
    }

    /// Drop what is older than the window; one token reading at or before its start is
    /// kept, so the rate spans the whole window.
    fn age(&mut self, now: Duration) {
        let start = now.saturating_sub(self.window);
        while self.finished.front().is_some_and(|(t, _)| *t < start) {
            self.finished.pop_front();
        }
        while self.tokens.get(1).is_some_and(|(t, _)| *t <= start) {
            self.tokens.pop_front();
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let pair = |mut v: Vec<f64>| {
            v.sort_unstable_by(f64::total_cmp);
            (!v.is_empty()).then(|| (percentile_sorted(&v, 50.0), percentile_sorted(&v, 99.0)))
        };
        let output_tok_s = match (self.tokens.front(), self.tokens.back()) {
            (Some(&(t0, n0)), Some(&(t1, n1))) if t1 > t0 => {
                Some(n1.saturating_sub(n0) as f64 / (t1 - t0).as_secs_f64())
            }
            _ => None,
        };
        Snapshot {
            requests: self.finished.len(),
            ttft_ms: pair(self.finished.iter().map(|(_, f)| f.ttft_ms).collect()),
            tpot_ms: pair(
                self.finished
                    .iter()
                    .filter_map(|(_, f)| f.tpot_ms)
                    .collect(),
            ),
            output_tok_s,
        }
    }
}

/// The live line: `last 10s: 42 req · TTFT p50 12.3 p99 45.6 ms · TPOT p50 ... ·
/// 1234 tok/s`; a figure without samples shows `-`.
pub fn render(window: Duration, s: &Snapshot) -> String {
    let pair = |p: Option<(f64, f64)>| match p {
        Some((p50, p99)) => format!("p50 {} p99 {} ms", ms(p50), ms(p99)),
        None => "-".to_string(),
    };
    let rate = match s.output_tok_s {
        Some(r) => format!("{r:.0} tok/s"),
        None => "- tok/s".to_string(),
    };
    format!(
        "last {}s: {} req · TTFT {} · TPOT {} · output {rate}",
        window.as_secs(),
        s.requests,
        pair(s.ttft_ms),
        pair(s.tpot_ms),
    )
}

/// Three significant figures or so: 0.842, 12.3, 456, 12345.
fn ms(v: f64) -> String {
    match v.abs() {
        a if a < 1.0 => format!("{v:.3}"),
        a if a < 100.0 => format!("{v:.1}"),
        _ => format!("{v:.0}"),
    }
}
