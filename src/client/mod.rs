//! How requests are sent: one streaming HTTP exchange per request over keep-alive
//! connections, timed event by event.

pub mod endpoint;
pub mod openai;
pub mod sse;

use std::sync::Once;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};

use crate::clock::RunClock;
use crate::progress::Live;
use crate::record::FailureKind;
use openai::{Usage, http_error_message, parse_chunk};
use sse::{Leftover, SseParser};

/// Largest error body kept from an HTTP error response.
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    #[error("the API key contains characters not allowed in an HTTP header")]
    BadApiKey,
}

/// An API key that never prints itself.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(s: String) -> Self {
        ApiKey(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub api_key: Option<ApiKey>,
    /// Bound on a whole request, from start to the end of the stream.
    pub timeout: Option<Duration>,
    pub insecure: bool,
}

/// What happened to one request, before token counting.
#[derive(Debug, Default)]
pub struct Outcome {
    pub started_at: u64,
    pub ended_at: u64,
    pub events: Vec<u64>,
    pub usage: Option<Usage>,
    pub failure: Option<(FailureKind, String)>,
    pub http_status: Option<u16>,
    /// Generated text, for counting with a tokenizer when the server reports no usage.
    pub text: String,
}

type Failure = (FailureKind, String);

/// rustls needs a process-wide crypto provider before any client is built.
pub fn init_tls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[derive(Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    auth: Option<HeaderValue>,
    timeout: Option<Duration>,
}

impl HttpClient {
    pub fn new(cfg: &ClientConfig) -> Result<Self, ClientError> {
        init_tls();
        let http = reqwest::Client::builder()
            .http1_only()
            // A benchmark measures the server, not a proxy that happens to be configured.
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(90))
            .tls_danger_accept_invalid_certs(cfg.insecure)
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        let auth = match &cfg.api_key {
            Some(k) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", k.expose()))
                    .map_err(|_| ClientError::BadApiKey)?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(HttpClient {
            http,
            auth,
            timeout: cfg.timeout,
        })
    }

    /// GET a JSON document (e.g. `/v1/models`), with the API key.
    pub async fn get_json(&self, url: &reqwest::Url) -> Result<serde_json::Value, String> {
        let mut rb = self.http.get(url.clone());
        if let Some(a) = &self.auth {
            rb = rb.header(AUTHORIZATION, a.clone());
        }
        let fut = async {
            let resp = rb.send().await.map_err(|e| error_chain(&e.without_url()))?;
            let status = resp.status();
            let body = resp
                .bytes()
                .await
                .map_err(|e| error_chain(&e.without_url()))?;
            if !status.is_success() {
                return Err(http_error_message(status.as_u16(), &body));
            }
            serde_json::from_slice(&body).map_err(|e| format!("response is not JSON: {e}"))
        };
        tokio::time::timeout(Duration::from_secs(30), fut)
            .await
            .unwrap_or_else(|_| Err("no answer within 30 s".into()))
    }

    /// Send one streaming request and time its output events. Never fails: a failure is
    /// part of the outcome, with everything measured up to that point.
    pub async fn execute(
        &self,
        url: &reqwest::Url,
        body: Bytes,
        clock: &RunClock,
        live: &Live,
    ) -> Outcome {
        let mut out = Outcome {
            started_at: clock.now_us(),
            ..Outcome::default()
        };
        live.on_start();
        let exchange = self.exchange(url, body, clock, live, &mut out);
        let result = match self.timeout {
            Some(d) => tokio::time::timeout(d, exchange).await.unwrap_or_else(|_| {
                Err((
                    FailureKind::Timeout,
                    format!(
                        "no complete response within the {} s timeout",
                        d.as_secs_f64()
                    ),
                ))
            }),
            None => exchange.await,
        };
        if let Err(f) = result {
            out.failure = Some(f);
            out.ended_at = clock.now_us();
        }
        live.on_end(!out.events.is_empty(), out.failure.is_none());
        out
    }

    async fn exchange(
        &self,
        url: &reqwest::Url,
        body: Bytes,
        clock: &RunClock,
        live: &Live,
        out: &mut Outcome,
    ) -> Result<(), Failure> {
        let mut rb = self
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(a) = &self.auth {
            rb = rb.header(AUTHORIZATION, a.clone());
        }
        let mut resp = rb.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                FailureKind::Timeout
            } else {
                FailureKind::ConnectError
            };
            (kind, error_chain(&e.without_url()))
        })?;
        let status = resp.status();
        out.http_status = Some(status.as_u16());
        if !status.is_success() {
            let body = read_limited(&mut resp, MAX_ERROR_BODY).await;
            return Err((
                FailureKind::HttpStatus,
                http_error_message(status.as_u16(), &body),
            ));
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with("application/json") {
            return Err((
                FailureKind::InvalidResponse,
                "the server answered with one JSON document instead of an event stream \
                 (does it support \"stream\": true?)"
                    .into(),
            ));
        }

        let mut parser = SseParser::new();
        let mut state = StreamState::default();
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    return Err((
                        FailureKind::StreamCut,
                        format!(
                            "stream broken after {} output events: {}",
                            out.events.len(),
                            error_chain(&e.without_url())
                        ),
                    ));
                }
            };
            parser.feed(&chunk, |data| state.on_event(data, clock, live, out));
            if let Some(f) = state.failure.take() {
                return Err(f);
            }
            if state.done {
                // Read the (empty) rest so the connection goes back to the pool.
                while let Ok(Some(_)) = resp.chunk().await {}
                break;
            }
        }
        if !state.done
            && let Leftover::Partial(data) = parser.finish()
        {
            // Tolerate a server that omits the final blank line; a truly cut event
            // fails to parse and is reported as a cut stream.
            if data != b"[DONE]" && serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_err()
            {
                return Err((
                    FailureKind::StreamCut,
                    format!(
                        "connection closed in the middle of an event after {} output events",
                        out.events.len()
                    ),
                ));
            }
            state.on_event(&data, clock, live, out);
            if let Some(f) = state.failure.take() {
                return Err(f);
            }
        }
        if !state.done && !state.finished {
            return Err((
                FailureKind::StreamCut,
                format!(
                    "connection closed before the end of the stream (no [DONE], no finish_reason) after {} output events",
                    out.events.len()
                ),
            ));
        }
        if !state.done {
            out.ended_at = clock.now_us();
        }
        if out.events.is_empty() {
            return Err((
                FailureKind::InvalidResponse,
                "the stream ended without any output event".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Default)]
struct StreamState {
    done: bool,
    finished: bool,
    parsed: u64,
    failure: Option<Failure>,
}

impl StreamState {
    /// Handle one event; returns false to stop reading the stream.
    fn on_event(&mut self, data: &[u8], clock: &RunClock, live: &Live, out: &mut Outcome) -> bool {
        self.parsed += 1;
        if data == b"[DONE]" {
            self.done = true;
            out.ended_at = clock.now_us();
            return false;
        }
        match parse_chunk(data, &mut out.text) {
            Ok(info) => {
                if let Some(e) = info.error {
                    self.failure = Some((FailureKind::ErrorEvent, e));
                    return false;
                }
                if info.output {
                    out.events.push(clock.now_us());
                    live.on_event(out.events.len() == 1);
                }
                if let Some(u) = info.usage {
                    out.usage = Some(u);
                }
                self.finished |= info.finished;
                true
            }
            Err(e) => {
                let shown = String::from_utf8_lossy(&data[..data.len().min(200)]).into_owned();
                self.failure = Some((
                    FailureKind::InvalidResponse,
                    format!("event {} is not valid JSON ({e}): {shown}", self.parsed),
                ));
                false
            }
        }
    }
}

async fn read_limited(resp: &mut reqwest::Response, max: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(c)) = resp.chunk().await {
        let room = max - body.len();
        body.extend_from_slice(&c[..c.len().min(room)]);
        if body.len() >= max {
            break;
        }
    }
    body
}

/// An error and its causes on one line (reqwest's own message alone is vague).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
