//! Synthetic multi-turn sessions (`--sessions`) end to end against the simulator, in
//! every load mode: a closed loop counts active users, an open loop session arrivals, a
//! batch starts every session at once; each turn resends the growing history, shards
//! split sessions whole, and the flags that make no sense with sessions are refused.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{records, session};
use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};

fn sim(tpot_ms: f64) -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 2.0,
        tpot_ms,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn secs(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// Records by session, each session's in turn order.
fn by_session(recs: &[Value]) -> BTreeMap<u64, Vec<Value>> {
    let mut out: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for r in recs {
        out.entry(r["session"].as_u64().expect("tagged with its session"))
            .or_default()
            .push(r.clone());
    }
    for turns in out.values_mut() {
        turns.sort_by_key(|r| r["turn"].as_u64().unwrap());
    }
    out
}

/// Every session whole, its turns one after the other (think time between), the
/// history growing by each answer and the next input.
fn check_sessions(recs: &[Value], sessions: u64, turns: u64, think_s: f64, step: u64) {
    let all = by_session(recs);
    assert_eq!(all.len() as u64, sessions);
    for (s, t) in &all {
        let ks: Vec<u64> = t.iter().map(|r| r["turn"].as_u64().unwrap()).collect();
        assert_eq!(ks, (0..turns).collect::<Vec<_>>(), "session {s}");
        for (k, pair) in t.windows(2).enumerate() {
            let gap = secs(&pair[1]["started_at"]) - secs(&pair[0]["ended_at"]);
            assert!(gap >= think_s * 0.95, "session {s} turn {k}: {gap}");
            let grew = pair[1]["input_tokens"].as_u64().unwrap()
                - pair[0]["input_tokens"].as_u64().unwrap();
            assert_eq!(
                grew,
                pair[0]["output_tokens"].as_u64().unwrap() + step,
                "turn {} resends turn {k}'s history and answer",
                k + 1
            );
        }
        for r in t {
            assert_eq!(r["status"], "ok");
            assert_eq!(r["prompt_tokens"], r["input_tokens"], "the server agrees");
        }
    }
}

fn run_params(dir: &Path) -> Value {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    doc["runs"][0]["params"].clone()
}

#[test]
fn a_closed_loop_counts_active_users() {
    let server = sim(1.0);
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "2",
        "--sessions",
        "--num-requests",
        "5",
        "--turns",
        "3",
        "--think-time-ms",
        "30",
        "--input-len",
        "20",
        "--output-len",
        "6",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.runs[0].1.succeeded, 15, "5 sessions of 3 turns");
    let recs = records(dir.path());
    check_sessions(&recs, 5, 3, 0.03, 20);
    // A session is active from its first turn's start to its last turn's end: never
    // more than 2 at once, and both users busy at some point.
    let spans: Vec<(f64, f64)> = by_session(&recs)
        .values()
        .map(|t| {
            (
                secs(&t[0]["started_at"]),
                secs(&t.last().unwrap()["ended_at"]),
            )
        })
        .collect();
    let most = spans
        .iter()
        .map(|&(a, _)| spans.iter().filter(|&&(s, e)| s <= a && a < e).count())
        .max()
        .unwrap();
    assert_eq!(most, 2, "{spans:?}");
    assert_eq!(run_params(dir.path())["sessions"], true);
    assert_eq!(run_params(dir.path())["num_requests"], 5);
}

#[test]
fn an_open_loop_sends_session_arrivals_at_the_rate() {
    let server = sim(0.5);
    let dir = tempfile::tempdir().unwrap();
    session(&[
        "rate",
        "--endpoint",
        &server.url(),
        "--rates",
        "40",
        "--sessions",
        "--num-requests",
        "6",
        "--turns",
        "2",
        "--input-len",
        "16",
        "--output-len",
        "4",
        "--system-prompt-len",
        "32",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let recs = records(dir.path());
    check_sessions(&recs, 6, 2, 0.0, 16);
    let all = by_session(&recs);
    let arrivals: Vec<f64> = all.values().map(|t| secs(&t[0]["scheduled_at"])).collect();
    assert!(arrivals.windows(2).all(|w| w[0] < w[1]), "{arrivals:?}");
    assert_eq!(arrivals[0], 0.0, "the first session arrives at the start");
    for t in all.values() {
        // 32 system + 16 input; a later turn is due once the answer before it came.
        assert_eq!(t[0]["input_tokens"], 48);
        assert!(secs(&t[1]["scheduled_at"]) >= secs(&t[0]["ended_at"]));
    }
}

#[test]
fn a_batch_starts_every_session_at_once() {
    let server = sim(1.0);
    let dir = tempfile::tempdir().unwrap();
    session(&[
        "batch",
        "--endpoint",
        &server.url(),
        "--batch-sizes",
        "4",
        "--sessions",
        "--turns",
        "2",
        "--input-len",
        "10",
        "--output-len",
        "5",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let recs = records(dir.path());
    check_sessions(&recs, 4, 2, 0.0, 10);
    let firsts: Vec<f64> = by_session(&recs)
        .values()
        .map(|t| secs(&t[0]["started_at"]))
        .collect();
    let last_first = firsts.iter().cloned().fold(0.0, f64::max);
    let earliest_end = recs
        .iter()
        .map(|r| secs(&r["ended_at"]))
        .fold(f64::MAX, f64::min);
    assert!(
        last_first < earliest_end,
        "every session started before any answer ended"
    );
}

/// (session, turn, id, input tokens) of every record of a directory.
fn turns_of(dir: &Path) -> BTreeSet<(u64, u64, u64, u64)> {
    records(dir)
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_u64().unwrap();
            (n("session"), n("turn"), n("id"), n("input_tokens"))
        })
        .collect()
}

#[test]
fn shards_split_sessions_whole_and_together_send_the_whole_run() {
    let server = sim(0.2);
    let root = tempfile::tempdir().unwrap();
    let run = |shard: &str, name: &str| {
        let dir = root.path().join(name);
        session(&[
            "concurrency",
            "--endpoint",
            &server.url(),
            "--concurrency",
            "3",
            "--sessions",
            "--num-requests",
            "7",
            "--turns",
            "1:4",
            "--input-len",
            "9",
            "--output-len",
            "3",
            "--seed",
            "11",
            "--shard",
            shard,
            "--output-dir",
            dir.to_str().unwrap(),
            "--quiet",
        ]);
        turns_of(&dir)
    };
    let whole = run("0/1", "whole");
    let a = run("0/2", "a");
    let b = run("1/2", "b");
    assert!(a.iter().all(|t| t.0 % 2 == 0) && b.iter().all(|t| t.0 % 2 == 1));
    let union: BTreeSet<_> = a.union(&b).cloned().collect();
    assert_eq!(union, whole, "the shards send what one process does");
    let sessions: BTreeSet<u64> = whole.iter().map(|t| t.0).collect();
    assert_eq!(sessions.len(), 7);
    assert!(whole.len() > 7, "turns drawn in 1:4");
}

#[test]
fn dual_round_resends_the_same_sessions_each_round() {
    // With the engine model: its prefix cache.
    let server = SimServer::start(SimConfig::default(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    session(&[
        "dual-round",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "2",
        "--sessions",
        "--num-requests",
        "3",
        "--turns",
        "2",
        "--input-len",
        "40",
        "--output-len",
        "4",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let recs = records(dir.path());
    let round = |label: &str| -> BTreeSet<(u64, u64, u64)> {
        recs.iter()
            .filter(|r| r["run"] == label)
            .map(|r| {
                let n = |k: &str| r[k].as_u64().unwrap();
                (n("session"), n("turn"), n("input_tokens"))
            })
            .collect()
    };
    let first = round("concurrency 2 round 1");
    assert_eq!(first.len(), 6);
    assert_eq!(first, round("concurrency 2 round 2"));
    let cached = |label: &str| -> u64 {
        recs.iter()
            .filter(|r| r["run"] == label && r["turn"] == 0)
            .map(|r| r["cached_tokens"].as_u64().unwrap_or(0))
            .sum()
    };
    assert!(cached("concurrency 2 round 2") > cached("concurrency 2 round 1"));
}

fn refused(args: &[&str]) -> String {
    let argv = std::iter::once("servescope").chain(args.iter().copied());
    match servescope::run_args(argv.map(String::from).collect::<Vec<_>>()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{args:?} was accepted"),
    }
}

#[test]
fn flags_that_make_no_sense_with_sessions_are_refused_by_name() {
    for (args, says) in [
        (
            &["concurrency", "--turns", "3"][..],
            "--turns shapes synthetic sessions: it needs --sessions",
        ),
        (
            &["rate", "--rates", "1", "--think-time-ms", "5"],
            "--think-time-ms shapes synthetic sessions: it needs --sessions",
        ),
        (
            &["trace", "/nonexistent.jsonl", "--sessions", "--turns", "2"],
            "--turns shapes synthetic sessions; trace --sessions replays",
        ),
        (
            &["concurrency", "--sessions", "--dataset", "/x.jsonl"],
            "--sessions and --dataset cannot be combined",
        ),
        (
            &["concurrency", "--sessions", "--prompt-token-ids"],
            "--sessions and --prompt-token-ids cannot be combined",
        ),
        (
            &["batch", "--sessions", "--api", "embeddings"],
            "--sessions and --api embeddings cannot be combined",
        ),
        (
            &["dual-round", "--sessions", "--trace", "/nonexistent.jsonl"],
            "--sessions and --trace cannot be combined in dual-round",
        ),
        (
            &["concurrency", "--sessions", "--images", "1"],
            "--sessions and --images cannot be combined",
        ),
        (
            &[
                "concurrency",
                "--sessions",
                "--shared-prefix",
                "groups=2,prompts=2,system-len=32,question-len=8",
            ],
            "--sessions and --shared-prefix cannot be combined",
        ),
        (
            &["concurrency", "--sessions", "--think-time-ms", "5:1"],
            "--think-time-ms",
        ),
        (
            &["concurrency", "--sessions", "--think-time-dist", "gauss"],
            "--think-time-dist",
        ),
    ] {
        let err = refused(args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// The client's input count is the prompt it sent, whichever API: the completions API
/// sends the history as one text with line ends between messages, and those count too.
#[test]
fn input_tokens_match_the_servers_count_on_every_api() {
    let server = sim(1.0);
    for api in ["chat", "completions", "responses"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        session(&[
            "concurrency",
            "--endpoint",
            &server.url(),
            "--api",
            api,
            "--concurrency",
            "1",
            "--sessions",
            "--num-requests",
            "2",
            "--turns",
            "3",
            "--input-len",
            "16",
            "--output-len",
            "8",
            "--system-prompt-len",
            "10",
            "--output-dir",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        let recs = records(&out);
        assert_eq!(recs.len(), 6, "{api}");
        for r in &recs {
            assert_eq!(r["input_tokens"], r["prompt_tokens"], "{api}: {r}");
        }
    }
}
