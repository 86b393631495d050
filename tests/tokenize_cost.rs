//! What `--tokenizer server` costs to build prompts: 1,000 prompts of 1,024 tokens
//! against the built-in simulator's vLLM-shaped `/tokenize`, beside the same with the
//! local tokenizer. A measurement, not a check: run it with
//! `cargo test --release --test tokenize_cost -- --ignored --nocapture`
//! (bench/tokenize-server.md records the figures).

use std::time::Instant;

use servescope::sim::{SimConfig, SimServer};
use servescope::workload::prepare::{PromptSource, WorkloadSpec, prepare_ids};
use servescope::workload::server_tok::ServerSpec;
use servescope::workload::synthetic::{LengthSpec, SyntheticKind, SyntheticPrompts};
use servescope::workload::{EncodeBody, Prompt, Tokenizer};

struct Plain;

impl EncodeBody for Plain {
    fn encode(&self, prompt: Prompt<'_>, _max_tokens: u32) -> bytes::Bytes {
        match prompt {
            Prompt::Text(t) => bytes::Bytes::copy_from_slice(t.as_bytes()),
            _ => bytes::Bytes::new(),
        }
    }
}

/// Seconds to resolve the prompt kind (the server's safe-word probe) and to build
/// 1,000 prompts of 1,024 tokens.
fn cost(tok: &Tokenizer, kind: SyntheticKind) -> (f64, f64) {
    let t0 = Instant::now();
    let (prompts, note) = SyntheticPrompts::resolve(kind, tok);
    assert!(note.is_none(), "{note:?}");
    let resolved = t0.elapsed().as_secs_f64();
    let spec = WorkloadSpec {
        source: PromptSource::Synthetic {
            input_len: LengthSpec::Fixed(1024),
            prompts,
        },
        output_len: LengthSpec::Fixed(1),
        seed: 0,
        token_ids: false,
        models: None,
        images: None,
    };
    let ids: Vec<u64> = (0..1000).collect();
    let t1 = Instant::now();
    let reqs = prepare_ids(&spec, &Plain, tok, 0, &ids, &|| false).unwrap();
    let built = t1.elapsed().as_secs_f64();
    assert_eq!(reqs.len(), 1000);
    assert!(reqs.iter().all(|r| r.input_tokens == 1024));
    (resolved, built)
}

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn prompt_building_cost_with_the_servers_tokenizer() {
    let sim = SimServer::start(SimConfig::default(), ([127, 0, 0, 1], 0).into()).unwrap();
    let spec = ServerSpec {
        root: reqwest::Url::parse(&sim.url()).unwrap(),
        model: "sim".into(),
        auth: None,
        headers: Default::default(),
        insecure: false,
    };
    let t0 = Instant::now();
    let server = Tokenizer::server(spec).unwrap();
    let detect = t0.elapsed().as_secs_f64();
    let local = Tokenizer::builtin();
    println!("detect the tokenize shape: {:.3} s", detect);
    for (name, tok) in [("builtin:cl100k", &local), ("server", &server)] {
        for kind in [SyntheticKind::Words, SyntheticKind::RandomIds] {
            let (resolved, built) = cost(tok, kind);
            println!(
                "{name:15} {kind:?}: resolve {resolved:.3} s, 1,000 prompts of 1,024 tokens {built:.3} s"
            );
        }
    }
}
