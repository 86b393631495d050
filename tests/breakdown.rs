//! Latency by turn, per-session totals and latency by model from the records' tags:
//! a simulator run whose requests.jsonl is then tagged by hand (session, turn, model),
//! re-analysed by `report` (results.json, turns.csv, models.csv, HTML) and merged from
//! two directories whose sessions stay apart.

mod common;

use std::path::Path;

use common::session;
use serde_json::Value;
use servescope::report::results::SavedRun;
use servescope::sim::{SimConfig, SimServer};
use servescope::{Outcome, run_args};

/// A model name from a user or server that must never become markup.
const HOSTILE: &str = "<script>alert(1)</script>";

fn sim() -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 5.0,
        tpot_ms: 1.0,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// 12 requests, 2 at a time, saved in `dir`.
fn run_into(server: &SimServer, dir: &Path, seed: &str) {
    session(&[
        "concurrency",
        "--concurrency",
        "2",
        "--num-requests",
        "12",
        "--input-len",
        "16",
        "--output-len",
        "6",
        "--seed",
        seed,
        "-q",
        "--endpoint",
        &server.url(),
        "--output-dir",
        dir.to_str().unwrap(),
    ]);
}

/// Request `id` becomes turn id % 3 of session `first_session` + id / 3; sessions of
/// even number go to the hostile model, the others to `m-b`.
fn tag_records(dir: &Path, first_session: u64) {
    let path = dir.join("requests.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let id = v["id"].as_u64().unwrap();
        let session = first_session + id / 3;
        let model = if session.is_multiple_of(2) {
            HOSTILE
        } else {
            "m-b"
        };
        v["session"] = session.into();
        v["turn"] = (id % 3).into();
        v["model"] = model.into();
        out.push_str(&serde_json::to_string(&v).unwrap());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

fn report(args: &[&str]) -> Vec<SavedRun> {
    let mut argv = vec!["servescope", "report"];
    argv.extend_from_slice(args);
    match run_args(argv) {
        Ok(Outcome::Report(runs)) => runs,
        other => panic!("{other:?}"),
    }
}

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn report_reproduces_the_breakdown_from_tagged_records() {
    let server = sim();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    run_into(&server, &dir, "1");
    let d = dir.to_str().unwrap();
    assert!(
        results(&dir)["runs"][0]["summary"].get("by_turn").is_none(),
        "an untagged run saves no breakdown"
    );
    assert!(!dir.join("turns.csv").exists() && !dir.join("models.csv").exists());
    tag_records(&dir, 0);
    let html = tmp.path().join("r.html");
    let runs = report(&[d, "--rewrite", "--html", html.to_str().unwrap()]);
    let s = &runs[0].summary;
    let turns = s.by_turn.as_ref().expect("tagged records");
    let counts: Vec<(u32, u64, u64)> = turns
        .iter()
        .map(|t| (t.turn, t.requests, t.succeeded))
        .collect();
    assert_eq!(counts, [(0, 4, 4), (1, 4, 4), (2, 4, 4)]);
    assert!(turns.iter().all(|t| t.ttft_ms_p50.is_some_and(|v| v > 0.0)));
    let sessions = s.sessions.as_ref().unwrap();
    assert_eq!((sessions.count, sessions.completed), (4, 4));
    assert!((sessions.turns_mean - 3.0).abs() < 1e-9);
    assert!(
        (sessions.input_tokens_mean - 48.0).abs() < 1e-9,
        "{sessions:?}"
    );
    let models = s.by_model.as_ref().unwrap();
    let names: Vec<(&str, u64)> = models
        .iter()
        .map(|m| (m.model.as_str(), m.requests))
        .collect();
    assert_eq!(names, [(HOSTILE, 6), ("m-b", 6)]);
    let sum: f64 = models.iter().map(|m| m.output_tok_s).sum();
    assert!((sum - s.output_tok_s).abs() < 1e-6);

    // Saved as re-analysed: results.json and the two CSVs, read back the same.
    let saved = results(&dir);
    let summary = &saved["runs"][0]["summary"];
    assert_eq!(summary["by_turn"].as_array().unwrap().len(), 3);
    assert_eq!(summary["sessions"]["count"], 4);
    assert_eq!(summary["by_model"][0]["model"], HOSTILE);
    let again = report(&[d]);
    assert_eq!(again[0].summary.by_turn, s.by_turn);
    assert_eq!(again[0].summary.by_model, s.by_model);
    let turns_csv = std::fs::read_to_string(dir.join("turns.csv")).unwrap();
    assert_eq!(turns_csv.lines().count(), 4, "{turns_csv}");
    assert!(turns_csv.starts_with("run,turn,requests,succeeded,ttft_ms.mean"));
    let models_csv = std::fs::read_to_string(dir.join("models.csv")).unwrap();
    assert_eq!(models_csv.lines().count(), 3, "{models_csv}");
    let summary_csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert!(
        summary_csv.contains("\nsessions.completed,4\n"),
        "{summary_csv}"
    );

    // The HTML: TTFT by turn, the model table, the hostile name escaped everywhere.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("TTFT by turn") && page.contains("By model"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains(HOSTILE), "a model name became markup");

    // An untagged run written over them leaves no stale turns.csv or models.csv.
    let server_url = server.url();
    session(&[
        "concurrency",
        "--concurrency",
        "1",
        "--num-requests",
        "2",
        "-q",
        "--overwrite",
        "--endpoint",
        &server_url,
        "--output-dir",
        d,
    ]);
    assert!(!dir.join("turns.csv").exists() && !dir.join("models.csv").exists());
}

#[test]
fn merge_combines_the_sessions_of_both_directories() {
    let server = sim();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, m) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("m"),
    );
    run_into(&server, &a, "1");
    run_into(&server, &b, "2");
    // Sessions are numbered across the whole workload: each stays in one directory.
    tag_records(&a, 0);
    tag_records(&b, 4);
    let out = run_args([
        "servescope",
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        m.to_str().unwrap(),
    ]);
    assert!(out.is_ok(), "{out:?}");
    let summary = &results(&m)["runs"][0]["summary"];
    assert_eq!(summary["sessions"]["count"], 8);
    assert_eq!(summary["sessions"]["completed"], 8);
    let turns = summary["by_turn"].as_array().unwrap();
    assert!(turns.iter().all(|t| t["requests"] == 8), "{turns:?}");
    let models = summary["by_model"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert!(models.iter().all(|x| x["requests"] == 12), "{models:?}");
    assert!(m.join("turns.csv").exists() && m.join("models.csv").exists());

    // `compare` of the two (re-analysed) directories weighs their session durations.
    report(&[a.to_str().unwrap(), "--rewrite"]);
    report(&[b.to_str().unwrap(), "--rewrite"]);
    let c = servescope::report::compare::compare(&a, &b, 5.0).unwrap();
    let keys: Vec<&str> = c.runs[0].rows.iter().map(|r| r.metric.key).collect();
    assert!(keys.contains(&"sessions.duration_ms_p99"), "{keys:?}");
    let row = c.runs[0]
        .rows
        .iter()
        .find(|r| r.metric.key == "sessions.duration_ms_p99");
    assert!(row.is_some_and(|r| r.a.is_some() && r.b.is_some()));
}
