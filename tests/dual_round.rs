//! `dual-round` end to end against the engine simulator: the same requests each round,
//! a cold then a warm prefix cache, resets that really empty it, and the comparison.

use std::path::Path;

use serde_json::Value;
use servescope::sim::{EngineConfig, SimConfig, SimServer};
use servescope::{Outcome, run_args};

/// The engine model with small costs, so runs take milliseconds, but prefill dear
/// enough (256 tokens: 64 ms cold, under 5 ms warm) that the cache's effect stands well
/// above a busy machine's delays, and medians ride out a stall of 100+ ms.
fn engine_sim() -> SimServer {
    let cfg = SimConfig {
        engine: Some(EngineConfig {
            step_base_ms: 0.5,
            prefill_ms_per_token: 0.25,
            decode_ms_per_seq: 0.0,
            kv_read_ms_per_1k_tokens: 0.0,
            ..EngineConfig::default()
        }),
        ..SimConfig::default()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn run(args: &[&str]) -> Result<servescope::session::SessionOutcome, servescope::Error> {
    let mut argv = vec!["servescope", "dual-round"];
    argv.extend_from_slice(args);
    run_args(argv).map(|o| match o {
        Outcome::Session(s) => s,
        other => panic!("{other:?}"),
    })
}

fn records(dir: &Path, run: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join("requests.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["run"] == run)
        .collect()
}

/// Request ids in the order they were sent.
fn send_order(recs: &[Value]) -> Vec<u64> {
    let mut v: Vec<(f64, u64)> = recs
        .iter()
        .map(|r| (r["started_at"].as_f64().unwrap(), r["id"].as_u64().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v.into_iter().map(|(_, id)| id).collect()
}

fn cached_share(s: &servescope::metrics::Summary) -> f64 {
    s.tokens.cached.unwrap() as f64 / s.tokens.input as f64
}

/// The median rather than the mean: one stalled request does not move it.
fn ttft_p50(s: &servescope::metrics::Summary) -> f64 {
    s.ttft_ms.as_ref().unwrap().percentile(50.0).unwrap()
}

#[test]
fn rounds_repeat_the_requests_and_hit_the_cache() {
    let server = engine_sim();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "--endpoint",
        &server.url(),
        "--concurrency",
        "1,3",
        "--rounds",
        "3",
        "--num-requests",
        "6",
        "--input-len",
        "256",
        "--output-len",
        "4",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ])
    .unwrap();
    let labels: Vec<&str> = out.runs.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "concurrency 1 round 1",
            "concurrency 1 round 2",
            "concurrency 1 round 3",
            "concurrency 3 round 1",
            "concurrency 3 round 2",
            "concurrency 3 round 3"
        ]
    );
    for level in [0, 3] {
        let r1 = &out.runs[level].1;
        assert!(
            cached_share(r1) < 0.01,
            "round 1 is cold: {}",
            cached_share(r1)
        );
        for k in 1..3 {
            let rk = &out.runs[level + k].1;
            // 256-token prompts = 16 blocks; the last is recomputed: 240/256 cached.
            assert!(
                (cached_share(rk) - 240.0 / 256.0).abs() < 1e-9,
                "{}",
                cached_share(rk)
            );
            let (warm, cold) = (ttft_p50(rk), ttft_p50(r1));
            assert!(warm < cold, "warm TTFT p50 {warm}, cold {cold}");
        }
    }
    // Same requests every round, shuffled after the first.
    let r1 = records(dir.path(), "concurrency 1 round 1");
    let r2 = records(dir.path(), "concurrency 1 round 2");
    let mut ids1 = send_order(&r1);
    let mut ids2 = send_order(&r2);
    assert_ne!(ids1, ids2, "round 2 goes in another order");
    ids1.sort_unstable();
    ids2.sort_unstable();
    assert_eq!(ids1, ids2, "the same requests");
    for (a, b) in r1.iter().zip(&r2) {
        let b = r2.iter().find(|x| x["id"] == a["id"]).unwrap_or(b);
        assert_eq!(a["input_tokens"], b["input_tokens"]);
    }
    // The comparison is saved with ratios to round 1.
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    let cmp = &results["dual_round"];
    assert_eq!(cmp.as_array().unwrap().len(), 2);
    assert_eq!(cmp[0]["level"], "concurrency 1");
    for key in ["ttft_ms.mean", "ttft_ms.p50"] {
        let ratio = cmp[0]["ratios_to_round_1"][0][key].as_f64().unwrap();
        assert!(ratio < 1.0, "warm {key} is lower: {ratio}");
    }
    assert!(
        cmp[0]["ratios_to_round_1"][0]["ttft_speedup"]
            .as_f64()
            .unwrap()
            > 1.0
    );
    assert_eq!(results["runs"][1]["params"]["round"], 2);
    assert_eq!(results["runs"][1]["params"]["shuffled"], true);
}

#[test]
fn no_shuffle_keeps_the_order() {
    let server = engine_sim();
    let dir = tempfile::tempdir().unwrap();
    run(&[
        "--endpoint",
        &server.url(),
        "--concurrency",
        "1",
        "--no-shuffle",
        "--num-requests",
        "5",
        "--input-len",
        "64",
        "--output-len",
        "2",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ])
    .unwrap();
    assert_eq!(
        send_order(&records(dir.path(), "concurrency 1 round 1")),
        send_order(&records(dir.path(), "concurrency 1 round 2"))
    );
}

#[test]
fn reset_between_rounds_empties_the_cache() {
    let server = engine_sim();
    let reset = format!("{}/reset_prefix_cache", server.url());
    let out = run(&[
        "--endpoint",
        &server.url(),
        "--concurrency",
        "2",
        "--num-requests",
        "4",
        "--input-len",
        "128",
        "--output-len",
        "2",
        "--reset-cache-url",
        &reset,
        "--reset-between",
        "rounds",
        "--quiet",
    ])
    .unwrap();
    assert!(
        cached_share(&out.runs[1].1) < 0.01,
        "round 2 starts cold after a reset"
    );
}

#[test]
fn a_failed_reset_warns_and_goes_on() {
    let server = engine_sim();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/flush_cache", l.local_addr().unwrap())
    };
    let out = run(&[
        "--endpoint",
        &server.url(),
        "--concurrency",
        "2",
        "--num-requests",
        "4",
        "--input-len",
        "64",
        "--output-len",
        "2",
        "--reset-cache-url",
        &closed,
        "--quiet",
    ])
    .unwrap();
    assert_eq!(out.runs.len(), 2);
    assert_eq!(out.runs[1].1.succeeded, 4);
}

#[test]
fn multi_turn_conversations_grow_their_history() {
    let server = engine_sim();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("chats.jsonl");
    std::fs::write(
        &data,
        r#"{"messages": [{"role": "user", "content": "Tell me about KV caches in serving engines."}, {"role": "assistant", "content": "They keep attention keys and values of earlier tokens."}, {"role": "user", "content": "And prefix caching?"}, {"role": "assistant", "content": "It reuses them across requests that share a prefix."}, {"role": "user", "content": "Thanks."}]}
{"text": "A single prompt."}
"#,
    )
    .unwrap();
    let out = run(&[
        "--endpoint",
        &server.url(),
        "--dataset",
        data.to_str().unwrap(),
        "--concurrency",
        "1",
        "--no-shuffle",
        "--output-len",
        "2",
        "--output-dir",
        dir.path().join("o").to_str().unwrap(),
        "--quiet",
    ])
    .unwrap();
    // Three user turns become three requests, plus the single prompt.
    assert_eq!(out.runs[0].1.total, 4);
    let recs = records(&dir.path().join("o"), "concurrency 1 round 1");
    let tokens: Vec<u64> = (0..3)
        .map(|id| {
            recs.iter().find(|r| r["id"] == id).unwrap()["input_tokens"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(tokens[0] < tokens[1] && tokens[1] < tokens[2], "{tokens:?}");
}

#[test]
fn one_round_is_not_a_study() {
    let e = run(&["--rounds", "1", "--quiet"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--rounds"));
}

/// Round 1 of a second invocation with the same seed finds its prompts cached by the
/// first: flagged as not cold. The `llamacpp` reset preset (erase every slot) empties
/// the cache first, and round 1 is cold again.
#[test]
fn a_warm_round_1_is_flagged_and_the_llamacpp_reset_cures_it() {
    let server = engine_sim();
    let url = server.url();
    let dual = |extra: &[&str]| {
        let mut a = vec![
            "--endpoint",
            &url,
            "--concurrency",
            "2",
            "--num-requests",
            "6",
            "--input-len",
            "128",
            "--output-len",
            "2",
            "--seed",
            "7",
            "--quiet",
        ];
        a.extend_from_slice(extra);
        run(&a).unwrap()
    };
    let warm = |s: &servescope::metrics::Summary| {
        s.validity
            .iter()
            .find(|f| f.check == "cold_round_warm")
            .map(|f| f.message.clone())
    };
    let first = dual(&[]);
    assert_eq!(
        warm(&first.runs[0].1),
        None,
        "a fresh server: round 1 is cold"
    );
    assert_eq!(warm(&first.runs[1].1), None, "only round 1 is checked");
    let again = dual(&[]);
    let msg = warm(&again.runs[0].1).expect("round 1 found the first invocation's cache");
    assert!(
        msg.contains("concurrency 2")
            && msg.contains("--reset-cache-url")
            && msg.contains("--seed"),
        "{msg}"
    );
    let reset = dual(&["--reset-cache-url", "llamacpp"]);
    assert_eq!(
        warm(&reset.runs[0].1),
        None,
        "every slot erased: cold again"
    );
    assert!(cached_share(&reset.runs[0].1) < 0.01);
    assert!(cached_share(&reset.runs[1].1) > 0.5, "round 2 still warm");
}
