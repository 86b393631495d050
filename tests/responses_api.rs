//! `--api responses` in every load mode against the simulator's `/v1/responses`,
//! in-process: the records are those of the chat API (usage read, one event per token,
//! the same prompt lengths), dataset chat histories go as input items.

use std::path::Path;

use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};

fn sim() -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 2.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 0.5,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn session(args: &[&str]) -> servescope::session::SessionOutcome {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    match servescope::run_args(argv) {
        Ok(servescope::Outcome::Session(s)) => s,
        Ok(_) => panic!("{args:?}: not a session"),
        Err(e) => panic!("{args:?}: {e}"),
    }
}

fn records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("requests.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every record succeeded, with the server's usage, one event per token and no phase
/// fields (all answer text); the number of records.
fn check(dir: &Path) -> usize {
    let recs = records(dir);
    assert!(!recs.is_empty(), "{}", dir.display());
    for r in &recs {
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["output_tokens_source"], "usage", "{r}");
        let n = r["output_tokens"].as_u64().unwrap();
        assert_eq!(r["events"].as_array().unwrap().len() as u64, n, "{r}");
        assert!(r["prompt_tokens"].as_u64().unwrap() > 0, "{r}");
        assert!(r.get("answer_events").is_none(), "{r}");
    }
    recs.len()
}

#[test]
fn every_load_mode_runs_on_the_responses_api() {
    let server = sim();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    std::fs::write(
        &trace,
        "{\"timestamp\": 0, \"input_length\": 40, \"output_length\": 4, \"hash_ids\": [1, 2]}\n\
         {\"timestamp\": 20, \"input_length\": 60, \"output_length\": 3, \"hash_ids\": [1, 2, 3]}\n",
    )
    .unwrap();
    let modes: Vec<(&str, Vec<&str>)> = vec![
        ("batch", vec!["batch", "--batch-sizes", "3"]),
        ("throughput", vec!["throughput", "--num-requests", "4"]),
        (
            "concurrency",
            vec!["concurrency", "--concurrency", "2", "--num-requests", "4"],
        ),
        (
            "rate",
            vec!["rate", "--rates", "200", "--num-requests", "4"],
        ),
        (
            "trace",
            vec!["trace", trace.to_str().unwrap(), "--block-size", "20"],
        ),
        (
            "dual-round",
            vec!["dual-round", "--concurrency", "2", "--num-requests", "3"],
        ),
        (
            "capacity",
            vec![
                "capacity",
                "--slo",
                "e2e_ms=2000",
                "--max",
                "2",
                "--num-requests",
                "3",
            ],
        ),
        (
            "sweep",
            vec!["sweep", "--rates", "1", "--num-requests", "3"],
        ),
    ];
    for (name, mode) in modes {
        let out = dir.path().join(name);
        let mut args = mode.clone();
        args.extend(["--endpoint", &url, "--api", "responses", "--quiet"]);
        let sized = !matches!(name, "trace");
        if sized {
            args.extend(["--input-len", "24", "--output-len", "5"]);
        }
        args.extend(["--output-dir", out.to_str().unwrap()]);
        let s = session(&args);
        for (label, summary) in &s.runs {
            assert_eq!(summary.succeeded, summary.total, "{name} {label}");
        }
        check(&out);
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(doc["api"], "responses", "{name}");
    }
}

/// The same seeded workload on both APIs: the same prompt and output token counts.
#[test]
fn the_records_match_the_chat_apis() {
    let server = sim();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let mut counts = Vec::new();
    for api in ["chat", "responses"] {
        let out = dir.path().join(api);
        session(&[
            "concurrency",
            "--endpoint",
            &url,
            "--api",
            api,
            "--concurrency",
            "1",
            "--num-requests",
            "3",
            "--input-len",
            "16:64",
            "--output-len",
            "2:9",
            "--quiet",
            "--output-dir",
            out.to_str().unwrap(),
        ]);
        assert_eq!(check(&out), 3);
        let mut recs = records(&out);
        recs.sort_by_key(|r| r["id"].as_u64());
        let c: Vec<_> = recs
            .iter()
            .map(|r| {
                (
                    r["input_tokens"].clone(),
                    r["prompt_tokens"].clone(),
                    r["output_tokens"].clone(),
                )
            })
            .collect();
        counts.push(c);
    }
    assert_eq!(counts[0], counts[1]);
}

#[test]
fn dataset_chat_messages_are_sent_as_input_items() {
    let server = sim();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chats.jsonl");
    std::fs::write(
        &data,
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Name three rivers.\"}], \"output_len\": 4}\n\
         {\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello!\"}, {\"role\": \"user\", \"content\": \"More?\"}], \"output_len\": 3}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let s = session(&[
        "throughput",
        "--endpoint",
        &url,
        "--api",
        "responses",
        "--dataset",
        data.to_str().unwrap(),
        "--num-requests",
        "2",
        "--quiet",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    assert_eq!(s.runs[0].1.succeeded, 2);
    assert_eq!(check(&out), 2);
    let tok = servescope::workload::Tokenizer::builtin();
    let mut prompts: Vec<u64> = records(&out)
        .iter()
        .map(|r| r["prompt_tokens"].as_u64().unwrap())
        .collect();
    prompts.sort_unstable();
    let mut want: Vec<u64> = [
        vec!["Be brief.", "Name three rivers."],
        vec!["Hi", "Hello!", "More?"],
    ]
    .iter()
    .map(|texts| texts.iter().map(|t| tok.count(t) as u64).sum())
    .collect();
    want.sort_unstable();
    assert_eq!(prompts, want, "every message reached the server's prompt");
}
