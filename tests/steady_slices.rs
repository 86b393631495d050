//! The steady-state window and `--slice-s` time slices end to end against the
//! simulator: saved in results.json and slices.csv, printed, recomputed identically by
//! `report`, drawn in the HTML report; a bad `--slice-s` is an input error.

mod common;

use common::session;
use servescope::metrics::steady::SteadyState;
use servescope::sim::{SimConfig, SimServer};
use servescope::{Error, Outcome, run_args};

fn sim() -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 20.0,
        prefill_ms_per_token: 0.01,
        tpot_ms: 4.0,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn report(args: &[&str]) -> Vec<servescope::report::results::SavedRun> {
    let mut argv = vec!["servescope", "report"];
    argv.extend_from_slice(args);
    match run_args(argv) {
        Ok(Outcome::Report(runs)) => runs,
        other => panic!("{other:?}"),
    }
}

#[test]
fn live_and_reanalysed_steady_state_and_slices_agree() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let common = [
        "--endpoint",
        &server.url(),
        "--input-len",
        "20",
        "--output-len",
        "10",
        "--slice-s",
        "0.05",
        "-q",
        "--output-dir",
        d,
    ];
    let mut args = vec!["concurrency", "--concurrency", "2", "--num-requests", "12"];
    args.extend_from_slice(&common);
    let out = session(&args);
    let (_, live) = &out.runs[0];
    let w = match live.steady.as_ref().unwrap() {
        SteadyState::Window(w) => w.clone(),
        SteadyState::Absent(why) => panic!("no steady state: {why}"),
    };
    // Two start at once; the window ends at the 12th send.
    assert!(w.start_s < w.end_s && w.end_s < live.duration_s, "{w:?}");
    assert!(w.requests >= 2 && w.requests <= 12, "{w:?}");
    assert!(w.output_tok_s > 0.0);
    let slices = live.slices.as_ref().unwrap();
    assert_eq!(slices.slice_s, 0.05);
    let started: u64 = slices.slices.iter().map(|s| s.requests).sum();
    assert_eq!(started, 12, "every request starts in one slice");
    // Output tokens over the slices add up to the run's (each slice × its length).
    let tokens: f64 = slices
        .slices
        .iter()
        .map(|s| s.output_tok_s * (s.end_s - s.start_s))
        .sum();
    assert!(
        (tokens - live.tokens.output as f64).abs() < 1e-6,
        "{tokens}"
    );

    let csv = std::fs::read_to_string(dir.path().join("slices.csv")).unwrap();
    assert!(csv.starts_with("run,start_s,end_s,requests,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + slices.slices.len());
    let summary_csv = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    assert!(
        summary_csv.contains("\nsteady.output_tok_s,"),
        "{summary_csv}"
    );

    // `report` recomputes the same window and slices from the records and saved params.
    let again = report(&[d]);
    assert_eq!(live.to_json(), again[0].summary.to_json());
    // Other slices on request; the steady state does not depend on them.
    let again = report(&[d, "--slice-s", "0.1"]);
    let s = &again[0].summary;
    assert_eq!(s.slices.as_ref().unwrap().slice_s, 0.1);
    assert_eq!(s.steady, live.steady);
}

#[test]
fn open_loop_and_batch_runs_report_their_window_or_why_none() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let base = ["--endpoint", &server.url(), "--output-len", "8", "-q"];
    let mut args = vec!["rate", "--rates", "40", "--num-requests", "20"];
    args.extend_from_slice(&base);
    args.extend_from_slice(&["--output-dir", d]);
    let out = session(&args);
    let s = &out.runs[0].1;
    match s.steady.as_ref().unwrap() {
        SteadyState::Window(w) => {
            assert!(w.start_s < 0.05, "from the first send: {w:?}");
            assert!(w.requests == 20, "{w:?}");
        }
        SteadyState::Absent(why) => panic!("{why}"),
    }
    assert!(s.slices.is_none());
    assert!(!dir.path().join("slices.csv").exists());
    assert_eq!(report(&[d])[0].summary.steady, s.steady);
    let html = dir.path().join("r.html");
    report(&[d, "--slice-s", "0.1", "--html", html.to_str().unwrap()]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Steady state and time slices"));
    assert!(
        page.contains("id=\"run0-slices-throughput\""),
        "chart drawn"
    );
    assert!(page.contains("id=\"run0-slices-latency\""));

    let mut args = vec!["batch", "--batch-sizes", "4"];
    args.extend_from_slice(&base);
    let out = session(&args);
    assert_eq!(
        out.runs[0].1.steady,
        Some(SteadyState::Absent("every request was sent at once".into()))
    );
}

#[test]
fn a_slice_width_off_the_timeline_is_an_input_error() {
    for bad in ["0.005", "0", "-1", "nan", "100000"] {
        let err = match run_args(["servescope", "concurrency", "--slice-s", bad]) {
            Err(Error::Input(m)) => m,
            other => panic!("{bad}: {other:?}"),
        };
        assert!(err.contains("--slice-s"), "{err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let err = match run_args([
        "servescope",
        "report",
        dir.path().to_str().unwrap(),
        "--slice-s",
        "0.123",
    ]) {
        Err(Error::Input(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(
        err.contains("--slice-s 0.123: expected seconds > 0"),
        "{err}"
    );
}
