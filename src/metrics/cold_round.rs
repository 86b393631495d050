//! Dual-round: was round 1 cold? A round 1 that finds its prompts already cached (left
//! by an earlier run with the same seed) measures a warm cache twice, and the rounds'
//! comparison then understates what the cache is worth.
//!
//! The evidence is the round's opening requests: those sent before any request of the
//! round had its first token. No prefill of the round had finished then, so whatever
//! the server found cached for them was there before the round (a later request may
//! legitimately hit a prefix, such as the chat template, that an earlier one of the
//! same round computed). Tokens cached up to the chat template's length (the server's
//! prompt tokens beyond the client's count) are allowed: every request shares that
//! prefix, and the connection test computed it already. Without cached tokens in
//! usage, the server's own prefix-cache hit rate over the round stands in
//! (`--metrics`), a coarser figure.

use super::summary::{Sample, Summary};
use super::validity::Flag;

/// The share of prompt tokens found cached above which round 1 is not cold.
pub const WARM_SHARE: f64 = 0.05;

/// The validity key of a warm round 1.
pub const CHECK: &str = "cold_round_warm";

/// Cached prompt tokens beyond the chat template over prompt tokens, of the successful
/// requests started before the round's first token, with their count; None when none
/// reported cached tokens.
pub fn opening_cached_share(samples: &[Sample]) -> Option<(f64, usize)> {
    let first_token = samples.iter().filter_map(|s| s.first).min()?;
    let (mut cached, mut prompt, mut n) = (0u64, 0u64, 0usize);
    for s in samples.iter().filter(|s| s.ok && s.started <= first_token) {
        let Some(c) = s.cached_tokens else { continue };
        let server = s.prompt_tokens.unwrap_or(s.input_tokens);
        let template = server.saturating_sub(s.input_tokens);
        cached += u64::from(c.saturating_sub(template));
        prompt += u64::from(server);
        n += 1;
    }
    (n > 0 && prompt > 0).then(|| (cached as f64 / prompt as f64, n))
}

/// The flag for round 1 of `level` when it was not cold.
pub fn check(samples: &[Sample], summary: &Summary, level: &str) -> Option<Flag> {
    let found = match opening_cached_share(samples) {
        Some((share, n)) => (
            share,
            format!(
                "{:.1} % of the prompt tokens of its {n} opening request(s) (those sent before the round's first token) as cached, beyond the chat template",
                share * 100.0
            ),
        ),
        None => {
            let rate = summary
                .server_metrics
                .as_ref()?
                .derived_starting("prefix_cache_hit_rate")?;
            (
                rate,
                format!(
                    "a prefix-cache hit rate of {:.1} % over the round",
                    rate * 100.0
                ),
            )
        }
    };
    let (share, what) = found;
    (share > WARM_SHARE).then(|| {
        Flag::new(
            CHECK,
            format!(
                "round 1 of {level} was not cold: the server reported {what} (over {:.0} %), left by an earlier run, \
                 so the rounds' comparison understates the cache. Empty the cache before round 1 \
                 (--reset-cache-url vllm, sglang, llamacpp or a URL) or send other prompts (another --seed)",
                WARM_SHARE * 100.0
            ),
        )
    })
}

#[cfg(test)]
#[path = "tests_cold_round.rs"]
mod tests;
