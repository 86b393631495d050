//! A real llama.cpp server for the end-to-end tests: `llama-server` with SmolLM2-135M on
//! the CPU, as `scripts/llama-server.sh install` builds it; one at a time per test
//! binary.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Llama {
    pub child: Child,
    pub url: String,
    pub log: tempfile::NamedTempFile,
    /// One server at a time: two on 2 cores would slow each other's decode steps, and
    /// the capacity test's verdicts rest on its latencies.
    _alone: std::sync::MutexGuard<'static, ()>,
}

static ONE_SERVER: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Drop for Llama {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP GET on loopback: status code and body.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// Start llama-server on a free loopback port (4 slots, continuous batching, metrics
/// on) and wait until it has loaded the model.
pub fn llama() -> Option<Llama> {
    llama_with(&["--parallel", "4", "--cont-batching", "--metrics"])
}

/// llama-server and its model as `scripts/llama-server.sh install` left them; `None`
/// (said, naming `test`) when they are not there and the test may skip, a panic when it
/// must run.
pub fn installed(test: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = super::llama_install_dir();
    let server = dir.join("bin/llama-server");
    let model = dir.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if server.exists() && model.exists() {
        return Some((server, model));
    }
    let msg = format!(
        "no llama-server at {} (run scripts/llama-server.sh install)",
        server.display()
    );
    if let Some(why) = super::llama_required() {
        panic!("{msg}, and {why}: this test must run");
    }
    eprintln!("SKIPPED the llama.cpp {test}: {msg}");
    None
}

/// The server started with these flags (besides the model, address and context).
pub fn llama_with(flags: &[&str]) -> Option<Llama> {
    let (server, model) = installed("end-to-end test")?;
    // A test that failed holding it poisons it; the next still runs alone.
    let alone = ONE_SERVER.lock().unwrap_or_else(|e| e.into_inner());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(&server)
        .args(["-m", model.to_str().unwrap(), "--host", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args(flags)
        .args(["-c", "8192", "-a", "smollm2"])
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let mut llama = Llama {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
        _alone: alone,
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Some((200, _)) = get(port, "/health") {
            return Some(llama);
        }
        if let Ok(Some(status)) = llama.child.try_wait() {
            let log = std::fs::read_to_string(llama.log.path()).unwrap_or_default();
            panic!("llama-server exited with {status}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = llama.child.kill();
    panic!("llama-server did not become healthy within 120 s");
}
