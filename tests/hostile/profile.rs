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
    let msg = &s.validity[0].message;
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
