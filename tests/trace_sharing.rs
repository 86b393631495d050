//! A trace's prefix sharing kept, cut, extended and switched off (`--prompts unique`),
//! as the simulator's prefix cache finds it, in `trace` and `dual-round --trace`; and
//! `compare` saying when two runs' workloads differ.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{by_run, records, results, session};
use serde_json::Value;

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
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    // The fixture's blocks are 16 tokens; unique prompts have none.
    if !extra.contains(&"unique") {
        args.extend(["--block-size", "16"]);
    }
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
