//! How clap reads the values of the flags: number checks, and the possible values of
//! the domain's enums (written here, so the domain modules need no clap derive).

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::client::openai::Api;
use crate::schedule::arrivals::RampUp;
use crate::settings::ResetBetween;
use crate::workload::synthetic::SyntheticKind;
use crate::workload::trace::TraceFormat;
use crate::workload::trace_file::Overflow;
use crate::workload::trace_reshape::TracePrompts;

pub(crate) fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?}: expected a share between 0 and 1, e.g. 0.1")),
    }
}

pub(crate) fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?}: expected a number > 0")),
    }
}

pub(crate) fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?}: expected a number ≥ 0")),
    }
}

/// A count that must be at least 1. Its flag also takes negative numbers as values, so
/// `-1` gets this message rather than clap's "unexpected argument".
pub(crate) fn positive_int<T: std::str::FromStr + PartialOrd + From<u8>>(
    s: &str,
) -> Result<T, String> {
    match s.trim().parse::<T>() {
        Ok(v) if v >= T::from(1) => Ok(v),
        _ => Err("expected a positive integer".into()),
    }
}

/// A count that may be 0 (as `positive_int`, negative numbers reach it).
pub(crate) fn whole<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse::<T>()
        .map_err(|_| "expected a whole number ≥ 0".to_string())
}

/// A duration in seconds: finite and not negative.
pub(crate) fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?}: expected a number of seconds ≥ 0")),
    }
}

impl ValueEnum for Api {
    fn value_variants<'a>() -> &'a [Self] {
        &[Api::Chat, Api::Completions, Api::Responses, Api::Embeddings]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

impl ValueEnum for SyntheticKind {
    fn value_variants<'a>() -> &'a [Self] {
        &[SyntheticKind::Words, SyntheticKind::RandomIds]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            SyntheticKind::Words => PossibleValue::new("words").help(
                "Random safe words (a space and lowercase letters, one token each) from the \
                 lower half of the vocabulary: exact by construction, no tokenizer work per prompt",
            ),
            SyntheticKind::RandomIds => PossibleValue::new("random-ids").help(
                "mini-sglang's algorithm: random token ids from the lower half, decoded and \
                 re-encoded until the count is exact (~0.1 ms per 128 tokens)",
            ),
        })
    }
}

impl ValueEnum for TraceFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            TraceFormat::Qwen,
            TraceFormat::Mooncake,
            TraceFormat::Azure,
            TraceFormat::BurstGpt,
        ]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

impl ValueEnum for Overflow {
    fn value_variants<'a>() -> &'a [Self] {
        &[Overflow::Clip, Overflow::Skip]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Overflow::Clip => PossibleValue::new("clip")
                .help("Shorten the prompt (and the output if it alone is too long) to fit"),
            Overflow::Skip => PossibleValue::new("skip").help("Leave the request out"),
        })
    }
}

impl ValueEnum for TracePrompts {
    fn value_variants<'a>() -> &'a [Self] {
        &[TracePrompts::HashIds, TracePrompts::Unique]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            TracePrompts::HashIds => PossibleValue::new(self.as_str()).help(
                "Built from the trace's hash ids: requests that shared a prefix share it here",
            ),
            TracePrompts::Unique => PossibleValue::new(self.as_str())
                .help("Every prompt distinct: nothing for a prefix cache to find"),
        })
    }
}

impl ValueEnum for RampUp {
    fn value_variants<'a>() -> &'a [Self] {
        &[RampUp::Linear, RampUp::Exponential]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            RampUp::Linear => {
                PossibleValue::new("linear").help("The rate rises in a straight line from 0")
            }
            RampUp::Exponential => PossibleValue::new("exponential")
                .help("The rate grows by the same factor every instant, from 1 % of the target"),
        })
    }
}

impl ValueEnum for ResetBetween {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            ResetBetween::Rounds,
            ResetBetween::Levels,
            ResetBetween::Both,
        ]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            ResetBetween::Rounds => PossibleValue::new("rounds")
                .help("Before every round after the first (each round starts cold)"),
            ResetBetween::Levels => PossibleValue::new("levels").help(
                "Before every concurrency level (each level starts cold; rounds share the cache)",
            ),
            ResetBetween::Both => PossibleValue::new("both").help("Both"),
        })
    }
}
