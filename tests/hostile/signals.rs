//! A signal in every phase of a session stops it within a second or two with 130
//! (SIGINT) or 143 (SIGTERM), saving what finished: while the model is listed, during
//! the connection test, while prompts are built, while waiting for `--start-at`, during
//! the warm-up, a cache reset, between runs; a second signal ends stalled requests at
//! once, and a phase that cannot look at the signal is ended by the listener itself.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::child::{self, Running};
use crate::server::{Reply, Request, Scripted, chat_stream, models, serve};

/// "A second or two", with room for a loaded machine; far below every timeout in play
/// (the 30 s model listing, the 60 s cache reset, the 600 s `--timeout`).
const PROMPT: Duration = Duration::from_secs(3);
/// How long a test waits for the phase it means to interrupt.
const REACH: Duration = Duration::from_secs(60);

type Log = Arc<Mutex<Vec<String>>>;

/// A scripted server that logs "METHOD /path" of each request as it arrives;
/// `answer` also gets how many POSTs came before this request.
fn logging(answer: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> (Scripted, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    let srv = serve(move |r| {
        let posts = {
            let mut log = seen.lock().unwrap();
            let posts = log.iter().filter(|l| l.starts_with("POST")).count();
            log.push(format!("{} {}", r.method, r.path));
            posts
        };
        answer(r, posts)
    });
    (srv, log)
}

fn count(log: &Log, prefix: &str) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with(prefix))
        .count()
}

/// An ordinary server: a model, and short answers.
fn answering(r: &Request, _: usize) -> Reply {
    match r.path.as_str() {
        "/v1/models" => models("\"m\""),
        _ => chat_stream(2, Duration::from_millis(1)),
    }
}

fn start(args: &[&str], url: &str, dir: &Path) -> Running {
    let mut all = args.to_vec();
    all.extend([
        "--endpoint",
        url,
        "--output-dir",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    child::start(&all)
}

/// Signal, and wait for the end: it must come within `limit`.
fn interrupt(mut c: Running, sig: &str, limit: Duration) -> child::Ended {
    assert!(c.alive(), "still running before the signal");
    let t = Instant::now();
    c.signal(sig);
    let end = c.finish(Duration::from_secs(30));
    assert!(
        t.elapsed() < limit,
        "stopped {:?} after the signal: {}",
        t.elapsed(),
        end.stderr
    );
    end
}

fn saved_runs(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap().to_string())
        .collect()
}

/// The first signal says once what it stops.
fn says_once(end: &child::Ended, what: &str) {
    assert_eq!(
        end.stderr.matches(what).count(),
        1,
        "{what:?}: {}",
        end.stderr
    );
}

#[test]
fn a_signal_while_the_model_is_listed_stops_at_once() {
    let (srv, log) = logging(|r, posts| match r.path.as_str() {
        "/v1/models" => Reply::Stall,
        _ => answering(r, posts),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(&["batch", "--batch-sizes", "2"], &srv.url(), dir.path());
    c.wait_for("the model listing", REACH, |_| {
        count(&log, "GET /v1/models") == 1
    });
    let end = interrupt(c, "-INT", PROMPT);
    assert_eq!(end.code, Some(130), "{}", end.stderr);
    says_once(&end, "model listing");
    assert!(!end.stderr.contains("timeout"), "{}", end.stderr);
    assert!(
        end.stderr.contains("interrupted by signal 2"),
        "{}",
        end.stderr
    );
    assert_eq!(count(&log, "POST"), 0, "nothing was sent");
}

#[test]
fn sigterm_during_the_connection_test_stops_at_once() {
    let (srv, log) = logging(|r, posts| match r.method.as_str() {
        "POST" => Reply::Stall,
        _ => answering(r, posts),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(&["batch", "--batch-sizes", "2"], &srv.url(), dir.path());
    c.wait_for("the connection test", REACH, |_| count(&log, "POST") == 1);
    let end = interrupt(c, "-TERM", PROMPT);
    assert_eq!(end.code, Some(143), "{}", end.stderr);
    says_once(&end, "connection test");
    assert_eq!(count(&log, "POST"), 1, "only the connection test");
    assert!(!dir.path().join("results.json").exists());
}

#[test]
fn a_signal_while_waiting_for_start_at_starts_no_run() {
    let (srv, log) = logging(answering);
    let dir = tempfile::tempdir().unwrap();
    let at = servescope::start_at::format(SystemTime::now() + Duration::from_secs(120));
    let mut c = start(
        &["batch", "--batch-sizes", "2", "--start-at", &at],
        &srv.url(),
        dir.path(),
    );
    c.wait_for("the wait for --start-at", REACH, |c| {
        c.stderr().contains("waiting")
    });
    let end = interrupt(c, "-INT", PROMPT);
    assert_eq!(end.code, Some(130), "{}", end.stderr);
    says_once(&end, "no longer waiting for --start-at");
    assert_eq!(count(&log, "POST"), 1, "only the connection test");
    assert!(
        !dir.path().join("results.json").exists(),
        "no empty run is saved"
    );
}

#[test]
fn a_signal_while_a_large_workload_is_prepared_stops_at_once() {
    let (srv, log) = logging(answering);
    let dir = tempfile::tempdir().unwrap();
    // Minutes of prompt building (random ids decoded and re-encoded), all before the run.
    let mut c = start(
        &[
            "batch",
            "--batch-sizes",
            "20000",
            "--input-len",
            "2000",
            "--output-len",
            "1",
            "--synthetic-prompts",
            "random-ids",
        ],
        &srv.url(),
        dir.path(),
    );
    c.wait_for("the connection test", REACH, |_| count(&log, "POST") == 1);
    std::thread::sleep(Duration::from_millis(300));
    let end = interrupt(c, "-INT", PROMPT);
    assert_eq!(end.code, Some(130), "{}", end.stderr);
    says_once(&end, "before the first run");
    assert!(end.stderr.contains("nothing to save"), "{}", end.stderr);
    assert_eq!(count(&log, "POST"), 1, "only the connection test");
}

#[test]
fn a_signal_between_runs_keeps_the_finished_ones() {
    let (srv, log) = logging(answering);
    let dir = tempfile::tempdir().unwrap();
    // One short run, then a second whose prompts take minutes to build.
    let mut c = start(
        &[
            "batch",
            "--batch-sizes",
            "1,20000",
            "--input-len",
            "2000",
            "--output-len",
            "1",
            "--synthetic-prompts",
            "random-ids",
        ],
        &srv.url(),
        dir.path(),
    );
    let results = dir.path().join("results.json");
    c.wait_for("the first run's results", REACH, |_| results.exists());
    std::thread::sleep(Duration::from_millis(300));
    let end = interrupt(c, "-TERM", PROMPT);
    assert_eq!(end.code, Some(143), "{}", end.stderr);
    says_once(&end, "no further runs");
    assert!(end.stderr.contains("1 run(s) saved"), "{}", end.stderr);
    assert_eq!(saved_runs(dir.path()), ["batch 1"]);
    assert_eq!(count(&log, "POST"), 2, "the connection test and batch 1");
    assert!(end.stdout.contains("batch 1"), "its table: {}", end.stdout);
}

#[test]
fn a_signal_during_a_stalled_warm_up_stops_at_once() {
    // The second POST (after the connection test) is the throughput warm-up.
    let (srv, log) = logging(|r, posts| match (r.method.as_str(), posts) {
        ("POST", 1) => Reply::Stall,
        _ => answering(r, posts),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(
        &["throughput", "--num-requests", "4", "--input-len", "8"],
        &srv.url(),
        dir.path(),
    );
    c.wait_for("the warm-up", REACH, |_| count(&log, "POST") == 2);
    let end = interrupt(c, "-INT", PROMPT);
    assert_eq!(end.code, Some(130), "{}", end.stderr);
    says_once(&end, "before the first run");
    assert_eq!(count(&log, "POST"), 2, "no run was started");
    assert!(!dir.path().join("results.json").exists());
}

#[test]
fn a_signal_during_a_stalled_cache_reset_keeps_the_finished_round() {
    let (srv, log) = logging(|r, posts| match r.path.as_str() {
        "/reset" => Reply::Stall,
        _ => answering(r, posts),
    });
    let dir = tempfile::tempdir().unwrap();
    let reset = format!("{}/reset", srv.url());
    let mut c = start(
        &[
            "dual-round",
            "--concurrency",
            "1",
            "--rounds",
            "2",
            "--num-requests",
            "2",
            "--input-len",
            "8",
            "--output-len",
            "2",
            "--reset-cache-url",
            &reset,
            "--reset-between",
            "rounds",
        ],
        &srv.url(),
        dir.path(),
    );
    c.wait_for("the cache reset", REACH, |_| {
        count(&log, "POST /reset") == 1
    });
    let end = interrupt(c, "-TERM", PROMPT);
    assert_eq!(end.code, Some(143), "{}", end.stderr);
    says_once(&end, "no further runs");
    assert!(!end.stderr.contains("WARNING"), "{}", end.stderr);
    assert_eq!(saved_runs(dir.path()), ["concurrency 1 round 1"]);
}

#[test]
fn a_second_signal_ends_stalled_requests_at_once_and_saves_the_run() {
    // Every request after the connection test stalls.
    let (srv, log) = logging(|r, posts| match (r.method.as_str(), posts) {
        ("POST", 1..) => Reply::Stall,
        _ => answering(r, posts),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(
        &[
            "concurrency",
            "--concurrency",
            "2",
            "--num-requests",
            "10",
            "--input-len",
            "8",
            "--output-len",
            "2",
        ],
        &srv.url(),
        dir.path(),
    );
    c.wait_for("two requests in flight", REACH, |_| {
        count(&log, "POST") == 3
    });
    c.signal("-INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(c.alive(), "requests in flight have their grace period");
    let end = interrupt(c, "-INT", Duration::from_millis(1500));
    assert_eq!(end.code, Some(130), "{}", end.stderr);
    assert!(end.stderr.contains("Stopping now"), "{}", end.stderr);
    says_once(&end, "those in flight have 5 s");
    assert_eq!(saved_runs(dir.path()), ["concurrency 2"], "saved, not lost");
    assert_eq!(count(&log, "POST"), 3, "nothing new after the signal");
}

/// `--dataset` a FIFO no one writes to: reading it blocks in the kernel, where no check
/// of the signal can run (as parsing a huge file would, for seconds).
fn blocked_on_a_fifo(dir: &Path) -> Running {
    let fifo = dir.join("dataset.jsonl");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let mut c = child::start(&[
        "batch",
        "--batch-sizes",
        "2",
        "--dataset",
        fifo.to_str().unwrap(),
        "--quiet",
    ]);
    // Nothing shows the read has begun; it comes within milliseconds of the start.
    std::thread::sleep(Duration::from_millis(500));
    assert!(c.alive(), "blocked reading the dataset: {}", c.stderr());
    c
}

#[test]
fn a_phase_deaf_to_the_signal_is_ended_by_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let c = blocked_on_a_fifo(dir.path());
    let end = interrupt(c, "-INT", Duration::from_secs(4));
    assert_eq!(end.code, Some(130), "{}", end.stderr);
    says_once(&end, "before the first run");
    assert!(end.stderr.contains("exiting now"), "{}", end.stderr);
}

#[test]
fn a_second_signal_shortens_the_wait_and_a_third_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = blocked_on_a_fifo(dir.path());
    c.signal("-TERM");
    std::thread::sleep(Duration::from_millis(200));
    let end = interrupt(c, "-INT", Duration::from_millis(1600));
    assert_eq!(
        end.code,
        Some(143),
        "the first signal decides: {}",
        end.stderr
    );
    assert!(end.stderr.contains("Stopping now"), "{}", end.stderr);

    let dir = tempfile::tempdir().unwrap();
    let c = blocked_on_a_fifo(dir.path());
    c.signal("-INT");
    std::thread::sleep(Duration::from_millis(100));
    c.signal("-INT");
    std::thread::sleep(Duration::from_millis(100));
    let end = interrupt(c, "-INT", Duration::from_millis(500));
    assert_eq!(end.code, Some(130), "{}", end.stderr);
}
