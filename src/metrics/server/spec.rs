//! Speculative-decoding figures of a run from the server's metrics (`--metrics
//! spec-decode`): the acceptance rate and the mean accepted length, with vLLM's own
//! definitions (vllm/v1/spec_decode/metrics.py):
//!
//! - acceptance rate = Δ`vllm:spec_decode_num_accepted_tokens` / Δ`…num_draft_tokens`
//! - mean accepted length = 1 + Δaccepted tokens / Δ`…num_drafts` (the bonus token
//!   the target model samples itself counts, as vLLM's logs count it)
//!
//! counted over the run and, for the chart, over each interval between two scrapes.
//! SGLang exposes no counters, only gauges over its last logging window
//! (`sglang:spec_accept_length`, the mean accepted length with the bonus token, and in
//! newer versions `sglang:spec_accept_rate`): their mean over the run's samples stands
//! in, and the `from` field says so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Series, SeriesValue, ServerMetrics};

pub(super) const DRAFTS: &str = "vllm:spec_decode_num_drafts";
pub(super) const DRAFT_TOKENS: &str = "vllm:spec_decode_num_draft_tokens";
pub(super) const ACCEPTED: &str = "vllm:spec_decode_num_accepted_tokens";
pub(super) const PER_POS: &str = "vllm:spec_decode_num_accepted_tokens_per_pos";
pub(super) const SGLANG_LENGTH: &str = "sglang:spec_accept_length";
pub(super) const SGLANG_RATE: &str = "sglang:spec_accept_rate";

/// The `spec-decode` preset: each engine's names (a server has one engine's).
pub(super) const SPEC_DECODE: &[&str] = &[
    DRAFTS,
    DRAFT_TOKENS,
    ACCEPTED,
    PER_POS,
    SGLANG_LENGTH,
    SGLANG_RATE,
];

/// A `spec-decode` name is not "missing" from a server that showed the other engine's:
/// the preset lists both engines' names.
pub(super) fn other_engine_seen(name: &str, seen: impl Fn(&str) -> bool) -> bool {
    let engine = |n: &str| n.split(':').next().unwrap_or("").to_string();
    SPEC_DECODE.contains(&name)
        && SPEC_DECODE
            .iter()
            .any(|&o| engine(o) != engine(name) && seen(o))
}

/// A run's speculative-decoding figures (`summary.spec_decode` in results.json).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SpecDecode {
    /// Accepted draft tokens per draft token (0..1); absent when nothing was drafted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acceptance_rate: Option<f64>,
    /// Tokens per verified draft, the bonus token included (1..K+1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_accepted_length: Option<f64>,
    /// Counter increases over the run (vLLM); absent from SGLang's gauges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drafts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draft_tokens: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_tokens: Option<f64>,
    /// Acceptance rate by draft position: Δaccepted at the position / Δdrafts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_position: Vec<f64>,
    /// How the figures were computed.
    pub from: String,
    /// [seconds since the scrape before the run, acceptance rate over the interval
    /// ending then], for the chart; null where nothing was drafted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub over_time: Vec<(f64, Option<f64>)>,
}

/// The figures, from vLLM's counters when the server has them, else SGLang's gauges;
/// `None` when it has neither.
pub fn figures(m: &ServerMetrics) -> Option<SpecDecode> {
    from_counters(&m.series).or_else(|| from_gauges(&m.series))
}

/// The counters of one name, over every label set (engines of a data-parallel
/// server are summed, as a PromQL `sum()` would).
fn counters<'a>(series: &'a [Series], name: &'a str) -> impl Iterator<Item = &'a Series> {
    series.iter().filter(move |s| {
        s.name.strip_suffix("_total").unwrap_or(&s.name) == name
            && matches!(s.value, SeriesValue::Counter(_))
    })
}

fn delta_sum(series: &[Series], name: &str) -> Option<f64> {
    counters(series, name)
        .filter_map(|s| match &s.value {
            SeriesValue::Counter(c) => Some(c.delta),
            SeriesValue::Gauge { .. } => None,
        })
        .reduce(|a, b| a + b)
}

fn from_counters(series: &[Series]) -> Option<SpecDecode> {
    let drafts = delta_sum(series, DRAFTS);
    let draft_tokens = delta_sum(series, DRAFT_TOKENS);
    let accepted = delta_sum(series, ACCEPTED)?;
    if drafts.is_none() && draft_tokens.is_none() {
        return None;
    }
    let per = |a: f64, d: Option<f64>| d.filter(|&d| d > 0.0).map(|d| a / d);
    let labels = counters(series, ACCEPTED).count();
    let mut from = format!("Δ{ACCEPTED} / Δ{DRAFT_TOKENS}; 1 + Δ{ACCEPTED} / Δ{DRAFTS}");
    if labels > 1 {
        from.push_str(&format!(" (summed over {labels} label sets)"));
    }
    Some(SpecDecode {
        acceptance_rate: per(accepted, draft_tokens),
        mean_accepted_length: per(accepted, drafts).map(|x| 1.0 + x),
        drafts,
        draft_tokens,
        accepted_tokens: Some(accepted),
        per_position: per_position(series, drafts),
        from,
        over_time: rate_over_time(series),
    })
}

/// Δaccepted at each draft position / Δdrafts, positions in order.
fn per_position(series: &[Series], drafts: Option<f64>) -> Vec<f64> {
    let Some(d) = drafts.filter(|&d| d > 0.0) else {
        return Vec::new();
    };
    let mut by_pos: BTreeMap<u32, f64> = BTreeMap::new();
    for s in counters(series, PER_POS) {
        let pos = s.labels.iter().find(|(k, _)| k == "position");
        let (Some(pos), SeriesValue::Counter(c)) = (pos, &s.value) else {
            continue;
        };
        if let Ok(p) = pos.1.parse::<u32>() {
            *by_pos.entry(p).or_default() += c.delta;
        }
    }
    by_pos.into_values().map(|a| a / d).collect()
}

/// Each counter's increase per scrape interval (a drop is a restart: counted from 0),
/// summed over label sets, keyed by the interval's end in µs.
fn increases(series: &[Series], name: &str) -> BTreeMap<i64, f64> {
    let mut out = BTreeMap::new();
    for s in counters(series, name) {
        let SeriesValue::Counter(c) = &s.value else {
            continue;
        };
        for w in c.points.windows(2) {
            let ((_, prev), (t, v)) = (w[0], w[1]);
            let inc = if v >= prev { v - prev } else { v };
            *out.entry((t * 1e6).round() as i64).or_default() += inc;
        }
    }
    out
}

/// The acceptance rate over each interval between two scrapes.
fn rate_over_time(series: &[Series]) -> Vec<(f64, Option<f64>)> {
    let accepted = increases(series, ACCEPTED);
    increases(series, DRAFT_TOKENS)
        .into_iter()
        .map(|(t, d)| {
            let a = accepted.get(&t).copied().unwrap_or(0.0);
            let t = (t as f64 / 1e3).round() / 1e3;
            (t, (d > 0.0).then(|| round4(a / d)))
        })
        .collect()
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// The gauges' samples, the scrape before the run left out: it shows the window
/// before the run (SGLang keeps a gauge's last value while idle).
fn gauge_samples(series: &[Series], name: &str) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for s in series.iter().filter(|s| s.name == name) {
        if let SeriesValue::Gauge { samples, times, .. } = &s.value {
            let during = times.iter().zip(samples).filter(|(t, _)| **t > 0.0);
            out.extend(during.map(|(t, v)| (*t, *v)));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn from_gauges(series: &[Series]) -> Option<SpecDecode> {
    let length = gauge_samples(series, SGLANG_LENGTH);
    let rate = gauge_samples(series, SGLANG_RATE);
    if length.is_empty() && rate.is_empty() {
        return None;
    }
    let mean = |v: &[(f64, f64)]| {
        (!v.is_empty()).then(|| v.iter().map(|(_, x)| x).sum::<f64>() / v.len() as f64)
    };
    let mut from = Vec::new();
    for (name, v) in [(SGLANG_RATE, &rate), (SGLANG_LENGTH, &length)] {
        if !v.is_empty() {
            from.push(format!("mean of {name} samples"));
        }
    }
    Some(SpecDecode {
        // A length of 0 is SGLang's value before any draft: no figure.
        acceptance_rate: mean(&rate).filter(|_| mean(&length).is_none_or(|l| l > 0.0)),
        mean_accepted_length: mean(&length).filter(|&l| l > 0.0),
        from: from.join("; "),
        over_time: rate
            .iter()
            .map(|&(t, x)| (round4(t), Some(round4(x))))
            .collect(),
        ..SpecDecode::default()
    })
}
