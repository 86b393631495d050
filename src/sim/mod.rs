//! Built-in simulated OpenAI-compatible server.
//!
//! It answers `/v1/chat/completions` and `/v1/completions` with made-up text on a
//! fixed, documented timetable, so a client's measurements can be checked against
//! what the server actually did (see [`SimStats`] and the timing contract in
//! `stream.rs`).

mod http;
mod stream;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::sync::watch;

use crate::workload::Tokenizer;

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub model: String,
    /// Fixed part of the time to first token.
    pub ttft_base_ms: f64,
    /// Prefill cost; 0.04 ms is 25k prompt tokens/s, an 8B model on one H100.
    pub prefill_ms_per_token: f64,
    /// Time per output token.
    pub tpot_ms: f64,
    /// Tokens carried by each streamed chunk (>1 mimics speculative decoding).
    pub tokens_per_chunk: u32,
    /// Send a role-only first chunk right away, like vLLM.
    pub role_chunk: bool,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            model: "servebench-sim".to_string(),
            ttft_base_ms: 15.0,
            prefill_ms_per_token: 0.04,
            tpot_ms: 10.0,
            tokens_per_chunk: 1,
            role_chunk: true,
            seed: 0,
        }
    }
}

/// Counters tests compare with what the client measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SimStats {
    /// Completion requests accepted (valid ones only).
    pub requests: u64,
    /// Requests whose whole response was produced.
    pub completed: u64,
    /// Summed over completed requests.
    pub prompt_tokens: u64,
    /// Summed over completed requests.
    pub output_tokens: u64,
}

/// What every request handler shares.
struct Shared {
    config: SimConfig,
    tokenizer: Tokenizer,
    // A mutex rather than atomics so a snapshot never shows `completed` without its tokens.
    stats: Mutex<SimStats>,
    next_id: AtomicU64,
}

impl Shared {
    fn new(config: SimConfig) -> Arc<Shared> {
        let tokenizer = Tokenizer::builtin();
        // Load the vocabulary now, not inside the first request's time to first token.
        tokenizer.count("warm up");
        Arc::new(Shared {
            config,
            tokenizer,
            stats: Mutex::new(SimStats::default()),
            next_id: AtomicU64::new(0),
        })
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn stats_mut(&self) -> std::sync::MutexGuard<'_, SimStats> {
        // Updates are single statements that cannot panic midway, so poison is harmless.
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_request(&self) {
        self.stats_mut().requests += 1;
    }

    fn record_completed(&self, prompt_tokens: u64, output_tokens: u64) {
        let mut s = self.stats_mut();
        s.completed += 1;
        s.prompt_tokens += prompt_tokens;
        s.output_tokens += output_tokens;
    }

    fn stats(&self) -> SimStats {
        *self.stats_mut()
    }
}

/// How long [`SimServer`]'s drop lets in-flight responses finish before cutting them off,
/// so a client that stopped reading cannot hang the drop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A simulator running on its own OS thread with its own current-thread tokio runtime
/// (so it never competes with the client's runtime for scheduling).
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Binds `addr` (port 0 = pick a free port) before returning, then serves in the background.
    pub fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimServer> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Registering the socket needs the runtime's I/O driver in context.
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let shared = Shared::new(config);
        let (shutdown, mut stop) = watch::channel(false);
        let mut graceful = stop.clone();
        let app = http::router(shared.clone());
        let thread = std::thread::Builder::new()
            .name("servebench-sim".to_string())
            .spawn(move || {
                rt.block_on(async move {
                    let server = axum::serve(listener.tap_io(set_nodelay), app)
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
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serve on an already-bound listener until the process ends (for `servebench sim`).
pub async fn serve(listener: tokio::net::TcpListener, config: SimConfig) -> std::io::Result<()> {
    let app = http::router(Shared::new(config));
    axum::serve(listener.tap_io(set_nodelay), app).await
}

/// Without TCP_NODELAY, keep-alive streams stall ~40 ms on Nagle + delayed ACK.
fn set_nodelay(tcp: &mut tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
}
