//! Scraping `/metrics`: one scrape, and the sampling loop around a run.

use std::fmt;
use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::collect::Collector;
use super::{MetricsSpec, ServerMetrics};
use crate::client::openai::http_error_message;
use crate::client::{error_chain, init_tls};
use crate::metrics::prometheus::{self, Exposition};

/// A `/metrics` body larger than this is not a metrics page.
pub(super) const MAX_BODY: usize = 64 << 20;
/// Asks for the 0.0.4 text format: servers that negotiate (prometheus_client) would
/// otherwise be free to answer in OpenMetrics, with exemplars this parser rejects.
pub(super) const ACCEPT_TEXT: &str = "text/plain;version=0.0.4;q=1.0,*/*;q=0.1";

/// Whether two URLs have the same scheme, host and port. The API key may only go to a
/// metrics URL of the same origin as the benchmarked endpoint: the scheme counts too,
/// so a key meant for https never travels in clear text.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host().is_some()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Fetches `/metrics` with its own HTTP client, so scrapes never queue behind the
/// benchmark's requests on a pooled connection.
#[derive(Clone)]
pub struct Scraper {
    http: reqwest::Client,
    auth: Option<HeaderValue>,
    /// `-H` headers (the caller decides, as for `auth`).
    headers: reqwest::header::HeaderMap,
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
            headers: Default::default(),
            timeout,
        })
    }

    /// Send these headers with every scrape; as for `auth`, only to the benchmarked
    /// server itself.
    pub fn with_headers(mut self, headers: reqwest::header::HeaderMap) -> Scraper {
        self.headers = headers;
        self
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
            .headers(self.headers.clone())
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
pub(super) struct Sampled {
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

pub(super) fn secs_since(origin: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(origin).as_secs_f64()
}
