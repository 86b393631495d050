//! Which metrics to scrape: the presets of each engine's names and `--metrics`.

use std::time::Duration;

use reqwest::Url;

use crate::metrics::prometheus;

/// vLLM v1 (checked against vLLM's metric docs and the simulator, which copies them).
/// `gpu_cache_usage_perc` and `gpu_prefix_cache_*` are the names before v0.10/0.11
/// renamed them; a server has one or the other.
pub(super) const VLLM: &[&str] = &[
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "vllm:prefix_cache_queries",
    "vllm:prefix_cache_hits",
    "vllm:gpu_prefix_cache_queries",
    "vllm:gpu_prefix_cache_hits",
    "vllm:prompt_tokens",
    "vllm:generation_tokens",
    "vllm:num_preemptions",
    "vllm:request_success",
    "vllm:time_to_first_token_seconds",
];

/// SGLang (all seen in SGLang's own /metrics test). `cached_tokens` is newer than the
/// others and may carry a `cache_source` label that `prompt_tokens` lacks; then the
/// hit rate falls back to the `cache_hit_rate` gauge.
pub(super) const SGLANG: &[&str] = &[
    "sglang:num_running_reqs",
    "sglang:num_queue_reqs",
    "sglang:token_usage",
    "sglang:cache_hit_rate",
    "sglang:prompt_tokens",
    "sglang:generation_tokens",
    "sglang:cached_tokens",
    "sglang:gen_throughput",
    "sglang:time_to_first_token_seconds",
];

/// llama-server with `--metrics`. `kv_cache_usage_ratio` was removed from recent
/// llama-server builds (not verified when); `prompt_tokens_cached` only exists in
/// recent ones. Neither could be run here, so both may show up as missing.
pub(super) const LLAMACPP: &[&str] = &[
    "llamacpp:requests_processing",
    "llamacpp:requests_deferred",
    "llamacpp:kv_cache_usage_ratio",
    "llamacpp:prompt_tokens",
    "llamacpp:tokens_predicted",
    "llamacpp:prompt_tokens_cached",
];

/// NVIDIA dcgm-exporter (names from its `etc/default-counters.csv`): power draw in W,
/// the energy counter in mJ since boot (typed `counter` there; some deployments'
/// field lists expose it as a gauge, which `energy.rs` reads the same way), utilisation
/// in %, framebuffer memory used in MiB; one series per GPU (`gpu`, `UUID` labels).
pub(super) const DCGM: &[&str] = &[
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
];

/// Prometheus node-exporter's basics: load and memory (its CPU counters have a series
/// per core and mode, too many for a table).
pub(super) const NODE: &[&str] = &[
    "node_load1",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes",
];

/// Preset series that only some versions of their engine have: when a server lacks
/// one, the session says so once, as a note, and the tables leave it out.
const VERSION_DEPENDENT: &[&str] = &[
    // Newer SGLang only; older ones have the length alone.
    "sglang:spec_accept_rate",
    "llamacpp:kv_cache_usage_ratio",
    "llamacpp:prompt_tokens_cached",
    "sglang:cached_tokens",
];

/// Whether a missing series is one some versions of its engine never had.
pub fn only_in_some_versions(name: &str) -> bool {
    VERSION_DEPENDENT.contains(&name)
}

/// Old and new names of one quantity: when one appears, the other is not "missing".
pub(super) const ALTERNATIVES: &[(&str, &str)] = &[
    ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    ("vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries"),
    ("vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"),
];

/// The presets by name: the one list the lookup, the did-you-mean and the messages use.
const PRESETS: [(&str, &[&str]); 6] = [
    ("vllm", VLLM),
    ("sglang", SGLANG),
    ("llamacpp", LLAMACPP),
    // vLLM's and SGLang's speculative-decoding metrics (`spec.rs`), beside an engine's.
    ("spec-decode", super::spec::SPEC_DECODE),
    ("dcgm", DCGM),
    ("node", NODE),
];

/// The metric names a preset word stands for.
pub fn preset(word: &str) -> Option<&'static [&'static str]> {
    let word = if word == "llama.cpp" {
        "llamacpp"
    } else {
        word
    };
    PRESETS.iter().find(|(n, _)| *n == word).map(|(_, p)| *p)
}

/// "vllm, sglang, llamacpp, dcgm, node".
fn preset_names() -> String {
    PRESETS.map(|(n, _)| n).join(", ")
}

/// The preset a word is a slip for: the same letters but for case or one or two
/// edits ("vlm", "SGLang", "llama-cpp"). Prefixed names (`vllm:...`) are never slips.
fn near_preset(word: &str) -> Option<&'static str> {
    if word.contains(':') {
        return None;
    }
    let w = word.to_ascii_lowercase();
    PRESETS
        .into_iter()
        .map(|(p, _)| (strsim::levenshtein(&w, p), p))
        // Two edits from a short word like `node` is another word (`load`): one then.
        .filter(|&(d, p)| d <= 2.min(p.len() / 3))
        .min()
        .map(|(_, p)| p)
}

/// Parse `--metrics vllm,my_metric,...`: presets expanded, order kept, duplicates
/// dropped. Any other word is a metric name, so it must look like one.
pub fn parse_names(value: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let names: Vec<&str> = match preset(word) {
            Some(p) => p.to_vec(),
            None if let Some(near) = near_preset(word) => {
                return Err(format!(
                    "--metrics: {word:?} is not a preset; did you mean `{near}`? (presets: {})",
                    preset_names()
                ));
            }
            None if prometheus::is_metric_name(word) => vec![word],
            None => {
                return Err(format!(
                    "--metrics: {word:?} is neither a preset ({}) nor a metric name",
                    preset_names()
                ));
            }
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    if out.is_empty() {
        return Err(
            "--metrics: no names given (expected e.g. vllm or vllm:num_requests_running)".into(),
        );
    }
    Ok(out)
}

/// What to scrape and how often.
#[derive(Clone, Debug)]
pub struct MetricsSpec {
    pub url: Url,
    /// Metric names as asked for (presets already expanded).
    pub names: Vec<String>,
    /// Gauge sampling period.
    pub interval: Duration,
}

impl MetricsSpec {
    /// From `--metrics-url`, `--metrics` and `--metrics-interval`.
    pub fn new(url: Url, metrics: &str, interval: Duration) -> Result<MetricsSpec, String> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!(
                "--metrics-url {url}: expected an http:// or https:// URL"
            ));
        }
        if url.host_str().is_none() {
            return Err(format!("--metrics-url {url}: the URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // They would be sent to the server and end up in messages.
            return Err("--metrics-url: credentials in the URL are not supported".into());
        }
        if interval.is_zero() {
            return Err("--metrics-interval must be greater than 0".into());
        }
        Ok(MetricsSpec {
            url,
            names: parse_names(metrics)?,
            interval,
        })
    }
}
