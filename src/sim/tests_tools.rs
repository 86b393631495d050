//! Tool calls over raw HTTP: the stream's shape, the choice, the share under "auto".

use serde_json::{Value, json};

use super::SimConfig;
use super::tests::{post, start};

fn fast() -> SimConfig {
    SimConfig {
        ttft_base_ms: 1.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 0.2,
        ..SimConfig::ideal()
    }
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "search"}}
    ])
}

fn body(prompt: &str, n: u32, stream: bool, choice: Option<Value>) -> Value {
    let mut b = json!({
        "model": "m", "messages": [{"role": "user", "content": prompt}],
        "max_tokens": n, "ignore_eos": true, "stream": stream,
        "stream_options": {"include_usage": true}, "tools": tools(),
    });
    if let Some(c) = choice {
        b["tool_choice"] = c;
    }
    b
}

#[tokio::test]
async fn a_streamed_tool_call_has_a_header_then_one_token_per_arguments_piece() {
    let sim = start(fast());
    let named = json!({"type": "function", "function": {"name": "search"}});
    let resp = post(
        &sim,
        "/v1/chat/completions",
        body("hi", 6, true, Some(named)),
    )
    .await;
    assert_eq!(resp.status, 200);
    let chunks = resp.chunks();
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0).map(|ch| &ch["delta"]))
        .collect();
    // Role chunk, the call's header, six arguments pieces, the finish chunk.
    let header = &deltas[1]["tool_calls"][0];
    assert_eq!(header["type"], "function");
    assert_eq!(header["function"]["name"], "search");
    assert!(header["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(header["function"]["arguments"], "");
    let pieces: Vec<&str> = deltas[2..8]
        .iter()
        .map(|d| {
            d["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(pieces.len(), 6);
    let args: Value = serde_json::from_str(&pieces.concat()).unwrap();
    assert!(args["q"].is_string(), "{args}");
    assert!(
        // No answer text (the role chunk's content is empty).
        deltas
            .iter()
            .all(|d| d.get("content").is_none_or(|c| c.is_null() || c == ""))
    );
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 6);
}

#[tokio::test]
async fn none_answers_with_content_and_a_whole_response_carries_the_call() {
    let sim = start(fast());
    let resp = post(
        &sim,
        "/v1/chat/completions",
        body("hi", 3, true, Some(json!("none"))),
    )
    .await;
    let chunks = resp.chunks();
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none())
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["delta"]["content"].is_string())
    );
    let resp = post(
        &sim,
        "/v1/chat/completions",
        body("hi", 1, false, Some(json!("required"))),
    )
    .await;
    let doc = resp.json();
    let choice = &doc["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(
        call["function"]["arguments"], "{}",
        "one token: an empty object"
    );
    assert_eq!(doc["usage"]["completion_tokens"], 1);
}

#[tokio::test]
async fn auto_calls_a_tool_for_the_configured_share() {
    let sim = start(SimConfig {
        tool_call_share: 0.5,
        ..fast()
    });
    let mut called = 0;
    for i in 0..40 {
        let resp = post(
            &sim,
            "/v1/chat/completions",
            body(&format!("p{i}"), 2, false, None),
        )
        .await;
        called += usize::from(resp.json()["choices"][0]["finish_reason"] == "tool_calls");
    }
    assert!((8..=32).contains(&called), "{called} of 40 at 0.5");
    let never = start(SimConfig {
        tool_call_share: 0.0,
        ..fast()
    });
    let resp = post(
        &never,
        "/v1/chat/completions",
        body("p", 2, false, Some(json!("auto"))),
    )
    .await;
    assert_eq!(resp.json()["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn a_choice_naming_no_tool_is_a_400() {
    let sim = start(fast());
    let named = json!({"type": "function", "function": {"name": "nope"}});
    let resp = post(
        &sim,
        "/v1/chat/completions",
        body("hi", 2, true, Some(named)),
    )
    .await;
    assert_eq!(resp.status, 400);
    assert!(String::from_utf8_lossy(&resp.body).contains("nope"));
}

#[test]
fn the_share_flag_and_config_key_are_checked() {
    use crate::cli::SimModelArgs;
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimModelArgs,
    }
    let parse = |args: &[&str]| -> Result<SimConfig, String> {
        let argv = std::iter::once("sim").chain(args.iter().copied());
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .sim
            .into_config()
    };
    assert_eq!(parse(&[]).unwrap().tool_call_share, 1.0);
    assert_eq!(
        parse(&["--tool-call-share", "0.25"])
            .unwrap()
            .tool_call_share,
        0.25
    );
    let err = parse(&["--tool-call-share", "1.5"]).unwrap_err();
    assert!(err.contains("expected a probability from 0 to 1"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    std::fs::write(&path, r#"{"tool_call_share": 2}"#).unwrap();
    let err = parse(&["--config", path.to_str().unwrap()]).unwrap_err();
    assert!(
        err.contains("\"tool_call_share\" in") && err.contains("got 2"),
        "{err}"
    );
}
