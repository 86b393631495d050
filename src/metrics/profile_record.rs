//! What results.json keeps of a run's profiling (`--profile`): the routes called, when
//! on the run's clock, over what window, and whether each call succeeded.

use serde::{Deserialize, Serialize};

/// A run's profiler calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ProfileRecord {
    pub start_url: String,
    pub stop_url: String,
    /// `--profile-requests`: the window's size in measured requests; absent when the
    /// whole run was profiled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_requests: Option<u64>,
    /// Window: measured requests that had finished when the stop call was sent (fewer
    /// than `window_requests` when the run ended first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_in_window: Option<u64>,
    /// Absent when no call was made (a window whose first request never went).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<ProfileCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<ProfileCall>,
}

/// One call to a profiler route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ProfileCall {
    /// When it was sent and answered, in seconds on the run's clock (negative: before
    /// the run's first request, as the whole run's start call is).
    pub sent_s: f64,
    pub answered_s: f64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ProfileRecord {
    /// The table's line: what was profiled, and when on the run's clock.
    pub fn line(&self) -> String {
        let what = match (self.window_requests, self.finished_in_window) {
            (Some(n), Some(f)) if f < n => {
                format!("a window of {n} measured requests (the run ended after {f})")
            }
            (Some(n), _) => format!("a window of {n} measured requests"),
            _ => "the whole run".to_string(),
        };
        let at = |c: &Option<ProfileCall>, verb: &str| match c {
            // A whole run's start answers just before the clock's zero: no "-0.000".
            Some(c) if c.ok => format!("{verb} at {:.3} s", c.answered_s.max(0.0)),
            Some(_) => format!("{verb} FAILED"),
            None => format!("not {verb}"),
        };
        format!(
            "{what}: {}, {} (POST {}, {})",
            at(&self.start, "started"),
            at(&self.stop, "stopped"),
            self.start_url,
            self.stop_url
        )
    }

    /// Both calls were made and succeeded.
    pub fn succeeded(&self) -> bool {
        [&self.start, &self.stop]
            .iter()
            .all(|c| c.as_ref().is_some_and(|c| c.ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_the_span_and_the_calls() {
        let ok = |t: f64| ProfileCall {
            sent_s: t - 0.1,
            answered_s: t,
            ok: true,
            error: None,
        };
        let mut r = ProfileRecord {
            start_url: "http://h/start_profile".into(),
            stop_url: "http://h/stop_profile".into(),
            window_requests: Some(8),
            finished_in_window: Some(8),
            start: Some(ok(0.32)),
            stop: Some(ok(0.763)),
        };
        assert_eq!(
            r.line(),
            "a window of 8 measured requests: started at 0.320 s, stopped at 0.763 s (POST http://h/start_profile, http://h/stop_profile)"
        );
        r.finished_in_window = Some(3);
        r.stop.as_mut().unwrap().ok = false;
        let l = r.line();
        assert!(
            l.contains("the run ended after 3") && l.contains("stopped FAILED"),
            "{l}"
        );
        r.start.as_mut().unwrap().answered_s = -0.0002;
        assert!(r.line().contains("started at 0.000 s,"), "{}", r.line());
        let whole = ProfileRecord {
            stop: None,
            ..ProfileRecord::default()
        };
        assert!(
            whole
                .line()
                .starts_with("the whole run: not started, not stopped")
        );
    }
}
