//! The validity checks a run's records alone can make (`validity.rs` holds the flags):
//! the client fell behind its schedule, a `--max-concurrency` cap held arrivals back,
//! the server did not honour `ignore_eos`. The checks of what only the live process
//! sees (its CPU, its file and port limits) are in `client_use.rs`.

use super::summary::{Sample, Summary};
use super::validity::{Flag, raise};
use crate::record::TokenSource;

/// Above this p99 schedule lag (ms) the client could not keep the timeline.
pub const LAG_WARN_MS: f64 = 5.0;
/// A capped open-loop run is flagged when this percentile of the queue wait (ms) is
/// above `LAG_WARN_MS`: one request in ten waited longer for a slot than the client
/// may lag.
pub const QUEUE_WAIT_PERCENTILE: f64 = 90.0;
/// A request stopped early when it produced under this share of its `max_tokens`
/// (room for a server that counts a few tokens differently, or stops at a stop word
/// near the end).
pub const EARLY_STOP_SHARE: f64 = 0.9;
/// `ignore_eos` is flagged when more than this share of the requests that could be
/// judged stopped early: most requests, so that a few truncated by the context window
/// do not flag a run.
pub const EARLY_STOPS_FLAGGED: f64 = 0.5;

/// The checks the records give again (`report`, `merge` recompute them); any other
/// flag is what a live process saw of itself and must be carried over.
pub const FROM_RECORDS: [&str; 4] = ["schedule_lag", "queue_wait", "ignore_eos", "ttft_gap"];

impl Summary {
    /// Add the flags of every check the records allow.
    pub(super) fn with_run_checks(mut self, samples: &[Sample]) -> Summary {
        self.raise_summary_checks();
        if let Some(f) = ignore_eos(samples) {
            raise(&mut self.validity, f);
        }
        self
    }

    /// The checks a saved summary still allows (a results.json written before they
    /// were flags shows them too).
    pub(super) fn raise_summary_checks(&mut self) {
        for f in [schedule_lag(self), queue_wait(self)].into_iter().flatten() {
            raise(&mut self.validity, f);
        }
    }
}

/// The client started requests later than the schedule said.
pub fn schedule_lag(s: &Summary) -> Option<Flag> {
    let p99 = s.schedule_lag_ms.as_ref()?.percentile(99.0)?;
    (p99 > LAG_WARN_MS).then(|| {
        Flag::new(
            "schedule_lag",
            format!(
                "schedule lag p99 {p99:.2} ms > {LAG_WARN_MS} ms: the client, not the server, limited this run; \
                 run the client on a less busy machine or split the load over processes (--shard)"
            ),
        )
    })
}

/// Open loop under `--max-concurrency`: requests waited for a slot, so the server saw
/// a lower arrival rate than asked for. With sessions a request also waits for its
/// earlier turn, which is the workload, not a limit: not judged.
pub fn queue_wait(s: &Summary) -> Option<Flag> {
    if s.sessions.is_some() || s.by_turn.is_some() {
        return None;
    }
    let w = s.queue_wait_ms.as_ref()?;
    let p = w.percentile(QUEUE_WAIT_PERCENTILE)?;
    (p > LAG_WARN_MS).then(|| {
        Flag::new(
            "queue_wait",
            format!(
                "requests waited for a --max-concurrency slot (p{QUEUE_WAIT_PERCENTILE:.0} {p:.1} ms, max {:.1} ms): \
                 the cap, not the server, held arrivals back, so the server saw less than the rate asked for; \
                 raise --max-concurrency or lower the rate",
                w.max
            ),
        )
    })
}

/// Requests sent with `ignore_eos` whose output fell well short of their `max_tokens`.
/// Only server-counted outputs are judged (usage): a client tokenizer's count or an
/// event count may differ from the server's by more than the margin.
pub fn ignore_eos(samples: &[Sample]) -> Option<Flag> {
    let judged = samples.iter().filter(|s| {
        s.ok && s.source == TokenSource::Usage && s.expected_output.is_some_and(|n| n > 0)
    });
    let (mut n, mut short) = (0u64, 0u64);
    for s in judged {
        n += 1;
        let expected = f64::from(s.expected_output.unwrap_or(0));
        if f64::from(s.output_tokens) < EARLY_STOP_SHARE * expected {
            short += 1;
        }
    }
    (n > 0 && short as f64 > EARLY_STOPS_FLAGGED * n as f64).then(|| {
        Flag::new(
            "ignore_eos",
            format!(
                "the server stopped early: {short} of {n} requests produced under {:.0}% of their max_tokens; \
                 ignore_eos is not honoured by this server, so output lengths are not the intended workload \
                 (use a server that honours it, or --no-ignore-eos and judge the lengths it gives)",
                EARLY_STOP_SHARE * 100.0
            ),
        )
    })
}

#[cfg(test)]
#[path = "tests_run_checks.rs"]
mod tests;
