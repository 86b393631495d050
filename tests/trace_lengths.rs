//! A trace replayed with its lengths replaced (`--input-len`, `--output-len`): every
//! request keeps its time, order and session links in every trace format, with
//! time-scale lists, `--sessions`, `--max-context`, `--model-filter` and shards; and the
//! flags refused where they cannot apply. What the sharing is worth (`--prompts`) is in
//! `trace_sharing.rs`.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use common::{by_run, records, refused, results, session};
use serde_json::Value;

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
    let recs = records(&out);
    let runs = by_run(&recs);
    assert_eq!(runs["trace x1"].len(), 6);
    for (r, want) in runs["trace x1"].iter().zip(reqs(6)) {
        assert_eq!(r["input_tokens"], want.input, "{r}");
        assert!(r.get("trace_input_len").is_none(), "not replaced: {r}");
        assert_eq!(r["trace_output_len"], want.output, "{r}");
    }
    let params = &results(&out)["runs"][0]["params"];
    assert!(params.get("input_len").is_none(), "{params}");
    assert_eq!(params["output_len"]["max"], 2);
}

/// A Qwen trace of two conversations, 1 → 2 → 4 and 3 alone; 3 begins with 1's first
/// two blocks.
fn conversations(dir: &Path) -> PathBuf {
    let trace = dir.join("qwen.jsonl");
    let line = |chat: i64, parent: i64, t: f64, input: u32, ids: &[u64]| {
        format!(
            "{{\"chat_id\": {chat}, \"parent_chat_id\": {parent}, \"timestamp\": {t}, \"input_length\": {input}, \"output_length\": 9, \"type\": \"text\", \"turn\": 1, \"hash_ids\": {ids:?}}}\n"
        )
    };
    let text = line(1, -1, 0.0, 50, &[1, 2, 3, 4])
        + &line(2, 1, 0.01, 100, &[1, 2, 3, 4, 5, 6, 7])
        + &line(3, -1, 0.02, 40, &[1, 2, 10])
        + &line(4, 2, 0.03, 115, &[1, 2, 3, 4, 5, 6, 7, 11]);
    std::fs::write(&trace, text).unwrap();
    trace
}

fn sessions_run(trace: &Path, out: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "trace",
        trace.to_str().unwrap(),
        "--sessions",
        "--output-len",
        "5",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    session(&args);
    let mut recs = records(out);
    recs.sort_by_key(|r| r["id"].as_u64().unwrap());
    recs
}

#[test]
fn sessions_keep_their_links_and_each_turn_gets_the_length_as_its_own_text() {
    let dir = tempfile::tempdir().unwrap();
    let trace = conversations(dir.path());
    let recs = sessions_run(&trace, &dir.path().join("out"), &["--input-len", "300"]);
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap();
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap();
    // Turns wait for their parents, as without the flags.
    assert!(f(&recs[1], "started_at") >= f(&recs[0], "ended_at"));
    assert!(f(&recs[3], "started_at") >= f(&recs[1], "ended_at"));
    assert_eq!(
        (recs[3]["session"].as_u64(), recs[3]["turn"].as_u64()),
        (Some(0), Some(2))
    );
    // A trace's input length is the whole conversation's: a later turn sends its
    // history (the parent's prompt and its 5-token answer) and 300 tokens of its own.
    let inputs: Vec<u64> = recs.iter().map(|r| n(r, "input_tokens")).collect();
    assert_eq!(inputs, [300, 605, 300, 910]);
    let own: Vec<u64> = recs.iter().map(|r| n(r, "trace_input_len")).collect();
    assert_eq!(own, [50, 100, 40, 115]);
    assert!(
        recs.iter()
            .all(|r| r["output_tokens"] == 5 && r["trace_output_len"] == 9)
    );
    // --max-context judges the whole conversation: the last turn is clipped to fit.
    let clipped = sessions_run(
        &trace,
        &dir.path().join("clipped"),
        &["--input-len", "300", "--max-context", "800"],
    );
    let inputs: Vec<u64> = clipped.iter().map(|r| n(r, "input_tokens")).collect();
    assert_eq!(inputs, [300, 605, 300, 795]);
    assert_eq!(
        results(&dir.path().join("clipped"))["runs"][0]["params"]["clipped"],
        1
    );
}

#[test]
fn unique_prompts_in_sessions_share_only_their_own_history() {
    let dir = tempfile::tempdir().unwrap();
    let trace = conversations(dir.path());
    let shared = sessions_run(&trace, &dir.path().join("shared"), &[]);
    let unique = sessions_run(&trace, &dir.path().join("unique"), &["--prompts", "unique"]);
    let cached = |recs: &[Value]| -> Vec<u64> {
        recs.iter()
            .map(|r| r["cached_tokens"].as_u64().unwrap())
            .collect()
    };
    let (s, u) = (cached(&shared), cached(&unique));
    eprintln!("cached tokens: hash-ids {s:?}, unique {u:?}");
    // Conversation 3's first turn finds the blocks it shares with 1's only when the
    // prompts keep the trace's sharing; a later turn finds its history either way.
    assert_eq!((s[0], u[0], u[2]), (0, 0, 0));
    assert!(s[2] >= 32, "{s:?}");
    assert!(u[1] >= 48 && u[3] >= 96, "{u:?}");
    assert_eq!(
        results(&dir.path().join("unique"))["runs"][0]["params"]["prompts"],
        "unique"
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
    let mooncake = fixture(dir.path(), "mooncake", &reqs(3));
    let e = refused(&[
        "trace",
        mooncake.to_str().unwrap(),
        "--prompts",
        "unique",
        "--block-size",
        "32",
    ]);
    assert!(
        e.contains("--block-size sizes the trace's shared blocks"),
        "{e}"
    );
    let e = refused(&["trace", azure.to_str().unwrap(), "--input-len", "0"]);
    assert!(e.contains("--input-len"), "{e}");
    let e = refused(&["trace", azure.to_str().unwrap(), "--num-requests", "5"]);
    assert!(
        e.contains("--num-requests (use --limit) does not apply to trace replay"),
        "{e}"
    );
}

#[test]
fn a_model_filter_keeps_its_rows_and_their_times_with_the_lengths_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("burst.csv");
    let mut text =
        String::from("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n");
    for i in 0..10 {
        let model = if i % 2 == 0 { "ChatGPT" } else { "GPT-4" };
        text += &format!(
            "{},{model},{},4,{},Conversation log\n",
            i as f64 * 0.01,
            50 + i,
            54 + i
        );
    }
    std::fs::write(&path, text).unwrap();
    let out = dir.path().join("out");
    session(&[
        "trace",
        path.to_str().unwrap(),
        "--model-filter",
        "GPT-4",
        "--input-len",
        "30",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let recs = by_run(&records(&out))["trace x1"]
        .iter()
        .map(|r| {
            (
                r["scheduled_at"].as_f64().unwrap(),
                r["input_tokens"].as_u64().unwrap(),
                r["trace_input_len"].as_u64().unwrap(),
            )
        })
        .collect::<Vec<_>>();
    let want: Vec<(f64, u64, u64)> = (0..5).map(|k| (k as f64 * 0.02, 30, 51 + 2 * k)).collect();
    assert_eq!(recs.len(), 5);
    for (got, want) in recs.iter().zip(&want) {
        assert!(
            (got.0 - want.0).abs() < 1e-4 && got.1 == want.1 && got.2 == want.2,
            "{got:?} vs {want:?}"
        );
    }
}
