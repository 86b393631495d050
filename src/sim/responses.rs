//! The OpenAI Responses API (`POST /v1/responses`) over the chat route's engine, timing
//! and faults (`http::serve`, `stream::produce`): only the request body and the events
//! written differ. A stream is, as vLLM sends it: `response.created`,
//! `response.in_progress`, then for each output item `response.output_item.added`,
//! `response.content_part.added`, one delta event per chunk of tokens, its `….done`,
//! `response.content_part.done`, `response.output_item.done`; last `response.completed`
//! (status `incomplete` when `max_output_tokens` cut it short) with `usage`. Each event
//! has its `event:` line and its `type` (last, as vLLM's serializer puts it). A request
//! with `tools` may be answered by a `function_call` item instead (`tools.rs` decides):
//! its arguments stream as `response.function_call_arguments.delta` events.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Shared;
use super::faults;
use super::http::{self, Parsed};
use super::stream::{Events, Kind, Plan, Prompt};
use super::tools::{RawTool, RequestTools};

pub(super) async fn responses(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let image_tokens = shared.config.image_tokens;
    let read = move |body: &[u8]| parse(body, image_tokens);
    http::serve(shared, Kind::Chat, req, read, ResponsesEvents::default()).await
}

// `Option` everywhere because clients send explicit `null`s; unknown fields are ignored.
#[derive(Deserialize)]
struct RawRequest {
    input: Option<Input>,
    instructions: Option<String>,
    max_output_tokens: Option<i64>,
    stream: Option<bool>,
    ignore_eos: Option<bool>,
    tools: Option<Vec<RawTool>>,
    tool_choice: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<InputItem>),
}

/// An input item: a message (`content`), a tool call (`arguments`) or a tool's result
/// (`output`); their text is what costs prompt tokens here.
#[derive(Deserialize)]
struct InputItem {
    content: Option<Content>,
    arguments: Option<String>,
    output: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// Text, or an `input_image` (which costs `image_tokens`).
#[derive(Deserialize)]
struct ContentPart {
    text: Option<String>,
    image_url: Option<super::images::ImageUrl>,
}

fn parse(body: &[u8], image_tokens: u32) -> Result<Parsed, String> {
    let raw: RawRequest =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
    let mut texts: Vec<String> = raw.instructions.into_iter().collect();
    match raw.input.ok_or("'input' is required")? {
        Input::Text(t) => texts.push(t),
        Input::Items(items) => {
            for item in items {
                match item.content {
                    Some(Content::Text(t)) => texts.push(t),
                    Some(Content::Parts(parts)) => {
                        texts.extend(parts.into_iter().flat_map(|p| match (p.text, p.image_url) {
                            (Some(t), _) => Some(t),
                            (None, Some(image)) => {
                                Some(super::images::image_text(&image, image_tokens))
                            }
                            (None, None) => None,
                        }))
                    }
                    None => {}
                }
                texts.extend(item.arguments);
                match item.output {
                    Some(Value::String(s)) => texts.push(s),
                    Some(Value::Null) | None => {}
                    Some(other) => texts.push(other.to_string()),
                }
            }
        }
    }
    let max_tokens = match raw.max_output_tokens {
        None => http::DEFAULT_MAX_TOKENS,
        Some(n) if n < 1 => return Err(format!("max_output_tokens must be at least 1, got {n}")),
        Some(n) => u32::try_from(n).map_err(|_| format!("max_output_tokens {n} is too large"))?,
    };
    Ok(Parsed {
        prompt: Prompt::Texts(texts),
        max_tokens,
        stream: raw.stream.unwrap_or(false),
        // The Responses API always reports usage.
        include_usage: true,
        ignore_eos: raw.ignore_eos.unwrap_or(false),
        tools: RequestTools::parse(raw.tools, raw.tool_choice)?,
    })
}

/// The kinds of output item the simulator writes, each with its names on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// The first tokens, with a reasoning phase (`--reasoning-tokens`).
    Reasoning,
    Answer,
    /// A call of one of the request's tools: every output token is its arguments.
    Tool,
}

struct Names {
    item: &'static str,
    part: &'static str,
    delta: &'static str,
    done: &'static str,
    id_prefix: &'static str,
    /// The item's own members, beside id, type, status and content.
    fields: &'static str,
    /// Its tokens are `output_tokens_details.reasoning_tokens`.
    reasoning: bool,
}

impl Part {
    fn names(self) -> Names {
        match self {
            Part::Reasoning => Names {
                item: "reasoning",
                part: "reasoning_text",
                delta: "response.reasoning_text.delta",
                done: "response.reasoning_text.done",
                id_prefix: "rs",
                fields: r#""summary":[]"#,
                reasoning: true,
            },
            // A function call has no content part: `part` is unused.
            Part::Tool => Names {
                item: "function_call",
                part: "",
                delta: "response.function_call_arguments.delta",
                done: "response.function_call_arguments.done",
                id_prefix: "fc",
                fields: "",
                reasoning: false,
            },
            Part::Answer => Names {
                item: "message",
                part: "output_text",
                delta: "response.output_text.delta",
                done: "response.output_text.done",
                id_prefix: "msg",
                fields: r#""role":"assistant""#,
                reasoning: false,
            },
        }
    }
}

/// Which item output token `j` belongs to.
fn part_of(plan: &Plan, j: u32) -> Part {
    if plan.tool_call().is_some() {
        Part::Tool
    } else if j < plan.reasoning_tokens() {
        Part::Reasoning
    } else {
        Part::Answer
    }
}

/// The output item being written.
struct OpenItem {
    part: Part,
    id: String,
    text: String,
    /// A function call's name and call id.
    call: Option<(String, String)>,
}

/// One response's events: a sequence number, the item under way, the finished ones.
#[derive(Default)]
pub(super) struct ResponsesEvents {
    sequence: u64,
    id: String,
    item: Option<OpenItem>,
    done: Vec<Value>,
    reasoning_tokens: u64,
}

impl ResponsesEvents {
    /// `event: TYPE` and `data: {…,"sequence_number":N,"type":TYPE}` (members before).
    fn event(&mut self, out: &mut String, ty: &str, members: &str) {
        let n = self.sequence;
        self.sequence += 1;
        let sep = if members.is_empty() { "" } else { "," };
        out.push_str(&format!(
            "event: {ty}\ndata: {{{members}{sep}\"sequence_number\":{n},\"type\":\"{ty}\"}}\n\n"
        ));
    }

    fn response(&self, plan: &Plan, status: &str, usage: Value) -> Value {
        let incomplete = (status == "incomplete").then(|| json!({"reason": "max_output_tokens"}));
        json!({
            "id": self.id,
            "created_at": plan.created,
            "incomplete_details": incomplete,
            "model": plan.model,
            "object": "response",
            "output": self.done,
            "status": status,
            "usage": usage,
        })
    }

    fn start(&mut self, plan: &Plan) {
        self.id = format!("resp_{}", plan.seq);
    }

    /// `response.output_item.added` / `.done` with the item's JSON.
    fn item_event(&mut self, out: &mut String, ty: &str, item: &str, index: usize) {
        self.event(out, ty, &format!(r#""item":{item},"output_index":{index}"#));
    }

    fn open(&mut self, out: &mut String, plan: &Plan, part: Part) {
        let names = part.names();
        let index = self.done.len();
        let id = format!("{}_{index}_{}", names.id_prefix, self.id);
        let call = match (part, plan.tool_call()) {
            (Part::Tool, Some(c)) => Some((c.name.clone(), c.id.clone())),
            _ => None,
        };
        let item = match &call {
            Some((name, call_id)) => json!({"id": id, "type": "function_call",
                "status": "in_progress", "arguments": "", "call_id": call_id, "name": name})
            .to_string(),
            None => format!(
                r#"{{"id":"{id}","content":[],{},"status":"in_progress","type":"{}"}}"#,
                names.fields, names.item
            ),
        };
        self.item_event(out, "response.output_item.added", &item, index);
        // A function call has no content part.
        if call.is_none() {
            let part_json = format!(r#"{{"text":"","type":"{}"}}"#, names.part);
            self.event(
                out,
                "response.content_part.added",
                &format!(
                    r#""content_index":0,"item_id":"{id}","output_index":{index},"part":{part_json}"#
                ),
            );
        }
        self.item = Some(OpenItem {
            part,
            id,
            text: String::new(),
            call,
        });
    }

    fn close(&mut self, out: &mut String) {
        let Some(item) = self.item.take() else {
            return;
        };
        let names = item.part.names();
        let index = self.done.len();
        let (id, text) = (&item.id, Value::from(item.text.as_str()));
        let done = match &item.call {
            Some((name, call_id)) => {
                let members =
                    format!(r#""arguments":{text},"item_id":"{id}","output_index":{index}"#);
                self.event(out, names.done, &members);
                json!({"id": id, "type": "function_call", "status": "completed",
                    "arguments": item.text, "call_id": call_id, "name": name})
                .to_string()
            }
            None => {
                self.event(
                    out,
                    names.done,
                    &format!(
                        r#""content_index":0,"item_id":"{id}","output_index":{index},"text":{text}"#
                    ),
                );
                let part_json = format!(r#"{{"text":{text},"type":"{}"}}"#, names.part);
                self.event(
                    out,
                    "response.content_part.done",
                    &format!(
                        r#""content_index":0,"item_id":"{id}","output_index":{index},"part":{part_json}"#
                    ),
                );
                format!(
                    r#"{{"id":"{id}","content":[{part_json}],{},"status":"completed","type":"{}"}}"#,
                    names.fields, names.item
                )
            }
        };
        self.item_event(out, "response.output_item.done", &done, index);
        self.done
            .push(serde_json::from_str(&done).unwrap_or(Value::Null));
    }

    /// Output tokens `tokens`, one delta event per run of the same item kind.
    fn write_output(&mut self, out: &mut String, plan: &Plan, tokens: std::ops::Range<u32>) {
        let mut start = tokens.start;
        while start < tokens.end {
            let part = part_of(plan, start);
            let end = (start + 1..tokens.end)
                .find(|&j| part_of(plan, j) != part)
                .unwrap_or(tokens.end);
            if self.item.as_ref().map(|i| i.part) != Some(part) {
                self.close(out);
                self.open(out, plan, part);
            }
            let text = match (part, plan.tool_call()) {
                (Part::Tool, Some(c)) => c.arguments(start..end),
                _ => plan.text(start..end),
            };
            let names = part.names();
            if names.reasoning {
                self.reasoning_tokens += u64::from(end - start);
            }
            let index = self.done.len();
            let Some(item) = self.item.as_mut() else {
                return;
            };
            let members = format!(
                r#""content_index":0,"delta":{},"item_id":"{}","logprobs":[],"output_index":{index}"#,
                Value::from(text.as_str()),
                item.id
            );
            item.text.push_str(&text);
            self.event(out, names.delta, &members);
            start = end;
        }
    }

    fn usage(&self, plan: &Plan, prompt_tokens: u64, cached: Option<u64>) -> Value {
        let output = u64::from(plan.output_tokens);
        let mut usage = json!({"input_tokens": prompt_tokens});
        // Cache hits are the engine's to report, as on the chat route.
        if let Some(cached) = cached {
            usage["input_tokens_details"] = json!({"cached_tokens": cached});
        }
        usage["output_tokens"] = json!(output);
        usage["output_tokens_details"] = json!({"reasoning_tokens": self.reasoning_tokens});
        usage["total_tokens"] = json!(prompt_tokens + output);
        usage
    }

    fn status(plan: &Plan) -> &'static str {
        if plan.finish_reason == "length" {
            "incomplete"
        } else {
            "completed"
        }
    }
}

impl Events for ResponsesEvents {
    fn opening(&mut self, plan: &Plan) -> Option<Bytes> {
        self.start(plan);
        let initial = self.response(plan, "in_progress", Value::Null);
        let mut out = String::new();
        for ty in ["response.created", "response.in_progress"] {
            self.event(&mut out, ty, &format!(r#""response":{initial}"#));
        }
        Some(out.into())
    }

    fn output(&mut self, plan: &Plan, tokens: std::ops::Range<u32>) -> Bytes {
        let mut out = String::new();
        self.write_output(&mut out, plan, tokens);
        out.into()
    }

    fn tail(
        &mut self,
        plan: &Plan,
        prompt_tokens: u64,
        cached: Option<u64>,
        _timings: Option<&str>,
    ) -> Bytes {
        let mut out = String::new();
        self.close(&mut out);
        let usage = self.usage(plan, prompt_tokens, cached);
        let response = self.response(plan, Self::status(plan), usage);
        self.event(
            &mut out,
            "response.completed",
            &format!(r#""response":{response}"#),
        );
        out.into()
    }

    fn error(&mut self, _: &Plan) -> Bytes {
        let body: Value = serde_json::from_str(&faults::error_json()).unwrap_or_default();
        let message = body["error"]["message"].clone();
        let mut out = String::new();
        self.event(
            &mut out,
            "error",
            &format!(r#""code":"server_error","message":{message},"param":null"#),
        );
        out.into()
    }

    fn document(&self, plan: &Plan, prompt_tokens: u64, cached: Option<u64>) -> Value {
        // The stream's items, written and dropped: one account of what the output is.
        let mut w = ResponsesEvents::default();
        w.start(plan);
        let mut sink = String::new();
        w.write_output(&mut sink, plan, 0..plan.output_tokens);
        w.close(&mut sink);
        let usage = w.usage(plan, prompt_tokens, cached);
        w.response(plan, Self::status(plan), usage)
    }
}
