//! A trace with its lengths replaced and its sharing switched off, against llama.cpp's
//! `llama-server` (as `tests/llama_server.rs`: skipped with a message when it is not
//! installed, a failure where it must run): the replaced length is exact in the
//! server's own tokens, and its prompt cache finds the shared blocks of hash-id prompts
//! but nothing of unique ones.

mod common;

use std::path::Path;

use common::llama::llama_with;
use common::{records, session};
use serde_json::Value;

/// 6 requests 0.3 s apart, each behind the same 4 blocks of 32 tokens.
fn shared_trace(dir: &Path) -> std::path::PathBuf {
    let lines: String = (0..6u64)
        .map(|i| {
            format!(
                "{{\"timestamp\": {}, \"input_length\": 240, \"output_length\": 9, \"hash_ids\": [1, 2, 3, 4, {}, {}]}}\n",
                i * 300,
                100 + 2 * i,
                101 + 2 * i
            )
        })
        .collect();
    let path = dir.join("shared.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

#[test]
fn replaced_lengths_are_exact_and_only_hash_id_prompts_are_found_in_the_cache() {
    // One slot, no RAM prompt cache: a request finds what it shares with the last one.
    let Some(server) = llama_with(&["--parallel", "1", "--cache-ram", "0"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trace = shared_trace(dir.path());
    let run = |name: &str, prompts: &str| -> Vec<Value> {
        let out = dir.path().join(name);
        // The fixture's blocks are 32 tokens; unique prompts have none.
        let blocks = match prompts {
            "unique" => [].as_slice(),
            _ => ["--block-size", "32"].as_slice(),
        };
        let mut args = vec![
            "trace",
            trace.to_str().unwrap(),
            "--input-len",
            "160",
            "--output-len",
            "4",
            "--prompts",
            prompts,
            "--tokenizer",
            "server",
            "--endpoint",
            &server.url,
            "--output-dir",
            out.to_str().unwrap(),
            "--quiet",
        ];
        args.extend_from_slice(blocks);
        session(&args);
        let mut recs = records(&out);
        recs.sort_by_key(|r| r["id"].as_u64().unwrap());
        recs
    };
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k}: {r}"));
    let mut found = Vec::new();
    for prompts in ["hash-ids", "unique"] {
        let recs = run(prompts, prompts);
        assert_eq!(recs.len(), 6, "{prompts}");
        // Every prompt 160 of the server's tokens, inside the same chat template.
        let template = n(&recs[0], "prompt_tokens") - 160;
        for r in &recs {
            assert_eq!(r["status"], "ok", "{r}");
            assert_eq!(
                (n(r, "input_tokens"), n(r, "trace_input_len")),
                (160, 240),
                "{r}"
            );
            assert_eq!(n(r, "prompt_tokens"), 160 + template, "{prompts}: {r}");
            assert_eq!(
                (n(r, "output_tokens"), n(r, "trace_output_len")),
                (4, 9),
                "{r}"
            );
        }
        assert!(
            template < 40,
            "{prompts}: the template's tokens: {template}"
        );
        let cached: Vec<u64> = recs[1..].iter().map(|r| n(r, "cached_tokens")).collect();
        eprintln!("{prompts}: template {template} tokens, cached {cached:?}");
        found.push(cached);
    }
    // Unique prompts share the template's opening with the slot's last prompt, and no
    // more (measured: 24 tokens); hash-id prompts that and their 128 shared tokens (two
    // distinct blocks may by chance begin with the same word).
    let opening = found[1][0];
    assert!(
        opening < 40 && found[1].iter().all(|&c| c == opening),
        "{found:?}"
    );
    assert!(
        found[0]
            .iter()
            .all(|&c| (opening + 128..=opening + 130).contains(&c)),
        "{found:?}"
    );
}
