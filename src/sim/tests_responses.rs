//! `/v1/responses` on the wire: the event sequence, usage, the engine's cache report,
//! faults, and the request's own fields.

use serde_json::{Value, json};

use super::engine::EngineConfig;
use super::tests::{Resp, post, start};
use super::{FaultConfig, FaultKind, SimConfig};
use crate::workload::Tokenizer;

fn fast() -> SimConfig {
    SimConfig {
        ttft_base_ms: 2.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 1.0,
        ..SimConfig::ideal()
    }
}

fn body(input: Value, max: u32, stream: bool) -> Value {
    json!({"model": "m", "input": input, "max_output_tokens": max, "stream": stream,
           "store": false, "ignore_eos": true})
}

/// Every event's data, parsed (each comes after its `event:` line).
fn events(resp: &Resp) -> Vec<Value> {
    String::from_utf8_lossy(&resp.body)
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// The `type` of every event, and that each matches its `event:` line's order.
fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_stream_is_the_openai_event_sequence_with_usage() {
    let sim = start(fast());
    let prompt = "Tell me about benchmarks, please.";
    let resp = post(&sim, "/v1/responses", body(json!(prompt), 4, true)).await;
    assert_eq!(resp.status, 200);
    let events = events(&resp);
    let mut want = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    want.extend(["response.output_text.delta"; 4]);
    want.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types(&events), want);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64, "{e}");
    }
    // The `event:` lines name the same types, in order.
    let raw = String::from_utf8_lossy(&resp.body);
    let named: Vec<&str> = raw
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(named, want);
    let item = events[2]["item"]["id"].as_str().unwrap();
    let mut text = String::new();
    for d in &events[4..8] {
        assert_eq!(d["item_id"], item);
        text += d["delta"].as_str().unwrap();
    }
    assert_eq!(events[8]["text"], text.as_str());
    let done = &events[11]["response"];
    assert_eq!(done["status"], "incomplete", "ignore_eos: capped");
    assert_eq!(done["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(done["output"][0]["content"][0]["text"], text.as_str());
    let p = Tokenizer::builtin().count(prompt) as u64;
    assert_eq!(
        done["usage"],
        json!({"input_tokens": p, "output_tokens": 4,
               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": p + 4})
    );
    assert_eq!(Tokenizer::builtin().count(&text), 4);
    let st = sim.stats();
    assert_eq!((st.requests, st.completed, st.output_tokens), (1, 1, 4));
}

#[tokio::test]
async fn input_items_count_as_prompt_and_eos_ends_early() {
    let sim = start(fast());
    let items = json!([
        {"type": "message", "role": "system", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi there"}]},
        {"type": "function_call_output", "call_id": "c", "output": "42"}
    ]);
    let mut b = body(items, 200, true);
    b["ignore_eos"] = json!(false);
    b["instructions"] = json!("Answer well.");
    let resp = post(&sim, "/v1/responses", b).await;
    let events = events(&resp);
    let done = &events.last().unwrap()["response"];
    let tok = Tokenizer::builtin();
    let p: usize = ["Answer well.", "Be brief.", "Hi there", "42"]
        .iter()
        .map(|t| tok.count(t))
        .sum();
    assert_eq!(done["usage"]["input_tokens"], p as u64);
    let n = done["usage"]["output_tokens"].as_u64().unwrap();
    // A deterministic EOS below the cap is a completed response.
    if n < 200 {
        assert_eq!(done["status"], "completed");
        assert!(done["incomplete_details"].is_null());
    }
}

#[tokio::test]
async fn a_whole_response_and_bad_requests() {
    let sim = start(fast());
    let resp = post(&sim, "/v1/responses", body(json!("hello"), 3, false)).await;
    assert_eq!(resp.status, 200);
    let doc = resp.json();
    assert_eq!(doc["object"], "response");
    assert_eq!(doc["usage"]["output_tokens"], 3);
    let text = doc["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(Tokenizer::builtin().count(text), 3);
    for (bad, needle) in [
        (json!({"model": "m", "stream": true}), "'input' is required"),
        (
            body(json!("x"), 0, true),
            "max_output_tokens must be at least 1",
        ),
    ] {
        let r = post(&sim, "/v1/responses", bad).await;
        assert_eq!(r.status, 400);
        let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{msg}");
    }
}

#[tokio::test]
async fn the_engine_reports_cache_hits_as_cached_tokens() {
    let sim = start(SimConfig {
        engine: Some(EngineConfig {
            step_base_ms: 0.2,
            ..EngineConfig::default()
        }),
        ..SimConfig::default()
    });
    let prompt = "word ".repeat(300);
    let mut cached = Vec::new();
    for _ in 0..2 {
        let resp = post(&sim, "/v1/responses", body(json!(prompt), 2, true)).await;
        let last = events(&resp).pop().unwrap();
        cached.push(last["response"]["usage"]["input_tokens_details"]["cached_tokens"].clone());
    }
    assert_eq!(cached[0], 0);
    assert!(cached[1].as_u64().unwrap() > 200, "{cached:?}");
}

#[tokio::test]
async fn an_error_fault_is_a_responses_error_event() {
    let mut faults = FaultConfig::default();
    faults.spec_mut(FaultKind::ErrorEvent).at = [0].into_iter().collect();
    let sim = start(SimConfig { faults, ..fast() });
    let resp = post(&sim, "/v1/responses", body(json!("hello"), 6, true)).await;
    let events = events(&resp);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert!(
        last["message"].as_str().unwrap().contains("failed"),
        "{last}"
    );
    let deltas = types(&events)
        .iter()
        .filter(|t| *t == "response.output_text.delta")
        .count();
    assert_eq!(deltas, 3, "half the tokens, then the error");
    assert!(!types(&events).contains(&"response.completed".to_string()));
}
