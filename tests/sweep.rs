//! `servescope sweep` end to end against the simulator, in-process: a synchronous run, a
//! max-throughput run, then open-loop rates between their request rates; the
//! throughput–interactivity data in results.json and the Pareto chart in the HTML.

use std::path::Path;

use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};
use servescope::{Error, Outcome, run_args};

fn sim() -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 10.0,
        prefill_ms_per_token: 0.01,
        tpot_ms: 3.0,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn run(args: &[&str]) -> Result<Outcome, Error> {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    run_args(argv)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_sweep_runs_synchronous_max_then_rates_between_them() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    let page = dir.path().join("report.html");
    let url = server.url();
    let Outcome::Session(out) = run(&[
        "sweep",
        "--endpoint",
        &url,
        "--rates",
        "3",
        "--num-requests",
        "8",
        "--input-len",
        "16",
        "--output-len",
        "8",
        "--gpus",
        "2",
        "--output-dir",
        s(&results),
        "--html",
        s(&page),
        "--quiet",
    ])
    .unwrap() else {
        panic!()
    };
    let labels: Vec<&str> = out.runs.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "synchronous",
            "throughput",
            "rate 1/3",
            "rate 2/3",
            "rate 3/3"
        ]
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap())
            .unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert!(runs.iter().all(|r| r["mode"] == "sweep"), "{doc}");
    let kinds: Vec<&str> = runs
        .iter()
        .map(|r| r["params"]["sweep"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["synchronous", "throughput", "rate", "rate", "rate"]);
    assert_eq!(runs[0]["params"]["concurrency"], 1);
    let req_s = |r: &Value| r["summary"]["throughput"]["req_s"].as_f64().unwrap();
    let (sync, max) = (req_s(&runs[0]), req_s(&runs[1]));
    assert!(max > sync, "the simulator batches: {sync} → {max}");
    let rates: Vec<f64> = runs[2..]
        .iter()
        .map(|r| r["params"]["rate"].as_f64().unwrap())
        .collect();
    assert!(rates.windows(2).all(|w| w[0] < w[1]), "{rates:?}");
    assert!(
        rates[0] > sync && rates[2] < max,
        "{sync} < {rates:?} < {max}"
    );
    // Evenly spaced: a quarter of the way each.
    let step = (max - sync) / 4.0;
    for (i, r) in rates.iter().enumerate() {
        assert!((r - (sync + step * (i + 1) as f64)).abs() < 1e-9 * max);
    }

    // Interactivity: one point per run, with per GPU and the frontier.
    assert_eq!(doc["gpus"], 2);
    let pts = doc["interactivity"].as_array().unwrap();
    assert_eq!(pts.len(), 5, "{doc}");
    for (p, r) in pts.iter().zip(runs) {
        assert_eq!(p["label"], r["label"]);
        let total = r["summary"]["throughput"]["output_tok_s"].as_f64().unwrap();
        // serde_json's float parsing may be off by an ulp: compared closely, not exactly.
        let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() <= 1e-9 * b.abs();
        assert!(close(&p["output_tok_s"], total), "{p}");
        assert!(close(&p["per_gpu"], total / 2.0), "{p}");
        let p50 = r["summary"]["per_user_tok_s"]["p50"].as_f64().unwrap();
        assert!(close(&p["per_user_tok_s"], p50), "{p}");
    }
    // The fastest per user and the highest throughput are always on the frontier.
    let best = |key: &str| {
        pts.iter()
            .max_by(|a, b| {
                a[key]
                    .as_f64()
                    .unwrap()
                    .total_cmp(&b[key].as_f64().unwrap())
            })
            .unwrap()
    };
    assert_eq!(best("per_user_tok_s")["on_frontier"], true);
    assert_eq!(best("output_tok_s")["on_frontier"], true);

    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"pareto\""), "the Pareto chart");
    assert!(html.contains("Pareto frontier") && html.contains("per GPU (2 GPUs)"));
    // The load curves show the whole sweep, the synchronous and max runs included.
    assert!(html.contains("id=\"load-sweep-throughput\""));
    let csv = std::fs::read_to_string(results.join("summary.csv")).unwrap();
    assert!(csv.contains("per_user_tok_s.p50,"), "{csv}");
}

#[test]
fn sweep_flags_are_checked() {
    for (args, flag) in [
        (&["sweep", "--rates", "0"][..], "--rates"),
        (&["sweep", "--rates", "101"], "--rates"),
        (&["sweep", "--gpus", "0"], "--gpus"),
        (&["sweep", "--burstiness", "0"], "--burstiness"),
        (&["sweep", "--duration", "0"], "--duration"),
        (&["sweep", "--repeat", "2"], "--repeat"),
        (&["sweep", "--shard", "0/2"], "--shard"),
        (&["sweep", "--warmup-s", "1"], "--warmup-s"),
        (&["sweep", "--ramp-up", "linear"], "--ramp-up"),
    ] {
        let e = match run(args) {
            Ok(o) => panic!("{args:?}: expected an error, got {o:?}"),
            Err(e) => e,
        };
        assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        assert!(e.to_string().contains(flag), "{args:?}: {e}");
    }
}

/// A small sweep into `dir`, with `extra` flags.
fn small_sweep(url: &str, dir: &Path, extra: &[&str]) -> Result<Outcome, Error> {
    let mut args = vec![
        "sweep",
        "--endpoint",
        url,
        "--rates",
        "2",
        "--num-requests",
        "4",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--output-dir",
        s(dir),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn sweeps_append_to_sweeps_only_and_compare_by_position() {
    let server = sim();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    small_sweep(&url, &a, &[]).unwrap();
    small_sweep(&url, &b, &[]).unwrap();
    // Two sweeps pair run by run: the i-th rate of each, whatever its rate.
    let Outcome::Compared(c) = run(&["compare", s(&a), s(&b)]).unwrap() else {
        panic!()
    };
    let labels: Vec<&str> = c.runs.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        ["synchronous", "throughput", "rate 1/2", "rate 2/2"]
    );
    assert!(
        c.runs[0]
            .rows
            .iter()
            .any(|r| r.metric.key == "per_user_tok_s.p50"),
        "compare shows the per-user speed"
    );
    // A second sweep adds its runs to the first's, labels made unique.
    let Outcome::Session(more) = small_sweep(&url, &a, &["--append"]).unwrap() else {
        panic!()
    };
    assert_eq!(more.runs[0].0, "synchronous #2");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("results.json")).unwrap()).unwrap();
    assert_eq!(doc["runs"].as_array().unwrap().len(), 8);
    assert_eq!(doc["interactivity"].as_array().unwrap().len(), 8);
    // Concurrency runs are another mode: refused before anything is sent.
    let e = run(&[
        "concurrency",
        "--endpoint",
        &url,
        "--concurrency",
        "2",
        "--num-requests",
        "2",
        "--output-dir",
        s(&a),
        "--append",
        "--quiet",
    ])
    .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("holds sweep runs"), "{e}");

    // A file written before the points existed gets them from `report --rewrite`.
    let file = a.join("results.json");
    let mut old = doc.clone();
    old.as_object_mut().unwrap().remove("interactivity");
    std::fs::write(&file, old.to_string()).unwrap();
    run(&["report", s(&a), "--rewrite"]).unwrap();
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(again["interactivity"].as_array().unwrap().len(), 8);
}

/// `--warmup N` reaches every kind of sweep run: N flagged records each, left out of
/// its figures; each run's steady state is judged as the load it stands for.
#[test]
fn a_sweep_warms_every_run_up_and_paces_each_as_its_kind() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    small_sweep(&server.url(), &results, &["--warmup", "2"]).unwrap();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap())
            .unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let jsonl = std::fs::read_to_string(results.join("requests.jsonl")).unwrap();
    for run in runs {
        let label = run["label"].as_str().unwrap();
        assert_eq!(run["summary"]["warmup_requests"], 2, "{label}");
        assert_eq!(run["summary"]["requests"]["total"], 4, "{label}");
        let flagged = jsonl
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["run"] == label && r["warmup"] == true)
            .count();
        assert_eq!(flagged, 2, "{label}: warm-up records");
    }
    // Every run has a steady-state verdict (a sweep is not a mode without one); the
    // max-throughput burst's is that it has none.
    for run in runs {
        assert!(run["summary"]["steady"].is_object(), "{}", run["label"]);
    }
    let burst = runs.iter().find(|r| r["label"] == "throughput").unwrap();
    let why = burst["summary"]["steady"]["absent"].as_str().unwrap();
    assert!(why.contains("at once"), "{why}");
}

/// The ramp flags are the rate runs': the synchronous and max-throughput runs start at
/// once (a ramped max run would lower every rate swept after it).
#[test]
fn only_the_rate_runs_of_a_sweep_ramp() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    let ramp = [
        "--max-concurrency",
        "2",
        "--ramp-up",
        "linear",
        "--ramp-up-s",
        "0.2",
    ];
    small_sweep(&server.url(), &results, &ramp).unwrap();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap())
            .unwrap();
    for run in doc["runs"].as_array().unwrap() {
        let ramped = run["params"]["ramp_up"].as_str();
        match run["params"]["sweep"].as_str().unwrap() {
            "rate" => assert_eq!(ramped, Some("linear"), "{}", run["label"]),
            _ => assert_eq!(ramped, None, "{}", run["label"]),
        }
    }
}
