//! Built-in simulated OpenAI-compatible server.
//!
//! It answers `/v1/chat/completions` and `/v1/completions` with made-up text,
//! `/v1/embeddings` with made-up vectors (`embeddings.rs`), and
//! `/metrics` with vLLM's metric names. By default a serving-engine model decides
//! when tokens come out (a continuous-batching scheduler with chunked prefill, a KV
//! cache with a prefix cache, and a per-step cost model: [`EngineConfig`]); with
//! `engine: None` every request follows its own fixed timetable instead (the timing
//! contract in `stream.rs`), so a client's measurements can be checked exactly.
//! [`FaultConfig`] makes chosen requests fail on purpose, in either mode.

mod conn;
mod dcgm;
mod driver;
mod embeddings;
mod engine;
mod faults;
mod http;
mod images;
mod kv;
mod lora;
mod metrics;
mod plan;
mod profile;
mod reasoning;
mod responses;
mod sched;
mod source;
mod spec;
mod stream;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_engine;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_responses;
#[cfg(test)]
mod tests_sched;
#[cfg(test)]
mod tests_spec;
#[cfg(test)]
mod tests_tools;
mod timings;
mod tokenize;
mod tools;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::workload::Tokenizer;
pub use dcgm::DcgmConfig;
pub use engine::EngineConfig;
pub use faults::{FaultConfig, FaultCounts, FaultKind, FaultSpec};
pub use images::DEFAULT_IMAGE_TOKENS;
pub use lora::{LoraModule, check_served};
pub use profile::{ProfileAction, ProfileCall};
pub use reasoning::{ReasoningField, ReasoningTokens};
pub use spec::{MAX_SPEC_TOKENS, SpecDecoding};

/// The simulator's settings. `ttft_base_ms`, `prefill_ms_per_token` and `tpot_ms`
/// are the ideal timetable's and are unused when `engine` is set.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub model: String,
    /// Fixed part of the time to first token (ideal timetable), ms.
    pub ttft_base_ms: f64,
    /// Prefill cost per prompt token (ideal timetable), ms; 0.04 ms is 25k prompt
    /// tokens/s, an 8B model on one H100.
    pub prefill_ms_per_token: f64,
    /// Time per output token (ideal timetable), ms.
    pub tpot_ms: f64,
    /// Tokens carried by each streamed chunk (>1 mimics speculative decoding).
    pub tokens_per_chunk: u32,
    /// Send a role-only first chunk right away, like vLLM.
    pub role_chunk: bool,
    /// Output lengths of requests without `ignore_eos` depend on it (and the prompt).
    pub seed: u64,
    /// The serving-engine model; `None` gives each request its own ideal timetable,
    /// with no queueing and no interaction between requests.
    pub engine: Option<EngineConfig>,
    /// Requests that fail on purpose; the default injects nothing.
    pub faults: FaultConfig,
    /// Under `tool_choice` "auto" (or none given), the share of requests carrying tools
    /// that are answered with a tool call (drawn from the seed and the prompt).
    pub tool_call_share: f64,
    /// Chat answers start with this many reasoning tokens (`reasoning.rs`); `None`:
    /// no reasoning phase.
    pub reasoning_tokens: Option<ReasoningTokens>,
    /// The delta field reasoning streams in.
    pub reasoning_field: ReasoningField,
    /// Length of the vectors `/v1/embeddings` answers with (unless a request asks for
    /// `dimensions`).
    pub embedding_dim: u32,
    /// LoRA adapters served beside `model` (`--lora-modules`); with any, a request
    /// naming a model not served gets vLLM's 404.
    pub lora_modules: Vec<LoraModule>,
    /// Prompt tokens each image content part costs (chat `image_url`, Responses
    /// `input_image`), reported in `usage.prompt_tokens`.
    pub image_tokens: u32,
    /// Speculative decoding (`spec.rs`): each decode step emits the accepted draft
    /// tokens and a bonus token in one event; `None`: one token per step.
    pub spec: Option<SpecDecoding>,
    /// A DCGM-style exporter on a port of its own (`dcgm.rs`); `None`: no GPUs shown.
    pub dcgm: Option<DcgmConfig>,
    /// Stream llama.cpp's `timings` object (prompt and decode times as the simulator
    /// measured them) in each stream's last chunk.
    pub timings: bool,
    /// Close the connection right after each streamed response, without
    /// `Connection: close`, as llama.cpp's server does.
    pub close_after_stream: bool,
    /// How long each `/start_profile` and `/stop_profile` call takes, ms.
    pub profile_delay_ms: f64,
    /// llama.cpp-style slots `/slots` lists; erasing all empties the prefix cache.
    pub slots: u32,
    /// Answer as if `ignore_eos` were not asked for: outputs stop at the natural end
    /// drawn from the seed, as on a server that does not honour the field.
    pub ignore_ignore_eos: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            engine: Some(EngineConfig::default()),
            ..SimConfig::ideal()
        }
    }
}

impl SimConfig {
    /// The ideal per-request timetable with its defaults (15 ms + 0.04 ms per prompt
    /// token to the first token, then 10 ms per token).
    pub fn ideal() -> SimConfig {
        SimConfig {
            model: "servescope-sim".to_string(),
            ttft_base_ms: 15.0,
            prefill_ms_per_token: 0.04,
            tpot_ms: 10.0,
            tokens_per_chunk: 1,
            role_chunk: true,
            seed: 0,
            engine: None,
            faults: FaultConfig::default(),
            tool_call_share: 1.0,
            reasoning_tokens: None,
            reasoning_field: ReasoningField::default(),
            embedding_dim: embeddings::DEFAULT_DIM,
            lora_modules: Vec::new(),
            image_tokens: DEFAULT_IMAGE_TOKENS,
            spec: None,
            dcgm: None,
            timings: false,
            close_after_stream: false,
            profile_delay_ms: 0.0,
            slots: 4,
            ignore_ignore_eos: false,
        }
    }
}

/// Counters tests compare with what the client measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SimStats {
    /// Completion requests accepted for generation: valid ones not answered by a
    /// `drop`, `http_500` or `http_429` fault.
    pub requests: u64,
    /// Requests whose whole response was produced and a client can accept: not those
    /// with a `cut`, `error_event` or `malformed` fault (even though a malformed
    /// stream runs to its end).
    pub completed: u64,
    /// Summed over completed requests.
    pub prompt_tokens: u64,
    /// Summed over completed requests.
    pub output_tokens: u64,
    /// Prefix-cache hits reported in `usage`, summed over completed requests.
    pub cached_tokens: u64,
    /// Requests preempted by the engine (each time).
    pub preemptions: u64,
    /// Engine steps run.
    pub steps: u64,
    /// The most tokens (prefill + decode) computed in one engine step.
    pub max_step_tokens: u64,
    /// The most requests running, and waiting, right after forming a step.
    pub max_running: u64,
    pub max_waiting: u64,
    /// Faults injected, per kind: counted when the fault is handed to the connection
    /// (a mid-output fault of a client that left before it is not counted).
    pub faults_injected: FaultCounts,
}

/// What the counters' mutex guards.
#[derive(Default)]
struct Counters {
    stats: SimStats,
    metrics: metrics::Metrics,
}

/// What every request handler shares.
struct Shared {
    config: SimConfig,
    tokenizer: Tokenizer,
    // A mutex rather than atomics so a snapshot never shows `completed` without its tokens.
    counters: Mutex<Counters>,
    next_id: AtomicU64,
    /// The next completion request's ordinal, for faults.
    next_ordinal: AtomicU64,
    /// Where requests go in engine mode.
    engine: Option<mpsc::UnboundedSender<driver::Arrival>>,
    /// A prefix-cache reset was asked for; the engine applies it before its next step.
    reset_cache: std::sync::atomic::AtomicBool,
    /// The DCGM-style exporter's meter (`SimConfig::dcgm`).
    dcgm: Option<Arc<dcgm::Exporter>>,
    /// Profiler calls and erased slots (`profile.rs`).
    profile: profile::Log,
}

impl Shared {
    /// The shared state, and the engine loop to spawn on the server's runtime (engine
    /// mode); fails on settings the engine cannot run with.
    fn new(config: SimConfig) -> std::io::Result<(Arc<Shared>, Option<driver::Engine>)> {
        let (engine_tx, engine) = match &config.engine {
            None => (None, None),
            Some(cfg) => {
                cfg.validate()
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let (tx, engine) = driver::channel(cfg.clone(), config.spec);
                (Some(tx), Some(engine))
            }
        };
        config
            .faults
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        if let Some(d) = &config.dcgm {
            d.validate()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        }
        let dcgm = config.dcgm.clone().map(dcgm::Exporter::new);
        let tokenizer = Tokenizer::builtin();
        // Load the vocabulary now, not inside the first request's time to first token.
        tokenizer.count("warm up");
        let mut counters = Counters::default();
        counters.metrics.spec = config.spec.map(|s| spec::SpecCounters::new(s.tokens));
        let shared = Arc::new(Shared {
            config,
            tokenizer,
            counters: Mutex::new(counters),
            next_id: AtomicU64::new(0),
            next_ordinal: AtomicU64::new(0),
            engine: engine_tx,
            reset_cache: std::sync::atomic::AtomicBool::new(false),
            dcgm,
            profile: profile::Log::default(),
        });
        Ok((shared, engine))
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn next_ordinal(&self) -> u64 {
        self.next_ordinal.fetch_add(1, Ordering::Relaxed)
    }

    fn count_fault(&self, kind: FaultKind) {
        self.counters().stats.faults_injected.add(kind);
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        // Updates are plain arithmetic that cannot panic midway, so poison is harmless.
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_request(&self) {
        self.counters().stats.requests += 1;
    }

    fn record_completed(&self, prompt_tokens: u64, output_tokens: u64, cached_tokens: u64) {
        let mut c = self.counters();
        c.stats.completed += 1;
        c.stats.prompt_tokens += prompt_tokens;
        c.stats.output_tokens += output_tokens;
        c.stats.cached_tokens += cached_tokens;
        c.metrics.request_success += 1;
    }

    fn stats(&self) -> SimStats {
        self.counters().stats
    }
}

/// How long [`SimServer`]'s drop lets in-flight responses finish before cutting them off,
/// so a client that stopped reading cannot hang the drop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Connections waiting to be accepted (see `SimServer::start`).
const LISTEN_BACKLOG: u32 = 8192;

/// A simulator running on its own OS thread with its own current-thread tokio runtime
/// (so it never competes with the client's runtime for scheduling).
pub struct SimServer {
    addr: SocketAddr,
    /// The DCGM-style exporter's address (`SimConfig::dcgm`).
    dcgm_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Binds `addr` (port 0 = pick a free port) before returning, then serves in the background.
    pub fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimServer> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Registering the socket needs the runtime's I/O driver in context.
        let listener = {
            let _guard = rt.enter();
            let socket = match addr {
                SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            // The usual backlog of 128 overflows when a batch opens thousands of
            // connections at once, and the kernel then retries them after 1, 3, 7 ...
            // s: latency of the listen queue, not of the simulated server. The kernel
            // caps this at net.core.somaxconn.
            socket.listen(LISTEN_BACKLOG)?
        };
        let addr = listener.local_addr()?;
        let dcgm_listener = match &config.dcgm {
            Some(d) => Some({
                let _guard = rt.enter();
                std::net::TcpListener::bind((addr.ip(), d.port)).and_then(|l| {
                    l.set_nonblocking(true)?;
                    tokio::net::TcpListener::from_std(l)
                })?
            }),
            None => None,
        };
        let dcgm_addr = dcgm_listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let (shared, engine) = Shared::new(config)?;
        let (shutdown, mut stop) = watch::channel(false);
        let mut graceful = stop.clone();
        let app = http::router(shared.clone()).into_make_service_with_connect_info::<conn::Conn>();
        let engine_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("servescope-sim".to_string())
            .spawn(move || {
                rt.block_on(async move {
                    if let Some(engine) = engine {
                        tokio::spawn(engine.run(engine_shared.clone()));
                    }
                    if let Some(l) = dcgm_listener {
                        spawn_dcgm(l, &engine_shared);
                    }
                    let server = axum::serve(conn::FaultListener(listener), app)
                        .with_graceful_shutdown(async move {
                            // An error means the handle is gone: stop as well.
                            let _ = graceful.wait_for(|s| *s).await;
                        });
                    let deadline = async move {
                        let _ = stop.wait_for(|s| *s).await;
                        tokio::time::sleep(SHUTDOWN_GRACE).await;
                    };
                    tokio::select! {
                        _ = server => {}
                        _ = deadline => {}
                    }
                });
                // Dropping the runtime here cancels whatever responses are still running.
            })?;
        Ok(SimServer {
            addr,
            dcgm_addr,
            shared,
            shutdown,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL to connect to, e.g. `http://127.0.0.1:PORT` (a wildcard bind address is
    /// replaced by loopback, since it cannot be connected to).
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        format!("http://{addr}")
    }

    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// The DCGM-style exporter's `/metrics` URL, when `SimConfig::dcgm` is set.
    pub fn dcgm_url(&self) -> Option<String> {
        let mut addr = self.dcgm_addr?;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        Some(format!("http://{addr}/metrics"))
    }

    /// Each simulated GPU's energy counter, in J (the exporter's own integral).
    pub fn dcgm_energy_j(&self) -> Option<f64> {
        self.shared.dcgm.as_ref().map(|d| d.energy_j())
    }

    /// The calls to `/start_profile` and `/stop_profile` so far, in order.
    pub fn profile_calls(&self) -> Vec<ProfileCall> {
        self.shared.profile.calls()
    }
}

/// The exporter's meter and its port, on the server's runtime.
fn spawn_dcgm(listener: tokio::net::TcpListener, shared: &Arc<Shared>) {
    let Some(exporter) = shared.dcgm.clone() else {
        return;
    };
    tokio::spawn(exporter.clone().run(shared.clone()));
    let app = dcgm::router(exporter, shared.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serve on an already-bound listener until the process ends (for `servescope sim`).
pub async fn serve(listener: tokio::net::TcpListener, config: SimConfig) -> std::io::Result<()> {
    serve_with_dcgm(listener, None, config).await
}

/// [`serve`], with the DCGM-style exporter on `dcgm` (bound to `SimConfig::dcgm`'s port).
pub async fn serve_with_dcgm(
    listener: tokio::net::TcpListener,
    dcgm: Option<tokio::net::TcpListener>,
    config: SimConfig,
) -> std::io::Result<()> {
    let (shared, engine) = Shared::new(config)?;
    if let Some(engine) = engine {
        tokio::spawn(engine.run(shared.clone()));
    }
    if let Some(l) = dcgm {
        spawn_dcgm(l, &shared);
    }
    let app = http::router(shared).into_make_service_with_connect_info::<conn::Conn>();
    axum::serve(conn::FaultListener(listener), app).await
}
