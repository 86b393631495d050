//! What the client reports about each request as it goes. The live progress display
//! (`progress::Live`) and the failure counter behind `--max-error-rate`
//! (`schedule::FailureCounter`) subscribe; a run passes both as a pair.
//!
//! Calls come once per request, and once per read for output (never per event: a
//! shared counter bumped per event by both runtime threads was 15% of the client's
//! CPU). Observers are static types (generic, not `dyn`), so a call costs what the
//! counters it bumps cost.

use super::Outcome;

/// One request's progress. Every method has an empty default: a subscriber takes what
/// it needs.
pub trait RequestObserver: Sync {
    /// The request is about to go out (its first try).
    fn sent(&self) {}
    /// `n` more output events arrived in one read; `first` when they are its first.
    fn output(&self, n: u64, first: bool) {
        let _ = (n, first);
    }
    /// At the end, the server's token count replaces the event count: `delta` tokens
    /// more (or fewer) than events (events may carry several tokens).
    fn tokens_counted(&self, delta: i64) {
        let _ = delta;
    }
    /// The request ended, with output or not (`Outcome::had_output`), successfully or
    /// not (`Outcome::ok`): its whole outcome, timed, so a subscriber reads what it needs
    /// (the live view its TTFT and TPOT) without timing anything again.
    fn ended(&self, out: &Outcome) {
        let _ = out;
    }
}

impl<T: RequestObserver + ?Sized> RequestObserver for &T {
    fn sent(&self) {
        (**self).sent()
    }
    fn output(&self, n: u64, first: bool) {
        (**self).output(n, first)
    }
    fn tokens_counted(&self, delta: i64) {
        (**self).tokens_counted(delta)
    }
    fn ended(&self, out: &Outcome) {
        (**self).ended(out)
    }
}

/// Two subscribers, each told everything.
impl<A: RequestObserver, B: RequestObserver> RequestObserver for (A, B) {
    fn sent(&self) {
        self.0.sent();
        self.1.sent();
    }
    fn output(&self, n: u64, first: bool) {
        self.0.output(n, first);
        self.1.output(n, first);
    }
    fn tokens_counted(&self, delta: i64) {
        self.0.tokens_counted(delta);
        self.1.tokens_counted(delta);
    }
    fn ended(&self, out: &Outcome) {
        self.0.ended(out);
        self.1.ended(out);
    }
}
