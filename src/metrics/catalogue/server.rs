//! The catalogue's server-side metrics: figures derived from what the server reported
//! about itself (its metrics endpoints, its per-request timings). Each is absent from a
//! run whose server did not report it.

#[allow(unused_imports)]
use super::{Better, Metric, Unit, value};
use super::{Distribution, Stat::P, latency};

// llama.cpp's per-request `timings` (`metrics::server_timing`).
pub const SERVER_PROMPT: Distribution = Distribution {
    key: "server_timings.prompt_ms",
    short: "server prompt",
    get: |s| s.server_timings.as_ref()?.prompt_ms.as_ref(),
};
pub const SERVER_DECODE: Distribution = Distribution {
    key: "server_timings.decode_ms_per_token",
    short: "server decode/token",
    get: |s| s.server_timings.as_ref()?.decode_ms_per_token.as_ref(),
};
pub const TTFT_GAP: Distribution = Distribution {
    key: "server_timings.ttft_gap_ms",
    short: "TTFT − server prompt",
    get: |s| s.server_timings.as_ref()?.ttft_gap_ms.as_ref(),
};

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
    // The GPUs' energy (`--metrics-url dcgm=URL`, `server/energy.rs`), per token: a
    // run's total joules grow with its size, so they are not judged (results.json and
    // the energy line keep them).
    value(
        "energy.j_per_output_token",
        "J per output token",
        Unit::JoulesPerToken,
        Better::Lower,
        |s| s.energy.as_ref()?.j_per_output_token,
    ),
    value(
        "energy.output_tokens_per_j",
        "output tokens per J",
        Unit::TokensPerJoule,
        Better::Higher,
        |s| s.energy.as_ref()?.output_tokens_per_j,
    ),
    latency(
        "server_timings.prompt_ms.p50",
        "server prompt p50 (ms)",
        &SERVER_PROMPT,
        P(50.0),
    ),
    latency(
        "server_timings.decode_ms_per_token.p50",
        "server decode p50 (ms/token)",
        &SERVER_DECODE,
        P(50.0),
    ),
    latency(
        "server_timings.ttft_gap_ms.p50",
        "TTFT − server prompt p50 (ms)",
        &TTFT_GAP,
        P(50.0),
    ),
    latency(
        "server_timings.ttft_gap_ms.p99",
        "TTFT − server prompt p99 (ms)",
        &TTFT_GAP,
        P(99.0),
    ),
];
