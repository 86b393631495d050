//! Values computed from several series: prefix-cache hit rates, server-side mean TTFT.

use super::collect::same_labels;
use super::{Derived, Series, SeriesValue};

/// Counters whose deltas give a prefix-cache hit rate: (hits, base, whether the base
/// excludes the hits). llama.cpp's `prompt_tokens` counts only the tokens it
/// evaluated ("excluding cached tokens" in its help text), so its rate is
/// cached / (cached + evaluated); the others count every prompt token.
pub(super) const HIT_RATES: &[(&str, &str, bool)] = &[
    ("vllm:prefix_cache_hits", "vllm:prefix_cache_queries", false),
    (
        "vllm:gpu_prefix_cache_hits",
        "vllm:gpu_prefix_cache_queries",
        false,
    ),
    ("sglang:cached_tokens", "sglang:prompt_tokens", false),
    (
        "llamacpp:prompt_tokens_cached",
        "llamacpp:prompt_tokens",
        true,
    ),
];

pub(super) fn counter_delta(s: &Series) -> Option<f64> {
    match &s.value {
        SeriesValue::Counter(c) => Some(c.delta),
        SeriesValue::Gauge { .. } => None,
    }
}

/// Hit rates and the server-side mean TTFT, each per label set.
pub(super) fn derive(series: &[Series]) -> Vec<Derived> {
    let counter = |name: &str, labels: &[(String, String)]| {
        series.iter().find(|s| {
            s.name.strip_suffix("_total").unwrap_or(&s.name) == name
                && same_labels(&s.labels, labels)
                && counter_delta(s).is_some()
        })
    };
    let mut out: Vec<Derived> = Vec::new();
    let mut push = |d: Derived| {
        if !out
            .iter()
            .any(|o| o.name == d.name && same_labels(&o.labels, &d.labels))
        {
            out.push(d);
        }
    };
    for &(hits_name, base_name, base_excludes_hits) in HIT_RATES {
        for hits in series
            .iter()
            .filter(|s| s.name.strip_suffix("_total").unwrap_or(&s.name) == hits_name)
        {
            let (Some(h), Some(base)) = (counter_delta(hits), counter(base_name, &hits.labels))
            else {
                continue;
            };
            let b = counter_delta(base).unwrap_or(f64::NAN);
            let denom = if base_excludes_hits { h + b } else { b };
            let from = if base_excludes_hits {
                format!("Δ{0} / (Δ{0} + Δ{1})", hits.name, base.name)
            } else {
                format!("Δ{} / Δ{}", hits.name, base.name)
            };
            push(Derived {
                name: "prefix_cache_hit_rate",
                labels: hits.labels.clone(),
                value: (denom > 0.0).then(|| h / denom),
                from,
            });
        }
    }
    // SGLang's own windowed rate, when its counters gave none for that label set.
    for s in series.iter().filter(|s| s.name == "sglang:cache_hit_rate") {
        if let SeriesValue::Gauge { stats, .. } = &s.value {
            push(Derived {
                name: "prefix_cache_hit_rate",
                labels: s.labels.clone(),
                value: stats.as_ref().map(|st| st.mean),
                from: format!("mean of {}", s.name),
            });
        }
    }
    for s in series {
        let Some(base) = s.name.strip_suffix("_sum") else {
            continue;
        };
        if !base.ends_with("time_to_first_token_seconds") {
            continue;
        }
        let count_name = format!("{base}_count");
        let count = series
            .iter()
            .find(|c| c.name == count_name && same_labels(&c.labels, &s.labels));
        let (Some(sum), Some(n)) = (counter_delta(s), count.and_then(counter_delta)) else {
            continue;
        };
        push(Derived {
            name: "mean_ttft_ms",
            labels: s.labels.clone(),
            value: (n > 0.0).then(|| sum / n * 1000.0),
            from: format!("Δ{} / Δ{count_name} × 1000", s.name),
        });
    }
    out
}
