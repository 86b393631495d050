//! One workload from several client processes: `--shard 0/2` and `--shard 1/2` run as
//! two processes at once, started together with `--start-at`, against `servescope sim`
//! in its own process; `servescope merge` of the two must be the one-process run: the
//! same requests (by their index in the workload), the same send times, the same
//! tokens, and a summary that is the merged records' and statistically the single run's
//! (the simulator's ideal timetable makes latencies deterministic but for a busy
//! machine's delays).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The two scenarios run one after the other: each starts three processes on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Median TTFT and TPOT may differ this much (ms) between the merged and the single
/// run: two separate runs, each of three processes on a busy 2-core machine, where a
/// starved client comes tens to hundreds of ms late (a median rides out a hiccup of a
/// few requests). On the timetable of 200 ms + 50 ms per token, a shard timing from a
/// wrong instant or at a wrong scale stands well outside; record offsets and the merged
/// arithmetic are checked exactly.
const TTFT_TOLERANCE_MS: f64 = 100.0;
const TPOT_TOLERANCE_MS: f64 = 25.0;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_servescope"))
}

/// `servescope sim` on a free port, with a fixed timetable per request.
fn sim() -> common::SimProcess {
    common::SimProcess::start(&[
        "--ideal",
        "--ttft-ms",
        "200",
        "--tpot-ms",
        "50",
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

/// The latencies of records by the metric definitions (ms): TTFT = first event − start,
/// TPOT = (last − first event) / (output tokens − 1), E2E = end − start.
fn latencies(recs: &BTreeMap<u64, Value>) -> [(&'static str, Vec<f64>); 3] {
    let (mut ttft, mut tpot, mut e2e) = (vec![], vec![], vec![]);
    for r in recs.values() {
        let ms = |a: &Value, b: &Value| (us(a) as f64 - us(b) as f64) / 1000.0;
        let events = r["events"].as_array().unwrap();
        let (first, last) = (&events[0], &events[events.len() - 1]);
        ttft.push(ms(first, &r["started_at"]));
        let n = r["output_tokens"].as_u64().unwrap();
        if n >= 2 {
            tpot.push(ms(last, first) / (n - 1) as f64);
        }
        e2e.push(ms(&r["ended_at"], &r["started_at"]));
    }
    [("ttft_ms", ttft), ("tpot_ms", tpot), ("e2e_ms", e2e)]
}

/// A saved summary's count, mean and median of each latency against a recomputation
/// from the run's records: exact, whatever the load.
fn check_summary_of_records(summary: &Value, recs: &BTreeMap<u64, Value>, what: &str) {
    for (metric, mut v) in latencies(recs) {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let st = &summary[metric];
        assert_eq!(st["count"], n, "{what} {metric} count");
        let mean = v.iter().sum::<f64>() / n as f64;
        let median = (v[(n - 1) / 2] + v[n / 2]) / 2.0;
        for (key, want) in [("mean", mean), ("p50", median)] {
            let got = st[key].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1.0),
                "{what} {metric} {key}: summary {got}, from the records {want}"
            );
        }
    }
}

/// The simulator never sends early: token j comes no sooner than 200 + 50 × j ms after
/// the request started, whatever the load; a shard timing from a wrong instant would
/// come out early.
fn check_never_early(recs: &BTreeMap<u64, Value>, what: &str) {
    for (id, r) in recs {
        let events = r["events"].as_array().unwrap();
        let n = r["output_tokens"].as_u64().unwrap();
        assert_eq!(
            events.len() as u64,
            n,
            "{what} request {id}: one event per token"
        );
        let start = us(&r["started_at"]);
        for (j, t) in events.iter().enumerate() {
            // 1 µs: times are kept in whole µs.
            let due = 200_000 + 50_000 * j as u64 - 1;
            assert!(us(t) >= start + due, "{what} request {id}: token {j} early");
        }
    }
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
    let at_text = servescope::start_at::format(at);
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
    check_never_early(&one, "single run");
    check_never_early(&all, "merged shards");
    check_summary_of_records(sa, &one, "single run");
    check_summary_of_records(sb, &all, "merged shards");
    for (metric, tolerance) in [
        ("ttft_ms", TTFT_TOLERANCE_MS),
        ("tpot_ms", TPOT_TOLERANCE_MS),
    ] {
        let (x, y) = (
            sa[metric]["p50"].as_f64().unwrap(),
            sb[metric]["p50"].as_f64().unwrap(),
        );
        assert!(
            (x - y).abs() < tolerance,
            "{metric} median: single {x}, merged {y}"
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
        let mut argv = vec!["servescope", "rate", "--rates", "1", "--num-requests", "1"];
        argv.extend_from_slice(extra);
        servescope::run_args(argv).unwrap_err()
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
            "years in the past",
        ),
    ] {
        let e = run(args);
        assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        assert!(e.to_string().contains(expected), "{args:?}: {e}");
    }
}
