//! A bad `--html` path is found before any request is sent, and said once.

use std::process::Command;

#[test]
fn a_bad_html_path_stops_before_the_benchmark_and_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let html = dir.path().join("no-such-dir").join("r.html");
    let run = Command::new(env!("CARGO_BIN_EXE_servescope"))
        .args(["throughput", "--num-requests", "2", "--input-len", "8"])
        .args(["--output-len", "4", "--quiet", "--output-dir"])
        .arg(&out_dir)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert_eq!(run.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(stderr.matches("--html").count(), 1, "{stderr}");
    assert!(stderr.contains("its directory does not exist"), "{stderr}");
    assert!(stdout.is_empty(), "no run: {stdout}");
    assert!(!out_dir.exists(), "nothing written");
}

/// The throughput warm-up sends a prompt of its own: with the simulator's prefix cache,
/// no measured request finds its prompt cached (the warm-up used to resend the first).
#[test]
fn the_throughput_warm_up_leaves_the_measured_requests_cold() {
    let out = crate::common::session(&[
        "throughput",
        "--num-requests",
        "3",
        "--input-len",
        "1000",
        "--output-len",
        "5",
        "--quiet",
    ]);
    let (_, summary) = &out.runs[0];
    assert_eq!(summary.succeeded, 3, "{summary:?}");
    assert_eq!(summary.tokens.cached, Some(0), "{:?}", summary.tokens);
}

/// `--temperature` and `--top-p` reach the server in every request body, and the
/// dual-round tool's `--num-samples` / `--max-output-tokens` mean what they meant there.
#[test]
fn sampling_flags_and_the_dual_round_tool_names_reach_the_server() {
    use std::sync::{Arc, Mutex};
    let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let seen = bodies.clone();
    let srv = crate::server::serve(move |req| {
        if req.path.ends_with("/models") {
            return crate::server::models("\"m\"");
        }
        seen.lock()
            .unwrap()
            .push(serde_json::from_str(&req.body).unwrap());
        crate::server::chat_stream(2, std::time::Duration::from_millis(1))
    });
    let url = srv.url();
    crate::common::session(&[
        "concurrency",
        "--endpoint",
        &url,
        "--concurrency",
        "1",
        "--num-samples",
        "3",
        "--max-output-tokens",
        "7",
        "--temperature",
        "0.5",
        "--top-p",
        "0.8",
        "--quiet",
    ]);
    let bodies = bodies.lock().unwrap();
    // The connection test and the three measured requests.
    assert_eq!(bodies.len(), 4, "{bodies:?}");
    for b in bodies.iter().skip(1) {
        assert_eq!(b["temperature"], 0.5, "{b}");
        assert_eq!(b["top_p"], 0.8, "{b}");
        assert_eq!(b["max_tokens"], 7, "{b}");
    }
}
