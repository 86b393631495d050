//! A closed stdout or stderr (`servescope … | head -3`, a log reader gone) is not a
//! crash: output no one reads any more is dropped, and the benchmark and every file
//! finish as they would printing to a terminal. Also for help, usage errors, `report`,
//! `compare`, `convert` and `sim`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};

use crate::child::{self, collect};

fn sim() -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 5.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 2.0,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Two levels, every result file and the HTML report.
fn bench(url: &str, dir: &Path, quiet: bool) -> std::process::Command {
    let html = dir.join("report.html");
    let mut args = vec![
        "concurrency",
        "--concurrency",
        "1,2",
        "--num-requests",
        "6",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--endpoint",
        url,
        "--output-dir",
        dir.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ];
    if quiet {
        args.push("--quiet");
    }
    child::command(&args)
}

fn every_level_is_saved(dir: &Path) {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let labels: Vec<&str> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["concurrency 1", "concurrency 2"]);
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.contains("concurrency 1") && header.contains("concurrency 2"),
        "{header}"
    );
    let records = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    assert_eq!(records.lines().count(), 12);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("concurrency 2"), "the HTML holds both levels");
}

/// Wait for the end of a child whose pipes the test holds or closed.
fn wait(mut c: std::process::Child) -> Option<i32> {
    let t0 = Instant::now();
    loop {
        if let Some(status) = c.try_wait().unwrap() {
            return status.code();
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = c.kill();
            panic!("did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_stdout_closed_from_the_start_is_not_a_crash() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let mut c = bench(&server.url(), dir.path(), true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(c.stdout.take());
    let (stderr, reader) = collect(c.stderr.take());
    let code = wait(c);
    reader.unwrap().join().unwrap();
    assert_eq!(code, Some(0), "{}", stderr.lock().unwrap());
    every_level_is_saved(dir.path());
}

#[test]
fn a_stdout_closed_after_three_lines_is_not_a_crash() {
    // `servescope concurrency … | head -3`
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let mut c = bench(&server.url(), dir.path(), true)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stderr, reader) = collect(c.stderr.take());
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut head = String::new();
    for _ in 0..3 {
        out.read_line(&mut head).unwrap();
    }
    drop(out);
    assert!(head.contains("concurrency 1"), "the first table: {head}");
    let code = wait(c);
    reader.unwrap().join().unwrap();
    let stderr = stderr.lock().unwrap().clone();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    every_level_is_saved(dir.path());
}

#[test]
fn a_closed_stderr_is_not_a_crash() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    // Not quiet: progress lines go to stderr too.
    let mut c = bench(&server.url(), dir.path(), false)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(c.stderr.take());
    let (stdout, reader) = collect(c.stdout.take());
    let code = wait(c);
    reader.unwrap().join().unwrap();
    let stdout = stdout.lock().unwrap().clone();
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("concurrency 2"), "{stdout}");
    every_level_is_saved(dir.path());
}

/// Run to the end with stdout (or stderr) closed from the start; the exit status and
/// what the other stream said.
fn closed(args: &[&str], close_stdout: bool) -> (Option<i32>, String) {
    let mut c = child::command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let other = if close_stdout {
        drop(c.stdout.take());
        collect(c.stderr.take())
    } else {
        drop(c.stderr.take());
        collect(c.stdout.take())
    };
    let code = wait(c);
    other.1.unwrap().join().unwrap();
    let text = other.0.lock().unwrap().clone();
    (code, text)
}

#[test]
fn help_errors_report_compare_and_convert_take_a_closed_pipe() {
    assert_eq!(closed(&["--help"], true).0, Some(0));
    assert_eq!(closed(&["concurrency", "--help"], true).0, Some(0));
    assert_eq!(closed(&["batch", "--no-such-flag"], false).0, Some(2));

    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        crate::common::session(&[
            "batch",
            "--batch-sizes",
            "2",
            "--input-len",
            "8",
            "--output-len",
            "2",
            "--output-dir",
            d.path().to_str().unwrap(),
            "--quiet",
        ]);
    }
    let (a, b) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    let (code, err) = closed(&["report", a], true);
    assert_eq!(code, Some(0), "report: {err}");
    let html = tempfile::tempdir().unwrap();
    let page = html.path().join("cmp.html");
    let (code, err) = closed(&["compare", a, b, "--html", page.to_str().unwrap()], true);
    assert_eq!(code, Some(0), "compare: {err}");
    assert!(page.exists(), "the comparison page is written");

    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hotpotqa.jsonl");
    let entry = serde_json::json!({
        "input": "Which city?", "context": "The committee met in Lisbon.",
        "answers": ["Lisbon"], "length": 10, "dataset": "hotpotqa",
        "language": "en", "_id": "id0"
    });
    std::fs::write(&input, format!("{entry}\n")).unwrap();
    let out = dir.path().join("out.jsonl");
    let (code, err) = closed(
        &[
            "convert",
            "longbench",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        true,
    );
    assert_eq!(code, Some(0), "convert: {err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 1);
}

#[test]
fn the_simulator_serves_with_a_closed_stdout() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = child::command(&["sim", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(c.stdout.take());
    let mut sim = Guard(c);
    let t0 = Instant::now();
    let answer = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /v1/models HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            break text;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the simulator never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(sim.0.try_wait().unwrap().is_none(), "still serving");
}

/// Ends the simulator however the test ends.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
