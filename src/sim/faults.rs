//! Injected faults: which request gets which fault, and what each looks like on the wire.
//!
//! Requests are numbered by an *ordinal*: completion requests (`/v1/chat/completions`
//! and `/v1/completions`, valid or not) in the order their handlers start, from 0.
//! Other routes (`/v1/models`, `/metrics`, ...) do not count. servescope's connection
//! test is the first completion request it sends, so against a fresh simulator it is
//! ordinal 0 and a run's requests start at 1.
//!
//! [`FaultConfig::decide`] maps an ordinal to at most one fault, as a pure function of
//! the settings (seed included), so the same settings fault the same ordinals in every
//! run. Schedules come first: a kind whose `at` holds the ordinal fires, and if several
//! do, the first in [`FaultKind::ALL`] (the priority order) wins. Otherwise one uniform
//! draw from a stable hash of (seed, ordinal) is laid over the rates in priority order
//! (`drop` takes [0, r₁), `http_500` the next r₂, ...), so each kind fires on its
//! own rate exactly and never two at once; the rates must add up to at most 1.

use std::collections::BTreeSet;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::stream::mix;
use crate::record::FailureKind;

/// One kind of fault. The variants are in priority order (see the module docs); what
/// each does is in its row of [`KINDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    Drop,
    Http500,
    Http429,
    SlowHeaders,
    Cut,
    ErrorEvent,
    Malformed,
    Stall,
}

/// When a fault is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before any response, so the request never reaches generation.
    BeforeResponse,
    /// At the response headers.
    Headers,
    /// Part-way through the output (see [`fault_point`]).
    MidOutput,
}

/// Everything that sets one kind apart. Every list of kinds (priority, names, the
/// config's and the counters' fields, the client's expected failure, the flags of
/// `servescope sim`) is read from [`KINDS`], one row per kind.
pub struct KindInfo {
    pub kind: FaultKind,
    /// The name in the config file (`faults.<name>`).
    pub name: &'static str,
    /// The flag of the kind's share of requests: `fault-<name>` with `-` for `_`.
    pub rate_flag: &'static str,
    /// The flag of the ordinals that get the kind: `<rate_flag>-at`.
    pub at_flag: &'static str,
    /// Help of `rate_flag`, before its default (0).
    pub rate_help: &'static str,
    /// What `at_flag`'s ordinals get, for its help ("a dropped connection").
    pub at_what: &'static str,
    /// The flag of a setting of this kind alone (how late, how long), if it has one.
    pub param: Option<ParamFlag>,
    /// What a client sees: the kind described in one line (the row's own documentation).
    pub effect: &'static str,
    pub phase: Phase,
    /// How servescope's client records a streamed request with this fault. `None`: it
    /// succeeds (slow headers, and a bounded stall), unless a timeout of the client's
    /// fires first; a stall without end is ended only by such a timeout.
    pub expected_failure: Option<FailureKind>,
    /// The client cannot accept the response, so it does not count as completed.
    pub spoils: bool,
    spec: fn(&FaultConfig) -> &FaultSpec,
    spec_mut: fn(&mut FaultConfig) -> &mut FaultSpec,
    count: fn(&mut FaultCounts) -> &mut u64,
}

/// A flag that sets a number of one kind's own (`--fault-retry-after`).
pub struct ParamFlag {
    pub long: &'static str,
    pub value_name: &'static str,
    /// With its default, which differs from flag to flag.
    pub help: &'static str,
    pub set: fn(&mut FaultConfig, u64),
}

/// One row of [`KINDS`]: the kind, its field name in the config and the counters, its
/// flags' stem (the field name with `-` for `_`), then the rest of [`KindInfo`]'s fields.
macro_rules! kind {
    ($kind:ident, $field:ident, $flag:literal { $($rest:tt)* }) => {
        KindInfo {
            kind: FaultKind::$kind,
            name: stringify!($field),
            rate_flag: concat!("fault-", $flag),
            at_flag: concat!("fault-", $flag, "-at"),
            spec: |c| &c.$field,
            spec_mut: |c| &mut c.$field,
            count: |c| &mut c.$field,
            $($rest)*
        }
    };
}

/// How many kinds there are.
pub const KIND_COUNT: usize = 8;

/// The kinds in priority order (the order of [`FaultKind`]'s variants).
pub const KINDS: [KindInfo; KIND_COUNT] = [
    kind!(Drop, drop, "drop" {
        rate_help: "Share of requests whose connection is reset (RST) without any response, \
                    after the request was read (not a refused connection: that cannot be tied \
                    to a request)",
        at_what: "a dropped connection",
        param: None,
        effect: "the connection is reset after the request was read, with no response at all",
        phase: Phase::BeforeResponse,
        // Not a connect error: the TCP connection was made and the request sent.
        expected_failure: Some(FailureKind::StreamCut),
        spoils: true,
    }),
    kind!(Http500, http_500, "http-500" {
        rate_help: "Share of requests answered HTTP 500 with a JSON error",
        at_what: "HTTP 500",
        param: None,
        effect: "HTTP 500 with an OpenAI-style JSON error body",
        phase: Phase::BeforeResponse,
        expected_failure: Some(FailureKind::HttpStatus),
        spoils: true,
    }),
    kind!(Http429, http_429, "http-429" {
        rate_help: "Share of requests answered HTTP 429 with Retry-After and a JSON error",
        at_what: "HTTP 429",
        param: Some(ParamFlag {
            long: "fault-retry-after",
            value_name: "S",
            help: "Retry-After of an injected 429, seconds [default: 1]",
            set: |c, s| c.retry_after_s = s,
        }),
        effect: "HTTP 429 with Retry-After and a JSON error body",
        phase: Phase::BeforeResponse,
        expected_failure: Some(FailureKind::HttpStatus),
        spoils: true,
    }),
    kind!(SlowHeaders, slow_headers, "slow-headers" {
        rate_help: "Share of requests whose response headers come late (timing still counts \
                    from arrival)",
        at_what: "slow headers",
        param: Some(ParamFlag {
            long: "fault-slow-headers-ms",
            value_name: "MS",
            help: "How late slow headers come, ms after arrival [default: 2000]",
            set: |c, ms| c.slow_headers_ms = ms,
        }),
        effect: "the response headers come late; the response is otherwise normal",
        phase: Phase::Headers,
        expected_failure: None,
        spoils: false,
    }),
    kind!(Cut, cut, "cut" {
        rate_help: "Share of requests whose connection is closed after half of the output \
                    tokens, without the end of the body",
        at_what: "a cut stream",
        param: None,
        effect: "after half of the output, the connection is closed mid-body",
        phase: Phase::MidOutput,
        expected_failure: Some(FailureKind::StreamCut),
        spoils: true,
    }),
    kind!(ErrorEvent, error_event, "error-event" {
        rate_help: "Share of streams that end after half of the output tokens with an \
                    {\"error\": ...} event (no [DONE])",
        at_what: "an error event",
        param: None,
        effect: "after half of the output, a data: {\"error\": ...} event ends the stream",
        phase: Phase::MidOutput,
        expected_failure: Some(FailureKind::ErrorEvent),
        spoils: true,
    }),
    kind!(Malformed, malformed, "malformed" {
        rate_help: "Share of streams with an event that is not JSON after half of the output \
                    tokens; the stream then goes on to [DONE]",
        at_what: "a malformed event",
        param: None,
        effect: "after half of the output, an event that is not JSON; the stream then goes on",
        phase: Phase::MidOutput,
        expected_failure: Some(FailureKind::InvalidResponse),
        spoils: true,
    }),
    kind!(Stall, stall, "stall" {
        rate_help: "Share of streams that send nothing for --fault-stall-ms after half of the \
                    output tokens, then go on",
        at_what: "a stall",
        param: Some(ParamFlag {
            long: "fault-stall-ms",
            value_name: "MS",
            help: "How long a stall lasts, ms [default: until the client goes away]",
            set: |c, ms| c.stall_ms = Some(ms),
        }),
        effect: "after half of the output, no bytes for a while (or until the client leaves)",
        phase: Phase::MidOutput,
        expected_failure: None,
        spoils: false,
    }),
];

/// `flag` is `fault-<name>` with `-` for `_`.
const fn is_flag_of(name: &str, flag: &str) -> bool {
    let (name, flag) = (name.as_bytes(), flag.as_bytes());
    if flag.len() != name.len() + "fault-".len() {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        let want = if name[i] == b'_' { b'-' } else { name[i] };
        if flag["fault-".len() + i] != want {
            return false;
        }
        i += 1;
    }
    true
}

// Each row sits at its kind's index, so `info` is a lookup, and names its flags after
// its config key.
const _: () = {
    let mut i = 0;
    while i < KIND_COUNT {
        assert!(KINDS[i].kind as usize == i);
        assert!(is_flag_of(KINDS[i].name, KINDS[i].rate_flag));
        i += 1;
    }
};

impl FaultKind {
    /// Every kind, in priority order.
    pub const ALL: [FaultKind; KIND_COUNT] = {
        let mut all = [FaultKind::Drop; KIND_COUNT];
        let mut i = 0;
        while i < KIND_COUNT {
            all[i] = KINDS[i].kind;
            i += 1;
        }
        all
    };

    /// This kind's row of [`KINDS`].
    pub fn info(self) -> &'static KindInfo {
        &KINDS[self as usize]
    }

    /// The name used in the config file (`faults.<name>`) and, with `-` for `_`, in
    /// the flags (`--fault-<name>`, see [`KindInfo::rate_flag`]).
    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    /// See [`KindInfo::expected_failure`].
    pub fn expected_failure(self) -> Option<FailureKind> {
        self.info().expected_failure
    }

    pub(super) fn before_response(self) -> bool {
        self.info().phase == Phase::BeforeResponse
    }

    pub(super) fn mid_output(self) -> bool {
        self.info().phase == Phase::MidOutput
    }

    pub(super) fn spoils(self) -> bool {
        self.info().spoils
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When one kind fires: on a share of requests, and/or on given ordinals.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Probability per completion request, 0 to 1.
    pub rate: f64,
    /// Request ordinals that get this fault, whatever the rates.
    pub at: BTreeSet<u64>,
}

impl FaultSpec {
    fn is_off(&self) -> bool {
        self.rate == 0.0 && self.at.is_empty()
    }
}

/// Which requests get which fault, and the faults' parameters. The default injects
/// nothing.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the rate draws: the same seed faults the same ordinals.
    pub seed: u64,
    pub drop: FaultSpec,
    pub http_500: FaultSpec,
    pub http_429: FaultSpec,
    pub slow_headers: FaultSpec,
    pub cut: FaultSpec,
    pub error_event: FaultSpec,
    pub malformed: FaultSpec,
    pub stall: FaultSpec,
    /// `Retry-After` of a 429, seconds.
    pub retry_after_s: u64,
    /// How late slow headers come, ms from the request's arrival.
    pub slow_headers_ms: u64,
    /// How long a stall lasts, ms; `None`: until the client goes away.
    pub stall_ms: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 0,
            drop: FaultSpec::default(),
            http_500: FaultSpec::default(),
            http_429: FaultSpec::default(),
            slow_headers: FaultSpec::default(),
            cut: FaultSpec::default(),
            error_event: FaultSpec::default(),
            malformed: FaultSpec::default(),
            stall: FaultSpec::default(),
            retry_after_s: 1,
            slow_headers_ms: 2000,
            stall_ms: None,
        }
    }
}

impl FaultConfig {
    pub fn spec(&self, kind: FaultKind) -> &FaultSpec {
        (kind.info().spec)(self)
    }

    pub fn spec_mut(&mut self, kind: FaultKind) -> &mut FaultSpec {
        (kind.info().spec_mut)(self)
    }

    /// No fault can fire.
    pub fn is_off(&self) -> bool {
        FaultKind::ALL.iter().all(|&k| self.spec(k).is_off())
    }

    /// The fault of the request with this ordinal, if any (see the module docs).
    pub fn decide(&self, ordinal: u64) -> Option<FaultKind> {
        if let Some(k) = FaultKind::ALL
            .into_iter()
            .find(|&k| self.spec(k).at.contains(&ordinal))
        {
            return Some(k);
        }
        if FaultKind::ALL.iter().all(|&k| self.spec(k).rate <= 0.0) {
            return None;
        }
        let u = unit(self.seed, ordinal);
        let mut upto = 0.0;
        FaultKind::ALL.into_iter().find(|&k| {
            let rate = self.spec(k).rate;
            upto += rate;
            // `rate > 0`: a zero-width share must not catch a draw at its boundary.
            rate > 0.0 && u < upto
        })
    }

    /// Checks the rates; the message names the settings by their keys (`http_500`).
    pub fn validate(&self) -> Result<(), String> {
        self.check(|kind| kind.as_str().to_string())
    }

    /// [`Self::validate`] with `name` rendering a kind's rate setting (e.g. as a flag).
    pub(crate) fn check(&self, name: impl Fn(FaultKind) -> String) -> Result<(), String> {
        for kind in FaultKind::ALL {
            let rate = self.spec(kind).rate;
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "{}: expected a probability from 0 to 1, got {rate}",
                    name(kind)
                ));
            }
        }
        let set: Vec<FaultKind> = FaultKind::ALL
            .into_iter()
            .filter(|&k| self.spec(k).rate > 0.0)
            .collect();
        let sum: f64 = set.iter().map(|&k| self.spec(k).rate).sum();
        // A little slack so that rates meant to add up to 1 (0.7 + 0.2 + 0.1) do.
        if sum > 1.0 + 1e-9 {
            let parts: Vec<String> = set
                .iter()
                .map(|&k| format!("{} {}", name(k), self.spec(k).rate))
                .collect();
            return Err(format!(
                "fault rates add up to {sum} ({}): a request gets at most one fault, so \
                 they must add up to at most 1",
                parts.join(", ")
            ));
        }
        Ok(())
    }
}

/// A uniform draw in [0, 1) from (seed, ordinal): splitmix64 twice, stable across
/// platforms and Rust versions (no thread RNG, no `Hash`).
fn unit(seed: u64, ordinal: u64) -> f64 {
    // The constant keeps these draws apart from the output-length draws on the same seed.
    let h = mix(mix(seed ^ 0x6661_756c_7473_0001).wrapping_add(ordinal));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// How many output tokens go out before a mid-output fault: half, but at least one, so
/// the client has seen output when the fault comes.
pub(super) fn fault_point(output_tokens: u32) -> u32 {
    (output_tokens / 2).max(1)
}

/// Faults injected so far, per kind: what a client should have recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub drop: u64,
    pub http_500: u64,
    pub http_429: u64,
    pub slow_headers: u64,
    pub cut: u64,
    pub error_event: u64,
    pub malformed: u64,
    pub stall: u64,
}

impl FaultCounts {
    pub fn get(&self, kind: FaultKind) -> u64 {
        // A copy, so that one match (in `slot`) serves reads and writes.
        let mut copy = *self;
        *copy.slot(kind)
    }

    pub fn total(&self) -> u64 {
        FaultKind::ALL.iter().map(|&k| self.get(k)).sum()
    }

    pub(super) fn add(&mut self, kind: FaultKind) {
        *self.slot(kind) += 1;
    }

    fn slot(&mut self, kind: FaultKind) -> &mut u64 {
        (kind.info().count)(self)
    }
}

/// Every injected message starts with this, so a log shows the fault was on purpose.
const TAG: &str = "servescope-sim injected fault";

fn error_body(message: String, kind: &str, code: u16) -> serde_json::Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// The `http_500` response.
pub(super) fn http_500() -> Response {
    let body = error_body(format!("{TAG}: internal server error"), "server_error", 500);
    (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
}

/// The `http_429` response, with `Retry-After: retry_after_s`.
pub(super) fn http_429(retry_after_s: u64) -> Response {
    let body = error_body(
        format!("{TAG}: rate limit reached, retry after {retry_after_s} s"),
        "rate_limit_error",
        429,
    );
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    resp
}

/// The `error_event` payload (also the whole body of a non-streamed response).
pub(super) fn error_json() -> String {
    error_body(
        format!("{TAG}: the server failed while generating"),
        "server_error",
        500,
    )
    .to_string()
}

/// The `malformed` payload: a chunk cut short, as a broken proxy might pass it on.
pub(super) const MALFORMED_JSON: &str = r#"{"choices": ["#;
