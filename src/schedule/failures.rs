//! The failure counter behind `--max-error-rate`: a subscriber to every request's end.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::client::RequestObserver;

/// Requests ended before `--max-error-rate` can stop a run.
pub const MIN_ENDED_FOR_ERROR_RATE: u64 = 10;

/// Ended and failed requests of one run, in one word (ended in the low half, failed in
/// the high half) so that counting a request's end is a single atomic add.
#[derive(Debug, Default)]
pub struct FailureCounter(AtomicU64);

impl FailureCounter {
    /// More than `max` of the ended requests failed (after the first few).
    pub fn exceeded(&self, max: Option<f64>) -> bool {
        let Some(max) = max else { return false };
        let v = self.0.load(Relaxed);
        let (ended, failed) = (v & 0xFFFF_FFFF, v >> 32);
        ended >= MIN_ENDED_FOR_ERROR_RATE && failed as f64 > max * ended as f64
    }
}

impl RequestObserver for FailureCounter {
    fn ended(&self, out: &crate::client::Outcome) {
        self.0.fetch_add(1 | (u64::from(!out.ok()) << 32), Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Outcome;
    use crate::record::FailureKind;

    fn ended(ok: bool) -> Outcome {
        Outcome {
            failure: (!ok).then(|| (FailureKind::HttpStatus, "500".to_string())),
            ..Outcome::default()
        }
    }

    #[test]
    fn over_the_share_after_the_first_few() {
        let c = FailureCounter::default();
        for i in 0..9 {
            c.ended(&ended(i % 2 == 0));
        }
        assert!(!c.exceeded(Some(0.1)), "fewer than 10 ended");
        c.ended(&ended(false));
        // 5 of 10 failed.
        assert!(c.exceeded(Some(0.4)));
        assert!(!c.exceeded(Some(0.5)));
        assert!(!c.exceeded(None));
    }
}
