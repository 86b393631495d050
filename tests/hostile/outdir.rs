//! Results in the way: an `--output-dir` (or `merge -o`) that already holds results is
//! refused before anything is sent, unless `--overwrite` replaces them or `--append`
//! adds the new runs with unique labels.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use servescope::{Error, Outcome, run_args};

use crate::server::{Scripted, chat_stream, models, serve};

/// A scripted server that counts every request it gets.
fn counting_server() -> (Scripted, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let srv = serve(move |r| {
        seen.fetch_add(1, Ordering::SeqCst);
        match r.path.as_str() {
            "/v1/models" => models("\"scripted\""),
            _ => chat_stream(3, Duration::from_millis(1)),
        }
    });
    (srv, hits)
}

fn run(url: &str, dir: &Path, extra: &[&str]) -> Result<Outcome, Error> {
    let dir = dir.display().to_string();
    let mut argv = vec![
        "servescope",
        "concurrency",
        "--concurrency",
        "2",
        "--num-requests",
        "3",
        "--endpoint",
        url,
        "--input-len",
        "8",
        "--output-len",
        "3",
        "--quiet",
        "--output-dir",
        &dir,
    ];
    argv.extend_from_slice(extra);
    run_args(argv)
}

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn labels(doc: &Value) -> Vec<String> {
    doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap().to_string())
        .collect()
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn existing_results_are_refused_before_anything_is_sent() {
    let (srv, hits) = counting_server();
    let dir = tempfile::tempdir().unwrap();
    run(&srv.url(), dir.path(), &[]).unwrap();
    let before = snapshot(dir.path());
    let sent = hits.load(Ordering::SeqCst);

    let e = run(&srv.url(), dir.path(), &[]).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let msg = e.to_string();
    for part in [
        "--output-dir",
        "already holds results",
        "--overwrite",
        "--append",
    ] {
        assert!(msg.contains(part), "{part:?} in {msg}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        sent,
        "nothing sent, not even a listing"
    );
    assert_eq!(snapshot(dir.path()), before, "files untouched");

    // requests.jsonl alone (a session stopped before its first run ended) counts too.
    std::fs::remove_file(dir.path().join("results.json")).unwrap();
    let e = run(&srv.url(), dir.path(), &[]).unwrap_err();
    assert!(e.to_string().contains("requests.jsonl"), "{e}");
    // And --append cannot tell what those records were.
    let e = run(&srv.url(), dir.path(), &["--append"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("results.json is missing"), "{e}");

    // The two flags conflict.
    let e = run(&srv.url(), dir.path(), &["--append", "--overwrite"]).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
}

#[test]
fn overwrite_replaces_the_results() {
    let (srv, _) = counting_server();
    let dir = tempfile::tempdir().unwrap();
    run(&srv.url(), dir.path(), &[]).unwrap();
    run(&srv.url(), dir.path(), &["--overwrite"]).unwrap();
    let doc = results(dir.path());
    assert_eq!(labels(&doc), ["concurrency 2"]);
    assert_eq!(
        crate::common::records(dir.path()).len(),
        3,
        "records replaced"
    );
    assert!(doc.get("appended").is_none());
}

#[test]
fn append_keeps_the_old_runs_and_adds_the_new_with_unique_labels() {
    let (srv, _) = counting_server();
    let dir = tempfile::tempdir().unwrap();
    run(&srv.url(), dir.path(), &[]).unwrap();
    let first = results(dir.path());
    let Outcome::Session(s) = run(&srv.url(), dir.path(), &["--append"]).unwrap() else {
        panic!("a session");
    };
    assert_eq!(s.runs.len(), 1, "the outcome holds this session's runs");
    assert_eq!(s.runs[0].0, "concurrency 2 #2");
    run(&srv.url(), dir.path(), &["--append"]).unwrap();

    let doc = results(dir.path());
    assert_eq!(
        labels(&doc),
        ["concurrency 2", "concurrency 2 #2", "concurrency 2 #3"]
    );
    assert_eq!(doc["runs"][0], first["runs"][0], "the first run as it was");
    assert_eq!(doc["command"], first["command"], "the first command kept");
    let appended = doc["appended"].as_array().unwrap();
    assert_eq!(appended.len(), 2);
    assert_eq!(appended[0]["runs"], serde_json::json!(["concurrency 2 #2"]));
    assert!(
        appended[0]["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--append")
    );
    let recs = crate::common::records(dir.path());
    assert_eq!(recs.len(), 9);
    for label in labels(&doc) {
        assert_eq!(recs.iter().filter(|r| r["run"] == label).count(), 3);
    }
    let csv = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    let head = csv.lines().next().unwrap();
    assert!(
        head.contains("concurrency 2 #2") && head.contains("concurrency 2 #3"),
        "a column per run: {head}"
    );

    // `report` reads the appended directory as one.
    let d = dir.path().display().to_string();
    let Ok(Outcome::Report(runs)) = run_args(["servescope", "report", &d]) else {
        panic!("report {d}");
    };
    let got: Vec<(String, u64)> = runs
        .iter()
        .map(|r| (r.label.clone(), r.summary.total))
        .collect();
    assert_eq!(
        got,
        [
            ("concurrency 2".to_string(), 3),
            ("concurrency 2 #2".to_string(), 3),
            ("concurrency 2 #3".to_string(), 3)
        ]
    );
}

#[test]
fn append_refuses_another_mode_an_unreadable_file_and_dual_round() {
    let (srv, hits) = counting_server();
    let dir = tempfile::tempdir().unwrap();
    run(&srv.url(), dir.path(), &[]).unwrap();
    let before = snapshot(dir.path());
    let sent = hits.load(Ordering::SeqCst);
    let d = dir.path().display().to_string();
    let url = srv.url();
    let common = [
        "--endpoint",
        &url,
        "--input-len",
        "8",
        "--output-len",
        "3",
        "-q",
        "--output-dir",
        &d,
        "--append",
    ];
    let mut batch = vec!["servescope", "batch", "--batch-sizes", "2"];
    batch.extend_from_slice(&common);
    let e = run_args(batch).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains("results.json holds concurrency runs") && msg.contains("batch"),
        "{msg}"
    );
    let mut dual = vec!["servescope", "dual-round", "--concurrency", "2"];
    dual.extend_from_slice(&common);
    let e = run_args(dual).unwrap_err();
    assert!(e.to_string().contains("dual-round"), "{e}");
    assert_eq!(hits.load(Ordering::SeqCst), sent);
    assert_eq!(snapshot(dir.path()), before);

    std::fs::write(dir.path().join("results.json"), "{\"runs\": 3").unwrap();
    let e = run(&srv.url(), dir.path(), &["--append"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string().contains("results.json: not valid JSON"),
        "{e}"
    );
}

#[test]
fn append_after_a_torn_last_line_starts_on_a_line_of_its_own() {
    let (srv, _) = counting_server();
    let dir = tempfile::tempdir().unwrap();
    run(&srv.url(), dir.path(), &[]).unwrap();
    let jsonl = dir.path().join("requests.jsonl");
    let mut text = std::fs::read_to_string(&jsonl).unwrap();
    text.push_str("{\"run\": \"concurrency 2\", \"id\": 9, \"sta");
    std::fs::write(&jsonl, text).unwrap();
    run(&srv.url(), dir.path(), &["--append"]).unwrap();
    // Every line parses: the torn one was dropped, the new ones follow whole.
    assert_eq!(crate::common::records(dir.path()).len(), 6);
}

/// A session stopped before its first run leaves an empty requests.jsonl and no
/// results.json: nothing to protect, so the next session writes there without a flag.
#[test]
fn an_empty_requests_file_alone_is_not_results() {
    let (srv, _) = counting_server();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("requests.jsonl"), "").unwrap();
    run(&srv.url(), tmp.path(), &[]).expect("an empty requests.jsonl is not refused");
    assert_eq!(labels(&results(tmp.path())).len(), 1);
}
