//! `--profile`: the engine's profiler started before a run's first request and stopped
//! after its last, or around a window of measured requests; a route that fails is a
//! warning and a validity flag, and the run goes on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use servescope::metrics::Summary;
use servescope::sim::{ProfileAction, SimConfig, SimServer};

use crate::server::{Reply, chat_stream, json, models, serve};

/// The simulator with profile calls that take `delay_ms` to answer (a real stop writes
/// its trace first), so a request sent before the start returned would be seen.
fn sim(delay_ms: f64) -> SimServer {
    let cfg = SimConfig {
        profile_delay_ms: delay_ms,
        ttft_base_ms: 2.0,
        tpot_ms: 1.0,
        ..SimConfig::default()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn run(url: &str, dir: &str, extra: &[&str]) -> Summary {
    let mut a = vec![
        "concurrency",
        "--endpoint",
        url,
        "--concurrency",
        "2",
        "--num-requests",
        "12",
        "--input-len",
        "16",
        "--output-len",
        "4",
        "--output-dir",
        dir,
        "--quiet",
    ];
    a.extend_from_slice(extra);
    let mut out = crate::common::session(&a);
    assert_eq!(out.runs.len(), 1);
    out.runs.remove(0).1
}

/// (started_at, warmup) of each record, in seconds on the run's clock.
fn starts(dir: &std::path::Path) -> Vec<(f64, bool)> {
    crate::common::records(dir)
        .iter()
        .map(|r| {
            let warm = r["warmup"].as_bool().unwrap_or(false);
            (r["started_at"].as_f64().unwrap(), warm)
        })
        .collect()
}

#[test]
fn the_whole_run_is_profiled_and_no_request_goes_before_the_start_returned() {
    let sim = sim(150.0);
    let dir = tempfile::tempdir().unwrap();
    let s = run(&sim.url(), dir.path().to_str().unwrap(), &["--profile"]);
    assert_eq!(s.succeeded, 12);
    let calls = sim.profile_calls();
    let actions: Vec<_> = calls.iter().map(|c| c.action).collect();
    assert_eq!(actions, [ProfileAction::Start, ProfileAction::Stop]);
    let (start, stop) = (&calls[0], &calls[1]);
    assert_eq!(
        start.requests_before, start.requests_after,
        "a request reached the server while the start call was pending"
    );
    assert_eq!(
        stop.requests_before,
        sim.stats().requests,
        "the stop came after the run's last request"
    );
    assert!(stop.requests_before - start.requests_after >= 12);
    let p = s.profile.as_ref().expect("results record the profiling");
    assert!(p.start_url.ends_with("/start_profile") && p.stop_url.ends_with("/stop_profile"));
    assert_eq!((p.window_requests, p.finished_in_window), (None, None));
    let (a, b) = (p.start.as_ref().unwrap(), p.stop.as_ref().unwrap());
    assert!(a.ok && b.ok && p.succeeded(), "{p:?}");
    assert!(
        a.answered_s - a.sent_s >= 0.14,
        "the start took its 150 ms: {a:?}"
    );
    let first = starts(dir.path())
        .iter()
        .map(|r| r.0)
        .fold(f64::MAX, f64::min);
    assert!(
        a.answered_s <= first,
        "start answered at {a:?}, first request at {first}"
    );
    assert!(s.validity.is_empty(), "{:?}", s.validity);
    // results.json keeps it.
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let saved = &doc["runs"][0]["summary"]["profile"];
    assert_eq!(saved["stop"]["ok"], true, "{saved}");
}

#[test]
fn a_window_profiles_the_first_measured_requests_after_the_warm_up() {
    let sim = sim(100.0);
    let dir = tempfile::tempdir().unwrap();
    let before = sim.stats().requests;
    let s = run(
        &sim.url(),
        dir.path().to_str().unwrap(),
        &["--profile-requests", "4", "--warmup", "3"],
    );
    assert_eq!(s.succeeded, 12);
    let calls = sim.profile_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let (start, stop) = (&calls[0], &calls[1]);
    assert_eq!(
        (start.action, stop.action),
        (ProfileAction::Start, ProfileAction::Stop)
    );
    // Connection test and warm-up before the start; nothing during it.
    assert!(start.requests_before >= before + 3, "{start:?}");
    assert_eq!(start.requests_before, start.requests_after);
    // The stop once 4 measured requests finished, while the run went on.
    let measured_before_stop = stop.requests_before - start.requests_after;
    assert!(
        (4..12).contains(&measured_before_stop),
        "the stop came after {measured_before_stop} measured requests"
    );
    let p = s.profile.as_ref().unwrap();
    assert_eq!(
        (p.window_requests, p.finished_in_window),
        (Some(4), Some(4))
    );
    let a = p.start.as_ref().unwrap();
    let recs = starts(dir.path());
    assert_eq!(
        recs.iter().filter(|r| r.1).count(),
        3,
        "three warm-up records"
    );
    for (at, warm) in recs {
        match warm {
            true => assert!(at <= a.sent_s, "warm-up at {at} after the start {a:?}"),
            false => assert!(
                at >= a.answered_s,
                "measured at {at} before the start {a:?}"
            ),
        }
    }
    assert!(
        p.succeeded() && s.validity.is_empty(),
        "{p:?} {:?}",
        s.validity
    );
}

/// A server whose profile routes answer with these statuses; the paths called.
fn server(start: u16, stop: u16) -> (crate::server::Scripted, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let srv = serve(move |r| -> Reply {
        if r.path.contains("profile") {
            log.lock().unwrap().push(r.path.clone());
        }
        match r.path.as_str() {
            "/v1/models" => models("\"m\""),
            "/start_profile" => json(start, r#"{"error":{"message":"profiler off"}}"#),
            "/stop_profile" => json(stop, r#"{"error":{"message":"trace write failed"}}"#),
            _ => chat_stream(2, Duration::from_millis(1)),
        }
    });
    (srv, seen)
}

#[test]
fn a_start_refused_is_flagged_and_the_run_goes_on_without_a_stop() {
    let (srv, seen) = server(404, 200);
    let dir = tempfile::tempdir().unwrap();
    let s = run(&srv.url(), dir.path().to_str().unwrap(), &["--profile"]);
    assert_eq!(s.succeeded, 12, "the run completes");
    assert_eq!(
        *seen.lock().unwrap(),
        ["/start_profile"],
        "no stop after a refused start"
    );
    let p = s.profile.as_ref().unwrap();
    assert!(!p.start.as_ref().unwrap().ok && p.stop.is_none(), "{p:?}");
    let flag = s.validity.iter().find(|f| f.check == "profile_failed");
    let msg = &flag.expect("a validity flag").message;
    assert!(
        msg.contains("HTTP 404") && msg.contains("--profile-url-start"),
        "{msg}"
    );
}

#[test]
fn a_stop_that_fails_is_flagged() {
    let (srv, seen) = server(200, 500);
    let dir = tempfile::tempdir().unwrap();
    let s = run(&srv.url(), dir.path().to_str().unwrap(), &["--profile"]);
    assert_eq!(s.succeeded, 12);
    assert_eq!(*seen.lock().unwrap(), ["/start_profile", "/stop_profile"]);
    let p = s.profile.as_ref().unwrap();
    assert!(p.start.as_ref().unwrap().ok && !p.stop.as_ref().unwrap().ok);
    let flag = s.validity.iter().find(|f| f.check == "profile_failed");
    let msg = &flag.expect("a validity flag").message;
    assert!(msg.contains("stop") && msg.contains("HTTP 500"), "{msg}");
}

#[test]
fn other_routes_get_no_key_off_the_benchmarked_origin() {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    let other = serve(move |r| -> Reply {
        log.lock()
            .unwrap()
            .push((r.path.clone(), r.header("authorization").map(String::from)));
        json(200, "{}")
    });
    let (srv, seen) = server(200, 200);
    let dir = tempfile::tempdir().unwrap();
    let (start, stop) = (
        format!("{}/prof/on", other.url()),
        format!("{}/prof/off", other.url()),
    );
    let args = [
        "--profile-url-start",
        &start,
        "--profile-url-stop",
        &stop,
        "--api-key",
        "sk-secret",
    ];
    let s = run(&srv.url(), dir.path().to_str().unwrap(), &args);
    assert!(
        seen.lock().unwrap().is_empty(),
        "the default routes were not called"
    );
    let heard = heard.lock().unwrap();
    assert_eq!(
        *heard,
        [
            ("/prof/on".to_string(), None),
            ("/prof/off".to_string(), None)
        ]
    );
    assert!(s.profile.as_ref().unwrap().succeeded());
}

/// Profiler calls that take long (a stop writes the trace) stay out of the metrics'
/// window: the counters' rates are the run's, not diluted by the calls.
#[test]
fn the_profilers_calls_stay_out_of_the_metrics_window() {
    let sim = sim(600.0);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "concurrency",
        "--endpoint",
        &sim.url(),
        "--concurrency",
        "2",
        "--num-requests",
        "20",
        "--input-len",
        "16",
        "--output-len",
        "32",
        "--profile",
        "--metrics",
        "vllm",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ];
    let s = crate::common::session(&args).runs.remove(0).1;
    assert_eq!(s.succeeded, 20);
    let m = s.server_metrics.as_ref().expect("the server's metrics");
    let rate = m
        .series
        .iter()
        .find_map(|(name, series)| match series {
            servescope::metrics::server_saved::Series::Counter(c)
                if name.contains("generation_tokens") =>
            {
                c.rate
            }
            _ => None,
        })
        .expect("a generation token counter");
    // Over the run alone the counter's rate is about the client's output rate; with
    // the two 600 ms calls inside the window it would be a small share of it.
    assert!(
        rate > 0.5 * s.output_tok_s,
        "generation tokens {rate:.1}/s vs {:.1} output tok/s",
        s.output_tok_s
    );
    // `report` keeps what the profiling did: the records cannot give it again.
    let d = dir.path().to_str().unwrap();
    let Ok(servescope::Outcome::Report(runs)) = servescope::run_args(["servescope", "report", d])
    else {
        panic!("report failed")
    };
    assert_eq!(runs[0].summary.profile, s.profile);
}

/// In an open loop, the requests due while a window's start call is pending wait for
/// it: that wait is the profiler's, not a busy client's, so no schedule-lag flag.
#[test]
fn a_window_start_in_an_open_loop_is_not_schedule_lag() {
    let sim = sim(300.0);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "rate",
        "--endpoint",
        &sim.url(),
        "--rates",
        "50",
        "--num-requests",
        "30",
        "--warmup",
        "2",
        "--profile-requests",
        "10",
        "--input-len",
        "16",
        "--output-len",
        "4",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ];
    let s = crate::common::session(&args).runs.remove(0).1;
    assert_eq!(s.succeeded, 30);
    assert!(
        !s.validity.iter().any(|f| f.check == "schedule_lag"),
        "{:?}",
        s.validity
    );
    let p99 = s
        .schedule_lag_ms
        .as_ref()
        .unwrap()
        .percentile(99.0)
        .unwrap();
    assert!(p99 < 100.0, "schedule lag p99 {p99} ms");
}

/// One engine, one profiler: of a sharded run only shard 0 starts and stops it.
#[test]
fn only_shard_0_profiles_a_sharded_run() {
    let sim = sim(0.0);
    for (shard, calls) in [("1/2", 0), ("0/2", 2)] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let s = run(&sim.url(), d, &["--profile", "--shard", shard]);
        assert_eq!(s.profile.is_some(), calls > 0, "shard {shard}");
        assert_eq!(sim.profile_calls().len(), calls, "shard {shard}");
    }
}
