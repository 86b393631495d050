//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod llama;

/// Length of a request whose headers end at `head_end` (the index of "\r\n\r\n"), or
/// `None` while the headers are incomplete.
pub fn request_len(buf: &[u8]) -> Option<usize> {
    let pos = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..pos]).to_lowercase();
    let body: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    Some(pos + 4 + body)
}

/// Read one whole HTTP request (headers and a content-length body) from a blocking socket.
pub fn read_request(conn: &mut impl std::io::Read) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    while let Ok(n) = conn.read(&mut tmp) {
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        if request_len(&buf).is_some_and(|len| buf.len() >= len) {
            return;
        }
    }
}

/// The same from an async socket.
pub async fn read_request_async(conn: &mut (impl tokio::io::AsyncRead + Unpin)) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    while let Ok(n) = conn.read(&mut tmp).await {
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        if request_len(&buf).is_some_and(|len| buf.len() >= len) {
            return;
        }
    }
}

/// Run `servescope ARGS...` in-process; panics unless it ends in a session outcome.
pub fn session(args: &[&str]) -> servescope::session::SessionOutcome {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    match servescope::run_args(argv) {
        Ok(servescope::Outcome::Session(s)) => s,
        other => panic!("{args:?}: {other:?}"),
    }
}

/// Every record of a result directory's requests.jsonl, as JSON.
pub fn records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("requests.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The message of `servescope ARGS...` refused as bad input (exit status 2); panics if
/// it runs or fails otherwise.
pub fn refused(args: &[&str]) -> String {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    match servescope::run_args(argv) {
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            e.to_string()
        }
        Ok(_) => panic!("{args:?} should be refused"),
    }
}

/// A result directory's results.json, as JSON.
pub fn results(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// Records by run label, each run's in request order.
pub fn by_run(
    recs: &[serde_json::Value],
) -> std::collections::BTreeMap<String, Vec<&serde_json::Value>> {
    let mut runs: std::collections::BTreeMap<String, Vec<&serde_json::Value>> = Default::default();
    for r in recs {
        runs.entry(r["run"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    for v in runs.values_mut() {
        v.sort_by_key(|r| r["id"].as_u64().unwrap());
    }
    runs
}

/// `servescope sim ARGS...` as its own process on a free loopback port (`--port 0`),
/// killed when dropped.
pub struct SimProcess {
    child: std::process::Child,
    /// The base URL the simulator printed.
    pub url: String,
}

impl SimProcess {
    pub fn start(args: &[&str]) -> SimProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_servescope"))
            .args(["sim", "--port", "0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .map(str::to_string);
        // Owned before a missing URL panics, so the process is killed either way.
        let mut sim = SimProcess {
            child,
            url: String::new(),
        };
        sim.url = url.unwrap_or_else(|| panic!("no URL in {line:?}"));
        sim
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `SERVESCOPE_STRICT_TIMING=1`: a quiet machine, so timing bounds may be tight (the
/// default bounds hold on a loaded one).
pub fn strict_timing() -> bool {
    std::env::var_os("SERVESCOPE_STRICT_TIMING").is_some_and(|v| v == "1")
}

/// Printed tables without their steady-state blocks (a `steady ` line and the
/// `steady ms` table after it): for comparisons with output saved before they existed
/// (issue 14); tests/steady_slices.rs checks the blocks themselves.
pub fn without_steady(text: &str) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("steady ") {
            in_block = true;
            continue;
        }
        if in_block && line.starts_with(['┌', '│', '╞', '├', '└']) {
            continue;
        }
        in_block = false;
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// summary.csv without its `steady.*` rows (see `without_steady`).
pub fn csv_without_steady(csv: &str) -> String {
    csv.lines()
        .filter(|l| !l.starts_with("steady."))
        .flat_map(|l| [l, "\n"])
        .collect()
}

/// Where `scripts/llama-server.sh install` puts llama-server and its model
/// (`SERVESCOPE_LLAMA_DIR`, by default ~/.cache/servescope/llama).
pub fn llama_install_dir() -> std::path::PathBuf {
    match std::env::var_os("SERVESCOPE_LLAMA_DIR") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/servescope/llama"),
    }
}

/// Why a llama.cpp test may not skip: SERVESCOPE_REQUIRE_LLAMA=1 (set by .ci/run) or
/// CI=true.
pub fn llama_required() -> Option<&'static str> {
    let set = |name, value| std::env::var(name).is_ok_and(|v| v == value);
    if set("SERVESCOPE_REQUIRE_LLAMA", "1") {
        Some("SERVESCOPE_REQUIRE_LLAMA=1")
    } else if set("CI", "true") {
        Some("CI=true")
    } else {
        None
    }
}
