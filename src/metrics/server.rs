//! The server's own Prometheus metrics around a run: a scrape just before it, gauges
//! sampled every interval while it runs, a scrape just after. Counters become deltas
//! and rates over the run, gauges statistics over the samples, each label set its own
//! series (the results spec's `server_metrics`).
//!
//! Use: `Scraper::new(auth, timeout)` once, then per run `scraper.start(&spec)` right
//! before the first request and `running.finish()` right after the last one ends.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::prometheus::{self, Exposition, MetricType, series_key};
use super::stats::{DEFAULT_PERCENTILES, Stats, stats_json};
use crate::client::openai::http_error_message;
use crate::client::{error_chain, init_tls};

/// `--metrics-interval` default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// A suggested bound on one scrape.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A `/metrics` body larger than this is not a metrics page.
const MAX_BODY: usize = 64 << 20;
/// Asks for the 0.0.4 text format: servers that negotiate (prometheus_client) would
/// otherwise be free to answer in OpenMetrics, with exemplars this parser rejects.
const ACCEPT_TEXT: &str = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1";

/// vLLM v1 (checked against vLLM's metric docs and the simulator, which copies them).
/// `gpu_cache_usage_perc` and `gpu_prefix_cache_*` are the names before v0.10/0.11
/// renamed them; a server has one or the other.
const VLLM: &[&str] = &[
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
const SGLANG: &[&str] = &[
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
const LLAMACPP: &[&str] = &[
    "llamacpp:requests_processing",
    "llamacpp:requests_deferred",
    "llamacpp:kv_cache_usage_ratio",
    "llamacpp:prompt_tokens",
    "llamacpp:tokens_predicted",
    "llamacpp:prompt_tokens_cached",
];

/// Old and new names of one quantity: when one appears, the other is not "missing".
const ALTERNATIVES: &[(&str, &str)] = &[
    ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    ("vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries"),
    ("vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"),
];

/// Counters whose deltas give a prefix-cache hit rate: (hits, base, whether the base
/// excludes the hits). llama.cpp's `prompt_tokens` counts only the tokens it
/// evaluated ("excluding cached tokens" in its help text), so its rate is
/// cached / (cached + evaluated); the others count every prompt token.
const HIT_RATES: &[(&str, &str, bool)] = &[
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

/// The metric names a preset word stands for.
pub fn preset(word: &str) -> Option<&'static [&'static str]> {
    match word {
        "vllm" => Some(VLLM),
        "sglang" => Some(SGLANG),
        "llamacpp" | "llama.cpp" => Some(LLAMACPP),
        _ => None,
    }
}

/// Parse `--metrics vllm,my_metric,...`: presets expanded, order kept, duplicates
/// dropped. Any other word is a metric name, so it must look like one.
pub fn parse_names(value: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for word in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let names: Vec<&str> = match preset(word) {
            Some(p) => p.to_vec(),
            None if prometheus::is_metric_name(word) => vec![word],
            None => {
                return Err(format!(
                    "--metrics: {word:?} is neither a preset (vllm, sglang, llamacpp) nor a metric name"
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

/// Whether two URLs have the same scheme, host and port. The API key may only go to a
/// metrics URL of the same origin as the benchmarked endpoint: the scheme counts too,
/// so a key meant for https never travels in clear text.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host().is_some()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
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

/// Fetches `/metrics` with its own HTTP client, so scrapes never queue behind the
/// benchmark's requests on a pooled connection.
#[derive(Clone)]
pub struct Scraper {
    http: reqwest::Client,
    auth: Option<HeaderValue>,
    timeout: Duration,
}

impl fmt::Debug for Scraper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scraper")
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Scraper {
    /// `auth` is sent as the `Authorization` header of every scrape. The caller decides
    /// it and must pass it only when [`same_origin`] holds for the metrics URL and the
    /// benchmarked endpoint: this type cannot know where the key belongs. `timeout`
    /// bounds each scrape.
    pub fn new(auth: Option<HeaderValue>, timeout: Duration) -> Result<Scraper, String> {
        init_tls();
        let http = reqwest::Client::builder()
            .http1_only()
            // Measure the server, not a proxy that happens to be configured.
            .no_proxy()
            .tcp_nodelay(true)
            // Some servers redirect /metrics to /metrics/; never follow one elsewhere,
            // where the Authorization header would not belong.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let ok = attempt.previous().len() < 5
                    && attempt
                        .previous()
                        .first()
                        .is_some_and(|first| same_origin(first, attempt.url()));
                if ok { attempt.follow() } else { attempt.stop() }
            }))
            .build()
            .map_err(|e| format!("cannot build the metrics HTTP client: {}", error_chain(&e)))?;
        let auth = auth.map(|mut v| {
            v.set_sensitive(true);
            v
        });
        Ok(Scraper {
            http,
            auth,
            timeout,
        })
    }

    /// One scrape, parsed. The error names the URL and the cause.
    pub async fn scrape(&self, url: &Url) -> Result<Exposition, String> {
        self.fetch(url).await.map(|(_, e)| e)
    }

    /// The moment the server most likely rendered the page (midway through the
    /// exchange) and the page.
    async fn fetch(&self, url: &Url) -> Result<(Instant, Exposition), String> {
        let fail = |cause: String| format!("cannot scrape server metrics from {url}: {cause}");
        let sent = Instant::now();
        let mut rb = self
            .http
            .get(url.clone())
            .header(ACCEPT, ACCEPT_TEXT)
            .timeout(self.timeout);
        if let Some(a) = &self.auth {
            rb = rb.header(AUTHORIZATION, a.clone());
        }
        let fetched = async {
            let mut resp = rb.send().await.map_err(|e| error_chain(&e.without_url()))?;
            let status = resp.status();
            let mut body = Vec::new();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| error_chain(&e.without_url()))?
            {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err(format!("the body is larger than {} MiB", MAX_BODY >> 20));
                }
            }
            if !status.is_success() {
                return Err(http_error_message(status.as_u16(), &body));
            }
            Ok(body)
        };
        let body = fetched.await.map_err(fail)?;
        let done = Instant::now();
        let text = String::from_utf8_lossy(&body);
        let expo = prometheus::parse(&text)
            .map_err(|e| fail(format!("not the Prometheus text format: {e}")))?;
        Ok((sent + (done - sent) / 2, expo))
    }

    /// Scrape once (awaited, so it is exactly "before the run"), then sample every
    /// `spec.interval` on a background task until [`RunningScrape::finish`]. An error
    /// here means no metrics for this run: the caller warns and goes on without them.
    pub async fn start(&self, spec: &MetricsSpec) -> Result<RunningScrape, String> {
        let (origin, expo) = self.fetch(&spec.url).await?;
        let mut collector = Collector::new(spec.names.clone());
        collector.add(0.0, &expo);
        let (stop, stopped) = oneshot::channel();
        // A zero period would spin (and tokio's interval panics on it).
        let interval = spec.interval.max(Duration::from_millis(1));
        let task = tokio::spawn(sample_loop(
            self.clone(),
            spec.url.clone(),
            interval,
            origin,
            collector,
            stopped,
        ));
        Ok(RunningScrape {
            scraper: self.clone(),
            url: spec.url.clone(),
            origin,
            stop,
            task,
        })
    }
}

/// Sampling in progress. Dropping it without `finish` stops the sampling too.
#[derive(Debug)]
pub struct RunningScrape {
    scraper: Scraper,
    url: Url,
    origin: Instant,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Sampled>,
}

impl RunningScrape {
    /// Stop sampling and scrape once more, just after the run. Failed samples during
    /// the run are counted, not fatal; a failed final scrape ends the counters at the
    /// last sample that worked, with a note, and is an error only when there is none.
    pub async fn finish(self) -> Result<ServerMetrics, String> {
        // Stopping drops an in-flight sample at once rather than waiting for it.
        let _ = self.stop.send(());
        let mut sampled = self
            .task
            .await
            .map_err(|e| format!("the metrics sampler for {} failed: {e}", self.url))?;
        let final_error = match self.scraper.fetch(&self.url).await {
            Ok((at, expo)) => {
                sampled.collector.add(secs_since(self.origin, at), &expo);
                None
            }
            Err(e) => {
                sampled.failed += 1;
                Some(e)
            }
        };
        let last_error = final_error.clone().or(sampled.last_error);
        let mut m = sampled.collector.finish(final_error)?;
        m.failed_samples = sampled.failed;
        m.last_error = last_error;
        Ok(m)
    }
}

#[derive(Debug)]
struct Sampled {
    collector: Collector,
    failed: usize,
    last_error: Option<String>,
}

async fn sample_loop(
    scraper: Scraper,
    url: Url,
    interval: Duration,
    origin: Instant,
    mut collector: Collector,
    mut stop: oneshot::Receiver<()>,
) -> Sampled {
    let mut failed = 0;
    let mut last_error = None;
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    // A slow scrape shifts the following ones instead of firing a burst to catch up.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A dropped sender (the RunningScrape was dropped) also ends the loop.
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            biased;
            _ = &mut stop => break,
            r = scraper.fetch(&url) => match r {
                Ok((at, expo)) => collector.add(secs_since(origin, at), &expo),
                Err(e) => {
                    failed += 1;
                    last_error = Some(e);
                }
            }
        }
    }
    Sampled {
        collector,
        failed,
        last_error,
    }
}

fn secs_since(origin: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(origin).as_secs_f64()
}

/// What the scrapes showed over one run.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    /// In the order the names were asked for, then of first appearance.
    pub series: Vec<Series>,
    pub derived: Vec<Derived>,
    /// Names asked for that no scrape showed.
    pub missing: Vec<String>,
    /// Scrapes during or after the run that failed.
    pub failed_samples: usize,
    /// The last of those failures, for a warning.
    pub last_error: Option<String>,
    /// Successful scrapes, the one before the run included.
    pub scrapes: usize,
    /// From the scrape before the run to the last successful one.
    pub duration_s: f64,
}

#[derive(Clone, Debug)]
pub struct Series {
    /// `name{label="value",...}`.
    pub key: String,
    /// The sample name as the server exposes it (`vllm:prompt_tokens_total`).
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: SeriesValue,
}

#[derive(Clone, Debug)]
pub enum SeriesValue {
    Counter(CounterChange),
    Gauge {
        /// Every sample in scrape order, NaN left out.
        samples: Vec<f64>,
        /// When each sample was taken: seconds since the scrape before the run (for a
        /// chart of the gauge over time).
        times: Vec<f64>,
        /// With the default percentiles; `None` when no sample was a number.
        stats: Option<Stats>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct CounterChange {
    /// `None` when the series first appeared during the run (counted from 0).
    pub before: Option<f64>,
    pub after: f64,
    pub delta: f64,
    /// Per second between the two scrapes; `None` when no time passed.
    pub rate: Option<f64>,
    /// Why the delta is not simply `after - before`.
    pub notes: Vec<String>,
}

/// A value computed from several series of one label set.
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    /// `prefix_cache_hit_rate` (0..1) or `mean_ttft_ms`.
    pub name: &'static str,
    pub labels: Vec<(String, String)>,
    /// `None` when the denominator did not move during the run.
    pub value: Option<f64>,
    /// How it was computed, e.g. `Δvllm:prefix_cache_hits_total / Δvllm:prefix_cache_queries_total`.
    pub from: String,
}

impl Derived {
    pub fn key(&self) -> String {
        series_key(self.name, &self.labels)
    }
}

impl ServerMetrics {
    pub fn get(&self, key: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.key == key)
    }

    /// A derived value by name when exactly one label set has it (the usual single-model
    /// server); `None` when there is none or several, which are never mixed.
    pub fn derived_value(&self, name: &str) -> Option<f64> {
        let mut it = self.derived.iter().filter(|d| d.name == name);
        match (it.next(), it.next()) {
            (Some(d), None) => d.value,
            _ => None,
        }
    }

    /// The results spec's `server_metrics` object, with the default percentiles.
    pub fn to_json(&self) -> Value {
        self.to_json_with(&DEFAULT_PERCENTILES)
    }

    /// Series keys, then `derived`, then `missing` and `failed_samples` when there are
    /// any. Gauge statistics carry `percentiles` beside the default ones.
    pub fn to_json_with(&self, percentiles: &[f64]) -> Value {
        let mut m = Map::new();
        for s in &self.series {
            let v = match &s.value {
                SeriesValue::Counter(c) => {
                    let mut o = Map::new();
                    o.insert("type".into(), json!("counter"));
                    o.insert("before".into(), num(c.before));
                    o.insert("after".into(), num(Some(c.after)));
                    o.insert("delta".into(), num(Some(c.delta)));
                    o.insert("rate".into(), num(c.rate));
                    if !c.notes.is_empty() {
                        o.insert("note".into(), json!(c.notes.join("; ")));
                    }
                    Value::Object(o)
                }
                SeriesValue::Gauge {
                    samples,
                    times,
                    stats,
                } => {
                    let mut o = Map::new();
                    o.insert("type".into(), json!("gauge"));
                    // Extra percentiles need the samples again; the default ones are ready.
                    let extra = percentiles.iter().any(|p| !DEFAULT_PERCENTILES.contains(p));
                    let recomputed = extra
                        .then(|| {
                            let mut all = DEFAULT_PERCENTILES.to_vec();
                            all.extend(percentiles);
                            Stats::compute(&mut samples.clone(), &all)
                        })
                        .flatten();
                    let stats = if extra {
                        recomputed.as_ref()
                    } else {
                        stats.as_ref()
                    };
                    if let Value::Object(st) = stats_json(stats, percentiles) {
                        o.extend(st);
                    }
                    // [seconds since the scrape before the run, value], for charts.
                    let timed: Vec<Value> = times
                        .iter()
                        .zip(samples)
                        .map(|(t, v)| json!([(t * 1e3).round() / 1e3, v]))
                        .collect();
                    o.insert("samples".into(), Value::Array(timed));
                    Value::Object(o)
                }
            };
            m.insert(s.key.clone(), v);
        }
        let derived: Map<String, Value> = self
            .derived
            .iter()
            .map(|d| (d.key(), num(d.value)))
            .collect();
        m.insert("derived".into(), Value::Object(derived));
        if !self.missing.is_empty() {
            m.insert("missing".into(), json!(self.missing));
        }
        if self.failed_samples > 0 {
            m.insert("failed_samples".into(), json!(self.failed_samples));
        }
        Value::Object(m)
    }
}

/// A number, or null for none and for NaN/infinities (which JSON cannot hold).
fn num(v: Option<f64>) -> Value {
    match v {
        Some(x) if x.is_finite() => json!(x),
        _ => Value::Null,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// How a sample name relates to a name asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The same name.
    Exact,
    /// Asked `x`, exposed `x_total`.
    Total,
    /// Asked `x_total`, exposed `x`.
    Bare,
    /// Asked for histogram or summary `x`, exposed `x_sum` / `x_count`.
    SumOrCount,
}

/// Counter or gauge, or `None` when the sample is not what was asked for.
fn classify(role: Role, asked: &str, sample: &str, family: &str, t: MetricType) -> Option<Kind> {
    use MetricType as T;
    match role {
        Role::Exact => match t {
            // `x_created` is a creation timestamp beside `x_total`, not a count.
            T::Counter | T::Histogram | T::Summary
                if family != sample && sample.ends_with("_created") =>
            {
                Some(Kind::Gauge)
            }
            T::Counter => Some(Kind::Counter),
            T::Gauge => Some(Kind::Gauge),
            // `_bucket`/`_sum`/`_count` asked for by name are counters; the family's
            // own name only carries summary quantiles, which are not reported.
            T::Histogram | T::Summary => (family != sample).then_some(Kind::Counter),
            T::Untyped if sample.ends_with("_total") => Some(Kind::Counter),
            T::Untyped => Some(Kind::Gauge),
        },
        Role::Total => matches!(t, T::Counter | T::Untyped).then_some(Kind::Counter),
        Role::Bare => (t == T::Counter).then_some(Kind::Counter),
        Role::SumOrCount => match t {
            T::Histogram | T::Summary if family == asked => Some(Kind::Counter),
            T::Untyped => Some(Kind::Counter),
            _ => None,
        },
    }
}

#[derive(Debug)]
struct Acc {
    key: String,
    name: String,
    labels: Vec<(String, String)>,
    kind: Kind,
    asked: usize,
    /// (scrape index, value).
    values: Vec<(usize, f64)>,
}

/// The asked-for series of every successful scrape, kept as numbers only.
#[derive(Debug)]
struct Collector {
    names: Vec<String>,
    /// Sample name → (index of a name asked for, how it relates).
    candidates: HashMap<String, Vec<(usize, Role)>>,
    index: HashMap<String, usize>,
    series: Vec<Acc>,
    /// Seconds since the first scrape, per successful scrape.
    times: Vec<f64>,
    seen: Vec<bool>,
}

impl Collector {
    fn new(names: Vec<String>) -> Collector {
        let mut candidates: HashMap<String, Vec<(usize, Role)>> = HashMap::new();
        let mut add = |name: String, i: usize, role: Role| {
            candidates.entry(name).or_default().push((i, role));
        };
        for (i, n) in names.iter().enumerate() {
            add(n.clone(), i, Role::Exact);
            match n.strip_suffix("_total") {
                Some(bare) => add(bare.to_string(), i, Role::Bare),
                None => add(format!("{n}_total"), i, Role::Total),
            }
            add(format!("{n}_sum"), i, Role::SumOrCount);
            add(format!("{n}_count"), i, Role::SumOrCount);
        }
        Collector {
            seen: vec![false; names.len()],
            names,
            candidates,
            index: HashMap::new(),
            series: Vec::new(),
            times: Vec::new(),
        }
    }

    fn add(&mut self, at: f64, expo: &Exposition) {
        let scrape = self.times.len();
        self.times.push(at);
        for s in &expo.samples {
            let Some(cands) = self.candidates.get(s.name.as_str()) else {
                continue;
            };
            let (family, t) = expo.family_of(&s.name);
            let mut chosen = None;
            for &(i, role) in cands {
                if let Some(kind) = classify(role, &self.names[i], &s.name, family, t) {
                    self.seen[i] = true;
                    chosen.get_or_insert((i, kind));
                }
            }
            let Some((asked, kind)) = chosen else {
                continue;
            };
            let key = s.key();
            let idx = match self.index.get(&key) {
                Some(&i) => i,
                None => {
                    self.index.insert(key.clone(), self.series.len());
                    self.series.push(Acc {
                        key,
                        name: s.name.clone(),
                        labels: s.labels.clone(),
                        kind,
                        asked,
                        values: Vec::new(),
                    });
                    self.series.len() - 1
                }
            };
            let acc = &mut self.series[idx];
            // A series printed twice in one page: the first line counts.
            if acc.values.last().is_none_or(|&(i, _)| i != scrape) && !s.value.is_nan() {
                acc.values.push((scrape, s.value));
            }
        }
    }

    /// `final_error`: why the scrape after the run failed, if it did.
    fn finish(self, final_error: Option<String>) -> Result<ServerMetrics, String> {
        if self.times.len() < 2 {
            return Err(final_error.unwrap_or_else(|| "no scrape after the run".into()));
        }
        let last = self.times.len() - 1;
        let mut accs = self.series;
        // Stable: ties keep their order of first appearance.
        accs.sort_by_key(|a| a.asked);
        let mut series = Vec::new();
        for a in accs {
            let value = match a.kind {
                Kind::Gauge => {
                    let samples: Vec<f64> = a.values.iter().map(|&(_, x)| x).collect();
                    let times = a.values.iter().map(|&(i, _)| self.times[i]).collect();
                    let stats = Stats::compute(&mut samples.clone(), &DEFAULT_PERCENTILES);
                    SeriesValue::Gauge {
                        samples,
                        times,
                        stats,
                    }
                }
                Kind::Counter => {
                    match counter_change(&a.values, &self.times, last, final_error.as_deref()) {
                        Some(c) => SeriesValue::Counter(c),
                        None => continue,
                    }
                }
            };
            series.push(Series {
                key: a.key,
                name: a.name,
                labels: a.labels,
                value,
            });
        }
        let missing = self
            .names
            .iter()
            .enumerate()
            .filter(|&(i, n)| {
                !self.seen[i]
                    && !ALTERNATIVES.iter().any(|&(a, b)| {
                        let other = if n == a {
                            b
                        } else if n == b {
                            a
                        } else {
                            return false;
                        };
                        self.names
                            .iter()
                            .zip(&self.seen)
                            .any(|(m, &seen)| seen && m == other)
                    })
            })
            .map(|(_, n)| n.clone())
            .collect();
        let derived = derive(&series);
        Ok(ServerMetrics {
            series,
            derived,
            missing,
            failed_samples: 0,
            last_error: None,
            scrapes: self.times.len(),
            duration_s: self.times[last] - self.times[0],
        })
    }
}

/// Before/after/delta/rate of one counter from its values over the scrapes (index 0 is
/// the scrape before the run, `last` the last successful one). A drop between two
/// scrapes is a restart: counting resumes from 0, as Prometheus's `increase()` does.
fn counter_change(
    values: &[(usize, f64)],
    times: &[f64],
    last: usize,
    final_error: Option<&str>,
) -> Option<CounterChange> {
    let &(first_i, first_v) = values.first()?;
    let &(last_i, after) = values.last()?;
    let mut notes = Vec::new();
    let before = (first_i == 0).then_some(first_v);
    let (mut prev, rest) = match before {
        Some(v) => (v, &values[1..]),
        None => {
            notes.push("absent before the run: counted from 0".to_string());
            (0.0, values)
        }
    };
    let mut sum = 0.0;
    let mut reset = false;
    for &(_, v) in rest {
        if v >= prev {
            sum += v - prev;
        } else {
            sum += v;
            reset = true;
        }
        prev = v;
    }
    let delta = if reset {
        notes.push(
            "went down during the run (server restart?): counted from 0 after the drop".into(),
        );
        sum
    } else {
        // Exact, where a sum of steps could round.
        after - before.unwrap_or(0.0)
    };
    if let Some(e) = final_error {
        notes.push(format!(
            "the scrape after the run failed ({e}): counted up to the last sample"
        ));
    } else if last_i != last {
        notes.push("absent after the run: counted up to the last sample that had it".into());
    }
    let elapsed = times[last_i] - times[0];
    Some(CounterChange {
        before,
        after,
        delta,
        rate: (elapsed > 0.0).then(|| delta / elapsed),
        notes,
    })
}

fn same_labels(a: &[(String, String)], b: &[(String, String)]) -> bool {
    a.len() == b.len() && a.iter().all(|l| b.contains(l))
}

fn counter_delta(s: &Series) -> Option<f64> {
    match &s.value {
        SeriesValue::Counter(c) => Some(c.delta),
        SeriesValue::Gauge { .. } => None,
    }
}

/// Hit rates and the server-side mean TTFT, each per label set.
fn derive(series: &[Series]) -> Vec<Derived> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Collect from texts at the given seconds, as the scrapes would.
    fn collect(asked: &[&str], pages: &[(f64, &str)]) -> ServerMetrics {
        let mut c = Collector::new(names(asked));
        for (at, text) in pages {
            c.add(*at, &prometheus::parse(text).unwrap());
        }
        c.finish(None).unwrap()
    }

    fn counter(m: &ServerMetrics, key: &str) -> CounterChange {
        match &m
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {m:#?}"))
            .value
        {
            SeriesValue::Counter(c) => c.clone(),
            v => panic!("{key} is {v:?}"),
        }
    }

    fn gauge(m: &ServerMetrics, key: &str) -> Stats {
        match &m
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {m:#?}"))
            .value
        {
            SeriesValue::Gauge { stats: Some(s), .. } => s.clone(),
            v => panic!("{key} is {v:?}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn names_and_presets() {
        let n = parse_names("vllm, my_metric ,vllm:num_requests_running,tgi").unwrap();
        assert_eq!(n[0], "vllm:num_requests_running");
        assert_eq!(n.len(), VLLM.len() + 2, "duplicates dropped");
        assert_eq!(&n[VLLM.len()..], ["my_metric", "tgi"]);
        let n = parse_names("sglang,llamacpp").unwrap();
        assert_eq!(n.len(), SGLANG.len() + LLAMACPP.len());
        assert!(n.contains(&"llamacpp:prompt_tokens_cached".to_string()));
        assert_eq!(parse_names("llama.cpp").unwrap().len(), LLAMACPP.len());
        assert!(
            parse_names("vllm,bad name")
                .unwrap_err()
                .contains("bad name")
        );
        assert!(parse_names(" , ").is_err());
        let url = Url::parse("http://127.0.0.1:8000/metrics").unwrap();
        assert!(MetricsSpec::new(url.clone(), "vllm", Duration::ZERO).is_err());
        assert!(MetricsSpec::new(Url::parse("ftp://h/m").unwrap(), "x", DEFAULT_INTERVAL).is_err());
        assert!(
            MetricsSpec::new(Url::parse("http://u:p@h/m").unwrap(), "x", DEFAULT_INTERVAL)
                .unwrap_err()
                .contains("credentials")
        );
        let s = MetricsSpec::new(url, "x,y", DEFAULT_INTERVAL).unwrap();
        assert_eq!(s.names, ["x", "y"]);
    }

    #[test]
    fn same_origin_cases() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(
            &u("http://h:8000/v1/chat/completions"),
            &u("http://h:8000/metrics")
        ));
        assert!(same_origin(&u("http://h/v1"), &u("http://h:80/metrics")));
        assert!(same_origin(
            &u("https://H.example/v1"),
            &u("https://h.example:443/metrics")
        ));
        assert!(same_origin(
            &u("http://[::1]:8000/"),
            &u("http://[0:0:0:0:0:0:0:1]:8000/m")
        ));
        assert!(!same_origin(
            &u("http://h:8000/"),
            &u("http://h:8001/metrics")
        ));
        assert!(!same_origin(
            &u("http://h:8000/"),
            &u("http://other:8000/metrics")
        ));
        assert!(!same_origin(
            &u("https://h:8000/"),
            &u("http://h:8000/metrics")
        ));
        assert!(!same_origin(
            &u("http://localhost:8000/"),
            &u("http://127.0.0.1:8000/")
        ));
        assert!(!same_origin(&u("https://h/"), &u("https://h:8443/")));
    }

    #[test]
    fn counters_gauges_histograms_and_label_sets() {
        let page = |n: f64| {
            format!(
                "# TYPE vllm:prompt_tokens counter\n\
                 vllm:prompt_tokens_total{{model_name=\"a\"}} {a}\n\
                 vllm:prompt_tokens_total{{model_name=\"b\"}} {b}\n\
                 vllm:prompt_tokens_created{{model_name=\"a\"}} 1.7e9\n\
                 # TYPE vllm:num_requests_running gauge\n\
                 vllm:num_requests_running{{model_name=\"a\"}} {n}\n\
                 # TYPE vllm:time_to_first_token_seconds histogram\n\
                 vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",model_name=\"a\"}} {n}\n\
                 vllm:time_to_first_token_seconds_sum{{model_name=\"a\"}} {s}\n\
                 vllm:time_to_first_token_seconds_count{{model_name=\"a\"}} {n}\n\
                 # TYPE lat summary\n\
                 lat{{quantile=\"0.5\"}} 1\n\
                 lat_sum 2\n\
                 lat_count {n}\n\
                 # TYPE old counter\n\
                 old {n}\n",
                a = 100.0 * n,
                b = 7.0 * n,
                s = 0.2 * n,
            )
        };
        let pages: Vec<(f64, String)> = (0..5)
            .map(|i| (i as f64 * 0.5, page(i as f64 + 1.0)))
            .collect();
        let pages: Vec<(f64, &str)> = pages.iter().map(|(t, p)| (*t, p.as_str())).collect();
        let m = collect(
            &[
                "vllm:prompt_tokens",
                "vllm:num_requests_running",
                "vllm:time_to_first_token_seconds",
                "lat",
                "old_total",
                "not_there",
            ],
            &pages,
        );
        let keys: Vec<&str> = m.series.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                r#"vllm:prompt_tokens_total{model_name="a"}"#,
                r#"vllm:prompt_tokens_total{model_name="b"}"#,
                r#"vllm:num_requests_running{model_name="a"}"#,
                r#"vllm:time_to_first_token_seconds_sum{model_name="a"}"#,
                r#"vllm:time_to_first_token_seconds_count{model_name="a"}"#,
                "lat_sum",
                "lat_count",
                "old",
            ]
        );
        let a = counter(&m, r#"vllm:prompt_tokens_total{model_name="a"}"#);
        assert_eq!((a.before, a.after, a.delta), (Some(100.0), 500.0, 400.0));
        assert!(close(a.rate.unwrap(), 200.0), "400 over 2 s");
        assert!(a.notes.is_empty());
        let b = counter(&m, r#"vllm:prompt_tokens_total{model_name="b"}"#);
        assert_eq!(b.delta, 28.0);
        let g = gauge(&m, r#"vllm:num_requests_running{model_name="a"}"#);
        assert_eq!((g.count, g.min, g.max, g.mean), (5, 1.0, 5.0, 3.0));
        assert_eq!(
            counter(&m, "old").delta,
            4.0,
            "x_total asked, x exposed as a counter"
        );
        assert_eq!(m.missing, ["not_there"]);
        assert!(close(m.derived_value("mean_ttft_ms").unwrap(), 200.0));
        assert_eq!((m.scrapes, m.duration_s), (5, 2.0));
    }

    #[test]
    fn restarts_late_series_and_nan() {
        let m = collect(
            &["c", "late", "g"],
            &[
                (0.0, "# TYPE c counter\nc_total 50\ng NaN\n"),
                (1.0, "c_total 80\nlate_total 3\ng 2\n"),
                (2.0, "c_total 10\nlate_total 5\ng NaN\n"),
                (4.0, "c_total 30\nlate_total 9\ng 4\n"),
            ],
        );
        let c = counter(&m, "c_total");
        // 50→80 (+30), restart, 10 (+10), →30 (+20).
        assert_eq!((c.before, c.after, c.delta), (Some(50.0), 30.0, 60.0));
        assert_eq!(c.rate, Some(15.0));
        assert!(c.notes[0].contains("went down"), "{:?}", c.notes);
        let late = counter(&m, "late_total");
        assert_eq!((late.before, late.delta), (None, 9.0));
        assert!(late.notes[0].contains("absent before"));
        let j = m.to_json();
        assert!(j["late_total"]["before"].is_null());
        assert!(j["c_total"]["note"].as_str().unwrap().contains("restart"));
        // NaN samples are not numbers to average.
        let g = gauge(&m, "g");
        assert_eq!((g.count, g.mean), (2, 3.0));
    }

    #[test]
    fn derived_hit_rates_per_engine_and_label_set() {
        let before = "\
            vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 1000\n\
            vllm:prefix_cache_hits_total{model_name=\"m\",engine=\"0\"} 100\n\
            vllm:prefix_cache_queries_total{engine=\"1\",model_name=\"m\"} 0\n\
            vllm:prefix_cache_hits_total{engine=\"1\",model_name=\"m\"} 0\n\
            llamacpp:prompt_tokens_total 100\n\
            llamacpp:prompt_tokens_cached_total 0\n\
            sglang:cache_hit_rate{model_name=\"s\"} 0.5\n\
            sglang:prompt_tokens_total{model_name=\"q\"} 0\n\
            sglang:cached_tokens_total{model_name=\"q\"} 0\n";
        let after = "\
            vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 2000\n\
            vllm:prefix_cache_hits_total{model_name=\"m\",engine=\"0\"} 700\n\
            vllm:prefix_cache_queries_total{engine=\"1\",model_name=\"m\"} 0\n\
            vllm:prefix_cache_hits_total{engine=\"1\",model_name=\"m\"} 0\n\
            llamacpp:prompt_tokens_total 400\n\
            llamacpp:prompt_tokens_cached_total 100\n\
            sglang:cache_hit_rate{model_name=\"s\"} 0.7\n\
            sglang:prompt_tokens_total{model_name=\"q\"} 40\n\
            sglang:cached_tokens_total{model_name=\"q\"} 10\n";
        let mut asked: Vec<&str> = VLLM.to_vec();
        asked.extend(SGLANG);
        asked.extend(LLAMACPP);
        let m = collect(&asked, &[(0.0, before), (1.0, after)]);
        let d: HashMap<String, Option<f64>> =
            m.derived.iter().map(|d| (d.key(), d.value)).collect();
        // Label order differs between the two counters: still the same label set.
        assert_eq!(
            d[r#"prefix_cache_hit_rate{model_name="m",engine="0"}"#],
            Some(0.6)
        );
        assert_eq!(
            d[r#"prefix_cache_hit_rate{engine="1",model_name="m"}"#], None,
            "no queries"
        );
        // llama.cpp: 100 cached of 100 + 300 prompt tokens.
        assert_eq!(d["prefix_cache_hit_rate"], Some(0.25));
        assert!(close(
            d[r#"prefix_cache_hit_rate{model_name="s"}"#].unwrap(),
            0.6
        ));
        assert_eq!(d[r#"prefix_cache_hit_rate{model_name="q"}"#], Some(0.25));
        assert_eq!(
            m.derived_value("prefix_cache_hit_rate"),
            None,
            "several label sets"
        );
        let j = m.to_json();
        assert_eq!(j["derived"]["prefix_cache_hit_rate"], json!(0.25));
        // The old and new names of one quantity: the one not served is not missing.
        assert!(
            !m.missing
                .contains(&"vllm:gpu_prefix_cache_hits".to_string())
        );
        assert!(m.missing.contains(&"vllm:kv_cache_usage_perc".to_string()));
        assert!(m.missing.contains(&"vllm:gpu_cache_usage_perc".to_string()));
    }

    #[test]
    fn json_shape() {
        let m = collect(
            &["c", "g", "nope"],
            &[
                (0.0, "# TYPE c counter\nc_total 1\ng 5\n"),
                (2.0, "c_total 5\ng 7\n"),
            ],
        );
        let j = m.to_json();
        assert_eq!(
            j["c_total"],
            json!({"type": "counter", "before": 1.0, "after": 5.0, "delta": 4.0, "rate": 2.0})
        );
        let g = &j["g"];
        assert_eq!(g["type"], "gauge");
        for k in ["mean", "p50", "p90", "p99", "min", "max", "std", "count"] {
            assert!(g.get(k).is_some(), "{k}");
        }
        assert_eq!(g["count"], 2);
        assert_eq!(
            g["samples"],
            json!([[0.0, 5.0], [2.0, 7.0]]),
            "timed samples"
        );
        let extra = m.to_json_with(&[99.9]);
        assert!(close(extra["g"]["p99.9"].as_f64().unwrap(), 6.998));
        assert_eq!(extra["g"]["p50"], 6.0);
        assert_eq!(j["missing"], json!(["nope"]));
        assert_eq!(j["derived"], json!({}));
        assert!(j.get("failed_samples").is_none());
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["c_total", "g", "derived", "missing"]);
        // One scrape only: nothing to compare.
        let mut c = Collector::new(names(&["c"]));
        c.add(0.0, &prometheus::parse("c 1").unwrap());
        assert!(c.finish(Some("boom".into())).unwrap_err().contains("boom"));
    }

    // ----- against a live HTTP server -----

    struct TestServer {
        hits: AtomicU64,
        auths: Mutex<Vec<Option<String>>>,
        /// Which scrape numbers (1-based) answer 500.
        fail: fn(u64) -> bool,
        body: fn(u64) -> String,
    }

    async fn metrics_handler(State(st): State<Arc<TestServer>>, headers: HeaderMap) -> Response {
        let n = st.hits.fetch_add(1, Ordering::SeqCst) + 1;
        let auth = headers
            .get(AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("?").to_string());
        st.auths.lock().unwrap().push(auth);
        if (st.fail)(n) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
        }
        (st.body)(n).into_response()
    }

    async fn serve(fail: fn(u64) -> bool, body: fn(u64) -> String) -> (Url, Arc<TestServer>) {
        let st = Arc::new(TestServer {
            hits: AtomicU64::new(0),
            auths: Mutex::new(Vec::new()),
            fail,
            body,
        });
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(metrics_handler))
            .with_state(st.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (Url::parse(&format!("http://{addr}/metrics")).unwrap(), st)
    }

    /// Changes with every scrape `n`: counters grow, gauges move.
    fn live_page(n: u64) -> String {
        let n = n as f64;
        format!(
            "# HELP test:requests Requests served.\n\
             # TYPE test:requests counter\n\
             test:requests_total{{model_name=\"a\"}} {}\n\
             test:requests_total{{model_name=\"b\"}} {}\n\
             # TYPE test:running gauge\n\
             test:running{{model_name=\"a\"}} {}\n\
             test:running{{model_name=\"b\"}} {}\n\
             # TYPE vllm:prefix_cache_queries counter\n\
             vllm:prefix_cache_queries_total{{model_name=\"a\"}} {}\n\
             # TYPE vllm:prefix_cache_hits counter\n\
             vllm:prefix_cache_hits_total{{model_name=\"a\"}} {}\n\
             # TYPE vllm:time_to_first_token_seconds histogram\n\
             vllm:time_to_first_token_seconds_bucket{{le=\"0.1\",model_name=\"a\"}} {n}\n\
             vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",model_name=\"a\"}} {}\n\
             vllm:time_to_first_token_seconds_sum{{model_name=\"a\"}} {}\n\
             vllm:time_to_first_token_seconds_count{{model_name=\"a\"}} {}\n\
             unrelated_metric 1\n",
            10.0 * n,
            n,
            n,
            1000.0 - n,
            100.0 * n,
            25.0 * n,
            2.0 * n,
            0.5 * n,
            2.0 * n,
        )
    }

    fn spec(url: &Url, metrics: &str) -> MetricsSpec {
        MetricsSpec::new(url.clone(), metrics, Duration::from_millis(20)).unwrap()
    }

    #[tokio::test]
    async fn live_run_with_auth() {
        let (url, st) = serve(|_| false, live_page).await;
        let auth = HeaderValue::from_static("Bearer secret");
        let scraper = Scraper::new(Some(auth), Duration::from_secs(5)).unwrap();
        let spec = spec(
            &url,
            "test:requests,test:running,vllm:prefix_cache_queries,vllm:prefix_cache_hits,\
             vllm:time_to_first_token_seconds,test:never_there",
        );
        let running = scraper.start(&spec).await.unwrap();
        assert_eq!(
            st.hits.load(Ordering::SeqCst),
            1,
            "the first scrape is awaited"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Then until two samples are in, however slow the machine: the fourth scrape
        // is sent only once the third one's answer was read.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while st.hits.load(Ordering::SeqCst) < 4 {
            assert!(tokio::time::Instant::now() < deadline, "not sampling");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let m = running.finish().await.unwrap();
        assert_eq!(m.failed_samples, 0, "{:?}", m.last_error);
        assert!(m.scrapes >= 4, "before, some samples, after: {}", m.scrapes);

        let a = counter(&m, r#"test:requests_total{model_name="a"}"#);
        let last = a.after / 10.0;
        assert_eq!(a.before, Some(10.0));
        assert_eq!(a.delta, 10.0 * (last - 1.0));
        assert!(close(a.rate.unwrap() * m.duration_s, a.delta));
        assert!(m.duration_s >= 0.15);
        let b = counter(&m, r#"test:requests_total{model_name="b"}"#);
        assert_eq!(b.delta, last - 1.0, "label sets never mixed");

        let ga = gauge(&m, r#"test:running{model_name="a"}"#);
        let gb = gauge(&m, r#"test:running{model_name="b"}"#);
        assert_eq!(
            ga.count, m.scrapes,
            "every scrape, before and after included"
        );
        assert_eq!((ga.min, ga.max), (1.0, last));
        assert_eq!(gb.max, 999.0);
        assert!(close(ga.mean + gb.mean, 1000.0));

        assert!(
            m.get(r#"vllm:time_to_first_token_seconds_sum{model_name="a"}"#)
                .is_some()
        );
        assert!(
            m.series.iter().all(|s| !s.key.contains("_bucket")),
            "buckets left out"
        );
        assert!(m.get("unrelated_metric").is_none());
        assert!(close(
            m.derived_value("prefix_cache_hit_rate").unwrap(),
            0.25
        ));
        assert!(close(m.derived_value("mean_ttft_ms").unwrap(), 250.0));
        assert_eq!(m.missing, ["test:never_there"]);
        let j = m.to_json();
        assert_eq!(
            j[r#"test:requests_total{model_name="a"}"#]["type"],
            "counter"
        );
        assert_eq!(j[r#"test:running{model_name="b"}"#]["type"], "gauge");
        assert!(
            j["derived"]
                .get(r#"mean_ttft_ms{model_name="a"}"#)
                .is_some()
        );

        let auths = st.auths.lock().unwrap();
        assert!(auths.len() >= m.scrapes);
        assert!(auths.iter().all(|a| a.as_deref() == Some("Bearer secret")));
    }

    #[tokio::test]
    async fn no_auth_unless_given_and_failures_counted() {
        // Scrapes 2 and 3 (during the run) fail; the others work.
        let (url, st) = serve(|n| n == 2 || n == 3, live_page).await;
        let scraper = Scraper::new(None, Duration::from_secs(5)).unwrap();
        let running = scraper.start(&spec(&url, "test:requests")).await.unwrap();
        while st.hits.load(Ordering::SeqCst) < 5 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let m = running.finish().await.unwrap();
        assert_eq!(m.failed_samples, 2);
        assert!(m.last_error.as_deref().unwrap().contains("HTTP 500"));
        assert_eq!(m.to_json()["failed_samples"], 2);
        assert!(st.auths.lock().unwrap().iter().all(Option::is_none));
    }

    #[tokio::test]
    async fn failures_before_and_after_the_run() {
        // HTTP error before the run: an error naming the URL and the cause.
        let (url, _) = serve(|_| true, live_page).await;
        let scraper = Scraper::new(None, Duration::from_secs(5)).unwrap();
        let e = scraper.start(&spec(&url, "x")).await.unwrap_err();
        assert!(e.contains(url.as_str()) && e.contains("HTTP 500"), "{e}");

        // Not the text format.
        let (url, _) = serve(|_| false, |_| "x{a=\"1\" 2\n".into()).await;
        let e = scraper.start(&spec(&url, "x")).await.unwrap_err();
        assert!(e.contains(url.as_str()) && e.contains("line 1"), "{e}");

        // Nothing listening.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = Url::parse(&format!("http://{}/metrics", free.local_addr().unwrap())).unwrap();
        drop(free);
        let e = scraper.start(&spec(&dead, "x")).await.unwrap_err();
        assert!(e.contains(dead.as_str()), "{e}");

        // Every scrape after the first fails: nothing to compare with.
        let (url, _) = serve(|n| n > 1, live_page).await;
        let running = scraper.start(&spec(&url, "test:requests")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let e = running.finish().await.unwrap_err();
        assert!(e.contains("HTTP 500"), "{e}");

        // Only the final scrape fails: counted up to the last sample, with a note.
        let (url, st) = serve(|n| n > 3, live_page).await;
        let running = scraper.start(&spec(&url, "test:requests")).await.unwrap();
        while st.hits.load(Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let m = running.finish().await.unwrap();
        let a = counter(&m, r#"test:requests_total{model_name="a"}"#);
        assert_eq!((a.before, a.after), (Some(10.0), 30.0));
        assert!(
            a.notes
                .iter()
                .any(|n| n.contains("scrape after the run failed"))
        );
        assert!(m.failed_samples >= 2);
    }
}
