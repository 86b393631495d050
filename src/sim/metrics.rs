//! `/metrics` in the Prometheus text format (0.0.4), with vLLM v1's metric names so
//! dashboards and scrapers written for vLLM read the simulator unchanged.

use std::fmt::Write;

/// vLLM's bucket bounds for `time_to_first_token_seconds`, in seconds.
pub(super) const TTFT_BUCKETS: [f64; 22] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Default)]
pub(super) struct Metrics {
    pub running: u64,
    pub waiting: u64,
    /// 0..1.
    pub kv_usage: f64,
    /// In tokens, like vLLM's.
    pub prefix_queries: u64,
    pub prefix_hits: u64,
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    pub request_success: u64,
    pub preemptions: u64,
    /// Observations per bucket (not cumulative); the last is above every bound.
    ttft_counts: [u64; TTFT_BUCKETS.len() + 1],
    ttft_sum: f64,
    /// vLLM's speculative-decoding counters, with `--spec-tokens` only.
    pub spec: Option<super::spec::SpecCounters>,
}

impl Metrics {
    pub(super) fn observe_ttft(&mut self, seconds: f64) {
        let i = TTFT_BUCKETS.partition_point(|&le| le < seconds);
        self.ttft_counts[i] += 1;
        self.ttft_sum += seconds;
    }

    pub(super) fn render(&self, model: &str) -> String {
        let label = format!("model_name=\"{}\"", escape(model));
        let mut out = String::new();
        let mut one = |name: &str, kind: &str, help: &str, value: String| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{{label}}} {value}\n"
            );
        };
        let gauges = [
            (
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                self.running,
            ),
            (
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
                self.waiting,
            ),
        ];
        for (name, help, v) in gauges {
            one(name, "gauge", help, v.to_string());
        }
        one(
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage. 1 means 100 percent usage.",
            format!("{:?}", self.kv_usage),
        );
        let counters = [
            (
                "vllm:prefix_cache_queries_total",
                "Prefix cache queries, in terms of number of queried tokens.",
                self.prefix_queries,
            ),
            (
                "vllm:prefix_cache_hits_total",
                "Prefix cache hits, in terms of number of cached tokens.",
                self.prefix_hits,
            ),
            (
                "vllm:prompt_tokens_total",
                "Number of prefill tokens processed.",
                self.prompt_tokens,
            ),
            (
                "vllm:generation_tokens_total",
                "Number of generation tokens processed.",
                self.generation_tokens,
            ),
            (
                "vllm:request_success_total",
                "Count of successfully processed requests.",
                self.request_success,
            ),
            (
                "vllm:num_preemptions_total",
                "Cumulative number of preemption from the engine.",
                self.preemptions,
            ),
        ];
        for (name, help, v) in counters {
            one(name, "counter", help, v.to_string());
        }
        self.render_ttft(&mut out, &label);
        if let Some(spec) = &self.spec {
            spec.render(&mut out, &label);
        }
        out
    }

    /// The TTFT histogram, its buckets cumulative as the text format has them.
    fn render_ttft(&self, out: &mut String, label: &str) {
        let name = "vllm:time_to_first_token_seconds";
        let _ = write!(
            out,
            "# HELP {name} Histogram of time to first token in seconds.\n# TYPE {name} histogram\n"
        );
        let mut cumulative = 0;
        for (i, count) in self.ttft_counts.iter().enumerate() {
            cumulative += count;
            let le = TTFT_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| format!("{b:?}"));
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\",{label}}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{label}}} {:?}", self.ttft_sum);
        let _ = writeln!(out, "{name}_count{{{label}}} {cumulative}");
    }
}

/// A label value as the text format wants it.
fn escape(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}
