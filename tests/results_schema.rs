//! results.json's published JSON Schema (`servescope schema results`,
//! `docs/results.schema.json`) describes what the tool really writes: results.json
//! files from in-process simulator runs of several modes (plain concurrency with
//! server metrics and extra percentiles, dual-round, capacity, sessions, tool
//! calls) and the version-1 files in tests/data/results-v1 all validate against it,
//! and a file that breaks it is refused (so the check is not vacuous).

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};
use servescope::{Outcome, run_args};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn printed_schema() -> String {
    match run_args(["servescope", "schema", "results"]) {
        Ok(Outcome::Schema(text)) => text,
        other => panic!("{other:?}"),
    }
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&printed_schema()).unwrap();
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:#?}");
}

fn sim() -> SimServer {
    let cfg = SimConfig {
        tpot_ms: 1.0,
        ttft_base_ms: 2.0,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Run `servescope ARGS --endpoint URL --output-dir DIR --quiet`; DIR/results.json.
fn run_into(dir: &Path, url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    let out = dir.to_str().unwrap();
    all.extend(["--endpoint", url, "--output-dir", out, "--quiet"]);
    common::session(&all);
    load(&dir.join("results.json"))
}

#[test]
fn the_shipped_schema_is_what_the_command_prints() {
    let shipped = std::fs::read_to_string(root().join("docs/results.schema.json")).unwrap();
    assert!(
        shipped == printed_schema(),
        "docs/results.schema.json is stale: regenerate it with \
         `cargo run -- schema results > docs/results.schema.json`"
    );
}

#[test]
fn results_written_by_each_mode_validate() {
    let v = validator();
    let server = sim();
    let url = server.url();
    let tmp = tempfile::tempdir().unwrap();
    let tools = tmp.path().join("tools.json");
    std::fs::write(
        &tools,
        r#"[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#,
    )
    .unwrap();
    let tools = tools.to_str().unwrap();
    let small = ["--input-len", "16", "--output-len", "4"];
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "concurrency",
            vec![
                "concurrency",
                "--concurrency",
                "1,2",
                "--num-requests",
                "4",
                "--percentiles",
                "95,99.9",
                "--slo",
                "ttft_ms=500",
                "--metrics",
                "vllm",
                "--metrics-interval",
                "0.05",
            ],
        ),
        (
            "dual-round",
            vec!["dual-round", "--concurrency", "2", "--num-requests", "4"],
        ),
        // A trace with its lengths replaced (the flags `small` adds) and no sharing.
        (
            "trace",
            vec![
                "trace",
                "traces/mooncake-sample.jsonl",
                "--limit",
                "4",
                "--prompts",
                "unique",
            ],
        ),
        (
            "capacity",
            vec![
                "capacity",
                "--slo",
                "e2e_ms=2000",
                "--num-requests",
                "4",
                "--max",
                "4",
            ],
        ),
        (
            "sessions",
            vec![
                "concurrency",
                "--concurrency",
                "2",
                "--sessions",
                "--num-requests",
                "2",
                "--turns",
                "2",
            ],
        ),
        (
            "tools",
            vec![
                "batch",
                "--batch-sizes",
                "3",
                "--tools",
                tools,
                "--tool-choice",
                "required",
            ],
        ),
    ];
    for (name, mut args) in runs {
        args.extend(small);
        let dir = tmp.path().join(name.replace(' ', "-"));
        let doc = run_into(&dir, &url, &args);
        assert!(!doc["runs"].as_array().unwrap().is_empty(), "{name}: {doc}");
        if name == "concurrency" {
            // The hand-written parts of the schema are exercised: extra percentile
            // keys, bootstrap intervals, server metric series.
            let s = &doc["runs"][0]["summary"];
            assert!(s["ttft_ms"]["p99.9"].is_number() && s["ttft_ms"]["ci95"].is_object());
            assert!(s["server_metrics"]["derived"].is_object(), "{s}");
        }
        if name == "trace" {
            let p = &doc["runs"][0]["params"];
            assert!(
                p["input_len"].is_object() && p["prompts"] == "unique",
                "{p}"
            );
        }
        assert_valid(&v, &doc, name);
    }
}

#[test]
fn version_1_results_validate() {
    let v = validator();
    let dir = root().join("tests/data/results-v1");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path().join("results.json");
        if path.exists() {
            assert_valid(&v, &load(&path), &path.display().to_string());
            seen += 1;
        }
    }
    assert!(seen >= 9, "only {seen} saved results.json files");
}

#[test]
fn a_file_that_breaks_the_schema_is_refused() {
    let v = validator();
    let good = load(&root().join("tests/data/results-v1/concurrency/results.json"));
    assert_valid(&v, &good, "the saved concurrency run");
    let mut doc = good.clone();
    doc["runs"][0]["summary"]["ttft_ms"]["p99"] = Value::from("slow");
    assert!(!v.is_valid(&doc), "a string where a percentile goes");
    let mut doc = good.clone();
    doc["runs"][0]["summary"]["ttft_ms"]["count"] = Value::from(-1);
    assert!(!v.is_valid(&doc), "a negative count");
    let mut doc = good;
    doc["runs"] = Value::from("none");
    assert!(!v.is_valid(&doc), "runs not a list");
}
