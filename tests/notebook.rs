//! The README's pandas snippet (between `<!-- pandas-snippet -->` markers, section
//! "Results in a notebook") runs as written on a result directory the simulator
//! produced, and gives the frames it says: one row per request, one row per run with
//! its summary figures as columns.
//!
//! It needs Python with pandas: `SERVESCOPE_PYTHON`, else `target/pandas-venv/bin/python`
//! (where .ci/run installs it), else `python3`. Without pandas it skips, saying so,
//! unless SERVESCOPE_REQUIRE_PANDAS=1 (set by .ci/run), which makes it fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use servescope::sim::{SimConfig, SimServer};

const MARKER: &str = "<!-- pandas-snippet -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SERVESCOPE_PYTHON") {
        return p.into();
    }
    let venv = root().join("target/pandas-venv/bin/python");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

/// Python with pandas, or `None` when the test may skip.
fn pandas_python() -> Option<PathBuf> {
    let py = python();
    let ok = Command::new(&py)
        .args(["-c", "import pandas"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    let msg = format!("{} cannot import pandas", py.display());
    if std::env::var("SERVESCOPE_REQUIRE_PANDAS").is_ok_and(|v| v == "1") {
        panic!("{msg}, and SERVESCOPE_REQUIRE_PANDAS=1: this test must run");
    }
    eprintln!(
        "SKIPPED the README pandas test: {msg} (set SERVESCOPE_PYTHON or pip install pandas)"
    );
    None
}

/// The Python code between the two markers, without its fence lines.
fn snippet() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let parts: Vec<&str> = readme.split(MARKER).collect();
    assert_eq!(
        parts.len(),
        3,
        "README.md must hold the snippet between two {MARKER}"
    );
    let code: Vec<&str> = parts[1].lines().filter(|l| !l.starts_with("```")).collect();
    assert!(code.iter().any(|l| l.contains("read_json")), "{}", parts[1]);
    code.join("\n")
}

/// What the test checks after the snippet has run, in the snippet's own namespace.
const CHECKS: &str = r#"
assert len(requests) == 12, len(requests)
assert requests.started_at.dtype == "float64", requests.dtypes
assert (requests.ttft_ms > 0).all(), requests.ttft_ms
assert sorted(requests.run.unique()) == ["concurrency 1", "concurrency 2"], requests.run
assert list(runs.label) == ["concurrency 1", "concurrency 2"], runs.label
for c in ["params.concurrency", "summary.throughput.output_tok_s",
          "summary.ttft_ms.p99", "summary.tpot_ms.p99"]:
    assert c in runs.columns and runs[c].notna().all(), (c, list(runs.columns))
assert list(runs["params.concurrency"]) == [1, 2]
print("CHECKS PASSED")
"#;

fn result_dir(dir: &Path) {
    let cfg = SimConfig {
        tpot_ms: 1.0,
        ttft_base_ms: 2.0,
        ..SimConfig::ideal()
    };
    let sim = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    common::session(&[
        "concurrency",
        "--concurrency",
        "1,2",
        "--num-requests",
        "6",
        "--input-len",
        "16",
        "--output-len",
        "4",
        "--endpoint",
        &sim.url(),
        "--output-dir",
        dir.join("out").to_str().unwrap(),
        "--quiet",
    ]);
}

#[test]
fn the_readme_pandas_snippet_loads_requests_and_runs() {
    let code = snippet();
    let Some(py) = pandas_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    result_dir(dir.path());
    let script = dir.path().join("snippet.py");
    std::fs::write(&script, format!("{code}\n{CHECKS}")).unwrap();
    let out = Command::new(&py)
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("CHECKS PASSED"),
        "the README snippet failed:\n{code}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // The snippet's own printout names both runs.
    assert!(stdout.contains("concurrency 2"), "{stdout}");
}
