//! A server that fails while cold: warm-up failures are saved but count neither in the
//! summary nor towards `--max-error-rate` (a cold server is why one warms it up).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::server::{Reply, Scripted, chat_stream, json, models, serve};

/// Fails its first `cold` benchmark requests with HTTP 503, then answers; the
/// connection test ("Hello") always passes.
fn cold_server(cold: usize) -> Scripted {
    let seen = Arc::new(AtomicUsize::new(0));
    serve(move |r| -> Reply {
        match r.path.as_str() {
            "/v1/models" => models("\"m\""),
            _ if r.body.contains("\"Hello\"") => chat_stream(2, Duration::ZERO),
            _ if seen.fetch_add(1, Ordering::SeqCst) < cold => {
                json(503, r#"{"error":{"message":"warming up"}}"#)
            }
            _ => chat_stream(2, Duration::from_millis(1)),
        }
    })
}

fn args<'a>(url: &'a str, dir: &'a str, warmup: &'a [&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "concurrency",
        "--endpoint",
        url,
        "--concurrency",
        "1",
        "--num-requests",
        "12",
        "--input-len",
        "8",
        "--output-len",
        "2",
        "--max-error-rate",
        "0.1",
        "--output-dir",
        dir,
        "--quiet",
    ];
    a.extend_from_slice(warmup);
    a
}

#[test]
fn warm_up_failures_do_not_stop_the_run_or_count_as_failures() {
    let srv = cold_server(10);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let url = srv.url();
    let out = crate::common::session(&args(&url, d, &["--warmup", "10"]));
    let (_, s) = &out.runs[0];
    assert_eq!((s.total, s.succeeded, s.warmup_requests), (12, 12, 10));
    assert_eq!(s.failures.total(), 0, "{:?}", s.failures);
    let records = crate::common::records(dir.path());
    assert_eq!(records.len(), 22);
    let failed: Vec<_> = records.iter().filter(|r| r["status"] != "ok").collect();
    assert_eq!(failed.len(), 10);
    assert!(failed.iter().all(|r| r["warmup"] == true), "saved, flagged");
}

#[test]
fn the_same_cold_start_unwarmed_stops_the_run() {
    let srv = cold_server(10);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let url = srv.url();
    let mut argv = vec!["servescope"];
    argv.extend(args(&url, d, &[]));
    let e = servescope::run_args(argv).unwrap_err();
    assert!(e.to_string().contains("--max-error-rate"), "{e}");
}
