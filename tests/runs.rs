//! Every load subcommand end to end, in-process, against the simulator on an ephemeral
//! loopback port: counts, tokens and timing must agree with the simulator's configured
//! latency model.
//!
//! Timing tolerances: the simulator paces on absolute deadlines with a timer accurate to
//! tens of µs and never sends early, so a measured TTFT is never below the configured
//! one, and TPOT (an average over a request's tokens) is within a fraction of a ms. The
//! upper TTFT bound allows for client + loopback + wake-up time on a shared 2-core CI
//! machine running other tests in parallel: measured here ≈ 0.4 ms; the bound is 6 ms.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use servebench::metrics::Summary;
use servebench::record::FailureKind;
use servebench::session::SessionOutcome;
use servebench::sim::{SimConfig, SimServer};
use servebench::{Error, Outcome, run_args};

const TTFT_SLACK_MS: f64 = 6.0;

fn sim(cfg: SimConfig) -> SimServer {
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn fast_sim() -> SimConfig {
    SimConfig {
        ttft_base_ms: 20.0,
        prefill_ms_per_token: 0.01,
        tpot_ms: 4.0,
        ..SimConfig::ideal()
    }
}

fn session(args: &[&str]) -> SessionOutcome {
    let mut argv = vec!["servebench"];
    argv.extend_from_slice(args);
    match run_args(argv) {
        Ok(Outcome::Session(s)) => s,
        Ok(other) => panic!("unexpected outcome {other:?}"),
        Err(e) => panic!("run failed: {e}"),
    }
}

fn failing(args: &[&str]) -> Error {
    let mut argv = vec!["servebench"];
    argv.extend_from_slice(args);
    match run_args(argv) {
        Ok(o) => panic!("expected an error, got {o:?}"),
        Err(e) => e,
    }
}

fn within(v: f64, lo: f64, hi: f64, what: &str) {
    assert!(
        v >= lo && v <= hi,
        "{what} = {v}, expected within [{lo}, {hi}]"
    );
}

fn check_timing(s: &Summary, ttft_ms: f64, tpot_ms: f64) {
    let ttft = s.ttft_ms.as_ref().unwrap();
    within(ttft.mean, ttft_ms, ttft_ms + TTFT_SLACK_MS, "mean TTFT");
    within(ttft.min, ttft_ms, ttft_ms + TTFT_SLACK_MS, "min TTFT");
    let tpot = s.tpot_ms.as_ref().unwrap();
    within(tpot.mean, tpot_ms - 0.3, tpot_ms + 0.6, "mean TPOT");
}

/// Every record's TTFT against the model for its own prompt length (fast_sim: 20 ms +
/// 0.01 ms per prompt token, then 4 ms per token); returns how many were checked.
fn check_records(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["status"], "ok");
        let prompt = r["prompt_tokens"].as_f64().unwrap();
        assert_eq!(r["input_tokens"].as_f64().unwrap(), prompt);
        let ttft =
            (r["first_token_at"].as_f64().unwrap() - r["started_at"].as_f64().unwrap()) * 1e3;
        let expected = 20.0 + 0.01 * prompt;
        within(
            ttft,
            expected - 0.001,
            expected + TTFT_SLACK_MS,
            "record TTFT",
        );
        let events = r["events"].as_array().unwrap();
        assert_eq!(events.len() as u64, r["output_tokens"].as_u64().unwrap());
        let span = (events[events.len() - 1].as_f64().unwrap() - events[0].as_f64().unwrap()) * 1e3;
        let expected_span = 4.0 * (events.len() - 1) as f64;
        // A late first event (busy machine) shortens the span as much as it lengthens TTFT.
        within(
            span,
            expected_span - TTFT_SLACK_MS,
            expected_span + TTFT_SLACK_MS,
            "record decode span",
        );
        n += 1;
    }
    n
}

#[test]
fn concurrency_levels_agree_with_the_simulator() {
    let server = sim(fast_sim());
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "1,4",
        "--num-requests",
        "12",
        "--input-len",
        "200",
        "--output-len",
        "16",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.model, "servebench-sim", "model taken from /v1/models");
    assert_eq!(out.runs.len(), 2);
    for ((label, s), c) in out.runs.iter().zip([1u64, 4]) {
        assert_eq!(label, &format!("concurrency {c}"));
        assert_eq!((s.total, s.succeeded), (12, 12));
        assert_eq!(s.tokens.input, 12 * 200, "exact prompt lengths");
        assert_eq!(
            s.tokens.output,
            12 * 16,
            "ignore_eos gives max_tokens exactly"
        );
        assert_eq!(s.tokens.source_usage, 12);
        assert_eq!(
            s.tokens.prompt_gap_mean,
            Some(0.0),
            "same tokenizer, no template"
        );
        assert_eq!(s.concurrency.max_in_flight, c);
        assert_eq!(s.itl_ms.as_ref().unwrap().count, 12 * 15);
        assert_eq!(s.tokens_per_event, Some(1.0));
        // TTFT = 20 + 0.01 × 200 = 22 ms; TPOT = 4 ms; E2E = 22 + 15 × 4 = 82 ms.
        check_timing(s, 22.0, 4.0);
        within(
            s.e2e_ms.as_ref().unwrap().mean,
            82.0,
            82.0 + TTFT_SLACK_MS,
            "mean E2E",
        );
    }
    // The simulator saw the connection test plus every request.
    let st = server.stats();
    assert_eq!(st.requests, 1 + 24);
    assert_eq!(st.output_tokens, 4 + 24 * 16);

    // Files: one record per request, results and CSV for both runs.
    let jsonl = std::fs::read_to_string(dir.path().join("requests.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 24);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["tool"]["name"], "servebench");
    assert_eq!(results["model"], "servebench-sim");
    assert_eq!(results["api"], "chat");
    assert_eq!(results["tokenizer"], "builtin:cl100k");
    assert_eq!(results["runs"][1]["params"]["concurrency"], 4);
    assert_eq!(results["runs"][1]["mode"], "concurrency");
    assert_eq!(results["runs"][0]["summary"]["requests"]["succeeded"], 12);
    let csv = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    assert!(
        csv.starts_with("metric,concurrency 1,concurrency 4\n"),
        "{csv}"
    );

    // `report` recomputes exactly the same summaries from requests.jsonl.
    let again = match run_args(["servebench", "report", dir.path().to_str().unwrap()]) {
        Ok(Outcome::Report(runs)) => runs,
        other => panic!("{other:?}"),
    };
    assert_eq!(again.len(), 2);
    for ((label, live), saved) in out.runs.iter().zip(&again) {
        assert_eq!(label, &saved.label);
        assert_eq!(
            live.to_json(),
            saved.summary.to_json(),
            "report differs for {label}"
        );
        assert_eq!(saved.mode, "concurrency");
    }
}

#[test]
fn batches_are_sent_all_at_once() {
    let server = sim(fast_sim());
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "batch",
        "--endpoint",
        &server.url(),
        "--batch-sizes",
        "1,6",
        "--input-len",
        "10:50",
        "--output-len",
        "8",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(check_records(dir.path()), 7);
    let sizes = [1u64, 6];
    for ((label, s), b) in out.runs.iter().zip(sizes) {
        assert_eq!(label, &format!("batch {b}"));
        assert_eq!((s.total, s.succeeded), (b, b));
        assert_eq!(s.concurrency.max_in_flight, b);
        assert_eq!(s.tokens.output, b * 8);
        within(
            s.tokens.input as f64 / b as f64,
            10.0,
            50.0,
            "mean input length",
        );
    }
}

#[test]
fn throughput_warms_up_then_sends_everything() {
    let server = sim(fast_sim());
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "throughput",
        "--endpoint",
        &server.url(),
        "--num-requests",
        "6",
        "--input-len",
        "20:40",
        "--output-len",
        "5:9",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(check_records(dir.path()), 6, "the warm-up is not recorded");
    let (label, s) = &out.runs[0];
    assert_eq!(label, "throughput");
    assert_eq!((s.total, s.succeeded), (6, 6));
    assert_eq!(s.concurrency.max_in_flight, 6);
    // Connection test + warm-up + 6 requests.
    assert_eq!(server.stats().requests, 8);
    let expected = s.tokens.output as f64 / s.duration_s;
    within(
        s.output_tok_s,
        expected * 0.999,
        expected * 1.001,
        "output tok/s",
    );
}

#[test]
fn several_tokens_per_chunk() {
    let server = sim(SimConfig {
        tokens_per_chunk: 3,
        ..fast_sim()
    });
    let out = session(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "2",
        "--num-requests",
        "4",
        "--input-len",
        "100",
        "--output-len",
        "10",
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    assert_eq!(s.tokens.output, 40, "usage counts tokens, not events");
    // Chunks of 3,3,3,1 tokens: 4 events, 2.5 tokens per event.
    assert_eq!(s.tokens_per_event, Some(2.5));
    assert_eq!(s.itl_ms.as_ref().unwrap().count, 4 * 3);
    // Events at tokens 2, 5, 8, 9: TTFT = 20 + 1 + 2×4 = 29 ms; TPOT = (9−2)×4/9 ms;
    // ITL gaps 12, 12, 4 ms.
    check_timing(s, 29.0, 28.0 / 9.0);
    // Pooled gaps: eight of 12 ms and four of 4 ms. One late event lengthens one gap
    // and shortens the next, so the median and the short gap are checked, with slack.
    let itl = s.itl_ms.as_ref().unwrap();
    within(
        itl.percentile(50.0).unwrap(),
        12.0 - TTFT_SLACK_MS / 2.0,
        12.0 + TTFT_SLACK_MS,
        "median ITL",
    );
    within(itl.max, 11.5, 12.0 + TTFT_SLACK_MS, "max ITL");
    assert!(
        itl.min < 6.0,
        "the 4 ms gap of the last single-token chunk: {}",
        itl.min
    );
}

#[test]
fn completions_with_token_id_prompts() {
    let server = sim(fast_sim());
    let out = session(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--api",
        "completions",
        "--prompt-token-ids",
        "--concurrency",
        "2",
        "--num-requests",
        "4",
        "--input-len",
        "64",
        "--output-len",
        "4",
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    assert_eq!(s.succeeded, 4);
    assert_eq!(s.tokens.server_prompt, Some(4 * 64));
    assert_eq!(s.tokens.input, 4 * 64);
}

/// The response text is tokenized only on request when the server reports usage; both
/// synthetic prompt kinds are exact in the simulator's (the same) tokenizer.
#[test]
fn output_text_is_counted_on_request_and_prompt_kinds_are_exact() {
    let server = sim(fast_sim());
    let url = server.url();
    for (extra, counted, kind) in [
        (None, false, "words"),
        (Some("--count-output-text"), true, "random-ids"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "concurrency",
            "--endpoint",
            &url,
            "--concurrency",
            "2",
            "--num-requests",
            "4",
            "--input-len",
            "50",
            "--output-len",
            "6",
            "--synthetic-prompts",
            kind,
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--quiet",
        ];
        args.extend(extra);
        let s = session(&args).runs[0].1.clone();
        assert_eq!(s.tokens.source_usage, 4);
        assert_eq!(s.tokens.prompt_gap_mean, Some(0.0), "{kind}: exact prompts");
        assert_eq!(s.tokens.output_gap_mean.is_some(), counted, "{extra:?}");
        let recs = common::records(dir.path());
        assert!(recs.iter().all(|r| r["text_tokens"].is_null() != counted));
        let results: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(results["synthetic_prompts"], kind);
    }
}

#[test]
fn no_endpoint_benchmarks_the_embedded_simulator() {
    let out = session(&[
        "batch",
        "--batch-sizes",
        "2",
        "--input-len",
        "16",
        "--output-len",
        "3",
        "--quiet",
    ]);
    assert_eq!(out.model, "servebench-sim");
    assert_eq!(out.runs[0].1.succeeded, 2);
}

#[test]
fn dataset_prompts() {
    let server = sim(fast_sim());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("prompts.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"Explain continuous batching.\", \"max_tokens\": 5}\n\
         {\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n",
    )
    .unwrap();
    let out = session(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--dataset",
        data.to_str().unwrap(),
        "--output-len",
        "7",
        "--concurrency",
        "1",
        "--num-requests",
        "4",
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    assert_eq!(s.succeeded, 4);
    assert_eq!(s.tokens.output, 5 + 7 + 5 + 7);
}

#[test]
fn api_key_never_reaches_any_file() {
    let server = sim(fast_sim());
    let dir = tempfile::tempdir().unwrap();
    let key = "sk-test-SECRET-9f8e7d";
    session(&[
        "batch",
        "--endpoint",
        &server.url(),
        "--api-key",
        key,
        "--batch-sizes",
        "2",
        "--input-len",
        "8",
        "--output-len",
        "2",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains(key), "API key written to a result file");
        checked += 1;
    }
    assert_eq!(checked, 3);
    let results = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
    assert!(
        results.contains("\"***\""),
        "the flag's value is masked in the command"
    );
}

/// A server that streams a valid answer to every other request and answers the rest
/// with HTTP 500 (`fail_all`: every request after the connection test fails).
fn flaky_server(fail_all: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            common::read_request(&mut conn);
            let fail = n > 0 && (fail_all || n.is_multiple_of(2));
            let resp = if fail {
                let body = r#"{"error":{"message":"engine overloaded"}}"#;
                format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                let ev = |t: &str| {
                    format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n")
                };
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{}{}data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":2}}}}\n\ndata: [DONE]\n\n",
                    ev("a"),
                    ev("b")
                )
            };
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    (url, count)
}

#[test]
fn failures_are_recorded_and_the_run_goes_on() {
    let (url, _) = flaky_server(false);
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "concurrency",
        "--endpoint",
        &url,
        "--model",
        "m",
        "--concurrency",
        "1",
        "--num-requests",
        "10",
        "--input-len",
        "8",
        "--output-len",
        "2",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    assert_eq!((s.total, s.succeeded), (10, 5));
    assert_eq!(s.failures.counts[&FailureKind::HttpStatus], 5);
    assert_eq!(
        s.failures.examples[&FailureKind::HttpStatus][0],
        "HTTP 500: engine overloaded"
    );
    assert_eq!(
        s.ttft_ms.as_ref().unwrap().count,
        5,
        "failures stay out of latency"
    );
    let jsonl = std::fs::read_to_string(dir.path().join("requests.jsonl")).unwrap();
    assert_eq!(jsonl.matches("\"status\":\"http_status\"").count(), 5);
    assert_eq!(jsonl.matches("\"http_status\":500").count(), 5);
}

#[test]
fn a_run_where_everything_failed_exits_non_zero() {
    let (url, _) = flaky_server(true);
    let dir = tempfile::tempdir().unwrap();
    let e = failing(&[
        "batch",
        "--endpoint",
        &url,
        "--model",
        "m",
        "--batch-sizes",
        "3",
        "--input-len",
        "8",
        "--output-len",
        "2",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("3 http_status"), "{e}");
    let jsonl = std::fs::read_to_string(dir.path().join("requests.jsonl")).unwrap();
    assert_eq!(
        jsonl.lines().count(),
        3,
        "failed requests are still recorded"
    );
}

#[test]
fn unreachable_server_fails_the_connection_test() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let e = failing(&["batch", "--endpoint", &url, "--model", "m", "--quiet"]);
    assert_eq!(e.exit_code(), 1);
    let msg = e.to_string();
    assert!(
        msg.contains("connection test") && msg.contains(&url),
        "{msg}"
    );
    assert!(msg.contains("connect_error"), "{msg}");
}

#[test]
fn bad_input_is_an_error_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["batch", "--extra-body", "{nope"], "--extra-body"),
        (&["batch", "--extra-body", "[1]"], "--extra-body"),
        (
            &["batch", "--tokenizer", "/no/such/tokenizer.json"],
            "/no/such/tokenizer.json",
        ),
        (&["batch", "--num-requests", "5"], "--num-requests"),
        (&["batch", "--input-len", "0:5"], "0:5"),
        (&["batch", "--batch-sizes", "0"], "--batch-sizes"),
        (&["batch", "--batch-sizes", "4,4"], "given twice"),
        (&["concurrency", "--timeout", "1e20"], "--timeout"),
        (&["concurrency", "--timeout", "-1"], "--timeout"),
        (&["concurrency", "--percentiles", "50,x"], "--percentiles"),
        (
            &["concurrency", "--endpoint", "localhost:8000"],
            "--endpoint",
        ),
        (
            &["concurrency", "--dataset", "/no/such/data.jsonl"],
            "/no/such/data.jsonl",
        ),
        (&["concurrency", "--prompt-token-ids"], "--prompt-token-ids"),
        (&["report", "/no/such/dir"], "/no/such/dir"),
    ];
    for (args, needle) in cases {
        let e = failing(args);
        assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        assert!(e.to_string().contains(needle), "{args:?}: {e}");
    }
}

#[test]
fn report_rejects_a_malformed_record_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requests.jsonl"), "{\"run\": \"x\"}\n").unwrap();
    let e = failing(&["report", dir.path().to_str().unwrap()]);
    assert_eq!(e.exit_code(), 2);
    let p = Path::new(dir.path()).join("requests.jsonl");
    assert!(e.to_string().contains(&format!("{}:1", p.display())), "{e}");
}

#[test]
fn max_error_rate_stops_the_run_early() {
    let (url, _) = flaky_server(true);
    let dir = tempfile::tempdir().unwrap();
    let e = failing(&[
        "concurrency",
        "--endpoint",
        &url,
        "--model",
        "m",
        "--concurrency",
        "1",
        "--num-requests",
        "50",
        "--input-len",
        "8",
        "--output-len",
        "2",
        "--max-error-rate",
        "0.5",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("--max-error-rate"), "{e}");
    // The check starts once 10 requests ended; all 10 failed, so nothing more was sent.
    let jsonl = std::fs::read_to_string(dir.path().join("requests.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 10);
    assert!(
        dir.path().join("results.json").exists(),
        "results are still written"
    );
}

/// Per id: (input tokens, the server's prompt tokens) of a run's records.
fn lengths_by_id(dir: &Path) -> std::collections::BTreeMap<u64, (u64, u64)> {
    let text = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    text.lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(r["status"], "ok", "{r}");
            let n = |k: &str| r[k].as_u64().unwrap();
            (n("id"), (n("input_tokens"), n("prompt_tokens")))
        })
        .collect()
}

/// With no budget to build prompts ahead, every prompt is built while the run goes,
/// by the producer thread: the same requests as when all are built first, for a closed
/// loop and for request rates.
#[test]
fn prompts_built_during_the_run_equal_those_built_before_it() {
    let server = sim(fast_sim());
    let dir = tempfile::tempdir().unwrap();
    for (mode, load) in [
        ("concurrency", ["--concurrency", "8"]),
        ("rate", ["--rates", "400"]),
    ] {
        let mut by_budget = Vec::new();
        for budget in ["0", "64"] {
            let out = dir.path().join(format!("{mode}-{budget}"));
            session(&[
                mode,
                load[0],
                load[1],
                "--endpoint",
                &server.url(),
                "--num-requests",
                "150",
                "--input-len",
                "10:300",
                "--output-len",
                "2",
                "--prepare-ahead-mb",
                budget,
                "--output-dir",
                out.to_str().unwrap(),
                "--quiet",
            ]);
            let lengths = lengths_by_id(&out);
            assert_eq!(lengths.len(), 150, "{mode}: every request once");
            assert!(lengths.values().all(|(a, b)| a == b), "exact lengths");
            by_budget.push(lengths);
        }
        assert_eq!(by_budget[0], by_budget[1], "{mode}: the same requests");
        let distinct: std::collections::BTreeSet<u64> =
            by_budget[0].values().map(|v| v.0).collect();
        assert!(distinct.len() > 50, "lengths vary: {distinct:?}");
    }
}
