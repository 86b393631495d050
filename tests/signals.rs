//! Ctrl-C and SIGTERM stop a run cleanly: no new requests, in-flight ones finish within
//! the grace period, every finished record and the partial results are saved, the table
//! is printed, and the exit status is 128 + the signal. SIGKILL loses only what was in
//! flight: every line on disk is a whole record.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};

fn sim() -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 10.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 10.0,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn start(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_servescope"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Wait at most `limit`; returns the exit code (None if killed by a signal) and stdout.
fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return (status.code(), out);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            panic!("did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the child has written `n` whole records to `path` (requests.jsonl is
/// appended as requests end): the run has reached the phase the signal is meant for,
/// however slow the machine. Fails clearly if the child exits or 60 s pass first.
fn wait_for_records(child: &mut Child, path: &std::path::Path, n: usize) {
    let t0 = Instant::now();
    loop {
        let written = std::fs::read(path)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0);
        if written >= n {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("exited ({status}) before writing {n} records: {err}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{written} of {n} records in {} after 60 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a whole record"))
        .collect()
}

#[test]
fn ctrl_c_saves_what_finished_and_exits_130() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    // Each request takes ~0.5 s; 1000 of them would take two minutes.
    let mut child = start(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "4",
        "--num-requests",
        "1000",
        "--input-len",
        "16",
        "--output-len",
        "50",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    // Two rounds of 4 finished: the run is well under way, with 4 more in flight.
    wait_for_records(&mut child, &dir.path().join("requests.jsonl"), 8);
    let t = Instant::now();
    signal(&child, "-INT");
    let (code, stdout) = finish(child, Duration::from_secs(15));
    assert_eq!(code, Some(130));
    // Requests in flight (~0.5 s each) finished within the 5 s grace period.
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "stopped in {:?}",
        t.elapsed()
    );
    assert!(
        stdout.contains("── concurrency 4 ──"),
        "the table is printed: {stdout}"
    );
    let records = lines(&dir.path().join("requests.jsonl"));
    assert!(records.len() >= 8, "{} records", records.len());
    assert!(
        records.iter().all(|r| r["status"] == "ok"),
        "in-flight requests finished"
    );
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    let summary = &results["runs"][0]["summary"];
    assert_eq!(summary["requests"]["total"], records.len());
    assert_eq!(summary["requests"]["succeeded"], records.len());
}

#[test]
fn sigterm_during_a_long_open_loop_gap_exits_143_promptly() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    // One request every 5 s on average: the signal comes while waiting for the next.
    let mut child = start(&[
        "rate",
        "--rates",
        "0.2",
        "--burstiness",
        "100",
        "--num-requests",
        "50",
        "--input-len",
        "8",
        "--output-len",
        "2",
        "--endpoint",
        &server.url(),
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    // The first request (sent at once) has ended: the next is ~5 s away.
    wait_for_records(&mut child, &dir.path().join("requests.jsonl"), 1);
    let t = Instant::now();
    signal(&child, "-TERM");
    let (code, _) = finish(child, Duration::from_secs(10));
    assert_eq!(code, Some(143));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "did not wait for the next arrival"
    );
    assert_eq!(
        lines(&dir.path().join("requests.jsonl")).len(),
        1,
        "the first request"
    );
}

#[test]
fn sigkill_leaves_only_whole_records() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "8",
        "--num-requests",
        "1000",
        "--input-len",
        "16",
        "--output-len",
        "20",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    // Killed while requests are being recorded (8 at a time in flight).
    wait_for_records(&mut child, &dir.path().join("requests.jsonl"), 8);
    signal(&child, "-KILL");
    let (code, _) = finish(child, Duration::from_secs(10));
    assert_eq!(code, None, "killed");
    let records = lines(&dir.path().join("requests.jsonl"));
    assert!(
        records.len() >= 8,
        "records are appended as requests end: {}",
        records.len()
    );
}
