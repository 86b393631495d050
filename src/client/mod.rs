//! How requests are sent: one streaming HTTP exchange per request over keep-alive
//! connections, timed event by event.

pub mod chunked;
pub mod embeddings;
pub mod endpoint;
mod exchange;
pub mod headers;
mod http1;
mod json_scan;
pub mod observe;
pub mod openai;
mod pool;
pub mod redact;
mod resolve;
pub mod responses;
mod responses_body;
pub mod sse;
mod stream_state;
mod tls;
mod unary;

use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use tokio_rustls::TlsConnector;

use crate::record::FailureKind;
pub use observe::RequestObserver;
use openai::{Usage, http_error_message};
use pool::Pool;
use redact::KeyMask;
use resolve::Resolver;

/// Largest error body kept from an HTTP error response.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long to read what follows `[DONE]` (normally just the end of the body) so the
/// connection can be reused; a server that keeps the stream open is simply dropped.
/// The default of `ClientConfig::drain_after_done`.
pub const DRAIN_AFTER_DONE: Duration = Duration::from_millis(50);
/// Bytes of a non-SSE body quoted in the error.
const EXCERPT: usize = 200;
/// The longest a retry waits, whatever a `Retry-After` says.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

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
    /// What finds the key, or a recognisable part of it, in text a server sent.
    pub fn mask(&self) -> KeyMask {
        KeyMask::new(&self.0)
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
    /// Bound on a silence: no bytes (headers or body) for this long fails the request.
    pub idle_timeout: Option<Duration>,
    /// Tries again after a connection error or an HTTP 429, this many times at most.
    pub retries: u32,
    pub insecure: bool,
    /// How long to read past `[DONE]` for the end of the body (`DRAIN_AFTER_DONE`).
    pub drain_after_done: Duration,
}

/// What happened to one request, before token counting.
#[derive(Debug, Default)]
pub struct Outcome {
    pub started_at: u64,
    pub ended_at: u64,
    pub events: Vec<u64>,
    /// The events by kind (reasoning, answer, tool call).
    pub phases: crate::phases::Phases,
    pub usage: Option<Usage>,
    pub failure: Option<(FailureKind, String)>,
    pub http_status: Option<u16>,
    /// Generated text, for counting with a tokenizer when the server reports no usage.
    pub text: String,
    /// The stream ended properly (`[DONE]`, a Responses terminal event); nothing after
    /// that can fail the request.
    pub complete: bool,
    /// Tries after the first (`--retries`).
    pub retries: u32,
    /// A 429's `Retry-After`.
    pub retry_after: Option<Duration>,
    /// A kept-alive connection closed before any byte of a response came back.
    pub unanswered: bool,
    /// Embeddings: the inputs the request carried.
    pub inputs: Option<u32>,
    /// The server's own timings of the request (llama.cpp's `timings`); boxed, as
    /// every open stream holds an outcome.
    pub server_timings: Option<Box<crate::server_timings::ServerTimings>>,
}

impl Outcome {
    /// Some output event arrived.
    pub fn had_output(&self) -> bool {
        !self.events.is_empty()
    }

    /// Nothing failed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }
}

type Failure = (FailureKind, String);

/// rustls needs a process-wide crypto provider before any client is built.
pub fn init_tls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Benchmark requests go over this crate's own HTTP/1.1 connections (`http1`, `pool`),
/// direct to the server; reqwest serves the few other calls (`/v1/models`, a cache
/// reset). Neither uses a proxy: one would distort the measurement.
#[derive(Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    pool: Arc<Pool>,
    resolver: Arc<Resolver>,
    /// Built on the first https connection (it loads the system's roots).
    tls: Arc<OnceLock<Result<TlsConnector, String>>>,
    insecure: bool,
    auth: Option<HeaderValue>,
    /// `-H` headers, for the calls reqwest makes to the benchmarked server.
    extra: Arc<reqwest::header::HeaderMap>,
    /// The request head's lines every benchmark request shares (`http1::fixed_head_lines`).
    head_lines: Arc<[u8]>,
    /// Masks the key (and `-H` credentials) in messages a server might echo them into.
    key_mask: Arc<KeyMask>,
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    retries: u32,
    drain_after_done: Duration,
    /// How the streams of this client's requests are read (`for_api`).
    events: stream_state::EventFormat,
    /// Embeddings requests of this many inputs each: one JSON answer, not a stream.
    embeddings: Option<u32>,
}

impl HttpClient {
    /// This client for the embeddings API: each request carries `inputs` prompts and is
    /// answered with one JSON document holding as many embeddings.
    pub fn for_embeddings(mut self, inputs: u32) -> Self {
        self.embeddings = Some(inputs);
        self
    }

    pub fn new(cfg: &ClientConfig) -> Result<Self, ClientError> {
        init_tls();
        let http = reqwest::Client::builder()
            .http1_only()
            // A benchmark measures the server, not a proxy that happens to be configured.
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(pool::IDLE_TIMEOUT)
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
        let head_lines = http1::fixed_head_lines(
            auth.as_ref().map(HeaderValue::as_bytes),
            &Default::default(),
        );
        Ok(HttpClient {
            http,
            pool: Arc::default(),
            resolver: Arc::default(),
            tls: Arc::default(),
            insecure: cfg.insecure,
            auth,
            extra: Arc::default(),
            head_lines: head_lines.into(),
            key_mask: Arc::new(
                cfg.api_key
                    .as_ref()
                    .map_or_else(KeyMask::none, ApiKey::mask),
            ),
            timeout: cfg.timeout,
            idle_timeout: cfg.idle_timeout,
            retries: cfg.retries,
            drain_after_done: cfg.drain_after_done,
            events: stream_state::EventFormat::default(),
            embeddings: None,
        })
    }

    /// Read every stream as `api` sends it (chat and completions chunks by default).
    pub fn for_api(mut self, api: openai::Api) -> Self {
        self.events = stream_state::EventFormat::of(api);
        self
    }

    /// Send the `-H` headers with every request to the server (built into the request
    /// head once, here), and mask their credentials (and the API key, `api_key`) in
    /// what a server sends back.
    pub fn with_headers(mut self, extra: &headers::ExtraHeaders, api_key: Option<&str>) -> Self {
        let auth = self.auth.as_ref().map(HeaderValue::as_bytes);
        self.head_lines = http1::fixed_head_lines(auth, extra).into();
        self.extra = Arc::new(extra.map());
        let mut secrets = extra.secrets();
        secrets.extend(api_key);
        self.key_mask = Arc::new(KeyMask::all(&secrets));
        self
    }

    /// The `-H` headers, for a caller that checked where they go.
    pub fn extra_headers(&self) -> reqwest::header::HeaderMap {
        (*self.extra).clone()
    }

    /// The Authorization header, for a caller that checked where it goes.
    pub fn auth_header(&self) -> Option<HeaderValue> {
        self.auth.clone()
    }

    /// `--insecure`: certificates are not checked (other clients of the same server,
    /// such as the tokenizer's, follow it).
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// A message with the API key masked (gateways echo it in errors), in any form
    /// `redact` recognises.
    pub fn mask(&self, msg: String) -> String {
        match self.key_mask.mask(&msg) {
            std::borrow::Cow::Borrowed(_) => msg,
            std::borrow::Cow::Owned(m) => m,
        }
    }

    /// GET a JSON document (e.g. `/v1/models`), with the API key.
    pub async fn get_json(&self, url: &reqwest::Url) -> Result<serde_json::Value, String> {
        let mut rb = self.http.get(url.clone()).headers((*self.extra).clone());
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
            .map_err(|e| self.mask(e))
    }

    /// POST with an empty body (a cache reset); the API key only when `with_key`.
    pub async fn post_empty(&self, url: &reqwest::Url, with_key: bool) -> Result<(), String> {
        self.post_empty_within(url, with_key, Duration::from_secs(60))
            .await
    }

    /// `post_empty`, answered within `limit` (a profiler's stop writes its trace first).
    pub async fn post_empty_within(
        &self,
        url: &reqwest::Url,
        with_key: bool,
        limit: Duration,
    ) -> Result<(), String> {
        let mut rb = self.http.post(url.clone());
        if with_key {
            rb = rb.headers((*self.extra).clone());
            if let Some(a) = &self.auth {
                rb = rb.header(AUTHORIZATION, a.clone());
            }
        }
        let fut = async {
            let resp = rb.send().await.map_err(|e| error_chain(&e.without_url()))?;
            let status = resp.status();
            let body = resp.bytes().await.unwrap_or_default();
            if status.is_success() {
                Ok(())
            } else {
                Err(http_error_message(status.as_u16(), &body))
            }
        };
        tokio::time::timeout(limit, fut)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", limit.as_secs())))
            .map_err(|e| self.mask(e))
    }
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
