//! What results.json keeps of a run's profiling (`--profile`): the routes called, when
//! on the run's clock, over what window, and whether each call succeeded.

use serde::{Deserialize, Serialize};

/// A run's profiler calls.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// Both calls were made and succeeded.
    pub fn succeeded(&self) -> bool {
        [&self.start, &self.stop]
            .iter()
            .all(|c| c.as_ref().is_some_and(|c| c.ok))
    }
}
