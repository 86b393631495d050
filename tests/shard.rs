//! One workload from several client processes: `--shard 0/2` and `--shard 1/2` run as
//! two processes at once, started together with `--start-at`, against `servebench sim`
//! in its own process; `servebench merge` of the two must be the one-process run: the
//! same requests (by their index in the workload), the same send times, the same
//! tokens, and the same latencies within what a busy 2-core machine allows (the
//! simulator's ideal timetable makes them deterministic otherwise).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The two scenarios run one after the other: each starts three processes on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Mean TTFT and TPOT may differ this much (ms) between the merged and the single run:
/// the timetable is 20 ms + 5 ms per token, and one late wake-up on a loaded machine
/// moves a mean over ~20 requests by well under this.
const TTFT_TOLERANCE_MS: f64 = 5.0;
const TPOT_TOLERANCE_MS: f64 = 1.5;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_servebench"))
}

/// `servebench sim` on a free port, with a fixed timetable per request.
fn sim() -> common::SimProcess {
    common::SimProcess::start(&[
        "--ideal",
        "--ttft-ms",
        "20",
        "--tpot-ms",
        "5",
        "--prefill-ms-per-token",
        "0",
    ])
}

fn spawn(args: &[String]) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn succeed(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn us(v: &Value) -> u64 {
    (v.as_f64().unwrap() * 1e6).round() as u64
}

/// Records by their request id.
fn by_id(dir: &Path) -> BTreeMap<u64, Value> {
    common::records(dir)
        .into_iter()
        .map(|r| (r["id"].as_u64().unwrap(), r))
        .collect()
}

/// Run `load` once as one process, then as shards 0/2 and 1/2 at once from an instant
/// a few seconds ahead, and merge them. Returns (single, shard 0, shard 1, merged)
/// directories and the start instant.
fn single_and_shards(dir: &Path, load: &[String]) -> ([PathBuf; 4], SystemTime) {
    let out = |name: &str| dir.join(name);
    let with = |extra: &[String]| -> Vec<String> {
        let mut a = load.to_vec();
        a.extend_from_slice(extra);
        a.push("--quiet".into());
        a
    };
    let single = out("single");
    succeed(
        spawn(&with(&["--output-dir".into(), s(&single)])),
        "single run",
    );

    // Far enough ahead for both processes to start and prepare on a loaded machine;
    // whole milliseconds, as a user would write it.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let at = UNIX_EPOCH + Duration::from_millis(now.as_millis() as u64 + 5_000);
    let at_text = servebench::start_at::format(at);
    let shards: Vec<Child> = (0..2)
        .map(|i| {
            spawn(&with(&[
                "--shard".into(),
                format!("{i}/2"),
                "--start-at".into(),
                at_text.clone(),
                "--output-dir".into(),
                s(&out(&format!("shard-{i}"))),
            ]))
        })
        .collect();
    for (i, c) in shards.into_iter().enumerate() {
        let o = succeed(c, &format!("shard {i}/2"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("prepared; waiting"), "{err}");
    }
    let merged = out("merged");
    succeed(
        spawn(&[
            "merge".into(),
            s(&out("shard-0")),
            s(&out("shard-1")),
            "-o".into(),
            s(&merged),
        ]),
        "merge",
    );
    ([single, out("shard-0"), out("shard-1"), merged], at)
}

/// What must hold for any workload: shards started at the instant and recorded it,
/// the merged requests are the single run's (ids, tokens, schedule), and the summary
/// agrees.
fn check_merged_equals_single(dirs: &[PathBuf; 4], at: SystemTime, n: u64) {
    let [single, s0, s1, merged] = dirs;
    let at_unix = at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    for (k, d) in [s0, s1].into_iter().enumerate() {
        let doc = results(d);
        assert_eq!(doc["shard"]["index"], k as u64);
        assert_eq!(doc["shard"]["count"], 2);
        let started = doc["runs"][0]["started_unix"].as_f64().unwrap();
        assert!(
            (started - at_unix).abs() < 1e-6,
            "run zero {started} = --start-at {at_unix}"
        );
    }
    let one = by_id(single);
    let all = by_id(merged);
    let ids: Vec<u64> = one.keys().copied().collect();
    assert_eq!(ids, (0..n).collect::<Vec<_>>());
    assert_eq!(
        all.keys().copied().collect::<Vec<_>>(),
        ids,
        "the merged shards hold the same requests, under their indexes"
    );
    for (id, r) in &one {
        let m = &all[id];
        assert_eq!(m["status"], "ok", "request {id}: {m}");
        for key in ["input_tokens", "output_tokens"] {
            assert_eq!(m[key], r[key], "request {id}: {key}");
        }
        assert_eq!(
            us(&m["scheduled_at"]),
            us(&r["scheduled_at"]),
            "request {id} was scheduled when one process schedules it"
        );
    }

    let (a, b) = (&results(single)["runs"][0], &results(merged)["runs"][0]);
    assert!((b["started_unix"].as_f64().unwrap() - at_unix).abs() < 1e-6);
    let (sa, sb) = (&a["summary"], &b["summary"]);
    assert_eq!(sb["requests"], sa["requests"]);
    let tokens = |recs: &BTreeMap<u64, Value>, key: &str| -> u64 {
        recs.values().map(|r| r[key].as_u64().unwrap()).sum()
    };
    for key in ["input_tokens", "output_tokens"] {
        assert_eq!(tokens(&all, key), tokens(&one, key), "total {key}");
    }
    assert_eq!(b["params"]["num_requests"], n);
    assert!(b["params"].get("shard").is_none());
    for (metric, tolerance) in [
        ("ttft_ms", TTFT_TOLERANCE_MS),
        ("tpot_ms", TPOT_TOLERANCE_MS),
    ] {
        let (x, y) = (
            sa[metric]["mean"].as_f64().unwrap(),
            sb[metric]["mean"].as_f64().unwrap(),
        );
        assert!(
            (x - y).abs() < tolerance,
            "{metric} mean: single {x}, merged {y}"
        );
        assert_eq!(sa[metric]["count"], sb[metric]["count"]);
    }
}

#[test]
fn two_shards_of_a_poisson_rate_run_merge_into_the_single_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let load: Vec<String> = [
        "rate",
        "--endpoint",
        &server.url,
        "--rates",
        "25",
        "--num-requests",
        "41",
        "--input-len",
        "8:64",
        "--output-len",
        "2:12",
        "--seed",
        "11",
    ]
    .map(String::from)
    .to_vec();
    let (dirs, at) = single_and_shards(dir.path(), &load);
    check_merged_equals_single(&dirs, at, 41);
    // Each shard sent every second request, at the single run's times (checked above
    // on the merged records; here on each shard's own).
    let one = by_id(&dirs[0]);
    for (k, d) in dirs[1..3].iter().enumerate() {
        let part = by_id(d);
        assert_eq!(part.len(), if k == 0 { 21 } else { 20 });
        for (id, r) in &part {
            assert_eq!(id % 2, k as u64, "shard {k}/2 sent request {id}");
            assert_eq!(us(&r["scheduled_at"]), us(&one[id]["scheduled_at"]));
        }
        let params = &results(d)["runs"][0]["params"];
        assert_eq!(
            params["num_requests"], 41,
            "the run's settings are the workload's"
        );
        assert_eq!(params["shard"]["num_requests"], part.len());
    }
}

/// A Qwen trace of 7 conversations of 3 turns, interleaved in time: request i is turn
/// i / 7 of conversation i mod 7, so a conversation's later turns have other parities
/// than its first, and sharding by request index would split conversations.
fn write_sessions_trace(path: &Path) {
    let mut text = String::new();
    for i in 0..21u64 {
        let (conv, turn) = (i % 7, i / 7);
        let chat = 100 * turn + conv;
        let parent = if turn == 0 {
            -1
        } else {
            (100 * (turn - 1) + conv) as i64
        };
        let blocks = 3 + 4 * turn;
        let ids: Vec<u64> = (0..blocks).map(|b| conv * 1000 + b).collect();
        let input = 16 * blocks - 5;
        let output = 3 + (i % 4);
        let t = 0.04 * i as f64;
        text.push_str(&format!(
            "{{\"chat_id\": {chat}, \"parent_chat_id\": {parent}, \"timestamp\": {t:.3}, \"input_length\": {input}, \"output_length\": {output}, \"type\": \"text\", \"turn\": {}, \"hash_ids\": {ids:?}}}\n",
            turn + 1
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn two_shards_of_a_trace_with_sessions_merge_into_the_single_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("qwen.jsonl");
    write_sessions_trace(&trace);
    let load: Vec<String> = ["trace", &s(&trace), "--sessions", "--endpoint", &server.url]
        .map(String::from)
        .to_vec();
    let (dirs, at) = single_and_shards(dir.path(), &load);
    check_merged_equals_single(&dirs, at, 21);
    // Every turn went with its conversation: conversation c's first turn is request c.
    for (k, d) in dirs[1..3].iter().enumerate() {
        let part = by_id(d);
        let expected: Vec<u64> = (0..21).filter(|i| (i % 7) % 2 == k as u64).collect();
        assert_eq!(part.keys().copied().collect::<Vec<_>>(), expected);
    }
}

#[test]
fn bad_shard_and_start_at_values_name_the_flag() {
    let run = |extra: &[&str]| {
        let mut argv = vec!["servebench", "rate", "--rates", "1", "--num-requests", "1"];
        argv.extend_from_slice(extra);
        servebench::run_args(argv).unwrap_err()
    };
    for (args, expected) in [
        (&["--shard", "2/2"][..], "--shard"),
        (&["--shard", "1"][..], "expected I/N"),
        (&["--start-at", "tomorrow"][..], "--start-at"),
        (
            &["--start-at", "2026-11-22T15:30:00"][..],
            "with a time zone",
        ),
        (
            &["--start-at", "2020-01-01T00:00:00Z"][..],
            "that instant passed",
        ),
    ] {
        let e = run(args);
        assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        assert!(e.to_string().contains(expected), "{args:?}: {e}");
    }
}
