//! Embeddings answers that are wrong in every way a server can be wrong: each one is a
//! failed request with its reason, and a good one beside them still counts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::server::{Reply, json, models, serve};

/// `n` embeddings of two floats each, with usage.
fn embeddings(n: usize, prompt_tokens: u32) -> Reply {
    let data: Vec<String> = (0..n)
        .map(|i| format!("{{\"object\":\"embedding\",\"index\":{i},\"embedding\":[0.5,-0.5]}}"))
        .collect();
    json(
        200,
        &format!(
            "{{\"object\":\"list\",\"data\":[{}],\"usage\":{{\"prompt_tokens\":{prompt_tokens},\"total_tokens\":{prompt_tokens}}}}}",
            data.join(",")
        ),
    )
}

fn inputs(body: &str) -> usize {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["input"]
        .as_array()
        .map_or(0, Vec::len)
}

fn args<'a>(url: &'a str, dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "concurrency",
        "--endpoint",
        url,
        "--api",
        "embeddings",
        "--batch-inputs",
        "2",
        "--input-len",
        "8",
        "--concurrency",
        "1",
        "--quiet",
        "--output-dir",
        dir,
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn every_wrong_answer_is_a_failure_with_its_reason() {
    let paths: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = paths.clone();
    let n = Arc::new(AtomicUsize::new(0));
    let srv = serve(move |req| {
        if req.path.ends_with("/models") {
            return models("\"e5\"");
        }
        seen.lock().unwrap().push(req.path.clone());
        // The connection test sends one input; the measured requests two.
        if inputs(&req.body) == 1 {
            return embeddings(1, 1);
        }
        match n.fetch_add(1, Ordering::SeqCst) {
            0 => embeddings(1, 16),
            1 => json(
                200,
                r#"{"error":{"message":"input is too long","code":400}}"#,
            ),
            2 => json(500, r#"{"error":{"message":"CUDA out of memory"}}"#),
            3 => Reply::Full(200, "text/html", b"<html>gateway busy</html>".to_vec()),
            4 => json(
                200,
                r#"{"object":"error","message":"model is a generation model"}"#,
            ),
            _ => embeddings(2, 21),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let url = srv.url();
    let out = crate::common::session(&args(&url, &d, &["--num-requests", "6"]));
    let recs = crate::common::records(dir.path());
    let by_status = |s: &str| recs.iter().filter(|r| r["status"] == s).collect::<Vec<_>>();
    let invalid = by_status("invalid_response");
    assert_eq!(invalid.len(), 2, "{recs:?}");
    assert!(
        invalid.iter().any(|r| r["error"]
            .as_str()
            .unwrap()
            .contains("1 embeddings in \"data\" for 2 inputs sent")),
        "{invalid:?}"
    );
    assert!(
        invalid
            .iter()
            .any(|r| r["error"].as_str().unwrap().contains("gateway busy"))
    );
    let errors = by_status("error_event");
    assert_eq!(errors.len(), 2, "{recs:?}");
    assert!(errors.iter().any(|r| r["error"] == "input is too long"));
    assert!(
        errors
            .iter()
            .any(|r| r["error"] == "model is a generation model")
    );
    let http = by_status("http_status");
    assert_eq!(http.len(), 1);
    assert_eq!(http[0]["http_status"], 500);
    assert!(
        http[0]["error"]
            .as_str()
            .unwrap()
            .contains("CUDA out of memory")
    );
    let ok = by_status("ok");
    assert_eq!(ok.len(), 1, "{recs:?}");
    assert_eq!(
        ok[0]["prompt_tokens"], 21,
        "the server's count beside the client's"
    );
    assert_eq!(ok[0]["input_tokens"], 16, "two inputs of 8 tokens");
    assert!(
        recs.iter()
            .all(|r| r["inputs"] == 2 && r["events"] == serde_json::json!([]))
    );
    let s = &out.runs[0].1;
    assert_eq!((s.total, s.succeeded), (6, 1));
    assert_eq!(
        s.embeddings.as_ref().unwrap().inputs,
        2,
        "successful inputs only"
    );
    assert!(paths.lock().unwrap().iter().all(|p| p == "/v1/embeddings"));
}

#[test]
fn slow_and_stalled_answers_trip_the_idle_timeout() {
    let n = Arc::new(AtomicUsize::new(0));
    let srv = serve(move |req| {
        if req.path.ends_with("/models") {
            return models("\"e5\"");
        }
        if inputs(&req.body) == 1 {
            return embeddings(1, 1);
        }
        match n.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::After(Duration::from_secs(3), Box::new(embeddings(2, 16))),
            1 => Reply::Stall,
            _ => embeddings(2, 16),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let url = srv.url();
    crate::common::session(&args(
        &url,
        &d,
        &[
            "--num-requests",
            "3",
            "--timeout",
            "2.5",
            "--idle-timeout",
            "0.5",
        ],
    ));
    let recs = crate::common::records(dir.path());
    let status: Vec<&str> = recs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["idle_timeout", "idle_timeout", "ok"], "{recs:?}");
    assert!(
        recs[0]["error"]
            .as_str()
            .unwrap()
            .contains("no response headers")
    );
}
