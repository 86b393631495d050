//! A run interrupted while its requests hang mid-answer says so, and loses nothing:
//! every request still in flight when the grace period ends is recorded as `cancelled`
//! with the tokens it had, results.json marks the run incomplete (why, planned vs sent),
//! and the table and the HTML report show it.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::child::Running;
use crate::common::records;
use crate::server::{Scripted, chat_stream, chat_stream_stalling, models, serve};

/// Tokens each stalled answer sends before it hangs.
const TOKENS: usize = 3;

/// A server whose first chat answer (the connection test) is whole and whose others
/// hang after `TOKENS` tokens; `hanging` counts those.
fn hanging_server() -> (Scripted, Arc<AtomicUsize>) {
    let chats = Arc::new(AtomicUsize::new(0));
    let hanging = Arc::new(AtomicUsize::new(0));
    let (c, h) = (chats.clone(), hanging.clone());
    let srv = serve(move |r| match r.path.as_str() {
        "/v1/models" => models("\"hangs\""),
        _ if c.fetch_add(1, Ordering::SeqCst) == 0 => chat_stream(2, Duration::ZERO),
        _ => {
            h.fetch_add(1, Ordering::SeqCst);
            chat_stream_stalling(TOKENS)
        }
    });
    (srv, hanging)
}

/// `concurrency 4` of 20 requests into `dir`, with its HTML report.
fn start(srv: &Scripted, dir: &Path) -> Running {
    crate::child::start(&[
        "concurrency",
        "--endpoint",
        &srv.url(),
        "--concurrency",
        "4",
        "--num-requests",
        "20",
        "--input-len",
        "8",
        "--output-len",
        "50",
        "--output-dir",
        dir.to_str().unwrap(),
        "--html",
        dir.join("report.html").to_str().unwrap(),
        "--quiet",
    ])
}

/// Once all 4 requests hang with their tokens received.
fn wait_for_hanging(child: &mut Running, hanging: &AtomicUsize) {
    child.wait_for("its requests to hang", Duration::from_secs(60), |_| {
        hanging.load(Ordering::SeqCst) >= 4
    });
    // Their tokens were written at once; give the client a moment to read them.
    std::thread::sleep(Duration::from_millis(300));
}

/// The four hung requests are recorded as cancelled with their partial timings.
fn check_cancelled(dir: &Path, signal: &str) {
    let recs = records(dir);
    assert_eq!(
        recs.len(),
        4,
        "every request in flight is recorded: {recs:?}"
    );
    for r in &recs {
        assert_eq!(r["status"], "cancelled", "{r}");
        assert_eq!(r["events"].as_array().unwrap().len(), TOKENS, "{r}");
        assert!(r["first_token_at"].as_f64().is_some(), "{r}");
        assert!(r["output_tokens"].as_u64().unwrap() > 0, "{r}");
        let err = r["error"].as_str().unwrap();
        assert!(
            err.contains(signal) && err.contains("3 output events"),
            "{err}"
        );
        assert!(
            r["ended_at"].as_f64() >= r["first_token_at"].as_f64(),
            "{r}"
        );
    }
}

fn check_results(dir: &Path, signal: &str) {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let run = &doc["runs"][0];
    assert_eq!(run["complete"], false, "{run}");
    assert_eq!(run["incomplete_reason"], format!("interrupted by {signal}"));
    assert_eq!(run["requests_planned"], 20);
    assert_eq!(run["requests_sent"], 4);
    assert_eq!(run["summary"]["requests"]["total"], 4);
    assert_eq!(run["summary"]["requests"]["succeeded"], 0);
    assert_eq!(run["summary"]["requests"]["failures"]["cancelled"], 4);
}

#[test]
fn requests_hung_at_the_end_of_the_grace_period_are_recorded_as_cancelled() {
    let (srv, hanging) = hanging_server();
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(&srv, dir.path());
    wait_for_hanging(&mut child, &hanging);
    let t = Instant::now();
    child.signal("-INT");
    let end = child.finish(Duration::from_secs(20));
    let (stdout, stderr) = (&end.stdout, &end.stderr);
    assert_eq!(end.code, Some(130), "{stderr}");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(9),
        "the grace period (5 s) was given, then the run stopped: {waited:?}"
    );
    check_cancelled(dir.path(), "SIGINT");
    check_results(dir.path(), "SIGINT");
    let note = "INCOMPLETE: interrupted by SIGINT after 4 of 20 requests sent (4 cancelled";
    assert!(stdout.contains(note), "the table says so: {stdout}");
    assert!(
        stdout.contains("0 ok / 4 sent"),
        "sent counts the cancelled: {stdout}"
    );
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("class=\"incomplete\""), "the HTML says so");
    assert!(html.contains(note));
    // `report` shows it again from the saved files.
    let out = Command::new(env!("CARGO_BIN_EXE_servescope"))
        .args(["report", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(note));
    drop(srv);
}

#[test]
fn a_second_signal_cancels_the_hung_requests_at_once() {
    let (srv, hanging) = hanging_server();
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(&srv, dir.path());
    wait_for_hanging(&mut child, &hanging);
    let t = Instant::now();
    child.signal("-TERM");
    std::thread::sleep(Duration::from_millis(200));
    child.signal("-TERM");
    let end = child.finish(Duration::from_secs(20));
    assert_eq!(end.code, Some(143), "{}", end.stderr);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "no grace period after the second signal: {:?}",
        t.elapsed()
    );
    check_cancelled(dir.path(), "SIGTERM");
    check_results(dir.path(), "SIGTERM");
    drop(srv);
}

/// One whole requests.jsonl line of run "r".
fn record_line(id: u64) -> String {
    let mut out = String::new();
    servescope::record::RequestRecord::parse_json_line(&format!(
        r#"{{"run":"r","id":{id},"scheduled_at":null,"started_at":0.1,"ended_at":0.3,"events":[0.2],"input_tokens":4,"prompt_tokens":null,"cached_tokens":null,"output_tokens":1,"output_tokens_source":"usage","status":"ok","error":null,"http_status":200}}"#
    ))
    .unwrap()
    .write_json_line(&mut out);
    out
}

fn report(dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_servescope"))
        .args(["report", dir.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn report_drops_a_torn_last_line_with_a_warning_and_refuses_one_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let torn = &record_line(2)[..40];
    std::fs::write(&path, format!("{}{}{torn}", record_line(0), record_line(1))).unwrap();
    let out = report(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("warning: {}:3:", path.display())),
        "{err}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 ok / 2 sent"));

    std::fs::write(
        &path,
        format!("{}{torn}\n{}", record_line(0), record_line(1)),
    )
    .unwrap();
    let out = report(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:2:", path.display())), "{err}");
}
