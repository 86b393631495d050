//! Results written before the typed results document still load, and give the figures
//! they gave then. `tests/data/results-v1/` holds directories written by the build
//! before it (schema version 1, no `schema_version` field): batch, throughput,
//! concurrency (with an SLO and vLLM server metrics), rate (with inf), a 5-line
//! Mooncake trace, dual-round, two `--shard` halves of a rate run and their `merge`.
//! `tests/data/results-v1-expected/` holds what that build printed for them
//! (`report DIR`, `compare A B`) and the summary.csv its `merge` wrote.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use servescope::report::document::{ResultsDoc, RunMode};
use servescope::report::svg::esc;

const DIRS: [&str; 9] = [
    "batch",
    "concurrency",
    "dual-round",
    "merged",
    "rate",
    "shard-0",
    "shard-1",
    "throughput",
    "trace",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn saved(name: &str) -> PathBuf {
    root().join("tests/data/results-v1").join(name)
}

fn expected(file: &str) -> String {
    std::fs::read_to_string(root().join("tests/data/results-v1-expected").join(file)).unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The binary, run from the repository root (the expected outputs name relative paths).
fn servescope(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_servescope"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_saved_document_reads_and_writes_back_unchanged() {
    for name in DIRS {
        let original = json(&saved(name).join("results.json"));
        let doc: ResultsDoc = serde_json::from_value(original.clone()).unwrap();
        assert_eq!(doc.version(), 1, "{name}: no schema_version is version 1");
        assert!(!doc.runs.is_empty(), "{name}");
        let again = serde_json::to_value(&doc).unwrap();
        assert_eq!(again, original, "{name}: read and written again");
    }
}

#[test]
fn modes_and_params_are_typed() {
    let doc = ResultsDoc::read(&saved("rate").join("results.json")).unwrap();
    let modes: Vec<&RunMode> = doc.runs.iter().map(|r| &r.mode).collect();
    assert_eq!(modes, [&RunMode::Rate, &RunMode::Rate]);
    assert_eq!(doc.runs[0].params.rate, Some(Some(20.0)));
    assert_eq!(doc.runs[1].params.rate, Some(None), "inf is saved as null");
    assert_eq!(doc.runs[1].params.max_concurrency, Some(None));
    assert_eq!(doc.runs[1].params.concurrency, None, "absent, not null");

    let doc = ResultsDoc::read(&saved("shard-1").join("results.json")).unwrap();
    let shard = doc.runs[0].params.shard.as_ref().unwrap();
    assert_eq!((shard.index, shard.count, shard.num_requests), (1, 2, 3));
    assert_eq!(doc.shard.map(|s| (s.index, s.count)), Some((1, 2)));

    let doc = ResultsDoc::read(&saved("dual-round").join("results.json")).unwrap();
    assert_eq!(doc.runs[1].mode, RunMode::DualRound);
    assert_eq!(doc.runs[1].params.round, Some(2));
    let rounds = doc.dual_round.as_ref().unwrap();
    assert_eq!(rounds[0].level, "concurrency 2");
    assert!(rounds[0].rounds[1].values.get("ttft_ms.mean").is_some());

    let doc = ResultsDoc::read(&saved("concurrency").join("results.json")).unwrap();
    let m = doc.runs[0].summary.server_metrics.as_ref().unwrap();
    assert_eq!(m.series.len(), 11, "every vLLM series of the run");
    assert!(m.derived_starting("prefix_cache_hit_rate").is_some());
    assert_eq!(doc.runs[0].summary.goodput.as_ref().unwrap().met, 6);
}

#[test]
fn report_prints_what_it_printed_before() {
    for name in DIRS {
        let dir = format!("tests/data/results-v1/{name}");
        // Besides the steady-state blocks, newer than these files (issue 14).
        assert_eq!(
            common::without_steady(&servescope(&["report", &dir])),
            expected(&format!("{name}.report.txt")),
            "report {dir}"
        );
    }
}

/// Equal but for the last bits (the JSON parser may round a long decimal by one ulp).
fn same(a: f64, b: Option<f64>) -> bool {
    b.is_some_and(|b| (a - b).abs() <= 1e-12 * a.abs().max(1.0))
}

#[test]
fn report_recomputes_the_saved_figures() {
    let doc = json(&saved("concurrency").join("results.json"));
    let (_, runs) =
        servescope::report::reanalyze::reanalyze(&saved("concurrency"), &[], None).unwrap();
    for (run, old) in runs.iter().zip(doc["runs"].as_array().unwrap()) {
        let s = &old["summary"];
        assert_eq!(run.label, old["label"].as_str().unwrap());
        assert_eq!(run.summary.total, s["requests"]["total"].as_u64().unwrap());
        let ttft = run.summary.ttft_ms.as_ref().unwrap();
        assert!(same(ttft.mean, s["ttft_ms"]["mean"].as_f64()));
        assert!(same(
            ttft.percentile(99.0).unwrap(),
            s["ttft_ms"]["p99"].as_f64()
        ));
        let tok_s = s["throughput"]["output_tok_s"].as_f64();
        assert!(same(run.summary.output_tok_s, tok_s));
    }
}

#[test]
fn compare_prints_what_it_printed_before() {
    for (a, b, file) in [
        ("concurrency", "rate", "compare-concurrency-rate.txt"),
        ("shard-0", "merged", "compare-shard-0-merged.txt"),
        ("concurrency", "concurrency", "compare-concurrency.txt"),
        ("dual-round", "dual-round", "compare-dual-round.txt"),
    ] {
        let (a, b) = (
            format!("tests/data/results-v1/{a}"),
            format!("tests/data/results-v1/{b}"),
        );
        assert_eq!(servescope(&["compare", &a, &b]), expected(file), "{file}");
    }
}

#[test]
fn merge_of_the_saved_shards_gives_the_saved_merge() {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("m");
    servescope(&[
        "merge",
        "tests/data/results-v1/shard-0",
        "tests/data/results-v1/shard-1",
        "-o",
        target.to_str().unwrap(),
    ]);
    // Besides the steady state, newer than these files (issue 14).
    assert_eq!(
        common::csv_without_steady(&std::fs::read_to_string(target.join("summary.csv")).unwrap()),
        expected("merge-shards.summary.csv")
    );
    let (old, mut new) = (
        json(&saved("merged").join("results.json")),
        json(&target.join("results.json")),
    );
    // The per-user speed, the steady state and the percentiles' bootstrap intervals
    // (`ci95`) came later: every other figure is as the old build wrote it.
    for run in new["runs"].as_array_mut().unwrap() {
        for stats in ["ttft_ms", "tpot_ms", "e2e_ms"] {
            let s = run["summary"][stats].as_object_mut().unwrap();
            assert!(s.remove("ci95").is_some(), "{stats} has its interval");
        }
        let summary = run["summary"].as_object_mut().unwrap();
        assert!(summary.remove("per_user_tok_s").is_some());
        let steady = summary.remove("steady");
        assert!(steady.is_some(), "every merged run has its steady state");
    }
    assert_eq!(new["runs"], old["runs"], "the same runs, figure for figure");
    assert_eq!(new["shards"], old["shards"]);
    assert_eq!(
        new["merged_from"][1]["run_offsets_s"],
        old["merged_from"][1]["run_offsets_s"]
    );
    assert_eq!(new["schema_version"], 1, "a writer of this build stamps it");
}

#[test]
fn the_html_report_shows_the_figures_report_prints() {
    let out = tempfile::tempdir().unwrap();
    for name in DIRS {
        let page = out.path().join(format!("{name}.html"));
        let dir = format!("tests/data/results-v1/{name}");
        servescope(&["report", &dir, "--html", page.to_str().unwrap()]);
        let html = std::fs::read_to_string(&page).unwrap();
        for line in expected(&format!("{name}.report.txt"))
            .lines()
            .filter(|l| !l.is_empty())
        {
            assert!(html.contains(&esc(line)), "{name}: {line}");
        }
    }
}
