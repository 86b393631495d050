//! `--repeat N` end to end against the simulator: labels, per-repeat draws, the
//! `repeats` object of results.json, `report DIR` recomputing it, and `compare` deciding
//! repeated levels by their intervals.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};

fn sim() -> (SimServer, String) {
    let cfg = SimConfig {
        ttft_base_ms: 5.0,
        prefill_ms_per_token: 0.01,
        tpot_ms: 1.0,
        ..SimConfig::ideal()
    };
    let s = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", s.addr());
    (s, url)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn servescope(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_servescope"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Per run label, the records' `field` by request id.
fn by_run(dir: &Path, field: &str) -> std::collections::BTreeMap<String, Vec<(u64, Value)>> {
    let mut out = std::collections::BTreeMap::<String, Vec<(u64, Value)>>::new();
    for r in common::records(dir) {
        let run = r["run"].as_str().unwrap().to_string();
        out.entry(run)
            .or_default()
            .push((r["id"].as_u64().unwrap(), r[field].clone()));
    }
    for v in out.values_mut() {
        v.sort_by_key(|(id, _)| *id);
    }
    out
}

fn concurrency(url: &str, dir: &Path, seed: &str) {
    common::session(&[
        "concurrency",
        "--endpoint",
        url,
        "--concurrency",
        "2,4",
        "--num-requests",
        "12",
        "--input-len",
        "8:200",
        "--output-len",
        "4",
        "--repeat",
        "3",
        "--seed",
        seed,
        "--output-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
}

#[test]
fn concurrency_repeat_3_saves_labels_repeats_and_report_recomputes_them() {
    let (_sim, url) = sim();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("a");
    concurrency(&url, &dir, "0");
    let doc = json(&dir.join("results.json"));
    let labels: Vec<&str> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "concurrency 2 · rep 1/3",
            "concurrency 2 · rep 2/3",
            "concurrency 2 · rep 3/3",
            "concurrency 4 · rep 1/3",
            "concurrency 4 · rep 2/3",
            "concurrency 4 · rep 3/3",
        ]
    );
    assert_eq!(doc["runs"][4]["params"]["repeat"], 2);
    assert_eq!(doc["runs"][4]["params"]["repeats"], 3);
    assert_eq!(doc["runs"][4]["params"]["concurrency"], 4);

    // Each repeat sends its own prompts (lengths drawn from 8:200 differ).
    let lens = by_run(&dir, "input_tokens");
    assert_ne!(
        lens["concurrency 2 · rep 1/3"], lens["concurrency 2 · rep 2/3"],
        "repeats draw their own prompts"
    );

    // The repeats object: each level, its runs, each metric's mean, interval, CV and n.
    let reps = doc["repeats"].as_array().unwrap();
    assert_eq!(reps.len(), 2);
    assert_eq!(reps[1]["level"], "concurrency 4");
    assert_eq!(reps[1]["runs"].as_array().unwrap().len(), 3);
    let m = &reps[1]["metrics"]["throughput.output_tok_s"];
    let values: Vec<f64> = (3..6)
        .map(|i| {
            doc["runs"][i]["summary"]["throughput"]["output_tok_s"]
                .as_f64()
                .unwrap()
        })
        .collect();
    let mean = values.iter().sum::<f64>() / 3.0;
    let s = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let half = 4.302_652_729_911 * s / 3f64.sqrt();
    let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 1e-6 * b.abs().max(1.0);
    assert!(close(&m["mean"], mean), "{m}");
    assert!(
        close(&m["ci95"][0], mean - half) && close(&m["ci95"][1], mean + half),
        "{m}"
    );
    assert!(close(&m["cv"], s / mean), "{m}");
    assert_eq!(m["n"], 3);
    for key in [
        "ttft_ms.p50",
        "ttft_ms.p99",
        "tpot_ms.p99",
        "itl_ms.p50",
        "e2e_ms.p99",
    ] {
        assert!(reps[0]["metrics"].get(key).is_some(), "{key}");
    }
    // A single run's percentiles carry their bootstrap interval.
    let ttft = &doc["runs"][0]["summary"]["ttft_ms"];
    let p50 = ttft["p50"].as_f64().unwrap();
    let ci = &ttft["ci95"]["p50"];
    assert!(
        ci[0].as_f64().unwrap() <= p50 && p50 <= ci[1].as_f64().unwrap(),
        "{ttft}"
    );

    // report DIR recomputes the same figures from the records.
    let text = servescope(&["report", dir.to_str().unwrap(), "--rewrite"]);
    assert!(text.contains("── concurrency 2: 3 repeats ──"), "{text}");
    assert!(text.contains("── concurrency 4: 3 repeats ──"), "{text}");
    assert!(text.contains("95% CI"), "{text}");
    let again = json(&dir.join("results.json"));
    assert_eq!(
        again["repeats"], doc["repeats"],
        "recomputed from the saved runs"
    );
    assert_eq!(again["runs"][0]["summary"]["ttft_ms"]["ci95"], ttft["ci95"]);

    // compare: repeated on both sides → decided by the intervals.
    let other = out.path().join("b");
    concurrency(&url, &other, "7");
    let cmp = servescope(&["compare", dir.to_str().unwrap(), other.to_str().unwrap()]);
    assert!(
        cmp.contains("── concurrency 4: 3 repeats in A, 3 in B ──"),
        "{cmp}"
    );
    assert!(cmp.contains("decided by the 95% intervals"), "{cmp}");
    assert!(
        !cmp.contains("── concurrency 4 · rep 1/3 ──"),
        "not run by run: {cmp}"
    );
    assert!(!cmp.contains("Only in"), "{cmp}");
}

#[test]
fn rate_repeats_draw_their_own_arrivals_from_the_seed() {
    let (_sim, url) = sim();
    let out = tempfile::tempdir().unwrap();
    let run = |name: &str, repeat: &str| {
        let dir = out.path().join(name);
        common::session(&[
            "rate",
            "--endpoint",
            &url,
            "--rates",
            "200",
            "--num-requests",
            "10",
            "--input-len",
            "8",
            "--output-len",
            "2",
            "--seed",
            "3",
            "--repeat",
            repeat,
            "--output-dir",
            dir.to_str().unwrap(),
            "--quiet",
        ]);
        by_run(&dir, "scheduled_at")
    };
    let two = run("two", "2");
    let one = run("one", "1");
    let (r1, r2) = (&two["rate 200 · rep 1/2"], &two["rate 200 · rep 2/2"]);
    assert_ne!(r1, r2, "each repeat its own arrivals");
    assert_eq!(
        *r1, one["rate 200"],
        "repeat 1 draws what a single run draws"
    );
}

#[test]
fn repeat_is_refused_for_dual_round_and_zero() {
    for (args, words) in [
        (
            vec!["dual-round", "--repeat", "2"],
            "--repeat does not apply to dual-round",
        ),
        (vec!["concurrency", "--repeat", "0"], "--repeat"),
    ] {
        let mut argv = vec!["servescope"];
        argv.extend(args);
        let e = servescope::run_args(argv).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(e.to_string().contains(words), "{e}");
    }
}

/// `merge` of shards run with `--repeat` and `--warmup`: the repeats are of the merged
/// runs (not the first shard's, as saved), and a merged run counts its measured
/// requests only.
#[test]
fn merged_shards_recompute_repeats_and_count_measured_requests() {
    let (_server, url) = sim();
    let dir = tempfile::tempdir().unwrap();
    let part = |i: &str| dir.path().join(format!("s{i}"));
    for i in ["0", "1"] {
        let shard = format!("{i}/2");
        common::session(&[
            "concurrency",
            "--endpoint",
            &url,
            "--concurrency",
            "2",
            "--num-requests",
            "12",
            "--input-len",
            "8",
            "--output-len",
            "4",
            "--repeat",
            "2",
            "--warmup",
            "4",
            "--shard",
            &shard,
            "--output-dir",
            part(i).to_str().unwrap(),
            "--quiet",
        ]);
    }
    let merged = dir.path().join("m");
    servescope(&[
        "merge",
        part("0").to_str().unwrap(),
        part("1").to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    let doc = json(&merged.join("results.json"));
    let runs = doc["runs"].as_array().unwrap();
    for run in runs {
        assert_eq!(run["params"]["num_requests"], 12, "{}", run["label"]);
        assert_eq!(run["summary"]["requests"]["total"], 12, "{}", run["label"]);
        assert_eq!(run["requests_sent"], 12, "{}", run["label"]);
    }
    let level = &doc["repeats"][0];
    let tok_s = |r: &Value| r["summary"]["throughput"]["output_tok_s"].as_f64().unwrap();
    let mean = runs.iter().map(tok_s).sum::<f64>() / runs.len() as f64;
    let saved = level["metrics"]["throughput.output_tok_s"]["mean"]
        .as_f64()
        .unwrap();
    assert!(
        (saved - mean).abs() < 1e-6 * mean,
        "{saved} vs {mean}: {level:#}"
    );
}
