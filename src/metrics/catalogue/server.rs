//! The catalogue's server-side metrics: figures derived from what the server reported
//! about itself (its metrics endpoints, its per-request timings). Each is absent from a
//! run whose server did not report it.

#[allow(unused_imports)]
use super::{Better, Metric, Unit, value};

/// The server-side metrics, after the client's in `compare`.
pub const SERVER_METRICS: &[Metric] = &[];
