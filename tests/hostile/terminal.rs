//! Server text cannot drive the terminal: a model id, error bodies and metric labels
//! full of escape sequences (retitle the window, clear the screen, forge a line, reverse
//! the text) reach stdout and stderr only as visible escapes, while the model id still
//! goes back to the server as it was given and results.json keeps the text as sent.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::server::{Reply, Request, chat_stream, json, models, serve};

/// What a run of the binary printed, and how it ended.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `servescope ARGS` as a child process with `env` added (and no `OPENAI_API_KEY`
/// but the one given).
pub fn servescope(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_servescope"));
    cmd.args(args).env_remove("OPENAI_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What a terminal would act on: ESC, CSI (C1), BEL, CR, a bidi override, and
/// `FORGED` at the start of a line (a newline in server text).
fn assert_inert(what: &str, text: &str) {
    for bad in ['\u{1b}', '\u{9b}', '\u{7}', '\r', '\u{202e}', '\u{0}'] {
        assert!(!text.contains(bad), "{what} holds {bad:?}:\n{text}");
    }
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("FORGED")),
        "{what} has a forged line:\n{text}"
    );
}

/// The model id as JSON text: retitles the window, then a forged line, a clear screen
/// by C1 CSI and a right-to-left override.
const MODEL_JSON: &str = r#""m\u001b]0;pwned\u0007\r\nFORGED model line\u009b2J\u202etxt.exe""#;
/// An error body with colours, a cursor move and a forged line.
const ERROR_BODY: &str =
    r#"{"error":{"message":"boom \u001b[31mRED\u001b[0m\u001b[2A\r\nFORGED: 0 failed\u0007"}}"#;
/// An error event in a stream, retitling the window.
const SSE_ERROR: &str = "data: {\"error\":{\"message\":\"sse \\u001b]0;x\\u0007\\nFORGED\"}}\n\n";
/// A gauge whose label value holds raw escape sequences.
const METRICS: &str = "# TYPE hostile_gauge gauge\nhostile_gauge{model=\"x\u{1b}]0;pwned\u{7}y\u{9b}2J\u{202e}z\"} 3\n";

/// A server that lists the hostile model, answers the connection test, then fails
/// every request with the hostile error body; the request bodies it got are kept.
fn hostile_server(bodies: Arc<std::sync::Mutex<Vec<String>>>) -> crate::server::Scripted {
    let chats = AtomicUsize::new(0);
    serve(move |r: &Request| match r.path.as_str() {
        "/v1/models" => models(MODEL_JSON),
        "/metrics" => Reply::Full(200, "text/plain", METRICS.as_bytes().to_vec()),
        _ => {
            bodies.lock().unwrap().push(r.body.clone());
            // The connection test, the warm-up, two requests, then an error event.
            match chats.fetch_add(1, Ordering::SeqCst) {
                0 => chat_stream(2, Duration::from_millis(1)),
                1..4 => json(500, ERROR_BODY),
                _ => Reply::Stream {
                    events: vec![SSE_ERROR.into()],
                    gap: Duration::ZERO,
                },
            }
        }
    })
}

fn model_id() -> String {
    serde_json::from_str(MODEL_JSON).unwrap()
}

#[test]
fn hostile_model_ids_errors_and_metric_labels_reach_the_terminal_inert() {
    let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let srv = hostile_server(bodies.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let html = dir.path().join("r.html");
    let ran = servescope(
        &[
            "throughput",
            "--endpoint",
            &srv.url(),
            "--num-requests",
            "3",
            "--input-len",
            "8",
            "--output-len",
            "4",
            "--timeout",
            "20",
            "--metrics",
            "hostile_gauge",
            "--output-dir",
            out.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        &[],
    );
    // Every measured request failed: exit 1, and everything said about it is inert.
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.stdout, ran.stderr);
    assert_inert("stdout", &ran.stdout);
    assert_inert("stderr", &ran.stderr);
    // The failures and the label are shown, escaped, not dropped: the warm-up's
    // warning on stderr, the table's failure example and server line on stdout.
    let shown_error = r"boom \x1b[31mRED\x1b[0m\x1b[2A\r\nFORGED: 0 failed\x07";
    assert!(ran.stderr.contains(shown_error), "{}", ran.stderr);
    assert!(ran.stdout.contains(shown_error), "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains(r"error_event: sse \x1b]0;x\x07\nFORGED"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains(r#"hostile_gauge{model="x\x1b]0;pwned\x07y\x9b2J\u{202e}z"}"#),
        "{}",
        ran.stdout
    );

    // The id went back to the server exactly as listed.
    let sent: Value = serde_json::from_str(&bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(sent["model"], model_id().as_str());
    // Saved files keep the server's text as sent (JSON escapes it) ...
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(doc["model"], model_id().as_str());
    let records = crate::common::records(&out);
    assert!(records.iter().any(|r| {
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("\u{1b}[31mRED"))
    }));
    // ... and the HTML page shows it as text.
    let page = std::fs::read_to_string(&html).unwrap();
    assert_inert("the HTML report", &page);

    // Re-reading the saved results prints the same text inert.
    let report = servescope(&["report", out.to_str().unwrap()], &[]);
    assert_eq!(report.code, Some(0), "{}", report.stderr);
    assert!(report.stdout.contains(shown_error), "{}", report.stdout);
    assert_inert("report's stdout", &report.stdout);
    assert_inert("report's stderr", &report.stderr);
    compare_shows_the_model_inert(&out);
}

/// `compare` names each side's model: escaped.
fn compare_shows_the_model_inert(out: &Path) {
    let dir = out.to_str().unwrap();
    let cmp = servescope(&["compare", dir, dir], &[]);
    assert_eq!(cmp.code, Some(0), "{}", cmp.stderr);
    assert!(
        cmp.stdout
            .contains(r"model m\x1b]0;pwned\x07\r\nFORGED model line\x9b2J\u{202e}txt.exe,"),
        "{}",
        cmp.stdout
    );
    assert_inert("compare's stdout", &cmp.stdout);
}

#[test]
fn a_failed_connection_test_shows_the_servers_message_inert() {
    let srv = serve(|r| match r.path.as_str() {
        "/v1/models" => models(MODEL_JSON),
        _ => json(400, ERROR_BODY),
    });
    let ran = servescope(
        &["batch", "--endpoint", &srv.url(), "--batch-sizes", "1"],
        &[],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("connection test"), "{}", ran.stderr);
    assert!(ran.stderr.contains(r"\x1b[31mRED"), "{}", ran.stderr);
    assert_inert("stderr", &ran.stderr);
}

#[test]
fn a_failed_model_listing_shows_the_servers_message_inert() {
    let srv = serve(|_| {
        Reply::Full(
            503,
            "text/plain",
            b"\x1b]0;pwned\x07down\r\nFORGED: ok\xc2\x9b2J".to_vec(),
        )
    });
    let ran = servescope(
        &["batch", "--endpoint", &srv.url(), "--batch-sizes", "1"],
        &[],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("cannot list models"), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains(r"\x1b]0;pwned\x07down\r\nFORGED: ok\x9b2J"),
        "{}",
        ran.stderr
    );
    assert_inert("stderr", &ran.stderr);
}
