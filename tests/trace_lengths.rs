//! A trace replayed with its lengths replaced (`--input-len`, `--output-len`) and its
//! prefix sharing switched off (`--prompts unique`): every request keeps its time, order
//! and session links in every trace format, with time-scale lists, `--sessions`,
//! `--max-context`, shards and `dual-round --trace`; the simulator's prefix cache shows
//! what the sharing is worth.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use common::{records, session};
use serde_json::Value;

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn refused(args: &[&str]) -> String {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    match servescope::run_args(argv) {
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            e.to_string()
        }
        Ok(_) => panic!("{args:?} should be refused"),
    }
}

/// One request of a fixture: seconds from the start, input and output lengths.
struct Req {
    t: f64,
    input: u32,
    output: u32,
}

fn reqs(n: usize) -> Vec<Req> {
    (0..n)
        .map(|i| Req {
            t: i as f64 * 0.004,
            input: 40 + 7 * i as u32,
            output: 2 + (i % 3) as u32,
        })
        .collect()
}

/// The same requests written in each format servescope reads.
fn fixture(dir: &Path, format: &str, reqs: &[Req]) -> PathBuf {
    let mut text = String::new();
    match format {
        "azure" => text.push_str("TIMESTAMP,ContextTokens,GeneratedTokens\n"),
        "burstgpt" => {
            text.push_str("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n")
        }
        _ => {}
    }
    for (i, r) in reqs.iter().enumerate() {
        let blocks: Vec<u64> = (0..r.input.div_ceil(16) as u64)
            .map(|b| b + i as u64 % 2 * 1000)
            .collect();
        text += &match format {
            "mooncake" => format!(
                "{{\"timestamp\": {}, \"input_length\": {}, \"output_length\": {}, \"hash_ids\": {blocks:?}}}\n",
                (r.t * 1000.0).round() as u64,
                r.input,
                r.output
            ),
            "qwen" => format!(
                "{{\"chat_id\": {}, \"parent_chat_id\": -1, \"timestamp\": {}, \"input_length\": {}, \"output_length\": {}, \"type\": \"text\", \"turn\": 1, \"hash_ids\": {blocks:?}}}\n",
                i + 1,
                r.t,
                r.input,
                r.output
            ),
            "azure" => {
                let us = (r.t * 1e6).round() as u64;
                format!(
                    "2023-11-16 18:15:{:02}.{:06}0,{},{}\n",
                    us / 1_000_000,
                    us % 1_000_000,
                    r.input,
                    r.output
                )
            }
            "burstgpt" => format!(
                "{},ChatGPT,{},{},{},Conversation log\n",
                r.t,
                r.input,
                r.output,
                r.input + r.output
            ),
            _ => unreachable!(),
        };
    }
    let path = dir.join(format!("{format}.trace"));
    std::fs::write(&path, text).unwrap();
    path
}

fn by_run(recs: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut runs: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in recs {
        runs.entry(r["run"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    for v in runs.values_mut() {
        v.sort_by_key(|r| r["id"].as_u64().unwrap());
    }
    runs
}

#[test]
fn every_format_keeps_its_times_and_order_with_the_lengths_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let fixture_reqs = reqs(12);
    for format in ["mooncake", "qwen", "azure", "burstgpt"] {
        let trace = fixture(dir.path(), format, &fixture_reqs);
        let out = dir.path().join(format!("out-{format}"));
        let s = session(&[
            "trace",
            trace.to_str().unwrap(),
            "--time-scale",
            "2,1",
            "--input-len",
            "20:90",
            "--output-len",
            "3",
            "--output-dir",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(s.runs.iter().all(|r| r.1.succeeded == 12), "{format}");
        let recs = records(&out);
        let runs = by_run(&recs);
        assert_eq!(
            runs.keys().collect::<Vec<_>>(),
            ["trace x1", "trace x2"],
            "{format}"
        );
        let mut lengths = Vec::new();
        for (label, rs) in &runs {
            let scale = if label == "trace x2" { 2.0 } else { 1.0 };
            let ids: Vec<u64> = rs.iter().map(|r| r["id"].as_u64().unwrap()).collect();
            assert_eq!(
                ids,
                (0..12).collect::<Vec<_>>(),
                "{format}: every request, in order"
            );
            let mut these = Vec::new();
            for (r, want) in rs.iter().zip(&fixture_reqs) {
                let at = r["scheduled_at"].as_f64().unwrap();
                assert!((at - want.t * scale).abs() < 1e-4, "{format} {label}: {r}");
                let input = r["input_tokens"].as_u64().unwrap();
                assert!((20..=90).contains(&input), "{format}: {r}");
                assert_eq!(
                    r["prompt_tokens"], r["input_tokens"],
                    "{format}: exact: {r}"
                );
                assert_eq!(r["output_tokens"], 3, "{format}: {r}");
                assert_eq!(
                    r["trace_input_len"], want.input,
                    "{format}: the trace's own: {r}"
                );
                assert_eq!(r["trace_output_len"], want.output, "{format}: {r}");
                these.push(input);
            }
            lengths.push(these);
        }
        assert_eq!(
            lengths[0], lengths[1],
            "{format}: each time scale the same lengths"
        );
        let distinct: HashSet<_> = lengths[0].iter().collect();
        assert!(
            distinct.len() > 6,
            "{format}: drawn per request: {lengths:?}"
        );
        let params = &results(&out)["runs"][0]["params"];
        assert_eq!(
            params["input_len"],
            serde_json::json!({"min": 20, "max": 90}),
            "{format}"
        );
        assert_eq!(
            params["output_len"],
            serde_json::json!({"min": 3, "max": 3}),
            "{format}"
        );
        let prompts = if format == "mooncake" || format == "qwen" {
            "hash-ids"
        } else {
            "unique"
        };
        assert_eq!(params["prompts"], prompts, "{format}");
    }
}

#[test]
fn lengths_left_alone_are_the_traces_and_say_nothing_was_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let trace = fixture(dir.path(), "mooncake", &reqs(6));
    let out = dir.path().join("out");
    session(&[
        "trace",
        trace.to_str().unwrap(),
        "--output-len",
        "2",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    for (r, want) in records(&out).iter().zip(reqs(6)) {
        assert_eq!(r["input_tokens"], want.input, "{r}");
        assert!(r.get("trace_input_len").is_none(), "not replaced: {r}");
        assert_eq!(r["trace_output_len"], want.output, "{r}");
    }
    let params = &results(&out)["runs"][0]["params"];
    assert!(params.get("input_len").is_none(), "{params}");
    assert_eq!(params["output_len"]["max"], 2);
}

/// (sum of cached tokens, sum of input tokens) over a run's records.
fn cache_share(recs: &[&Value]) -> f64 {
    let (mut cached, mut input) = (0u64, 0u64);
    for r in recs {
        cached += r["cached_tokens"].as_u64().unwrap();
        input += r["input_tokens"].as_u64().unwrap();
    }
    cached as f64 / input as f64
}

/// 48 requests in 6 groups, each request its group's 8 shared 16-token blocks and 2 of
/// its own; with an infinite cache, whole blocks seen before would be found again.
fn shared_trace(dir: &Path) -> (PathBuf, Vec<Vec<u64>>) {
    let mut text = String::new();
    let mut all = Vec::new();
    for i in 0..48u64 {
        let group = i % 6;
        let mut ids: Vec<u64> = (0..8).map(|b| group * 100 + b).collect();
        ids.extend([10_000 + 2 * i, 10_001 + 2 * i]);
        text += &format!(
            "{{\"timestamp\": {}, \"input_length\": 160, \"output_length\": 2, \"hash_ids\": {ids:?}}}\n",
            i * 20
        );
        all.push(ids);
    }
    let path = dir.join("shared.jsonl");
    std::fs::write(&path, text).unwrap();
    (path, all)
}

/// Share of a trace's prompt tokens in blocks an earlier request had, the first
/// `tokens` of each prompt counted (16-token blocks).
fn ideal_share(ids: &[Vec<u64>], tokens: usize) -> f64 {
    let mut seen = HashSet::new();
    let (mut hit, mut all) = (0usize, 0usize);
    for req in ids {
        let blocks = tokens.div_ceil(16);
        let mut prefix = Vec::new();
        for (k, id) in req.iter().take(blocks).enumerate() {
            prefix.push(*id);
            let len = 16.min(tokens - 16 * k);
            if !seen.insert(prefix.clone()) {
                hit += len;
            }
        }
        all += tokens;
    }
    hit as f64 / all as f64
}

fn replay(trace: &Path, out: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "trace",
        trace.to_str().unwrap(),
        "--block-size",
        "16",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    session(&args);
    records(out)
}

#[test]
fn the_simulators_prefix_cache_finds_the_traces_sharing_and_nothing_in_unique_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let (trace, ids) = shared_trace(dir.path());
    let ideal = ideal_share(&ids, 160);
    assert!((ideal - 0.7).abs() < 1e-9, "{ideal}");
    let shared = replay(&trace, &dir.path().join("shared"), &[]);
    let unique = replay(&trace, &dir.path().join("unique"), &["--prompts", "unique"]);
    let [shared_share, unique_share] =
        [&shared, &unique].map(|r| cache_share(&r.iter().collect::<Vec<_>>()));
    eprintln!("ideal {ideal:.3}, hash-ids {shared_share:.3}, unique {unique_share:.3}");
    // A fully cached block is found; the simulator's last block of a whole hit is
    // computed again, as vLLM does, which costs at most one block in ten here.
    assert!(
        shared_share > ideal - 0.1 && shared_share <= ideal + 1e-9,
        "{shared_share} vs {ideal}"
    );
    assert!(unique_share < 0.02, "{unique_share}");
    assert_eq!(
        results(&dir.path().join("unique"))["runs"][0]["params"]["prompts"],
        "unique"
    );
    // Compared, the two say what they sent differently.
    let c = servescope::report::compare::compare(
        &dir.path().join("shared"),
        &dir.path().join("unique"),
        5.0,
    )
    .unwrap();
    assert!(
        c.render()
            .contains("workload differs: prompts A hash-ids, B unique"),
        "{}",
        c.render()
    );
    // Cut to 64 tokens, the requests still share their group's first 4 blocks: each
    // prompt but its group's first is found whole, less the last block the simulator
    // computes again (42 × 48 of 48 × 64 tokens).
    let cut = replay(&trace, &dir.path().join("cut"), &["--input-len", "64"]);
    let cut_share = cache_share(&cut.iter().collect::<Vec<_>>());
    let cut_ideal = ideal_share(&ids, 64);
    eprintln!("cut to 64: ideal {cut_ideal:.3}, hash-ids {cut_share:.3}");
    assert!((cut_ideal - 42.0 / 48.0).abs() < 1e-9, "{cut_ideal}");
    assert!(
        (cut_share - 42.0 * 48.0 / (48.0 * 64.0)).abs() < 0.03,
        "{cut_share}"
    );
    // Extended to 400 tokens: the shared blocks stay shared, the rest is each request's.
    let long = replay(&trace, &dir.path().join("long"), &["--input-len", "400"]);
    let long_recs: Vec<&Value> = long.iter().collect();
    let long_share = cache_share(&long_recs);
    let long_ideal = (42.0 * 128.0) / (48.0 * 400.0);
    eprintln!("extended to 400: ideal {long_ideal:.3}, hash-ids {long_share:.3}");
    assert!(
        long_share > long_ideal - 0.05 && long_share < long_ideal + 0.01,
        "{long_share}"
    );
}

#[test]
fn sessions_keep_their_links_with_the_lengths_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("qwen.jsonl");
    let line = |chat: i64, parent: i64, t: f64, input: u32, ids: &[u64]| {
        format!(
            "{{\"chat_id\": {chat}, \"parent_chat_id\": {parent}, \"timestamp\": {t}, \"input_length\": {input}, \"output_length\": 9, \"type\": \"text\", \"turn\": 1, \"hash_ids\": {ids:?}}}\n"
        )
    };
    let text = line(1, -1, 0.0, 50, &[1, 2, 3, 4])
        + &line(2, 1, 0.01, 100, &[1, 2, 3, 4, 5, 6, 7])
        + &line(3, -1, 0.02, 40, &[8, 9, 10])
        + &line(4, 2, 0.03, 115, &[1, 2, 3, 4, 5, 6, 7, 11]);
    std::fs::write(&trace, text).unwrap();
    let out = dir.path().join("out");
    session(&[
        "trace",
        trace.to_str().unwrap(),
        "--sessions",
        "--input-len",
        "300",
        "--output-len",
        "5",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let recs = records(&out);
    let by_id = |id: u64| recs.iter().find(|r| r["id"] == id).unwrap();
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap();
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap();
    // Turns wait for their parents, as without the flags.
    assert!(f(by_id(1), "started_at") >= f(by_id(0), "ended_at"));
    assert!(f(by_id(3), "started_at") >= f(by_id(1), "ended_at"));
    assert_eq!(
        (by_id(3)["session"].as_u64(), by_id(3)["turn"].as_u64()),
        (Some(0), Some(2))
    );
    // The replaced input is the whole conversation's, as the trace's is: the history
    // (300 + 5 answer tokens) and what the 300 leave for the new turn, at least one.
    assert_eq!(n(by_id(0), "input_tokens"), 300);
    assert_eq!(n(by_id(1), "input_tokens"), 306);
    assert_eq!(n(by_id(3), "input_tokens"), 312);
    assert_eq!(n(by_id(1), "trace_input_len"), 100);
    assert!(
        recs.iter()
            .all(|r| r["output_tokens"] == 5 && r["trace_output_len"] == 9)
    );
}

#[test]
fn max_context_judges_the_replaced_lengths() {
    let dir = tempfile::tempdir().unwrap();
    let trace = fixture(dir.path(), "mooncake", &reqs(8));
    let out = dir.path().join("out");
    session(&[
        "trace",
        trace.to_str().unwrap(),
        "--input-len",
        "300",
        "--output-len",
        "50",
        "--max-context",
        "200",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let recs = records(&out);
    assert!(
        recs.iter()
            .all(|r| r["input_tokens"] == 150 && r["output_tokens"] == 50)
    );
    assert!(
        recs.iter()
            .all(|r| r["trace_input_len"].as_u64().unwrap() < 100)
    );
    assert_eq!(results(&out)["runs"][0]["params"]["clipped"], 8);
}

#[test]
fn shards_draw_the_same_lengths_as_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let trace = fixture(dir.path(), "mooncake", &reqs(20));
    let lengths = |extra: &[&str], name: &str| -> BTreeMap<u64, u64> {
        let out = dir.path().join(name);
        let mut args = vec![
            "trace",
            trace.to_str().unwrap(),
            "--input-len",
            "10:500",
            "--output-len",
            "2",
            "--output-dir",
            out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        session(&args);
        records(&out)
            .iter()
            .map(|r| {
                (
                    r["id"].as_u64().unwrap(),
                    r["input_tokens"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let whole = lengths(&["--seed", "7"], "whole");
    let mut shards = lengths(&["--seed", "7", "--shard", "0/2"], "s0");
    let second = lengths(&["--seed", "7", "--shard", "1/2"], "s1");
    assert!(!shards.is_empty() && !second.is_empty());
    shards.extend(second);
    assert_eq!(
        shards, whole,
        "each shard draws its requests' lengths as the whole run does"
    );
    assert_ne!(
        lengths(&["--seed", "8"], "seed8"),
        whole,
        "the seed draws them"
    );
}

#[test]
fn dual_round_takes_the_same_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (trace, _) = shared_trace(dir.path());
    let out = dir.path().join("out");
    session(&[
        "dual-round",
        "--trace",
        trace.to_str().unwrap(),
        "--limit",
        "12",
        "--input-len",
        "48",
        "--output-len",
        "2",
        "--prompts",
        "unique",
        "--concurrency",
        "2",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let recs = records(&out);
    assert_eq!(recs.len(), 24);
    assert!(
        recs.iter()
            .all(|r| r["input_tokens"] == 48 && r["output_tokens"] == 2)
    );
    let runs = by_run(&recs);
    let first = cache_share(&runs["concurrency 2 round 1"]);
    let second = cache_share(&runs["concurrency 2 round 2"]);
    // Unique prompts share nothing with each other, but round 2 sends round 1's again.
    assert!(first < 0.02, "{first}");
    assert!(second > 0.6, "{second}");
    let params = &results(&out)["runs"][0]["params"];
    assert_eq!(params["input_len"]["min"], 48);
    assert_eq!(params["prompts"], "unique");
    assert_eq!(params["format"], "mooncake");
}

#[test]
fn flags_that_cannot_apply_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let azure = fixture(dir.path(), "azure", &reqs(3));
    let e = refused(&["trace", azure.to_str().unwrap(), "--prompts", "hash-ids"]);
    assert!(
        e.contains("--prompts hash-ids needs a trace with hash ids"),
        "{e}"
    );
    let e = refused(&[
        "dual-round",
        "--trace",
        azure.to_str().unwrap(),
        "--prompts",
        "hash-ids",
    ]);
    assert!(
        e.contains("--prompts hash-ids needs a trace with hash ids"),
        "{e}"
    );
    let e = refused(&["dual-round", "--prompts", "unique"]);
    assert!(e.contains("--trace"), "{e}");
    let e = refused(&["trace", azure.to_str().unwrap(), "--input-len", "0"]);
    assert!(e.contains("--input-len"), "{e}");
    let e = refused(&["trace", azure.to_str().unwrap(), "--num-requests", "5"]);
    assert!(
        e.contains("--num-requests (use --limit) does not apply to trace replay"),
        "{e}"
    );
}
