//! Every load subcommand end to end, in-process, against the simulator on an ephemeral
//! loopback port: counts, tokens and timing must agree with the simulator's configured
//! latency model.
//!
//! Timing checks come in three kinds, so that a loaded machine (CI: 2 cores shared with
//! other tests; a starved process's wake-ups and CPU work can come hundreds of ms late)
//! cannot fail them:
//! - the summary against a recomputation from the run's own records (exact);
//! - per record, "never early": the simulator paces on absolute deadlines from the moment
//!   its handler starts, after the client stamped `started_at`, so no event comes before
//!   its token's deadline (load only adds delay). Each part of the timetable is tens of
//!   ms or more, so a lost setting shows even when most requests were delayed;
//! - upper bounds, on medians over records, within [`slack_ms`]: these catch only gross
//!   errors (a start stamped at the run's start, a wrong time unit, a stream not ended at
//!   its last event); SERVESCOPE_STRICT_TIMING=1 makes them tight for a quiet machine.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use servescope::metrics::Summary;
use servescope::record::FailureKind;
use servescope::session::SessionOutcome;
use servescope::sim::{SimConfig, SimServer};
use servescope::{Error, Outcome, run_args};

fn sim(cfg: SimConfig) -> SimServer {
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// For tests that do not check timing: quick requests.
fn fast_sim() -> SimConfig {
    SimConfig {
        ttft_base_ms: 20.0,
        prefill_ms_per_token: 0.01,
        tpot_ms: 4.0,
        ..SimConfig::ideal()
    }
}

/// For tests that check timing: TTFT 60 ms + 0.5 ms per prompt token, then 25 ms per
/// token.
fn timed_sim() -> SimConfig {
    SimConfig {
        ttft_base_ms: 60.0,
        prefill_ms_per_token: 0.5,
        tpot_ms: 25.0,
        ..SimConfig::ideal()
    }
}

/// How much later than the timetable the median request may see its first token, its
/// last, or its end (ms). Requests sent together are delayed together, so a median over
/// a batch is one sample: on 2 cores with 8-12 busy loops at nice −10 (several test
/// suites loading the machine at once) medians reached 240 ms. SERVESCOPE_STRICT_TIMING=1
/// asks for a quiet machine's few ms.
fn slack_ms() -> f64 {
    if common::strict_timing() { 6.0 } else { 400.0 }
}

fn session(args: &[&str]) -> SessionOutcome {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    match run_args(argv) {
        Ok(Outcome::Session(s)) => s,
        Ok(other) => panic!("unexpected outcome {other:?}"),
        Err(e) => panic!("run failed: {e}"),
    }
}

fn failing(args: &[&str]) -> Error {
    let mut argv = vec!["servescope"];
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

/// A time of requests.jsonl (seconds with 6 decimals) in whole µs, as the client kept it.
fn us(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 1e6).round() as i64
}

fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

fn events_us(r: &Value) -> Vec<i64> {
    r["events"].as_array().unwrap().iter().map(us).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    (v[(n - 1) / 2] + v[n / 2]) / 2.0
}

/// The records of the run labelled `run`.
fn run_records(dir: &Path, run: &str) -> Vec<Value> {
    let recs: Vec<Value> = common::records(dir)
        .into_iter()
        .filter(|r| r["run"] == run)
        .collect();
    assert!(!recs.is_empty(), "no records of {run}");
    recs
}

/// The summary's latency statistics recomputed from its run's records with the metric
/// definitions: TTFT = first event − start, TPOT = (last − first event) / (output
/// tokens − 1), ITL = every gap between consecutive events, E2E = end − start. Exact
/// whatever the load.
fn check_summary(s: &Summary, recs: &[Value]) {
    let (mut ttft, mut tpot, mut itl, mut e2e) = (vec![], vec![], vec![], vec![]);
    for r in recs {
        assert_eq!(r["status"], "ok", "{r}");
        let start = us(&r["started_at"]);
        let ev = events_us(r);
        assert_eq!(us(&r["first_token_at"]), ev[0]);
        let n = r["output_tokens"].as_u64().unwrap();
        ttft.push(ms(ev[0] - start));
        if n >= 2 {
            tpot.push(ms(ev[ev.len() - 1] - ev[0]) / (n - 1) as f64);
        }
        itl.extend(ev.windows(2).map(|w| ms(w[1] - w[0])));
        e2e.push(ms(us(&r["ended_at"]) - start));
    }
    for (what, stats, values) in [
        ("TTFT", &s.ttft_ms, ttft),
        ("TPOT", &s.tpot_ms, tpot),
        ("ITL", &s.itl_ms, itl),
        ("E2E", &s.e2e_ms, e2e),
    ] {
        let st = stats.as_ref().unwrap();
        assert_eq!(st.count, values.len(), "{what} count");
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(0.0, f64::max);
        for (name, got, want) in [
            ("mean", st.mean, mean),
            ("min", st.min, lo),
            ("max", st.max, hi),
        ] {
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1.0),
                "{what} {name}: summary {got}, from the records {want}"
            );
        }
    }
}

/// Every record of a run against the simulator's timetable `cfg` for its own prompt
/// length: token j comes at ttft_base + prefill × prompt + j × tpot after the request
/// started, in chunks of `tokens_per_chunk` sent with their last token.
fn check_timetable(recs: &[Value], cfg: &SimConfig) {
    let chunk = u64::from(cfg.tokens_per_chunk);
    let (mut first_late, mut span_off, mut end_late) = (vec![], vec![], vec![]);
    for r in recs {
        assert_eq!(r["status"], "ok", "{r}");
        let prompt = r["prompt_tokens"].as_u64().unwrap();
        assert_eq!(r["input_tokens"].as_u64().unwrap(), prompt);
        let n = r["output_tokens"].as_u64().unwrap();
        let ev = events_us(r);
        assert_eq!(ev.len() as u64, n.div_ceil(chunk), "one event per chunk");
        let at = |token: u64| {
            cfg.ttft_base_ms + cfg.prefill_ms_per_token * prompt as f64 + cfg.tpot_ms * token as f64
        };
        let (first, last) = (at(chunk.min(n) - 1), at(n - 1));
        let start = us(&r["started_at"]);
        // Never early, each event after its chunk's last token (1 µs: both times are
        // truncated to whole µs).
        for (k, &t) in ev.iter().enumerate() {
            let due = at((k as u64 + 1).saturating_mul(chunk).min(n) - 1);
            let what = format!("request {}: event {k} time", r["id"]);
            within(ms(t - start), due - 0.001, f64::INFINITY, &what);
        }
        let ttft = ms(ev[0] - start);
        first_late.push(ttft - first);
        span_off.push(ms(ev[ev.len() - 1] - ev[0]) - (last - first));
        end_late.push(ms(us(&r["ended_at"]) - start) - last);
    }
    // Catches a start stamped too early (at the run's start: seconds by the last of a
    // sequential run), a stream not ended at its last event, decode paced slower, or a
    // wrong time unit. A late first event shortens the decode span, so only its upper
    // side is checked.
    let slack = slack_ms();
    within(
        median(first_late),
        0.0,
        slack,
        "median TTFT past the timetable",
    );
    within(
        median(end_late),
        0.0,
        slack,
        "median E2E past the timetable",
    );
    within(
        median(span_off),
        f64::NEG_INFINITY,
        slack,
        "median decode span past the timetable",
    );
}

#[test]
fn concurrency_levels_agree_with_the_simulator() {
    let cfg = timed_sim();
    let server = sim(cfg.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "1,4",
        "--num-requests",
        "8",
        "--input-len",
        "100",
        "--output-len",
        "6",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.model, "servescope-sim", "model taken from /v1/models");
    assert_eq!(out.runs.len(), 2);
    for ((label, s), c) in out.runs.iter().zip([1u64, 4]) {
        assert_eq!(label, &format!("concurrency {c}"));
        assert_eq!((s.total, s.succeeded), (8, 8));
        assert_eq!(s.tokens.input, 8 * 100, "exact prompt lengths");
        assert_eq!(
            s.tokens.output,
            8 * 6,
            "ignore_eos gives max_tokens exactly"
        );
        assert_eq!(s.tokens.source_usage, 8);
        assert_eq!(
            s.tokens.prompt_gap_mean,
            Some(0.0),
            "same tokenizer, no template"
        );
        assert_eq!(s.concurrency.max_in_flight, c);
        assert_eq!(s.itl_ms.as_ref().unwrap().count, 8 * 5);
        assert_eq!(s.tokens_per_event, Some(1.0));
        // TTFT = 60 + 0.5 × 100 = 110 ms, then 25 ms per token: the last at 235 ms.
        let recs = run_records(dir.path(), label);
        assert_eq!(recs.len(), 8);
        check_summary(s, &recs);
        check_timetable(&recs, &cfg);
    }
    // The simulator saw the connection test plus every request.
    let st = server.stats();
    assert_eq!(st.requests, 1 + 16);
    assert_eq!(st.output_tokens, 4 + 16 * 6);

    // Files: one record per request, results and CSV for both runs.
    let jsonl = std::fs::read_to_string(dir.path().join("requests.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 16);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["tool"]["name"], "servescope");
    assert_eq!(results["model"], "servescope-sim");
    assert_eq!(results["api"], "chat");
    assert_eq!(results["tokenizer"], "builtin:cl100k");
    assert_eq!(results["runs"][1]["params"]["concurrency"], 4);
    assert_eq!(results["runs"][1]["mode"], "concurrency");
    assert_eq!(results["runs"][0]["summary"]["requests"]["succeeded"], 8);
    let csv = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    assert!(
        csv.starts_with("metric,concurrency 1,concurrency 4\n"),
        "{csv}"
    );

    // `report` recomputes exactly the same summaries from requests.jsonl.
    let again = match run_args(["servescope", "report", dir.path().to_str().unwrap()]) {
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
        assert_eq!(saved.mode.as_str(), "concurrency");
    }
}

#[test]
fn batches_are_sent_all_at_once() {
    let cfg = timed_sim();
    let server = sim(cfg.clone());
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
    let sizes = [1u64, 6];
    for ((label, s), b) in out.runs.iter().zip(sizes) {
        assert_eq!(label, &format!("batch {b}"));
        assert_eq!((s.total, s.succeeded), (b, b));
        // Each request takes ≥ 240 ms, so all 6 overlap unless sends are that far apart.
        assert_eq!(s.concurrency.max_in_flight, b);
        assert_eq!(s.tokens.output, b * 8);
        within(
            s.tokens.input as f64 / b as f64,
            10.0,
            50.0,
            "mean input length",
        );
        let recs = run_records(dir.path(), label);
        assert_eq!(recs.len() as u64, b);
        check_summary(s, &recs);
        check_timetable(&recs, &cfg);
    }
}

#[test]
fn throughput_warms_up_then_sends_everything() {
    let cfg = timed_sim();
    let server = sim(cfg.clone());
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
    let recs = common::records(dir.path());
    assert_eq!(recs.len(), 6, "the warm-up is not recorded");
    let (label, s) = &out.runs[0];
    assert_eq!(label, "throughput");
    assert_eq!((s.total, s.succeeded), (6, 6));
    // Each request takes ≥ 170 ms: all 6 overlap unless sent that far apart.
    assert_eq!(s.concurrency.max_in_flight, 6);
    check_summary(s, &recs);
    check_timetable(&recs, &cfg);
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
    let cfg = SimConfig {
        tokens_per_chunk: 3,
        tpot_ms: 30.0,
        ..timed_sim()
    };
    let server = sim(cfg.clone());
    let dir = tempfile::tempdir().unwrap();
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
        "13",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    assert_eq!(s.tokens.output, 4 * 13, "usage counts tokens, not events");
    // Chunks of 3,3,3,3,1 tokens: 5 events, 2.6 tokens per event.
    assert_eq!(s.tokens_per_event, Some(2.6));
    assert_eq!(s.itl_ms.as_ref().unwrap().count, 4 * 4);
    // Events at tokens 2, 5, 8, 11, 12: TTFT = 60 + 50 + 2 × 30 = 170 ms (checked never
    // early per record), TPOT = (12 − 2) × 30 / 12 ms, ITL gaps 90, 90, 90, 30 ms.
    let recs = common::records(dir.path());
    check_summary(s, &recs);
    check_timetable(&recs, &cfg);
    // Every event came no earlier than its chunk's last token (checked above); the gaps
    // between them: twelve of 90 ms, four of 30 ms. A late event lengthens one gap and
    // shortens the next, and two requests in flight are delayed together, so a median of
    // the gaps is not robust; its extremes are. A request's three long gaps all shrink
    // only if each event is later than the next (a late first one, then catching up):
    // some stays ≥ 90 ms.
    let itl = s.itl_ms.as_ref().unwrap();
    within(itl.max, 89.5, f64::INFINITY, "max ITL");
    // The last, single-token chunk comes 30 ms after the one before, not a whole chunk's
    // time later.
    assert!(
        itl.min < 60.0,
        "the 30 ms gap of the last single-token chunk: {}",
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
    assert_eq!(out.model, "servescope-sim");
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
