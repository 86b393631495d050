//! The scheduler and block pool driven directly, step by step (no clock, no HTTP),
//! and the settings' flags and file.

use clap::Parser;

use super::SimConfig;
use super::engine::EngineConfig;
use super::kv::block_hashes;
use super::sched::{NewRequest, Sampled, Scheduler, Step};
use crate::cli::sim::SimModelArgs;

fn cfg(seqs: u32, budget: u32, kv_tokens: u64) -> EngineConfig {
    EngineConfig {
        max_num_seqs: seqs,
        max_num_batched_tokens: budget,
        kv_capacity_tokens: kv_tokens,
        block_size: 16,
        max_model_len: kv_tokens.min(1024) as u32,
        step_base_ms: 2.0,
        prefill_ms_per_token: 0.05,
        decode_ms_per_seq: 0.1,
        kv_read_ms_per_1k_tokens: 1.0,
        ..EngineConfig::default()
    }
}

fn req(id: u64, tokens: &[u32], output_tokens: u32) -> NewRequest {
    NewRequest {
        id,
        prompt_len: tokens.len() as u32,
        block_keys: block_hashes(tokens, 16),
        output_tokens,
        spec_key: id,
    }
}

/// Distinct tokens: `n` of them starting at `from`.
fn toks(from: u32, n: u32) -> Vec<u32> {
    (from..from + n).collect()
}

/// Runs every step until no work is left; returns the steps and the tokens sampled.
fn drain(s: &mut Scheduler) -> (Vec<Step>, Vec<Sampled>) {
    let (mut steps, mut sampled) = (Vec::new(), Vec::new());
    while s.has_work() {
        let step = s.schedule();
        sampled.extend(s.finish(&step));
        steps.push(step);
        assert!(steps.len() < 100_000, "no progress");
    }
    (steps, sampled)
}

/// The prefix-cache hit of request `id`, run alone to completion.
fn cached_alone(s: &mut Scheduler, id: u64, tokens: &[u32]) -> u32 {
    s.add(req(id, tokens, 1));
    let (_, sampled) = drain(s);
    sampled[0].cached_tokens
}

#[test]
fn chunked_prefill_then_one_token_per_step() {
    let c = cfg(4, 32, 4096);
    let mut s = Scheduler::new(&c);
    s.add(req(1, &toks(0, 100), 3));
    let (steps, sampled) = drain(&mut s);
    let work: Vec<_> = steps.iter().map(|s| s.work.clone()).collect();
    assert_eq!(
        work,
        [
            vec![(1, 32)],
            vec![(1, 32)],
            vec![(1, 32)],
            vec![(1, 4)],
            vec![(1, 1)],
            vec![(1, 1)]
        ]
    );
    assert_eq!(
        sampled.iter().map(|s| s.generated).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(sampled[2].finished);
    // Prefill: 2 + 0.05 × 32 per full chunk; decode: 2 + 0.1 + 1.0 × 101/1000.
    assert!((steps[0].cost_ms(&c) - 3.6).abs() < 1e-9);
    assert!((steps[4].cost_ms(&c) - (2.1 + 0.101)).abs() < 1e-9);
    assert_eq!(steps[5].decode_context_tokens, 102);
}

#[test]
fn batching_stays_within_seqs_and_budget_and_everyone_finishes() {
    let c = cfg(4, 48, 100_000);
    let mut s = Scheduler::new(&c);
    for id in 0..20 {
        let len = 10 + (id as u32 * 37) % 90;
        s.add(req(id, &toks(1000 * id as u32, len), 1 + id as u32 % 7));
    }
    let mut max_waiting = 0;
    let mut sampled = Vec::new();
    while s.has_work() {
        let step = s.schedule();
        assert!(step.tokens() <= 48, "budget exceeded: {step:?}");
        assert!(s.num_running() <= 4);
        max_waiting = max_waiting.max(s.num_waiting());
        // Decodes come first and take one token each.
        let decodes = step.decode_seqs as usize;
        assert!(step.work[..decodes].iter().all(|&(_, n)| n == 1));
        sampled.extend(s.finish(&step));
    }
    assert!(max_waiting > 0);
    for id in 0..20u64 {
        let n = sampled.iter().filter(|x| x.id == id).count() as u32;
        assert_eq!(n, 1 + id as u32 % 7, "request {id}");
    }
    assert_eq!(s.kv_usage(), 0.0);
}

#[test]
fn prefix_cache_reuses_whole_blocks_only() {
    let mut s = Scheduler::new(&cfg(4, 64, 4096));
    let a = toks(0, 100);
    assert_eq!(cached_alone(&mut s, 1, &a), 0);
    assert_eq!(cached_alone(&mut s, 2, &a), 96, "floor(100 / 16) blocks");
    // An exact multiple recomputes its last block: the last token needs computing.
    let b = toks(500, 96);
    assert_eq!(cached_alone(&mut s, 3, &b), 0);
    assert_eq!(cached_alone(&mut s, 4, &b), 80);
    // 40 shared tokens then different ones: two whole blocks are shared.
    let mut c = a[..40].to_vec();
    c.extend(toks(9000, 30));
    assert_eq!(cached_alone(&mut s, 5, &c), 32);
    // A different first token shares nothing, even if the rest is equal.
    let mut d = a.clone();
    d[0] = 7777;
    assert_eq!(cached_alone(&mut s, 6, &d), 0);
}

#[test]
fn prefix_cache_off_finds_nothing() {
    let mut c = cfg(4, 64, 4096);
    c.prefix_caching = false;
    let mut s = Scheduler::new(&c);
    assert_eq!(cached_alone(&mut s, 1, &toks(0, 64)), 0);
    s.add(req(2, &toks(0, 64), 1));
    let step = s.schedule();
    assert_eq!(
        (step.prefix_queries, step.prefix_hits, step.prefill_tokens),
        (0, 0, 64)
    );
}

#[test]
fn least_recently_freed_blocks_are_evicted_first() {
    // Four blocks: each 32-token request fills two.
    let mut s = Scheduler::new(&cfg(4, 64, 64));
    let (a, b, c) = (toks(0, 32), toks(100, 32), toks(200, 32));
    assert_eq!(cached_alone(&mut s, 1, &a), 0); // blocks 0, 1
    assert_eq!(cached_alone(&mut s, 2, &b), 0); // never-used blocks 2, 3
    assert_eq!(cached_alone(&mut s, 3, &c), 0); // evicts a's
    assert_eq!(cached_alone(&mut s, 4, &c), 16, "c is the most recent");
    assert_eq!(cached_alone(&mut s, 5, &a), 0, "a was evicted");
}

#[test]
fn preemption_frees_blocks_and_everyone_still_finishes() {
    // Eight blocks; three requests that each grow to four blocks.
    let c = cfg(4, 64, 128);
    let mut s = Scheduler::new(&c);
    for id in 0..3 {
        s.add(req(id, &toks(100 * id as u32, 16), 40));
    }
    let (steps, sampled) = drain(&mut s);
    let preemptions: u64 = steps.iter().map(|s| s.preemptions).sum();
    assert!(preemptions > 0);
    for id in 0..3 {
        let n: Vec<u32> = sampled
            .iter()
            .filter(|x| x.id == id)
            .map(|x| x.generated)
            .collect();
        assert_eq!(n, (1..=40).collect::<Vec<_>>(), "request {id}");
    }
    // The preempted request recomputed prompt and output as prefill.
    let prefill: u64 = steps.iter().map(|s| s.prefill_tokens).sum();
    assert!(prefill > 3 * 16);
    // No step that preempted admitted anyone.
    assert_eq!(s.kv_usage(), 0.0);
}

#[test]
fn the_same_arrivals_give_the_same_steps() {
    let run = || {
        let mut s = Scheduler::new(&cfg(3, 40, 256));
        let shared = toks(0, 48);
        for id in 0..8u64 {
            let mut t = shared[..(16 * (id as usize % 4))].to_vec();
            t.extend(toks(1000 * id as u32, 20));
            s.add(req(id, &t, 5 + id as u32));
        }
        let (steps, sampled) = drain(&mut s);
        let work: Vec<_> = steps.into_iter().map(|s| (s.work, s.preemptions)).collect();
        (work, sampled)
    };
    assert_eq!(run(), run());
}

#[test]
fn cancel_frees_the_blocks() {
    let mut s = Scheduler::new(&cfg(4, 64, 4096));
    s.add(req(1, &toks(0, 100), 50));
    s.add(req(2, &toks(200, 10), 50));
    let step = s.schedule();
    s.finish(&step);
    assert!(s.kv_usage() > 0.0);
    s.cancel(1);
    s.cancel(2);
    assert!(!s.has_work());
    assert_eq!(s.kv_usage(), 0.0);
}

#[test]
fn config_checks_name_the_setting() {
    assert!(EngineConfig::default().validate().is_ok());
    let e = EngineConfig {
        max_num_batched_tokens: 100,
        ..EngineConfig::default()
    };
    let msg = e.validate().unwrap_err();
    assert!(msg.contains("max_num_batched_tokens (100)"), "{msg}");
    let e = EngineConfig {
        kv_capacity_tokens: 1000,
        ..EngineConfig::default()
    };
    assert!(e.validate().unwrap_err().contains("kv_capacity_tokens"));
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimModelArgs,
}

fn parse(args: &[&str]) -> Result<SimConfig, String> {
    let argv = std::iter::once("sim").chain(args.iter().copied());
    Cli::try_parse_from(argv)
        .map_err(|e| e.to_string())?
        .sim
        .into_config()
}

#[test]
fn flags_build_the_config() {
    use clap::CommandFactory;
    Cli::command().debug_assert();
    let d = parse(&[]).unwrap();
    assert_eq!(d.engine, Some(EngineConfig::default()));
    let c = parse(&[
        "--max-num-seqs",
        "8",
        "--no-prefix-caching",
        "--prefill-ms-per-token",
        "0.1",
    ])
    .unwrap();
    let e = c.engine.unwrap();
    assert_eq!(
        (e.max_num_seqs, e.prefix_caching, e.prefill_ms_per_token),
        (8, false, 0.1)
    );
    let c = parse(&[
        "--ideal",
        "--ttft-ms",
        "3",
        "--prefill-ms-per-token",
        "0.5",
        "--seed",
        "9",
    ])
    .unwrap();
    assert!(c.engine.is_none());
    assert_eq!(
        (c.ttft_base_ms, c.prefill_ms_per_token, c.seed),
        (3.0, 0.5, 9)
    );
    let err = parse(&["--ideal", "--max-num-seqs", "8"]).unwrap_err();
    assert!(
        err.contains("--max-num-seqs") && err.contains("--ideal"),
        "{err}"
    );
    let err = parse(&["--tpot-ms", "3"]).unwrap_err();
    assert!(
        err.contains("--tpot-ms") && err.contains("add --ideal"),
        "{err}"
    );
    let err = parse(&["--max-num-seqs", "10000"]).unwrap_err();
    assert!(
        err.contains("--max-num-batched-tokens (default)") && err.contains("--max-num-seqs"),
        "{err}"
    );
    assert!(parse(&["--step-base-ms", "-1"]).is_err());
    assert!(parse(&["--block-size", "0"]).is_err());
}

#[test]
fn config_file_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    let file = path.to_str().unwrap();
    let write = |s: &str| std::fs::write(&path, s).unwrap();

    write(r#"{"model": "m", "engine": {"max_num_seqs": 16, "block_size": 32}}"#);
    let c = parse(&["--config", file, "--block-size", "8"]).unwrap();
    let e = c.engine.unwrap();
    assert_eq!(
        (c.model.as_str(), e.max_num_seqs, e.block_size),
        ("m", 16, 8)
    );
    assert_eq!(
        e.max_num_batched_tokens, 8192,
        "unset keys keep their defaults"
    );

    write(r#"{"engine": {"max_num_sequences": 16}}"#);
    let err = parse(&["--config", file]).unwrap_err();
    assert!(
        err.contains(file) && err.contains("max_num_sequences"),
        "{err}"
    );

    write(r#"{"engine": {"max_num_seqs": 9000}}"#);
    let err = parse(&["--config", file]).unwrap_err();
    assert!(
        err.contains(&format!("\"max_num_seqs\" in {file}")),
        "{err}"
    );

    write(r#"{"engine": null, "tpot_ms": 2}"#);
    let c = parse(&["--config", file, "--ttft-ms", "1"]).unwrap();
    assert!(c.engine.is_none());
    assert_eq!((c.ttft_base_ms, c.tpot_ms), (1.0, 2.0));
    let err = parse(&["--config", file, "--max-num-seqs", "2"]).unwrap_err();
    assert!(err.contains("\"engine\": null"), "{err}");

    write("[1, 2]");
    assert!(
        parse(&["--config", file])
            .unwrap_err()
            .contains("JSON object")
    );
    let missing = dir.path().join("missing.json");
    let err = parse(&["--config", missing.to_str().unwrap()]).unwrap_err();
    assert!(err.contains("missing.json"), "{err}");
}
