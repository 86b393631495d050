use super::*;
use crate::client::openai::{Api, BodyOptions, PromptBody, build_body};
use serde_json::{Map, json};

fn parse(s: &str) -> (ChunkInfo, String) {
    let mut text = String::new();
    let info = parse_event(s.as_bytes(), &mut text).unwrap();
    let mut slow = String::new();
    let reference = parse_event_reference(s, &mut slow).unwrap();
    assert_eq!(info, reference, "{s}");
    assert_eq!(text, slow, "{s}");
    (info, text)
}

/// The scanner took the event itself (the reference was not needed).
fn fast(s: &str) -> bool {
    scan_event(s, &mut String::new()).is_some()
}

// Shapes as the servers send them: vLLM (pydantic field order: `type` last), OpenAI's
// reference (type first), llama.cpp (few fields).
const VLLM_DELTA: &str = r#"{"content_index":0,"delta":" world","item_id":"msg_9f","logprobs":[],"output_index":0,"sequence_number":5,"type":"response.output_text.delta"}"#;
const OPENAI_DELTA: &str = r#"{"type":"response.output_text.delta","item_id":"msg_123","output_index":0,"content_index":0,"delta":"In","sequence_number":1}"#;
const LLAMA_DELTA: &str =
    r#"{"type":"response.output_text.delta","item_id":"msg_4kEn","delta":"'m"}"#;

#[test]
fn text_deltas_are_answer_output_in_any_field_order() {
    for (event, want) in [
        (VLLM_DELTA, " world"),
        (OPENAI_DELTA, "In"),
        (LLAMA_DELTA, "'m"),
    ] {
        let (i, t) = parse(event);
        assert_eq!(i.kinds, EventKinds::ANSWER, "{event}");
        assert!(!i.finished && i.usage.is_none() && i.error.is_none());
        assert_eq!(t, want);
        assert!(fast(event), "{event} should take the fast path");
    }
    let (i, t) = parse(r#"{"type":"response.output_text.delta","delta":"a\n\"b\" \u00e9"}"#);
    assert_eq!((i.kinds, t.as_str()), (EventKinds::ANSWER, "a\n\"b\" é"));
    let (i, _) = parse(r#"{"type":"response.refusal.delta","delta":"no"}"#);
    assert_eq!(i.kinds, EventKinds::ANSWER);
}

#[test]
fn reasoning_and_tool_call_deltas_are_classified() {
    let (i, t) = parse(
        r#"{"content_index":0,"delta":"Let me think","item_id":"rs_1","output_index":0,"sequence_number":3,"type":"response.reasoning_text.delta"}"#,
    );
    assert!(i.kinds == EventKinds::REASONING && t == "Let me think");
    let (i, _) = parse(
        r#"{"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":0,"delta":"**Plan**","sequence_number":4}"#,
    );
    assert_eq!(i.kinds, EventKinds::REASONING);
    let (i, t) = parse(
        r#"{"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":1,"delta":"{\"loc","sequence_number":9}"#,
    );
    assert!(i.kinds == EventKinds::TOOL && t == "{\"loc");
    let (i, _) = parse(r#"{"type":"response.mcp_call_arguments.delta","delta":"{}"}"#);
    assert_eq!(i.kinds, EventKinds::TOOL);
}

#[test]
fn bookkeeping_events_and_empty_deltas_are_not_output() {
    for event in [
        r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":1741290958,"status":"in_progress","output":[],"usage":null}}"#,
        r#"{"type":"response.in_progress","response":{"id":"resp_1","object":"response","status":"in_progress"}}"#,
        r#"{"type":"response.output_item.added","output_index":0,"item":{"id":"msg_1","status":"in_progress","type":"message","role":"assistant","content":[]},"sequence_number":2}"#,
        r#"{"type":"response.content_part.added","item_id":"msg_1","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]},"sequence_number":3}"#,
        r#"{"type":"response.output_text.done","item_id":"msg_1","output_index":0,"content_index":0,"text":"Hello world","sequence_number":7}"#,
        r#"{"type":"response.function_call_arguments.done","item_id":"fc_1","output_index":1,"arguments":"{}","sequence_number":10}"#,
        r#"{"type":"response.output_text.delta","item_id":"msg_1","delta":""}"#,
        r#"{"type":"response.output_text.delta","delta":null}"#,
        r#"{"type":"response.output_text.delta","delta":{"content":["x"]}}"#,
        r#"{"type":"response.output_text.annotation.added","annotation":{"type":"url_citation"}}"#,
        r#"{"delta":"no type"}"#,
        r#"{}"#,
    ] {
        let (i, t) = parse(event);
        assert!(
            !i.kinds.any() && !i.finished && i.error.is_none(),
            "{event}"
        );
        assert!(t.is_empty(), "{event}");
    }
}

#[test]
fn completed_and_incomplete_end_the_response_with_usage() {
    // vLLM: type last, the whole response (its output text again) before it.
    let (i, t) = parse(
        r#"{"response":{"id":"resp_1","created_at":1,"incomplete_details":null,"model":"m","object":"response","output":[{"id":"msg_1","content":[{"annotations":[],"text":"Hello world","type":"output_text"}],"role":"assistant","status":"completed","type":"message"}],"status":"completed","usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":8},"output_tokens":40,"output_tokens_details":{"reasoning_tokens":30},"total_tokens":52}},"sequence_number":9,"type":"response.completed"}"#,
    );
    assert!(i.finished && !i.kinds.any() && t.is_empty());
    let u = i.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(12), Some(40)));
    assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, Some(8));
    assert_eq!(u.reasoning_tokens(), Some(30));
    // llama.cpp: no reasoning details, timings beside the response.
    let (i, _) = parse(
        r#"{"type":"response.completed","response":{"id":"resp_k","object":"response","status":"completed","usage":{"input_tokens":32,"output_tokens":5,"total_tokens":37,"input_tokens_details":{"cached_tokens":0}}},"timings":{"prompt_n":32}}"#,
    );
    let u = i.usage.unwrap();
    assert!(i.finished && u.completion_tokens == Some(5) && u.reasoning_tokens().is_none());
    // OpenAI's capped response: a success that ends the stream.
    let incomplete = r#"{"type":"response.incomplete","response":{"id":"resp_2","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":3,"output_tokens":16}},"sequence_number":20}"#;
    let (i, _) = parse(incomplete);
    assert!(i.finished && i.error.is_none());
    assert_eq!(i.usage.unwrap().completion_tokens, Some(16));
    assert!(fast(incomplete));
}

#[test]
fn failures_carry_the_server_message() {
    let (i, _) = parse(
        r#"{"type":"response.failed","response":{"id":"resp_3","status":"failed","error":{"code":"server_error","message":"The model crashed"},"usage":null},"sequence_number":4}"#,
    );
    assert_eq!(i.error.as_deref(), Some("The model crashed"));
    assert!(!i.finished && !i.kinds.any());
    let (i, _) = parse(r#"{"type":"response.failed","response":{"status":"failed"}}"#);
    assert!(i.error.unwrap().contains("response.failed"));
    let (i, t) = parse(
        r#"{"type":"error","code":"ERR_SOMETHING","message":"Something went wrong","param":null,"sequence_number":1}"#,
    );
    assert_eq!(i.error.as_deref(), Some("Something went wrong"));
    assert!(t.is_empty());
    // A gateway's error object, whatever the type.
    let (i, t) = parse(
        r#"{"type":"response.output_text.delta","delta":"x","error":{"message":"overloaded"}}"#,
    );
    assert!(i.error.as_deref() == Some("overloaded") && !i.kinds.any() && t.is_empty());
    let (i, _) = parse(r#"{"type":"error"}"#);
    assert_eq!(i.error.as_deref(), Some("error event"));
}

#[test]
fn malformed_events_are_errors() {
    for bad in [
        "not json",
        r#"{"type":"response.output_text.delta","delta":"x""#,
        r#"{"type":7}"#,
        r#"{"type":"response.completed","response":{"usage":{"output_tokens":-1}}}"#,
    ] {
        assert!(
            parse_event(bad.as_bytes(), &mut String::new()).is_err(),
            "{bad}"
        );
    }
    assert!(parse_event(b"\xff\xfe", &mut String::new()).is_err());
}

#[test]
fn the_body_carries_input_and_max_output_tokens() {
    let mut extra = Map::new();
    extra.insert("temperature".into(), json!(0.6));
    extra.insert("reasoning".into(), json!({"effort": "low"}));
    let opts = BodyOptions {
        batch_inputs: 1,
        tools: Default::default(),
        api: Api::Responses,
        model: "m".into(),
        ignore_eos: true,
        extra,
    };
    let b: Value = serde_json::from_slice(&build_body(&opts, PromptBody::Text("hi"), 32)).unwrap();
    assert_eq!(b["input"], "hi");
    assert_eq!(b["max_output_tokens"], 32);
    assert_eq!(
        (b["stream"].clone(), b["store"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(b["ignore_eos"], true);
    assert_eq!(b["temperature"], 0.6, "--extra-body is merged last");
    assert_eq!(b["reasoning"]["effort"], "low");
    for absent in ["messages", "max_tokens", "stream_options", "prompt"] {
        assert!(b.get(absent).is_none(), "{absent}");
    }
}

#[test]
fn chat_messages_become_input_items() {
    let messages = json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}
        ]},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        {"role": "assistant", "content": [{"type": "text", "text": "It is 42."}]},
        {"role": "user", "content": "Thanks"}
    ]);
    let opts = BodyOptions {
        batch_inputs: 1,
        tools: Default::default(),
        api: Api::Responses,
        model: "m".into(),
        ignore_eos: false,
        extra: Map::new(),
    };
    let b: Value =
        serde_json::from_slice(&build_body(&opts, PromptBody::Messages(&messages), 8)).unwrap();
    assert!(b.get("ignore_eos").is_none());
    assert_eq!(
        b["input"],
        json!([
            {"type": "message", "role": "system", "content": "Be brief."},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA"}
            ]},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "42"},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "It is 42."}
            ]},
            {"type": "message", "role": "user", "content": "Thanks"}
        ])
    );
}

#[test]
fn tools_go_in_the_responses_shape() {
    use crate::workload::tools::{BodyTools, ToolChoice, ToolSet};
    let set = ToolSet::from_value(&json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]))
    .unwrap();
    let own = ToolSet::from_value(&json!([
        {"type": "function", "function": {"name": "lookup"}}
    ]))
    .unwrap();
    let opts = BodyOptions {
        batch_inputs: 1,
        tools: BodyTools::new(Some(set), Some(&ToolChoice::Named("get_weather".into()))),
        api: Api::Responses,
        model: "m".into(),
        ignore_eos: false,
        extra: Map::new(),
    };
    let b: Value = serde_json::from_slice(&build_body(&opts, PromptBody::Text("hi"), 8)).unwrap();
    assert_eq!(
        b["tools"],
        json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}])
    );
    assert_eq!(
        b["tool_choice"],
        json!({"type": "function", "name": "get_weather"})
    );
    let body =
        crate::client::openai::build_body_with_tools(&opts, PromptBody::Text("hi"), 8, Some(&own));
    let b: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        b["tools"][0]["name"], "lookup",
        "an entry's own tools replace the run's"
    );
    let none = BodyOptions {
        batch_inputs: 1,
        tools: Default::default(),
        ..opts
    };
    let b: Value = serde_json::from_slice(&build_body(&none, PromptBody::Text("hi"), 8)).unwrap();
    assert!(b.get("tools").is_none() && b.get("tool_choice").is_none());
}
