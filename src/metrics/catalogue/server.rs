//! The catalogue's server-side metrics: figures derived from what the server reported
//! about itself (its metrics endpoints, its per-request timings). Each is absent from a
//! run whose server did not report it.

#[allow(unused_imports)]
use super::{Better, Metric, Unit, value};

/// The server-side metrics, after the client's in `compare`.
pub const SERVER_METRICS: &[Metric] = &[
    // Speculative decoding (`metrics/server/spec.rs`): absent when nothing was drafted.
    value(
        "spec_decode.acceptance_rate",
        "spec. acceptance rate",
        Unit::Share,
        Better::Higher,
        |s| s.spec_decode.as_ref()?.acceptance_rate,
    ),
    value(
        "spec_decode.mean_accepted_length",
        "spec. mean accepted length (tokens)",
        Unit::Tokens,
        Better::Higher,
        |s| s.spec_decode.as_ref()?.mean_accepted_length,
    ),
];
