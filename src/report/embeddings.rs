//! The terminal table's lines for an embeddings run: inputs, input tokens and requests
//! per second, and no output figures (there is no output to count or time).

use crate::metrics::catalogue::{ITL, TPOT, TTFT, TTFT_FROM_SCHEDULE};
use crate::metrics::embeddings::EmbeddingTotals;
use crate::metrics::summary::Summary;

/// A latency row about output events, absent from an embeddings run's table.
pub(super) fn no_output_row(key: &str) -> bool {
    [TTFT.key, TPOT.key, ITL.key, TTFT_FROM_SCHEDULE.key].contains(&key)
}

/// Requests, throughput, tokens and concurrency of an embeddings run, a line each.
pub(super) fn totals(s: &Summary, e: &EmbeddingTotals) -> String {
    let mut out = super::table::requests_lines(s);
    out.push_str(&format!(
        "throughput {:.1} inputs/s · {:.1} input tok/s · {:.3} req/s (embeddings)\n",
        e.inputs_s, s.input_tok_s, s.req_s
    ));
    out.push_str(&format!(
        "tokens     {} in · {} inputs ({:.1} per request)",
        s.tokens.input, e.inputs, e.inputs_per_request
    ));
    if let Some(gap) = s.tokens.prompt_gap_mean {
        out.push_str(&format!(
            " · server counts {gap:+.1} prompt tokens per request"
        ));
    }
    out.push('\n');
    out.push_str(&format!(
        "concurrency max {} in flight (mean {:.2})\n",
        s.concurrency.max_in_flight, s.concurrency.mean_in_flight
    ));
    out
}
