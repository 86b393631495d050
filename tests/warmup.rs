//! Warm-up (`--warmup N`, `--warmup-s S`) and ramp-up (`--ramp-up`, `--ramp-up-s`) end
//! to end, in-process, against the simulator on an ephemeral loopback port: warm-up
//! records are saved flagged and left out of every figure (live and `report DIR`
//! alike); ramps start the load when they say.

mod common;

use std::path::Path;

use serde_json::Value;
use servescope::metrics::Summary;
use servescope::sim::{SimConfig, SimServer};
use servescope::{Outcome, run_args};

fn sim(cfg: SimConfig) -> SimServer {
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn fast() -> SimServer {
    sim(SimConfig {
        ttft_base_ms: 20.0,
        prefill_ms_per_token: 0.01,
        tpot_ms: 4.0,
        ..SimConfig::ideal()
    })
}

fn secs(v: &Value, field: &str) -> u64 {
    (v[field].as_f64().unwrap() * 1e6).round() as u64
}

fn is_warmup(r: &Value) -> bool {
    r["warmup"] == true
}

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// `report DIR` recomputes each run's summary from requests.jsonl: the same numbers.
fn report_agrees(dir: &Path, live: &[(String, Summary)], extra: &[&str]) {
    let mut argv = vec!["servescope", "report", dir.to_str().unwrap()];
    argv.extend_from_slice(extra);
    let again = match run_args(argv) {
        Ok(Outcome::Report(runs)) => runs,
        other => panic!("{other:?}"),
    };
    assert_eq!(again.len(), live.len());
    for ((label, live), saved) in live.iter().zip(&again) {
        assert_eq!(
            live.to_json(),
            saved.summary.to_json(),
            "report differs: {label}"
        );
    }
}

/// The span the summary's rates are over: the measured requests' alone.
fn measured_span_us(records: &[Value]) -> u64 {
    let measured = records.iter().filter(|r| !is_warmup(r));
    let begin = measured
        .clone()
        .map(|r| match r["scheduled_at"].as_f64() {
            Some(_) => secs(r, "scheduled_at").min(secs(r, "started_at")),
            None => secs(r, "started_at"),
        })
        .min()
        .unwrap();
    measured.map(|r| secs(r, "ended_at")).max().unwrap() - begin
}

#[test]
fn warm_up_requests_are_saved_flagged_and_left_out_of_every_figure() {
    let server = fast();
    let dir = tempfile::tempdir().unwrap();
    let out = common::session(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "3",
        "--num-requests",
        "12",
        "--warmup",
        "5",
        "--input-len",
        "16",
        "--output-len",
        "6",
        "--slo",
        "ttft_ms=10000",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let records = common::records(dir.path());
    assert_eq!(records.len(), 17);
    let warm: Vec<&Value> = records.iter().filter(|r| is_warmup(r)).collect();
    assert_eq!(warm.len(), 5, "exactly the warm-up is flagged");
    // Prompts of their own, after the measured ones'; the field is absent elsewhere.
    let mut ids: Vec<u64> = warm.iter().map(|r| r["id"].as_u64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [12, 13, 14, 15, 16]);
    assert!(
        records
            .iter()
            .filter(|r| !is_warmup(r))
            .all(|r| r.get("warmup").is_none() && r["id"].as_u64().unwrap() < 12)
    );
    // The first three sent were warm-up (one per slot, at once).
    let mut by_start: Vec<&Value> = records.iter().collect();
    by_start.sort_by_key(|r| secs(r, "started_at"));
    assert!(by_start[..3].iter().all(|r| is_warmup(r)));

    let (_, s) = &out.runs[0];
    assert_eq!((s.total, s.succeeded, s.warmup_requests), (12, 12, 5));
    assert_eq!(
        s.goodput.as_ref().unwrap().met,
        12,
        "goodput counts measured only"
    );
    assert_eq!(s.ttft_ms.as_ref().unwrap().count, 12);
    let out_tokens: u64 = records
        .iter()
        .filter(|r| !is_warmup(r))
        .map(|r| r["output_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(s.tokens.output, out_tokens);
    // Throughput is over the measured requests' span, from the first measured start.
    assert_eq!(
        (s.duration_s * 1e6).round() as u64,
        measured_span_us(&records)
    );

    let doc = results(dir.path());
    let summary = &doc["runs"][0]["summary"];
    assert_eq!(summary["warmup_requests"], 5);
    assert_eq!(summary["requests"]["total"], 12);
    assert_eq!(doc["runs"][0]["params"]["warmup_requests"], 5);
    let table = servescope::report::table::render("concurrency 3", s);
    assert!(table.contains("5 warm-up requests excluded"), "{table}");
    report_agrees(dir.path(), &out.runs, &["--slo", "ttft_ms=10000"]);
}

#[test]
fn without_a_warm_up_nothing_changes_in_the_files() {
    let server = fast();
    let dir = tempfile::tempdir().unwrap();
    let out = common::session(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "2",
        "--num-requests",
        "4",
        "--input-len",
        "8",
        "--output-len",
        "3",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.runs[0].1.warmup_requests, 0);
    let lines = std::fs::read_to_string(dir.path().join("requests.jsonl")).unwrap();
    assert!(!lines.contains("warmup"), "{lines}");
    let doc = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
    assert!(!doc.contains("warmup") && !doc.contains("ramp_up"), "{doc}");
}

#[test]
fn a_timed_warm_up_is_what_was_sent_in_its_first_seconds() {
    let server = fast();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let common_args = [
        "--endpoint",
        &server.url(),
        "--warmup-s",
        "0.3",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--output-dir",
        d,
        "--quiet",
    ];
    let mut closed = vec!["concurrency", "--concurrency", "2", "--num-requests", "6"];
    closed.extend(common_args);
    let out = common::session(&closed);
    let records = common::records(dir.path());
    let (warm, measured): (Vec<&Value>, Vec<&Value>) = records.iter().partition(|r| is_warmup(r));
    // About 40 ms a request on 2 slots: several warm-up requests, each taken before
    // 0.3 s; every measured one taken (so started) after.
    assert!(warm.len() >= 2, "{} warm-up requests", warm.len());
    assert!(measured.iter().all(|r| secs(r, "started_at") >= 300_000));
    assert!(
        warm.iter()
            .all(|r| secs(r, "started_at") < 300_000 + 100_000)
    );
    let (_, s) = &out.runs[0];
    assert_eq!((s.total, s.warmup_requests), (6, warm.len() as u64));
    report_agrees(dir.path(), &out.runs, &[]);

    // Open loop: the arrivals due before 0.3 s are warm-up; --num-requests counts after.
    let mut open = vec![
        "rate",
        "--rates",
        "40",
        "--num-requests",
        "10",
        "--overwrite",
    ];
    open.extend(common_args);
    let out = common::session(&open);
    let records = common::records(dir.path());
    let (warm, measured): (Vec<&Value>, Vec<&Value>) = records.iter().partition(|r| is_warmup(r));
    assert_eq!(measured.len(), 10);
    assert!(!warm.is_empty());
    assert!(warm.iter().all(|r| secs(r, "scheduled_at") < 300_000));
    assert!(measured.iter().all(|r| secs(r, "scheduled_at") >= 300_000));
    let (_, s) = &out.runs[0];
    assert_eq!((s.total, s.warmup_requests), (10, warm.len() as u64));
    let params = &results(dir.path())["runs"][0]["params"];
    assert_eq!(params["warmup_s"], 0.3);
    assert_eq!(params["warmup_requests"], warm.len());
    report_agrees(dir.path(), &out.runs, &[]);
}

#[test]
fn an_all_at_once_warm_up_is_a_burst_finished_before_the_measured_one() {
    let server = fast();
    let dir = tempfile::tempdir().unwrap();
    let out = common::session(&[
        "throughput",
        "--endpoint",
        &server.url(),
        "--num-requests",
        "6",
        "--warmup",
        "3",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let records = common::records(dir.path());
    let (warm, measured): (Vec<&Value>, Vec<&Value>) = records.iter().partition(|r| is_warmup(r));
    assert_eq!((warm.len(), measured.len()), (3, 6));
    let warm_end = warm.iter().map(|r| secs(r, "ended_at")).max().unwrap();
    assert!(measured.iter().all(|r| secs(r, "started_at") >= warm_end));
    assert_eq!(out.runs[0].1.warmup_requests, 3);
    report_agrees(dir.path(), &out.runs, &[]);
}

#[test]
fn a_closed_loop_ramp_starts_slot_i_at_i_s_over_c() {
    // Each request takes over a second, so each of the 4 slots sends exactly one, and
    // its start is the slot's: i · 0.8 s / 4.
    let server = sim(SimConfig {
        ttft_base_ms: 50.0,
        prefill_ms_per_token: 0.01,
        tpot_ms: 100.0,
        ..SimConfig::ideal()
    });
    let dir = tempfile::tempdir().unwrap();
    common::session(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "4",
        "--num-requests",
        "4",
        "--ramp-up-s",
        "0.8",
        "--input-len",
        "8",
        "--output-len",
        "11",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let mut starts: Vec<u64> = common::records(dir.path())
        .iter()
        .map(|r| secs(r, "started_at"))
        .collect();
    starts.sort();
    let slack = if common::strict_timing() {
        5_000
    } else {
        300_000
    };
    for (i, s) in starts.iter().enumerate() {
        let due = i as u64 * 200_000;
        // Never early (a timer rounds up to its millisecond), late only by load.
        assert!(*s + 1_000 >= due && *s <= due + slack, "slot {i} at {s} µs");
    }
    let params = &results(dir.path())["runs"][0]["params"];
    assert_eq!(params["ramp_up"], "slots");
    assert_eq!(params["ramp_up_s"], 0.8);
    assert_eq!(params["ramp_up_end_us"], 600_000);
}

#[test]
fn a_rate_ramp_sends_at_the_offsets_worked_out_by_hand() {
    // 40/s reached linearly over 1 s, gaps regular: arrival i at √(2·i/40) s while
    // i/40 < 0.5, then i/40 + 0.5 s.
    let server = fast();
    let dir = tempfile::tempdir().unwrap();
    common::session(&[
        "rate",
        "--endpoint",
        &server.url(),
        "--rates",
        "40",
        "--burstiness",
        "1e12",
        "--ramp-up",
        "linear",
        "--ramp-up-s",
        "1",
        "--num-requests",
        "30",
        "--input-len",
        "8",
        "--output-len",
        "2",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let records = common::records(dir.path());
    assert_eq!(records.len(), 30);
    for r in &records {
        let i = r["id"].as_u64().unwrap() as f64;
        let tau = i / 40.0;
        let want = if tau < 0.5 {
            (2.0 * tau).sqrt()
        } else {
            tau + 0.5
        };
        let want = (want * 1e6).round() as u64;
        let got = secs(r, "scheduled_at");
        assert!(
            got.abs_diff(want) <= 2,
            "request {i}: {got} µs, expected {want}"
        );
    }
    let params = &results(dir.path())["runs"][0]["params"];
    assert_eq!(params["ramp_up"], "linear");
    assert_eq!(params["ramp_up_end_us"], 1_000_000);
}

#[test]
fn meaningless_start_flags_are_refused_naming_the_flag() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["rate", "--rates", "5", "--ramp-up", "linear"],
            "--ramp-up needs --ramp-up-s",
        ),
        (
            &["rate", "--rates", "5", "--ramp-up-s", "2"],
            "--ramp-up-s on a rate run needs --ramp-up",
        ),
        (
            &[
                "concurrency",
                "--ramp-up",
                "exponential",
                "--ramp-up-s",
                "2",
            ],
            "--ramp-up applies to rate runs only",
        ),
        (
            &["batch", "--ramp-up-s", "2"],
            "--ramp-up-s does not apply to batch",
        ),
        (
            &["throughput", "--warmup-s", "2"],
            "--warmup-s does not apply to throughput",
        ),
        (
            &[
                "rate",
                "--rates",
                "inf",
                "--num-requests",
                "4",
                "--warmup-s",
                "1",
            ],
            "--warmup-s needs finite --rates",
        ),
        (
            &[
                "rate",
                "--rates",
                "inf",
                "--num-requests",
                "4",
                "--ramp-up",
                "linear",
                "--ramp-up-s",
                "1",
            ],
            "--ramp-up needs finite --rates",
        ),
        (
            &["dual-round", "--warmup", "3"],
            "--warmup does not apply to dual-round",
        ),
    ];
    for (args, says) in cases {
        let mut argv = vec!["servescope"];
        argv.extend_from_slice(args);
        let e = run_args(argv).expect_err(&format!("{args:?}"));
        assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        assert!(e.to_string().contains(says), "{args:?}: {e}");
    }
    let trace = tempfile::NamedTempFile::new().unwrap();
    let e = run_args([
        "servescope",
        "trace",
        trace.path().to_str().unwrap(),
        "--warmup-s",
        "1",
    ])
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("--warmup-s does not apply to trace replay"),
        "{e}"
    );

    // The process's own exit status, and clap's for the pair that cannot go together.
    for (args, says) in [
        (
            &["rate", "--rates", "5", "--ramp-up", "linear"][..],
            "--ramp-up",
        ),
        (
            &["concurrency", "--warmup", "2", "--warmup-s", "1"][..],
            "--warmup-s",
        ),
        (&["concurrency", "--warmup", "0"][..], "--warmup"),
    ] {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_servescope"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
