//! `--api embeddings` against the built-in simulator, in every load mode that runs it,
//! and the flags that make no sense with it refused by name.

#[path = "common/mod.rs"]
mod common;

use common::{records, session};
use serde_json::Value;

/// The run's summaries, checked as every embeddings run must be: `inputs` prompts per
/// request of 16 tokens each, counted alike by the client and the simulator, latency
/// as E2E only.
fn check(out: &servescope::session::SessionOutcome, dir: &std::path::Path, inputs: u64) {
    for (label, s) in &out.runs {
        let e = s
            .embeddings
            .as_ref()
            .unwrap_or_else(|| panic!("{label}: {s:?}"));
        assert!(s.succeeded > 0 && s.succeeded == s.total, "{label}: {s:?}");
        assert_eq!(e.inputs, s.succeeded * inputs, "{label}");
        assert_eq!(s.tokens.input, e.inputs * 16, "{label}");
        assert_eq!(s.tokens.server_prompt, Some(s.tokens.input), "{label}");
        assert!(e.inputs_s > 0.0 && s.input_tok_s > 0.0, "{label}");
        assert!(s.ttft_ms.is_none() && s.tpot_ms.is_none() && s.itl_ms.is_none());
        assert_eq!(s.e2e_ms.as_ref().unwrap().count as u64, s.succeeded);
    }
    for r in records(dir) {
        assert_eq!(r["inputs"], inputs, "{r}");
        assert_eq!(r["events"], serde_json::json!([]), "{r}");
    }
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(doc["api"], "embeddings");
    assert_eq!(doc["batch_inputs"], inputs);
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert!(
        csv.lines().any(|l| l.starts_with("embeddings.inputs_s,")),
        "{csv}"
    );
}

#[test]
fn every_closed_and_open_loop_mode_embeds() {
    let modes: [&[&str]; 6] = [
        &["batch", "--batch-sizes", "1,4"],
        &["throughput", "--num-requests", "6"],
        &["concurrency", "--concurrency", "1,3", "--num-requests", "6"],
        &["rate", "--rates", "80", "--num-requests", "8"],
        &[
            "rate",
            "--rates",
            "80",
            "--num-requests",
            "8",
            "--max-concurrency",
            "2",
        ],
        &["dual-round", "--concurrency", "2", "--num-requests", "4"],
    ];
    for mode in modes {
        let dir = tempfile::tempdir().unwrap();
        let mut args = mode.to_vec();
        args.extend([
            "--api",
            "embeddings",
            "--batch-inputs",
            "3",
            "--input-len",
            "16",
            "--quiet",
            "--output-dir",
            dir.path().to_str().unwrap(),
        ]);
        let out = session(&args);
        assert!(!out.runs.is_empty(), "{mode:?}");
        check(&out, dir.path(), 3);
    }
}

#[test]
fn capacity_searches_an_embeddings_latency_bound() {
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "capacity",
        "--slo",
        "e2e_ms=400",
        "--num-requests",
        "6",
        "--max",
        "4",
        "--api",
        "embeddings",
        "--input-len",
        "16",
        "--quiet",
        "--output-dir",
        dir.path().to_str().unwrap(),
    ]);
    check(&out, dir.path(), 1);
    assert!(out.runs.iter().all(|(_, s)| s.goodput.is_some()));
}

#[test]
fn a_trace_replay_sends_one_input_per_trace_request() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let mut lines = String::new();
    for i in 0..6 {
        lines.push_str(&format!(
            "{{\"timestamp\": {}, \"input_length\": 16, \"output_length\": 4, \"hash_ids\": [{i}]}}\n",
            i * 5
        ));
    }
    std::fs::write(&trace, lines).unwrap();
    let out_dir = dir.path().join("out");
    let out = session(&[
        "trace",
        trace.to_str().unwrap(),
        "--block-size",
        "16",
        "--api",
        "embeddings",
        "--quiet",
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.runs[0].1.total, 6);
    check(&out, &out_dir, 1);
}

#[test]
fn an_embeddings_endpoint_path_chooses_the_api_and_the_report_shows_inputs() {
    let sim = common::SimProcess::start(&["--embedding-dim", "8"]);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/v1/embeddings", sim.url);
    let html = dir.path().join("r.html");
    let out_dir = dir.path().join("out");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_servescope"))
        .args([
            "concurrency",
            "--concurrency",
            "2",
            "--num-requests",
            "6",
            "--endpoint",
            &url,
        ])
        .args([
            "--batch-inputs",
            "2",
            "--input-len",
            "16",
            "--quiet",
            "--output-dir",
        ])
        .arg(&out_dir)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("inputs/s ·") && stdout.contains("12 inputs (2.0 per request)"));
    for absent in ["TTFT", "TPOT", "ITL", "output tok/s"] {
        assert!(!stdout.contains(absent), "{absent} in {stdout}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("inputs/s") && page.contains("input tok/s"));
    let cmp = std::process::Command::new(env!("CARGO_BIN_EXE_servescope"))
        .arg("compare")
        .arg(&out_dir)
        .arg(&out_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cmp.stdout);
    assert!(
        text.contains("inputs/s") && text.contains("input tok/s"),
        "{text}"
    );
    assert!(
        !text.contains("output tok/s") && !text.contains("TTFT"),
        "{text}"
    );
}

#[test]
fn the_simulator_answers_like_an_embeddings_server() {
    use std::io::{Read, Write};
    let sim = common::SimProcess::start(&["--embedding-dim", "4", "--ideal"]);
    let post = |body: &str| -> (u16, Value) {
        let addr = sim.url.trim_start_matches("http://");
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        write!(
            c,
            "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).unwrap();
        let status = resp[9..12].parse().unwrap();
        let (_, body) = resp.split_once("\r\n\r\n").unwrap();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    };
    let (status, a) = post(r#"{"model": "m", "input": ["hello world", "hello world", "other"]}"#);
    assert_eq!(status, 200, "{a}");
    let data = a["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 4);
    assert_eq!(
        data[0]["embedding"], data[1]["embedding"],
        "the same input, the same vector"
    );
    assert_ne!(data[0]["embedding"], data[2]["embedding"]);
    assert_eq!(data[2]["index"], 2);
    assert_eq!(a["usage"]["prompt_tokens"], 5, "2 + 2 + 1 cl100k tokens");
    let (_, one) = post(r#"{"input": "hello world", "dimensions": 6}"#);
    assert_eq!(one["data"][0]["embedding"].as_array().unwrap().len(), 6);
    for (bad, needle) in [
        (r#"{"model": "m"}"#, "'input' is required"),
        (r#"{"input": []}"#, "empty"),
        (r#"{"input": [1.5]}"#, "invalid JSON body"),
        (
            r#"{"input": "a", "encoding_format": "base64"}"#,
            "encoding_format",
        ),
        (r#"{"input": "a", "dimensions": 0}"#, "dimensions"),
        ("not json", "invalid JSON body"),
    ] {
        let (status, e) = post(bad);
        assert_eq!(status, 400, "{bad}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(needle),
            "{bad}: {e}"
        );
    }
}

#[test]
fn flags_that_mean_nothing_for_embeddings_are_refused_by_name() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["concurrency", "--api", "embeddings", "--slo", "ttfa_ms=100"],
            "--slo ttfa_ms",
        ),
        (
            &["concurrency", "--batch-inputs", "4"],
            "--batch-inputs applies to --api embeddings",
        ),
        (
            &["concurrency", "--api", "embeddings", "--slo", "ttft_ms=100"],
            "--slo ttft_ms",
        ),
        (
            &["concurrency", "--api", "embeddings", "--slo", "tpot_ms=10"],
            "--slo tpot_ms",
        ),
        (
            &["concurrency", "--api", "embeddings", "--output-len", "8"],
            "--output-len does not apply",
        ),
        (
            &["concurrency", "--api", "embeddings", "--temperature", "0.5"],
            "--temperature does not apply",
        ),
        (
            &["trace", "x.jsonl", "--api", "embeddings", "--sessions"],
            "--sessions",
        ),
        (
            &[
                "trace",
                "x.jsonl",
                "--api",
                "embeddings",
                "--batch-inputs",
                "2",
            ],
            "--batch-inputs 2 with a trace",
        ),
    ];
    for (args, needle) in cases {
        let mut argv = vec!["servescope"];
        argv.extend_from_slice(args);
        match servescope::run_args(argv) {
            Err(e @ servescope::error::Error::Input(_)) => {
                assert!(e.to_string().contains(needle), "{args:?}: {e}")
            }
            other => panic!("{args:?}: {other:?}"),
        }
    }
}
