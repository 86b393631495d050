//! The event stream of the OpenAI Responses API (`POST /v1/responses`, streaming): what
//! one event means for the measurement. Each event's JSON carries its `type` (the SSE
//! `event:` line, which not every server sends, is not needed):
//!
//! - `response.output_text.delta` and `response.refusal.delta`: answer text;
//! - `response.reasoning_text.delta`, `response.reasoning_summary_text.delta`: reasoning;
//! - `response.function_call_arguments.delta` (and the argument deltas of the built-in
//!   tool calls: custom tool input, MCP arguments, code-interpreter code): a tool call;
//! - `response.completed`, `response.incomplete` (a capped response, e.g.
//!   `max_output_tokens` reached: the normal end of a benchmark request): the end, with
//!   `response.usage`;
//! - `response.failed`, `error`, or any event with an `error` object: a failure;
//! - anything else (`response.created`, `…in_progress`, `…output_item.added`, `….done`):
//!   not output.
//!
//! A non-empty delta of an output kind is an output event. The fast path walks the event
//! once with `json_scan::Cursor`, as the chat scanner does (servers put `type` first or,
//! like vLLM, last, so the delta is kept until the walk ends); failures and anything
//! unusual go to the serde reference, which decides.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::json_scan::{Cursor, RawStr};
use super::openai::{ChunkInfo, CompletionDetails, PromptDetails, Usage, error_message};
use crate::phases::EventKinds;

/// What an event's `type` means here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Output(EventKinds),
    End,
    Failed,
    Error,
    Other,
}

fn class(ty: Option<&str>) -> Class {
    match ty {
        Some("response.output_text.delta" | "response.refusal.delta") => {
            Class::Output(EventKinds::ANSWER)
        }
        Some("response.reasoning_text.delta" | "response.reasoning_summary_text.delta") => {
            Class::Output(EventKinds::REASONING)
        }
        Some(
            "response.function_call_arguments.delta"
            | "response.custom_tool_call_input.delta"
            | "response.mcp_call_arguments.delta"
            | "response.code_interpreter_call_code.delta",
        ) => Class::Output(EventKinds::TOOL),
        Some("response.completed" | "response.incomplete") => Class::End,
        Some("response.failed") => Class::Failed,
        Some("error") => Class::Error,
        _ => Class::Other,
    }
}

/// `usage` as the Responses API words it; read into the chat API's `Usage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: Option<u32>,
    #[serde(default)]
    output_tokens: Option<u32>,
    #[serde(default)]
    input_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    output_tokens_details: Option<CompletionDetails>,
}

impl From<ResponsesUsage> for Usage {
    fn from(u: ResponsesUsage) -> Usage {
        Usage {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            prompt_tokens_details: u.input_tokens_details,
            completion_tokens_details: u.output_tokens_details,
        }
    }
}

/// Interpret one event's data (not `[DONE]`); output text is appended to `text`.
/// `finished` in the answer: the response's terminal event.
pub fn parse_event(data: &[u8], text: &mut String) -> Result<ChunkInfo, serde_json::Error> {
    let data = std::str::from_utf8(data).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format_args!("not UTF-8: {e}"))
    })?;
    if let Some(info) = scan_event(data, text) {
        return Ok(info);
    }
    parse_event_reference(data, text)
}

/// The fast path. `None` for failures and anything unexpected (the reference decides);
/// nothing is appended to `text` then.
fn scan_event(data: &str, text: &mut String) -> Option<ChunkInfo> {
    let mut ty: Option<RawStr<'_>> = None;
    let mut delta: Option<RawStr<'_>> = None;
    let mut usage: Option<ResponsesUsage> = None;
    let mut c = Cursor::new(data);
    c.object(|c, key| match key.plain()? {
        "type" => {
            if !c.null() {
                ty = Some(c.string()?);
            }
            Some(())
        }
        "delta" => {
            // A delta that is not a string is no output (the reference agrees).
            delta = None;
            if c.at_string() {
                delta = Some(c.string()?);
            } else {
                c.skip()?;
            }
            Some(())
        }
        "response" => {
            if !c.null() {
                c.object(|c, key| match key.plain()? {
                    "usage" => {
                        usage = serde_json::from_str::<Option<ResponsesUsage>>(c.raw_value()?)
                            .ok()?
                            .or(usage);
                        Some(())
                    }
                    _ => c.skip(),
                })?;
            }
            Some(())
        }
        // Failures are rare: the reference words them.
        "error" if c.null() => Some(()),
        "error" => None,
        _ => c.skip(),
    })?;
    c.end()?;
    let ty = match ty {
        Some(t) => Some(t.plain()?),
        None => None,
    };
    let mut info = ChunkInfo {
        usage: usage.map(Usage::from),
        ..ChunkInfo::default()
    };
    match class(ty) {
        Class::Output(kind) => {
            if let Some(d) = delta.filter(|d| !d.body.is_empty()) {
                d.push_to(text)?;
                info.kinds = kind;
            }
        }
        Class::End => info.finished = true,
        Class::Failed | Class::Error => return None,
        Class::Other => {}
    }
    Some(info)
}

// Borrowing deserializers for the reference: only what the measurement needs.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default, borrow, rename = "type")]
    ty: Option<Cow<'a, str>>,
    #[serde(default)]
    delta: Option<Value>,
    #[serde(default)]
    response: Option<ResponseObject>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
}

#[derive(Deserialize)]
struct ResponseObject {
    #[serde(default)]
    usage: Option<ResponsesUsage>,
    #[serde(default)]
    error: Option<Value>,
}

/// The reference interpretation, with serde_json: for the events the scanner does not
/// take, and to check the scanner against (tests/fuzz_responses.rs).
pub fn parse_event_reference(
    data: &str,
    text: &mut String,
) -> Result<ChunkInfo, serde_json::Error> {
    let event: Event<'_> = serde_json::from_str(data)?;
    let (usage, response_error) = match event.response {
        Some(r) => (r.usage, r.error.filter(|e| !e.is_null())),
        None => (None, None),
    };
    let mut info = ChunkInfo {
        usage: usage.map(Usage::from),
        ..ChunkInfo::default()
    };
    if let Some(e) = event.error.filter(|e| !e.is_null()) {
        info.error = Some(error_message(&e));
        return Ok(info);
    }
    match class(event.ty.as_deref()) {
        Class::Output(kind) => {
            if let Some(Value::String(d)) = &event.delta
                && !d.is_empty()
            {
                text.push_str(d);
                info.kinds = kind;
            }
        }
        Class::End => info.finished = true,
        Class::Failed => {
            info.error = Some(match response_error {
                Some(e) => error_message(&e),
                None => "response.failed (the server gave no error message)".into(),
            });
        }
        Class::Error => {
            info.error = Some(match event.message.filter(|m| !m.is_null()) {
                Some(m) => error_message(&m),
                None => "error event".into(),
            });
        }
        Class::Other => {}
    }
    Ok(info)
}

#[cfg(test)]
#[path = "tests_responses.rs"]
mod tests;
