//! The request body of the OpenAI Responses API (`POST /v1/responses`): the prompt as
//! `input` (text, or a chat history as input items), `max_output_tokens`, streaming.

use serde_json::{Map, Value, json};

use super::openai::{BodyOptions, PromptBody};
use crate::workload::tools::{ToolSet, responses_tools};

/// The JSON body of one streaming Responses request; `--extra-body` is merged last.
/// `tools`: this request's own (a dataset entry's), else the run's `--tools`, sent in the
/// Responses API's flattened shape.
pub fn build_body(
    opts: &BodyOptions,
    prompt: PromptBody<'_>,
    max_tokens: u32,
    tools: Option<&ToolSet>,
) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("model".into(), json!(opts.model));
    let input = match prompt {
        PromptBody::Text(t) => json!(t),
        PromptBody::Messages(m) => input_items(m),
        // Options refuse token ids for this API (--prompt-token-ids needs completions);
        // were some to slip through, the server answers 400: a failed request, no panic.
        PromptBody::TokenIds(ids) => json!(ids),
    };
    body.insert("input".into(), input);
    body.insert("max_output_tokens".into(), json!(max_tokens));
    body.insert("temperature".into(), json!(0));
    body.insert("stream".into(), json!(true));
    // A benchmark's responses are not worth keeping on the server (OpenAI keeps them by
    // default; vLLM ignores the flag unless its store is enabled).
    body.insert("store".into(), json!(false));
    if opts.ignore_eos {
        // vLLM's Responses route takes it as its chat route does; others ignore it.
        body.insert("ignore_eos".into(), json!(true));
    }
    if let Some(set) = tools.or(opts.tools.run.as_ref()) {
        // Parsed per request: tools with the Responses API are rare enough not to keep a
        // second serialised copy.
        let chat: Value = serde_json::from_str(set.json()).unwrap_or(Value::Null);
        body.insert("tools".into(), responses_tools(&chat));
        if let Some(choice) = &opts.tools.choice {
            let chat: Value = serde_json::from_str(choice).unwrap_or(Value::Null);
            body.insert("tool_choice".into(), responses_choice(chat));
        }
    }
    for (k, v) in &opts.extra {
        body.insert(k.clone(), v.clone());
    }
    serde_json::to_vec(&Value::Object(body)).expect("a JSON map always serializes")
}

/// A chat-shape named choice `{"type":"function","function":{"name":N}}` as the Responses
/// API's `{"type":"function","name":N}`; "auto", "none" and "required" are the same.
fn responses_choice(chat: Value) -> Value {
    match chat.pointer("/function/name") {
        Some(name) => json!({"type": "function", "name": name}),
        None => chat,
    }
}

/// A chat `messages` list as Responses input items. Every message becomes a
/// `"type": "message"` item (llama.cpp refuses an assistant message without it); text
/// and image content parts take their Responses names; a `tool` message becomes a
/// `function_call_output` and an assistant's `tool_calls` `function_call` items.
/// Anything else is passed as it is, for the server to judge.
pub fn input_items(messages: &Value) -> Value {
    let Some(list) = messages.as_array() else {
        return messages.clone();
    };
    let mut items = Vec::with_capacity(list.len());
    for m in list {
        let Some(obj) = m.as_object() else {
            items.push(m.clone());
            continue;
        };
        let role = obj.get("role").and_then(Value::as_str).unwrap_or("user");
        if role == "tool" {
            items.push(json!({
                "type": "function_call_output",
                "call_id": obj.get("tool_call_id").cloned().unwrap_or(Value::Null),
                "output": text_of(obj.get("content")),
            }));
            continue;
        }
        let calls = obj.get("tool_calls").and_then(Value::as_array);
        let content = obj.get("content").filter(|c| !c.is_null());
        if content.is_some() || calls.is_none() {
            let content = match content {
                Some(Value::Array(parts)) => {
                    Value::Array(parts.iter().map(|p| content_part(p, role)).collect())
                }
                Some(c) => c.clone(),
                None => json!(""),
            };
            items.push(json!({"type": "message", "role": role, "content": content}));
        }
        for call in calls.into_iter().flatten() {
            let f = call.get("function");
            let field = |v: Option<&Value>| v.cloned().unwrap_or(Value::Null);
            items.push(json!({
                "type": "function_call",
                "call_id": field(call.get("id")),
                "name": field(f.and_then(|f| f.get("name"))),
                "arguments": field(f.and_then(|f| f.get("arguments"))),
            }));
        }
    }
    Value::Array(items)
}

/// A chat content part under its Responses name: text is `input_text` (or the
/// assistant's `output_text`), an `image_url` part an `input_image`.
fn content_part(part: &Value, role: &str) -> Value {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => {
            let kind = if role == "assistant" {
                "output_text"
            } else {
                "input_text"
            };
            json!({"type": kind, "text": part.get("text").cloned().unwrap_or(json!(""))})
        }
        Some("image_url") => {
            let url = match part.get("image_url") {
                Some(Value::Object(o)) => o.get("url").cloned().unwrap_or(Value::Null),
                Some(other) => other.clone(),
                None => Value::Null,
            };
            json!({"type": "input_image", "image_url": url})
        }
        _ => part.clone(),
    }
}

/// A tool result's content as the one string `function_call_output` takes.
fn text_of(content: Option<&Value>) -> Value {
    match content {
        None | Some(Value::Null) => json!(""),
        Some(Value::String(s)) => json!(s),
        Some(Value::Array(parts)) => json!(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<String>()
        ),
        Some(other) => json!(other.to_string()),
    }
}
