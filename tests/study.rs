//! `servescope run STUDY.yaml`: the shipped examples run against the built-in simulator
//! (shrunk by flags typed after the file, which is also how overrides are tested), the
//! errors a study file can hold, the API key from an environment variable, and the
//! shipped JSON Schema kept equal to `servescope schema study`.

mod common;

use std::path::Path;

use servescope::Outcome;
use servescope::study::StudyOutcome;

fn study(args: &[&str]) -> StudyOutcome {
    let mut argv = vec!["servescope", "run"];
    argv.extend_from_slice(args);
    match servescope::run_args(argv) {
        Ok(Outcome::Study(s)) => s,
        other => panic!("{args:?}: {other:?}"),
    }
}

/// The error a study fails with: its message and exit status.
fn study_error(yaml: &str, extra: &[&str]) -> (String, i32) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("study.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = dir.path().join("out");
    let mut argv = vec!["servescope", "run", file.to_str().unwrap()];
    argv.extend_from_slice(extra);
    if !extra.contains(&"--output-dir") {
        argv.extend(["--output-dir", out.to_str().unwrap()]);
    }
    match servescope::run_args(argv) {
        Err(e) => (
            e.to_string().replace(file.to_str().unwrap(), "study.yaml"),
            e.exit_code(),
        ),
        Ok(o) => panic!("{yaml}: expected an error, got {o:?}"),
    }
}

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn labels(doc: &serde_json::Value) -> Vec<String> {
    doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn cache_study_example_runs_every_level_cold_then_warm() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cache");
    let s = study(&[
        "examples/cache-study.yaml",
        "--num-requests",
        "8",
        "--output-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(s.dir, dir);
    assert_eq!(s.loads.len(), 1);
    let load = &s.loads[0];
    assert_eq!(
        (load.name.as_str(), load.mode.as_str()),
        ("cold-warm", "dual-round")
    );
    assert_eq!(load.dir, dir.join("cold-warm"));
    // Three levels of two rounds each, 8 requests a round (the override beat the file's 32).
    assert_eq!(load.session.runs.len(), 6);
    let records = common::records(&load.dir);
    assert_eq!(records.len(), 6 * 8);
    // Every prompt is the file's 2048 tokens.
    assert!(
        records.iter().all(|r| r["input_tokens"] == 2048),
        "{:?}",
        records[0]
    );
    let doc = results(&load.dir);
    assert!(
        labels(&doc).iter().any(|l| l.contains("round 2")),
        "{:?}",
        labels(&doc)
    );
    // The SLO section reached the runs, and output.html wrote the load's report.
    assert!(doc["runs"][0]["summary"]["goodput"]["slo"]["ttft_ms"] == 500.0);
    assert!(load.dir.join("report.html").is_file());
    // The saved command is the load's own, with the overrides in it.
    let command: Vec<&str> = doc["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&command[..2], ["servescope", "dual-round"]);
    assert!(command.contains(&"--concurrency=4,8,16"), "{command:?}");
    assert!(command.contains(&"--num-requests=8"), "{command:?}");
    assert!(!command.contains(&"--num-requests=32"), "{command:?}");
}

#[test]
fn trace_replay_example_runs_the_four_scales_in_order() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("trace");
    let s = study(&[
        "examples/trace-replay.yaml",
        "--limit",
        "5",
        "--max-context",
        "2048",
        "--output-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    let load = &s.loads[0];
    assert_eq!(load.mode, "trace");
    let labels: Vec<&str> = load.session.runs.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["trace x1.6", "trace x1.2", "trace x0.8", "trace x0.4"]
    );
    assert_eq!(common::records(&load.dir).len(), 4 * 5);
    // An ordinary result directory: report reads it.
    let Ok(Outcome::Report(runs)) =
        servescope::run_args(["servescope", "report", load.dir.to_str().unwrap()])
    else {
        panic!("report of {}", load.dir.display());
    };
    assert_eq!(runs.len(), 4);
}

/// The seed's trace study: the same arrivals as traced, with every input fixed at two
/// lengths, and with unique prompts.
#[test]
fn trace_lengths_example_changes_only_what_each_load_says() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("lengths");
    let s = study(&[
        "examples/trace-lengths.yaml",
        "--limit",
        "4",
        "--output-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    let names: Vec<&str> = s.loads.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["as-traced", "input-1024", "input-8192", "unique"]);
    let traced = common::records(&s.loads[0].dir);
    assert_eq!(traced.len(), 4 * 4, "four time scales of four requests");
    let own: Vec<u64> = traced[..4]
        .iter()
        .map(|r| r["input_tokens"].as_u64().unwrap())
        .collect();
    for load in &s.loads {
        let recs = common::records(&load.dir);
        assert_eq!(recs.len(), 16, "{}", load.name);
        let params = &results(&load.dir)["runs"][0]["params"];
        let fixed = match load.name.as_str() {
            "input-1024" => Some(1024),
            "input-8192" => Some(8192),
            _ => None,
        };
        for r in &recs {
            match fixed {
                Some(n) => {
                    assert_eq!(r["input_tokens"], n, "{}: {r}", load.name);
                    assert!(r["trace_input_len"].is_u64(), "{}: {r}", load.name);
                }
                None => {
                    assert!(own.contains(&r["input_tokens"].as_u64().unwrap()), "{r}");
                    assert!(r.get("trace_input_len").is_none(), "{r}");
                }
            }
        }
        let prompts = if load.name == "unique" {
            "unique"
        } else {
            "hash-ids"
        };
        assert_eq!(params["prompts"], prompts, "{}", load.name);
        assert_eq!(params["input_len"]["min"].as_u64(), fixed, "{}", load.name);
    }
}

#[test]
fn capacity_example_searches_under_its_slo() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cap");
    let s = study(&[
        "examples/capacity.yaml",
        "--num-requests",
        "8",
        "--max",
        "8",
        "--output-dir",
        dir.to_str().unwrap(),
    ]);
    let load = &s.loads[0];
    assert_eq!(
        (load.name.as_str(), load.mode.as_str()),
        ("ttft-100ms", "capacity")
    );
    let cap = &results(&load.dir)["capacity"];
    assert_eq!(cap["by"], "concurrency");
    assert_eq!(cap["max"], 8.0);
    assert_eq!(cap["attainment_target"], 0.99);
    assert!(
        cap["slo"].as_str().unwrap().contains("TTFT ≤ 100 ms"),
        "{cap}"
    );
    assert!(!cap["probes"].as_array().unwrap().is_empty());
}

#[test]
fn sweep_example_runs_two_loads_into_one_directory_and_compare_reads_them() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sweep");
    let s = study(&[
        "examples/sweep.yaml",
        "--num-requests",
        "6",
        "--rates",
        "2",
        "--output-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    let names: Vec<&str> = s.loads.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["sweep", "concurrency"]);
    // sweep: synchronous, max throughput, then the 2 rates the override asked for.
    assert_eq!(s.loads[0].session.runs.len(), 4);
    assert_eq!(s.loads[1].session.runs.len(), 3);
    // The override (6) replaced the load's own num-requests (48) as well.
    assert_eq!(common::records(&s.loads[1].dir).len(), 3 * 6);
    let a = dir.join("concurrency");
    let Ok(Outcome::Compared(_)) = servescope::run_args([
        "servescope",
        "compare",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
    ]) else {
        panic!("compare of {}", a.display());
    };
}

#[test]
fn a_load_overrides_workload_keys_and_underscores_are_hyphens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    let yaml = "workload:\n  input_len: 32\n  output-len: 4\n  num_requests: 3\nloads:\n  - mode: concurrency\n    concurrency: [1]\n  - mode: concurrency\n    concurrency: 2\n    input-len: 48\n    num-requests: 4\n";
    std::fs::write(&file, yaml).unwrap();
    let out = dir.path().join("out");
    let s = study(&[
        file.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let names: Vec<&str> = s.loads.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["concurrency-1", "concurrency-2"]);
    let first = common::records(&out.join("concurrency-1"));
    let second = common::records(&out.join("concurrency-2"));
    assert_eq!((first.len(), second.len()), (3, 4));
    assert!(first.iter().all(|r| r["input_tokens"] == 32));
    assert!(second.iter().all(|r| r["input_tokens"] == 48));
}

#[test]
fn errors_name_the_file_line_and_key() {
    let cases: [(&str, &[&str], &str); 11] = [
        (
            "workload:\n  input_lenn: 5\nloads: [{mode: concurrency}]\n",
            &[],
            "study.yaml:2:3: workload.input_lenn: unknown key (did you mean \"input-len\"?)",
        ),
        (
            "workload:\n  concurrency: 5\nloads: [{mode: concurrency}]\n",
            &[],
            "study.yaml:2:3: workload.concurrency: unknown key; it is a key of loads of mode concurrency, dual-round",
        ),
        (
            "loads:\n  - mode: concurrency\n    concurrency: {a: 1}\n",
            &[],
            "study.yaml:3:5: loads[0].concurrency: expected a value or a list of values, found a mapping",
        ),
        (
            "loads:\n  - mode: concurrency\n    no-ignore-eos: 3\n",
            &[],
            "study.yaml:3:5: loads[0].no-ignore-eos: expected true or false, found 3",
        ),
        (
            "loads:\n  - mode: rate\n    rates: [2]\n  - mode: concurrency\n    concurrency: [1, 0]\n",
            &[],
            "study.yaml:5:5: loads[1].concurrency: invalid value '0': expected a positive integer",
        ),
        (
            "workload:\n  num-requests: many\nloads:\n  - mode: batch\n",
            &[],
            "study.yaml:2:3: workload.num-requests: invalid value 'many': expected a positive integer (in load \"batch\")",
        ),
        (
            "workload:\n  warmup: 3\nloads:\n  - mode: trace\n    file: traces/mooncake-sample.jsonl\n",
            &[],
            "study.yaml:2:3: workload.warmup: does not apply to trace replay",
        ),
        (
            "target:\n  endpoint: http://127.0.0.1:9\n  api_key: sk-secret-value\nloads: [{mode: batch}]\n",
            &[],
            "study.yaml:3:3: target.api_key: an API key is not written into a study file",
        ),
        (
            "output: {dir: x}\nloads: []\n",
            &[],
            "study.yaml:2:1: loads: empty",
        ),
        (
            "loads:\n  - mode: concurency\n",
            &[],
            "study.yaml:2:5: loads[0].mode: unknown mode \"concurency\" (did you mean \"concurrency\"?)",
        ),
        (
            "loads: [{mode: batch}]\n",
            &["--rates", "3"],
            "--rates after the study file: no load of",
        ),
    ];
    for (yaml, extra, want) in cases {
        let (message, code) = study_error(yaml, extra);
        assert!(
            message.contains(want),
            "{yaml}\n got: {message}\nwant: {want}"
        );
        assert_eq!(code, 2, "{message}");
        assert!(!message.contains("sk-secret-value"), "{message}");
    }
}

#[test]
fn a_missing_file_bad_yaml_and_no_output_dir_are_input_errors() {
    let e = servescope::run_args(["servescope", "run", "no/such/study.yaml"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.to_string()
            .starts_with("no/such/study.yaml: cannot read the study file"),
        "{e}"
    );
    let (m, _) = study_error("loads:\n  - mode: batch\n   bad: [\n", &[]);
    assert!(m.starts_with("study.yaml:3:"), "{m}");
    assert!(m.contains("not valid YAML"), "{m}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, "loads: [{mode: batch}]\n").unwrap();
    let e = servescope::run_args(["servescope", "run", file.to_str().unwrap()]).unwrap_err();
    assert!(e.to_string().contains("no output directory"), "{e}");
}

/// The key comes from the variable `api_key_env` names, reaches the server, and is in
/// no file of the results. A subprocess, so the variable is set only there.
#[test]
fn api_key_env_sends_the_key_and_saves_it_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    let yaml = "target:\n  api_key_env: STUDY_TEST_KEY\nworkload:\n  input-len: 16\n  output-len: 2\nloads:\n  - mode: batch\n    batch-sizes: [2]\n";
    std::fs::write(&file, yaml).unwrap();
    let out = dir.path().join("out");
    let key = "sk-study-0123456789abcdef";
    let run = |key: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_servescope"));
        cmd.args([
            "run",
            file.to_str().unwrap(),
            "--output-dir",
            out.to_str().unwrap(),
        ]);
        cmd.args(["--quiet", "--overwrite"]);
        cmd.env_remove("STUDY_TEST_KEY")
            .env_remove("OPENAI_API_KEY");
        if let Some(k) = key {
            cmd.env("STUDY_TEST_KEY", k);
        }
        cmd.output().unwrap()
    };
    let unset = run(None);
    assert_eq!(unset.status.code(), Some(2));
    let err = String::from_utf8_lossy(&unset.stderr);
    assert!(
        err.contains(
            "s.yaml:2:3: target.api_key_env: the environment variable STUDY_TEST_KEY is not set"
        ),
        "{err}"
    );
    let ok = run(Some(key));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(!shown.contains(key), "{shown}");
    let load = out.join("batch");
    for f in std::fs::read_dir(&load).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains(key));
    }
    assert_eq!(common::records(&load).len(), 2);
    // The key reaches the server as a bearer token: a listener of this test's own
    // records the first request's head and answers 500 (the run then fails, exit 1).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = conn.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
        String::from_utf8_lossy(&head).to_lowercase()
    });
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_servescope"));
    cmd.args([
        "run",
        file.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    cmd.args([
        "--quiet",
        "--overwrite",
        "--endpoint",
        &endpoint,
        "--model",
        "m",
    ]);
    let failed = cmd.env("STUDY_TEST_KEY", key).output().unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&failed.stderr).contains(key));
    let head = server.join().unwrap();
    assert!(
        head.contains(&format!("authorization: bearer {key}")),
        "{head}"
    );
}

#[test]
fn the_shipped_schema_is_the_generated_one() {
    let schema = servescope::study::schema::study();
    let generated = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    let shipped = std::fs::read_to_string("docs/study.schema.json").unwrap();
    assert!(
        generated == shipped,
        "docs/study.schema.json is stale: run `servescope schema study > docs/study.schema.json`"
    );
    // Keys come from the flags: a mode's levels with clap's help, workload keys once.
    let conc = &schema["properties"]["loads"]["items"]["oneOf"][2];
    assert_eq!(conc["title"], "concurrency");
    let levels = conc["properties"]["concurrency"]["description"]
        .as_str()
        .unwrap();
    assert!(
        levels.starts_with("Concurrency levels, one run each"),
        "{levels}"
    );
    assert!(levels.contains("(flag --concurrency)"), "{levels}");
    let input = &schema["$defs"]["workload"]["properties"]["input-len"];
    assert!(
        input["description"]
            .as_str()
            .unwrap()
            .contains("--input-len")
    );
    assert_eq!(
        schema["$defs"]["workload"]["properties"]["input_len"]["$ref"],
        "#/$defs/workload/properties/input-len"
    );
    // Keys a study sets another way are not offered.
    for gone in ["api-key", "output-dir", "slo", "html"] {
        assert!(
            schema["$defs"]["workload"]["properties"]
                .get(gone)
                .is_none(),
            "{gone}"
        );
    }
    assert!(
        schema["properties"]["target"]["properties"]
            .get("api_key")
            .is_none()
    );
}

#[test]
fn schema_study_prints_it() {
    let shipped = std::fs::read_to_string("docs/study.schema.json").unwrap();
    assert!(matches!(
        servescope::run_args(["servescope", "schema", "study"]),
        Ok(Outcome::Schema(text)) if text == shipped
    ));
}
