//! The simulator's reasoning phase (`--reasoning-tokens N|LO:HI`): a chat answer's first
//! tokens stream as reasoning (`delta.reasoning_content`, vLLM's field, or
//! `delta.reasoning`, newer vLLM's), then the answer as `content`; usage counts them in
//! `completion_tokens_details.reasoning_tokens`. As on real servers, reasoning counts
//! toward `max_tokens`: with max_tokens ≤ the reasoning drawn, the answer never starts.

use serde::{Deserialize, Serialize};

use super::stream::mix;

/// How many reasoning tokens each chat answer starts with: drawn per request from
/// `min..=max` (seed and prompt decide, like output lengths).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasoningTokens {
    pub min: u32,
    pub max: u32,
}

/// The delta field reasoning text streams in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningField {
    /// vLLM's `reasoning_content` (DeepSeek's name; what most clients read).
    #[default]
    ReasoningContent,
    /// `reasoning`, which newer vLLM versions send.
    Reasoning,
}

impl ReasoningField {
    pub fn key(self) -> &'static str {
        match self {
            ReasoningField::ReasoningContent => "reasoning_content",
            ReasoningField::Reasoning => "reasoning",
        }
    }

    pub fn parse(s: &str) -> Result<ReasoningField, String> {
        match s {
            "reasoning_content" => Ok(ReasoningField::ReasoningContent),
            "reasoning" => Ok(ReasoningField::Reasoning),
            _ => Err(format!(
                "expected reasoning_content or reasoning, got {s:?}"
            )),
        }
    }
}

/// Keeps the reasoning draw independent of the output-length draw.
const SALT: u64 = 0x7265_6173_6f6e_696e;

impl ReasoningTokens {
    /// `N` or `LO:HI` (LO ≤ HI).
    pub fn parse(s: &str) -> Result<ReasoningTokens, String> {
        let num = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("expected a token count N or a range LO:HI, got {s:?}"))
        };
        let (min, max) = match s.split_once(':') {
            Some((lo, hi)) => (num(lo)?, num(hi)?),
            None => (num(s)?, num(s)?),
        };
        if min > max {
            return Err(format!("the range {s:?} is empty: LO must not exceed HI"));
        }
        Ok(ReasoningTokens { min, max })
    }

    /// This request's reasoning tokens, from the seed and the prompt's hash.
    pub fn draw(self, seed: u64, prompt_hash: u64) -> u32 {
        let span = u64::from(self.max - self.min) + 1;
        self.min + (mix(seed ^ prompt_hash ^ SALT) % span) as u32
    }
}

/// Output tokens of a request that reasons for `reasoning` tokens: with `ignore_eos`,
/// `max_tokens`; else the reasoning, then an answer of 1..=(max_tokens − reasoning)
/// tokens drawn as before (without reasoning, the simulator's plain length). Reasoning
/// that reaches `max_tokens` leaves no answer.
pub(super) fn output_tokens(reasoning: u32, max_tokens: u32, ignore_eos: bool, draw: u64) -> u32 {
    if ignore_eos || reasoning >= max_tokens {
        return max_tokens;
    }
    reasoning + 1 + (draw % u64::from(max_tokens - reasoning)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_and_ranges() {
        assert_eq!(
            ReasoningTokens::parse("16").unwrap(),
            ReasoningTokens { min: 16, max: 16 }
        );
        assert_eq!(
            ReasoningTokens::parse("8:32").unwrap(),
            ReasoningTokens { min: 8, max: 32 }
        );
        assert!(
            ReasoningTokens::parse("32:8")
                .unwrap_err()
                .contains("empty")
        );
        assert!(ReasoningTokens::parse("x").unwrap_err().contains("LO:HI"));
        assert!(ReasoningTokens::parse("-1").is_err());
        assert_eq!(
            ReasoningField::parse("reasoning").unwrap().key(),
            "reasoning"
        );
        assert!(ReasoningField::parse("thinking").is_err());
    }

    #[test]
    fn draws_stay_in_range_and_repeat() {
        let r = ReasoningTokens { min: 8, max: 12 };
        let draws: Vec<u32> = (0..200).map(|h| r.draw(7, h)).collect();
        assert!(draws.iter().all(|d| (8..=12).contains(d)));
        assert!((8..=12).all(|v| draws.contains(&v)), "every value drawn");
        assert_eq!(draws, (0..200).map(|h| r.draw(7, h)).collect::<Vec<_>>());
        assert_eq!(ReasoningTokens { min: 5, max: 5 }.draw(1, 2), 5);
    }

    #[test]
    fn reasoning_counts_toward_max_tokens() {
        assert_eq!(output_tokens(10, 64, true, 99), 64);
        assert_eq!(output_tokens(64, 64, false, 99), 64, "no answer");
        assert_eq!(output_tokens(80, 64, false, 99), 64);
        // The answer takes 1..=(max − reasoning) tokens.
        assert_eq!(output_tokens(10, 64, false, 0), 11);
        assert_eq!(output_tokens(10, 64, false, 53), 64);
        // Without reasoning: the plain draw, 1 + draw % max.
        assert_eq!(output_tokens(0, 64, false, 70), 1 + 70 % 64);
    }
}
