//! `--tools` and `--tool-choice` end to end, in-process against the simulator: every
//! request carries the tools (the simulator answers them with tool calls), the time of
//! the first tool-call event is recorded, the summary's tool figures agree with the
//! records; input errors name the flag, the file and the entry.

mod common;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use servescope::sim::{SimConfig, SimServer};
use servescope::{Error, run_args};

fn sim(share: f64) -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 5.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 1.0,
        tool_call_share: share,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn tools_file(dir: &Path) -> PathBuf {
    let path = dir.join("tools.json");
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}
    ]);
    std::fs::write(&path, tools.to_string()).unwrap();
    path
}

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn input_error<S: AsRef<str> + std::fmt::Debug>(args: &[S]) -> String {
    let mut argv = vec!["servescope"];
    argv.extend(args.iter().map(AsRef::as_ref));
    match run_args(argv) {
        Err(Error::Input(m)) => m,
        // A dataset's errors are input errors too (exit 2), with their own type.
        Err(e @ Error::Dataset(_)) if e.exit_code() == 2 => e.to_string(),
        other => panic!("{args:?}: expected an input error, got {other:?}"),
    }
}

#[test]
fn required_tools_make_every_request_a_tool_call_with_its_first_time() {
    let dir = tempfile::tempdir().unwrap();
    let tools = tools_file(dir.path());
    let out = dir.path().join("out");
    let sim = sim(1.0);
    let s = common::session(&[
        "batch",
        "--batch-sizes",
        "6",
        "--endpoint",
        &sim.url(),
        "--input-len",
        "20",
        "--output-len",
        "12",
        "--tools",
        tools.to_str().unwrap(),
        "--tool-choice",
        "required",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let recs = common::records(&out);
    assert_eq!(recs.len(), 6);
    for r in &recs {
        assert_eq!(r["tool_events"], 12, "{r}");
        assert_eq!(r["answer_events"], 0, "{r}");
        assert_eq!(r["first_tool_at"], r["first_token_at"], "{r}");
        assert_eq!(r["output_tokens"], 12);
    }
    let summary = &s.runs[0].1;
    let t = summary.tools.as_ref().expect("tool figures");
    assert_eq!((t.requests, t.share, t.argument_tokens_total), (6, 1.0, 72));
    assert_eq!(t.argument_tokens.as_ref().unwrap().mean, 12.0);
    // The first tool-call event is the first output event here: the same distribution.
    let (first, ttft) = (
        t.first_call_ms.as_ref().unwrap(),
        summary.ttft_ms.as_ref().unwrap(),
    );
    assert_eq!((first.count, first.mean), (ttft.count, ttft.mean));
    let saved = &results(&out)["runs"][0]["summary"]["tools"];
    assert_eq!(saved["requests"], 6);
    assert_eq!(saved["first_call_ms"]["count"], 6);
    assert_eq!(saved["argument_tokens_counted"], "one per tool-call event");
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(csv.contains("tools.first_call_ms.p99,"), "{csv}");
    // `report` reads the saved figures back into the table.
    match run_args(["servescope", "report", out.to_str().unwrap()]) {
        Ok(servescope::Outcome::Report(runs)) => {
            assert_eq!(runs[0].summary.tools, summary.tools);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn auto_with_a_share_counts_only_the_requests_that_called() {
    let dir = tempfile::tempdir().unwrap();
    let tools = tools_file(dir.path());
    let out = dir.path().join("out");
    let sim = sim(0.5);
    let s = common::session(&[
        "batch",
        "--batch-sizes",
        "40",
        "--endpoint",
        &sim.url(),
        "--input-len",
        "10",
        "--output-len",
        "4",
        "--tools",
        tools.to_str().unwrap(),
        "--tool-choice",
        "auto",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let recs = common::records(&out);
    let called: Vec<&Value> = recs
        .iter()
        .filter(|r| r["tool_events"].as_u64() > Some(0))
        .collect();
    let t = s.runs[0].1.tools.clone().unwrap();
    assert_eq!(t.requests, called.len() as u64);
    assert!(
        (5..=35).contains(&called.len()),
        "{} of 40 at 0.5",
        called.len()
    );
    assert_eq!(t.share, called.len() as f64 / 40.0);
    assert_eq!(t.first_call_ms.unwrap().count, called.len());
    // The others answered with text: plain records, without phase fields.
    assert!(
        recs.iter()
            .filter(|r| r.get("tool_events").is_none())
            .count()
            == 40 - called.len()
    );
}

#[test]
fn without_tool_calls_the_summary_has_no_tool_figures() {
    let dir = tempfile::tempdir().unwrap();
    let tools = tools_file(dir.path());
    let out = dir.path().join("out");
    let sim = sim(1.0);
    let s = common::session(&[
        "batch",
        "--batch-sizes",
        "3",
        "--endpoint",
        &sim.url(),
        "--input-len",
        "10",
        "--output-len",
        "4",
        "--tools",
        tools.to_str().unwrap(),
        "--tool-choice",
        "none",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(s.runs[0].1.tools.is_none());
    assert!(results(&out)["runs"][0]["summary"].get("tools").is_none());
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(!csv.contains("tools."), "{csv}");
}

#[test]
fn dataset_entries_carry_their_own_tools() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.jsonl");
    let own = json!([{"type": "function", "function": {"name": "lookup"}}]);
    let lines = [
        json!({"prompt": "with tools", "output_length": 5, "tools": own}),
        // An empty list, as function-calling datasets write "no tools": none sent.
        json!({"prompt": "without", "output_length": 5, "tools": []}),
    ];
    std::fs::write(&data, lines.map(|l| l.to_string()).join("\n")).unwrap();
    let out = dir.path().join("out");
    let sim = sim(1.0);
    common::session(&[
        "batch",
        "--batch-sizes",
        "4",
        "--endpoint",
        &sim.url(),
        "--dataset",
        data.to_str().unwrap(),
        "--tool-choice",
        "lookup",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let mut recs = common::records(&out);
    recs.sort_by_key(|r| r["id"].as_u64());
    for r in &recs {
        let with_tools = r["id"].as_u64().unwrap() % 2 == 0;
        assert_eq!(r.get("tool_events").is_some(), with_tools, "{r}");
    }
    // A named choice must be in every entry's tools.
    let err = input_error(&[
        "batch",
        "--batch-sizes",
        "1",
        "--endpoint",
        &sim.url(),
        "--dataset",
        data.to_str().unwrap(),
        "--tool-choice",
        "search",
        "--quiet",
    ]);
    assert!(
        err.contains("--tool-choice search") && err.contains("d.jsonl:1: \"tools\""),
        "{err}"
    );
    // A bad entry is named by its line.
    std::fs::write(
        &data,
        "{\"prompt\": \"p\", \"tools\": [{\"type\": \"function\", \"function\": {}}]}\n",
    )
    .unwrap();
    let err = input_error(&[
        "batch",
        "--batch-sizes",
        "1",
        "--endpoint",
        &sim.url(),
        "--dataset",
        data.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        err.contains("d.jsonl:1") && err.contains("tools") && err.contains("tool 0"),
        "{err}"
    );
}

#[test]
fn tool_input_errors_name_the_flag_file_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    let tools = tools_file(dir.path());
    let t = tools.to_str().unwrap();
    let sim = sim(1.0);
    let url = sim.url();
    let base = [
        "batch",
        "--batch-sizes",
        "1",
        "--endpoint",
        url.as_str(),
        "--quiet",
    ];
    let with =
        |more: &[&str]| -> Vec<String> { base.iter().chain(more).map(|s| s.to_string()).collect() };
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"type": "function", "function": {"name": "a"}}, {"type": "function"}]"#,
    )
    .unwrap();
    let err = input_error(&with(&["--tools", bad.to_str().unwrap()]));
    assert!(
        err.starts_with("--tools ")
            && err.contains("bad.json: tool 1: expected a \"function\" object"),
        "{err}"
    );
    std::fs::write(&bad, "not json").unwrap();
    let err = input_error(&with(&["--tools", bad.to_str().unwrap()]));
    assert!(err.contains("bad.json: not valid JSON"), "{err}");
    let err = input_error(&with(&["--tools", t, "--tool-choice", "get_wether"]));
    assert!(
        err.contains("--tool-choice get_wether") && err.contains("get_weather, search"),
        "{err}"
    );
    let err = input_error(&with(&["--tools", t, "--api", "completions"]));
    assert!(
        err.contains("--tools needs the chat or responses API"),
        "{err}"
    );
    let err = input_error(&with(&["--tools", t, "--api", "embeddings"]));
    assert!(err.contains("the embeddings API takes no tools"), "{err}");
    // The API named by the endpoint's path is only known once it is parsed.
    let completions = format!("{url}/v1/completions");
    let err = input_error(&[
        "batch",
        "--batch-sizes",
        "1",
        "--endpoint",
        &completions,
        "--tools",
        t,
        "--quiet",
    ]);
    assert!(err.contains("need the chat or responses API"), "{err}");
    let err = input_error(&with(&["--tool-choice", "required"]));
    assert!(err.contains("--tool-choice needs --tools"), "{err}");
}

/// The Responses API carries the same tools (in its flat shape) and the simulator answers
/// with a `function_call` item whose argument deltas are the tool-call events.
#[test]
fn the_responses_api_calls_tools_too() {
    let dir = tempfile::tempdir().unwrap();
    let tools = tools_file(dir.path());
    let out = dir.path().join("out");
    let sim = sim(1.0);
    let s = common::session(&[
        "batch",
        "--batch-sizes",
        "4",
        "--endpoint",
        &sim.url(),
        "--api",
        "responses",
        "--input-len",
        "20",
        "--output-len",
        "12",
        "--tools",
        tools.to_str().unwrap(),
        "--tool-choice",
        "search",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(s.runs[0].1.succeeded, 4);
    for r in &common::records(&out) {
        assert_eq!(r["tool_events"], 12, "{r}");
        assert_eq!(r["answer_events"], 0, "{r}");
        assert_eq!(r["first_tool_at"], r["first_token_at"], "{r}");
    }
    let t = s.runs[0].1.tools.as_ref().expect("tool figures");
    assert_eq!((t.requests, t.argument_tokens_total), (4, 48));
}
