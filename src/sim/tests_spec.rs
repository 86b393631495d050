//! Speculative decoding in the simulator (`spec.rs`): several tokens per event, one
//! step's time for them, vLLM's counters on `/metrics`, and the flags' checks.

use serde_json::Value;
use tokio::time::Instant;

use super::spec::SpecDecoding;
use super::tests::{Resp, chat_body, post, start, words};
use super::tests_engine::{engine, metric, scrape, small};
use super::{SimConfig, SimServer};
use crate::cli::sim::SimModelArgs;

fn spec(tokens: u32, acceptance: f64) -> Option<SpecDecoding> {
    Some(SpecDecoding { tokens, acceptance })
}

/// Output words per content event.
fn sizes(resp: &Resp) -> Vec<usize> {
    resp.chunks()
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .filter(|s| !s.is_empty())
        .map(words)
        .collect()
}

fn usage(resp: &Resp) -> Value {
    resp.chunks().last().unwrap()["usage"].clone()
}

async fn spec_counters(sim: &SimServer) -> [f64; 3] {
    let m = scrape(sim).await;
    [
        metric(&m, "vllm:spec_decode_num_drafts_total"),
        metric(&m, "vllm:spec_decode_num_draft_tokens_total"),
        metric(&m, "vllm:spec_decode_num_accepted_tokens_total"),
    ]
}

#[tokio::test]
async fn engine_steps_stream_accepted_tokens_and_a_bonus_in_one_event() {
    let sim = start(SimConfig {
        spec: spec(3, 1.0),
        ..engine(small())
    });
    let resp = post(&sim, "/v1/chat/completions", chat_body("hi", 40, true)).await;
    // The prefill's token alone, then 1 + 3 per step, the last cut at max_tokens.
    assert_eq!(sizes(&resp), [1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3]);
    assert_eq!(usage(&resp)["completion_tokens"], 40);
    // Accepted tokens count even where max_tokens cut them, as in vLLM.
    assert_eq!(spec_counters(&sim).await, [10.0, 30.0, 30.0]);
    let m = scrape(&sim).await;
    assert_eq!(metric(&m, "vllm:generation_tokens_total"), 40.0);
    let pos = "vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"servescope-sim\",position=\"2\"}";
    assert_eq!(m[pos], 10.0);
    assert_eq!(sim.stats().steps, 11, "one step per event");

    // Nothing accepted: one token per step, every draft token still counted.
    let none = start(SimConfig {
        spec: spec(2, 0.0),
        ..engine(small())
    });
    let resp = post(&none, "/v1/chat/completions", chat_body("hi", 5, true)).await;
    assert_eq!(sizes(&resp), [1, 1, 1, 1, 1]);
    assert_eq!(spec_counters(&none).await, [4.0, 8.0, 0.0]);
}

#[tokio::test]
async fn without_spec_decoding_metrics_have_no_spec_counters() {
    let sim = start(engine(small()));
    let resp = post(&sim, "/v1/chat/completions", chat_body("hi", 4, true)).await;
    assert_eq!(sizes(&resp), [1, 1, 1, 1]);
    assert!(!scrape(&sim).await.keys().any(|k| k.contains("spec_decode")));
}

#[tokio::test]
async fn ideal_steps_take_one_tpot_each() {
    let tpot = 20.0;
    let sim = start(SimConfig {
        ttft_base_ms: 5.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: tpot,
        spec: spec(3, 1.0),
        ..SimConfig::ideal()
    });
    let t0 = Instant::now();
    let resp = post(&sim, "/v1/chat/completions", chat_body("hi", 13, true)).await;
    let took = t0.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(sizes(&resp), [1, 4, 4, 4]);
    // Three steps after the first token: never earlier (the timer is exact), and far
    // from the 12 tokens' 240 ms a one-token step would take.
    assert!(took >= 5.0 + 3.0 * tpot, "{took}");
    assert!(took < 5.0 + 12.0 * tpot, "{took}");
    assert_eq!(spec_counters(&sim).await, [3.0, 9.0, 9.0]);

    // A non-streamed answer counts its steps too.
    let resp = post(&sim, "/v1/chat/completions", chat_body("hi", 5, false)).await;
    assert_eq!(resp.json()["usage"]["completion_tokens"], 5);
    // 1 + 4 tokens: one more draft.
    assert_eq!(spec_counters(&sim).await, [4.0, 12.0, 12.0]);
}

#[test]
fn flags_are_checked() {
    let args = |k: Option<u32>, p: Option<f64>| SimModelArgs {
        spec_tokens: k,
        acceptance: p,
        ..SimModelArgs::default()
    };
    let cfg = args(Some(4), None).into_config().unwrap();
    assert_eq!(cfg.spec, spec(4, 0.7), "the default acceptance");
    let cfg = args(Some(2), Some(0.5)).into_config().unwrap();
    assert_eq!(cfg.spec, spec(2, 0.5));
    assert_eq!(args(None, None).into_config().unwrap().spec, None);
    let e = args(None, Some(0.5)).into_config().unwrap_err();
    assert!(e.contains("--acceptance needs --spec-tokens"), "{e}");
    let e = SimModelArgs {
        tokens_per_chunk: Some(2),
        ..args(Some(2), None)
    }
    .into_config()
    .unwrap_err();
    assert!(e.contains("--tokens-per-chunk"), "{e}");
    // Through clap: out-of-range values name the flag.
    use clap::Parser;
    let e = crate::cli::Cli::try_parse_from(["servescope", "sim", "--acceptance", "1.5"]);
    assert!(e.unwrap_err().to_string().contains("--acceptance"));
    let e = crate::cli::Cli::try_parse_from(["servescope", "sim", "--spec-tokens", "0"]);
    assert!(e.unwrap_err().to_string().contains("--spec-tokens"));
}

#[test]
fn a_config_file_spec_is_checked_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    std::fs::write(&path, r#"{"spec": {"tokens": 0, "acceptance": 0.5}}"#).unwrap();
    let e = SimModelArgs {
        config: Some(path.clone()),
        ..SimModelArgs::default()
    }
    .into_config()
    .unwrap_err();
    assert!(
        e.contains("\"spec.tokens\" in") && e.contains("expected 1 to 64"),
        "{e}"
    );
    std::fs::write(&path, r#"{"spec": {"tokens": 2, "acceptance": 0.25}}"#).unwrap();
    let cfg = SimModelArgs {
        config: Some(path),
        ..SimModelArgs::default()
    }
    .into_config()
    .unwrap();
    assert_eq!(cfg.spec, spec(2, 0.25));
}
