//! The argv a study file gives each load, overrides, and the rewriting of flag errors
//! into study keys.

use std::path::Path;

use super::argv::{Origin, Overrides, load_argv, parse_overrides};
use super::errors::locate;
use super::file;

fn read(yaml: &str) -> file::StudyFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, yaml).unwrap();
    file::read(&path).unwrap()
}

fn argv_of(yaml: &str, load: usize, typed: &[&str]) -> Vec<String> {
    let study = read(yaml);
    let typed: Vec<String> = typed.iter().map(|s| s.to_string()).collect();
    let o = parse_overrides(&typed).unwrap();
    load_argv(&study, &study.loads[load], &o, Path::new("OUT/x"), None).argv
}

#[test]
fn sections_become_flags_of_every_load() {
    let yaml = "target:\n  model: m\n  headers: {X-Route: canary, X-Team: a}\n  sim: {reasoning_tokens: 8}\nworkload:\n  input-len: 64\n  no-ignore-eos: true\n  sessions: false\nmetrics:\n  names: [vllm, dcgm=dcgm]\n  urls: {dcgm: \"http://h:9400/metrics\"}\nslo: {ttft_ms: 500, tpot_ms: null, e2e_ms: 2000}\noutput: {dir: d, html: true, quiet: true}\nloads:\n  - mode: concurrency\n    concurrency: [1, 4]\n";
    let argv = argv_of(yaml, 0, &[]);
    let want = [
        "servescope",
        "concurrency",
        "--sim-reasoning-tokens=8",
        "--model=m",
        "--header=X-Route: canary",
        "--header=X-Team: a",
        "--input-len=64",
        "--no-ignore-eos",
        "--metrics=vllm",
        "--metrics=dcgm=dcgm",
        "--metrics-url=dcgm=http://h:9400/metrics",
        "--slo=ttft_ms=500,e2e_ms=2000",
        "--quiet",
        "--concurrency=1,4",
        "--output-dir=OUT/x",
        "--html=OUT/x/report.html",
    ];
    assert_eq!(argv, want);
}

#[test]
fn a_load_replaces_or_withholds_workload_values_and_typed_flags_replace_both() {
    let yaml = "workload:\n  input-len: 64\n  output-len: 8\n  num-requests: 10\nloads:\n  - mode: concurrency\n    input-len: 128\n    output-len: null\n  - mode: trace\n    file: t.jsonl\n    time-scale: [1.6, 0.4]\n";
    let first = argv_of(yaml, 0, &["--num-requests", "3", "--time-scale=2"]);
    assert!(first.contains(&"--input-len=128".to_string()), "{first:?}");
    assert!(
        !first.iter().any(|a| a.starts_with("--output-len")),
        "{first:?}"
    );
    assert!(first.contains(&"--num-requests=3".to_string()), "{first:?}");
    assert!(
        !first.contains(&"--num-requests=10".to_string()),
        "{first:?}"
    );
    // --time-scale is trace's: the concurrency load does not get it.
    assert!(
        !first.iter().any(|a| a.starts_with("--time-scale")),
        "{first:?}"
    );
    let second = argv_of(yaml, 1, &["--time-scale=2", "-q"]);
    assert_eq!(&second[..3], ["servescope", "trace", "t.jsonl"]);
    // The workload's lengths are for synthetic prompts: a trace keeps its own.
    assert!(
        !second
            .iter()
            .any(|a| a.starts_with("--input-len") || a.starts_with("--output-len")),
        "{second:?}"
    );
    assert!(second.contains(&"--time-scale=2".to_string()), "{second:?}");
    assert!(second.contains(&"--quiet".to_string()), "{second:?}");
}

#[test]
fn a_trace_load_replaces_its_lengths_only_when_it_or_the_command_line_says_so() {
    let yaml = "workload:\n  input-len: 64\n  output-len: 8\nloads:\n  - mode: trace\n    file: t.jsonl\n    input-len: 1024\n  - mode: dual-round\n    trace: t.jsonl\n  - mode: dual-round\n  - mode: dual-round\n    trace: null\n";
    let own = argv_of(yaml, 0, &[]);
    assert!(own.contains(&"--input-len=1024".to_string()), "{own:?}");
    assert!(
        !own.iter().any(|a| a.starts_with("--output-len")),
        "{own:?}"
    );
    let typed = argv_of(yaml, 0, &["--output-len", "3"]);
    assert!(typed.contains(&"--output-len=3".to_string()), "{typed:?}");
    let dual_trace = argv_of(yaml, 1, &[]);
    assert!(
        !dual_trace.iter().any(|a| a.contains("-len")),
        "{dual_trace:?}"
    );
    let dual = argv_of(yaml, 2, &[]);
    assert!(dual.contains(&"--input-len=64".to_string()), "{dual:?}");
    assert!(dual.contains(&"--output-len=8".to_string()), "{dual:?}");
    let no_trace = argv_of(yaml, 3, &[]);
    assert!(
        no_trace.contains(&"--input-len=64".to_string()),
        "{no_trace:?}"
    );
}

#[test]
fn typed_flags_are_checked() {
    let parse = |t: &[&str]| {
        let t: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        parse_overrides(&t).map_err(|e| e.to_string())
    };
    let o: Overrides = parse(&["--output-dir", "X", "-H", "A: b", "--overwrite"]).unwrap();
    assert_eq!(o.output_dir.as_deref(), Some(Path::new("X")));
    let longs: Vec<&str> = o.flags.iter().map(|f| f.long.as_str()).collect();
    assert_eq!(longs, ["header", "overwrite"]);
    assert_eq!(o.flags[0].tokens, ["--header=A: b"]);
    assert!(
        parse(&["--no-such-flag"])
            .unwrap_err()
            .contains("not a flag of any load mode")
    );
    assert!(
        parse(&["--num-requests"])
            .unwrap_err()
            .contains("needs a value")
    );
    assert!(
        parse(&["stray"])
            .unwrap_err()
            .contains("expected load flags")
    );
    assert!(
        parse(&["--html", "x.html"])
            .unwrap_err()
            .contains("output: {html: true}")
    );
    // A short flag's attached value, as clap takes it; and never echoed in an error.
    let o = parse(&["-HAuthorization: Bearer sk-typed-secret"]).unwrap();
    assert_eq!(
        o.flags[0].tokens,
        ["--header=Authorization: Bearer sk-typed-secret"]
    );
    for typed in [&["-ZBearer sk-typed-secret"][..], &["sk-typed-secret"][..]] {
        let e = parse(typed).unwrap_err();
        assert!(!e.contains("sk-typed-secret"), "{e}");
    }
}

#[test]
fn flag_errors_are_told_in_keys() {
    let o = |long: &str, path: &str, at: Option<&str>| Origin {
        long: long.into(),
        path: path.into(),
        location: at.map(String::from),
    };
    let origins = [
        o("concurrency", "loads[1].concurrency", Some("s.yaml:12:5")),
        o("warmup", "workload.warmup", Some("s.yaml:3:3")),
        o("num-requests", "--num-requests", None),
    ];
    let m = locate(
        "invalid value '0' for '--concurrency <N,...>': expected a positive integer",
        "c",
        &origins,
    );
    assert_eq!(
        m,
        "s.yaml:12:5: loads[1].concurrency: invalid value '0': expected a positive integer"
    );
    let m = locate("--warmup does not apply to trace replay", "t", &origins);
    assert_eq!(
        m,
        "s.yaml:3:3: workload.warmup: does not apply to trace replay (in load \"t\")"
    );
    let m = locate(
        "--num-requests counts sessions with --sessions",
        "c",
        &origins,
    );
    assert_eq!(
        m,
        "--num-requests (typed after the study file) (in load \"c\"): counts sessions with --sessions"
    );
    let m = locate("something about --other-flag", "c", &origins);
    assert_eq!(m, "load \"c\": something about --other-flag");
}

/// A server configuration's flags (the seam `servers.rs` fills) replace the file's.
#[test]
fn a_configuration_adds_its_flags_and_typed_flags_still_win() {
    let study = read("target: {endpoint: \"http://a:1\"}\nloads: [{mode: batch}]\n");
    let flags = ["--endpoint=http://127.0.0.1:9".to_string()];
    let extra = super::argv::Extra {
        label: "seqs-64",
        flags: &flags,
    };
    let t = |v: &[&str]| parse_overrides(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let a = load_argv(
        &study,
        &study.loads[0],
        &t(&[]).unwrap(),
        Path::new("O/seqs-64/batch"),
        Some(extra),
    );
    assert!(
        a.argv
            .contains(&"--endpoint=http://127.0.0.1:9".to_string()),
        "{:?}",
        a.argv
    );
    assert!(
        !a.argv.contains(&"--endpoint=http://a:1".to_string()),
        "{:?}",
        a.argv
    );
    let origin = a.origins.iter().find(|o| o.long == "endpoint").unwrap();
    assert_eq!(origin.path, "server configuration seqs-64");
    let extra = super::argv::Extra {
        label: "seqs-64",
        flags: &flags,
    };
    let typed = t(&["--endpoint", "http://b:2"]).unwrap();
    let b = load_argv(&study, &study.loads[0], &typed, Path::new("O"), Some(extra));
    assert!(
        b.argv.contains(&"--endpoint=http://b:2".to_string()),
        "{:?}",
        b.argv
    );
}
