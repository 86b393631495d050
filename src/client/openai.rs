//! The OpenAI-compatible wire format: request bodies, and what a streamed chunk means
//! for measurement (output or not, usage, errors).

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use super::json_scan::{Cursor, RawStr};
use crate::phases::EventKinds;
use crate::server_timings::ServerTimings;
use crate::workload::EncodeBody;
use crate::workload::tools::{BodyTools, ToolSet};
use bytes::Bytes;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Chat,
    Completions,
    /// The OpenAI Responses API (`/v1/responses`): its own body and event stream
    /// (`responses.rs`, `responses_body.rs`).
    Responses,
    /// `/v1/embeddings`: not streamed, `--batch-inputs` prompts per request.
    Embeddings,
}

impl Api {
    /// Whether requests of this API can carry `tools` (chat and Responses).
    pub fn takes_tools(self) -> bool {
        matches!(self, Api::Chat | Api::Responses)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Completions => "completions",
            Api::Responses => "responses",
            Api::Embeddings => "embeddings",
        }
    }
}

/// What the prompt of one request is (the workload's description).
pub use crate::workload::Prompt as PromptBody;

/// Settings shared by every request body of a run.
#[derive(Clone, Debug)]
pub struct BodyOptions {
    pub api: Api,
    pub model: String,
    pub ignore_eos: bool,
    /// Merged in last, so it can override anything.
    pub extra: Map<String, Value>,
    /// `--tools` and `--tool-choice` (chat API), serialised once for the run.
    pub tools: BodyTools,
    /// Prompts per request of the embeddings API (`--batch-inputs`); 1 otherwise.
    pub batch_inputs: u32,
}

impl BodyOptions {
    /// Every request asks for exactly its `max_tokens` of output (the `ignore_eos`
    /// check): `ignore_eos` is sent, and `--extra-body` overrides neither it, nor the
    /// length, nor adds stop sequences (which end outputs early with `ignore_eos` too).
    pub fn asks_exact_lengths(&self) -> bool {
        const OVERRIDES: [&str; 6] = [
            "ignore_eos",
            "max_tokens",
            "max_completion_tokens",
            "max_output_tokens",
            "stop",
            "stop_token_ids",
        ];
        self.ignore_eos
            && self.api != Api::Embeddings
            && !OVERRIDES.iter().any(|k| self.extra.contains_key(*k))
    }
}

impl EncodeBody for BodyOptions {
    fn encode(&self, prompt: PromptBody<'_>, max_tokens: u32) -> Bytes {
        Bytes::from(build_body(self, prompt, max_tokens))
    }

    fn encode_with_tools(
        &self,
        prompt: PromptBody<'_>,
        max_tokens: u32,
        tools: Option<&ToolSet>,
    ) -> Bytes {
        Bytes::from(build_body_with_tools(self, prompt, max_tokens, tools))
    }

    fn encode_as(
        &self,
        model: &str,
        prompt: PromptBody<'_>,
        max_tokens: u32,
        tools: Option<&ToolSet>,
    ) -> Bytes {
        if model == self.model {
            return self.encode_with_tools(prompt, max_tokens, tools);
        }
        // Prepare-time only, and only for a run that mixes models: a copy of the options
        // keeps the three body builders free of a second model argument.
        let opts = BodyOptions {
            model: model.to_string(),
            ..self.clone()
        };
        Bytes::from(build_body_with_tools(&opts, prompt, max_tokens, tools))
    }

    fn sends_messages(&self) -> bool {
        matches!(self.api, Api::Chat | Api::Responses)
    }

    fn batch(&self) -> Option<&dyn crate::workload::BatchBody> {
        (self.api == Api::Embeddings).then_some(self as _)
    }
}

/// The JSON body of one streaming request.
pub fn build_body(opts: &BodyOptions, prompt: PromptBody<'_>, max_tokens: u32) -> Vec<u8> {
    build_body_with_tools(opts, prompt, max_tokens, None)
}

/// The body with this request's own tools (a dataset entry's), else the run's.
pub fn build_body_with_tools(
    opts: &BodyOptions,
    prompt: PromptBody<'_>,
    max_tokens: u32,
    tools: Option<&ToolSet>,
) -> Vec<u8> {
    if opts.api == Api::Responses {
        return super::responses_body::build_body(opts, prompt, max_tokens, tools);
    }
    if opts.api == Api::Embeddings {
        let one = Bytes::from(super::embeddings::input(prompt).to_string());
        return super::embeddings::body(opts, &[one]);
    }
    let mut body = Map::new();
    body.insert("model".into(), json!(opts.model));
    match (opts.api, prompt) {
        (Api::Chat, PromptBody::Messages(m)) => {
            body.insert("messages".into(), m.clone());
        }
        (Api::Chat, PromptBody::Text(t)) => {
            body.insert("messages".into(), json!([{"role": "user", "content": t}]));
        }
        (Api::Completions | Api::Responses | Api::Embeddings, PromptBody::Text(t)) => {
            body.insert("prompt".into(), json!(t));
        }
        // Options reject token ids for the chat API; were one to slip through, the server
        // answers 400 and the request is recorded as failed, never a panic.
        (_, PromptBody::TokenIds(ids)) => {
            body.insert("prompt".into(), json!(ids));
        }
        (Api::Completions | Api::Responses | Api::Embeddings, PromptBody::Messages(m)) => {
            body.insert("prompt".into(), json!(crate::workload::flatten_messages(m)));
        }
    }
    body.insert("max_tokens".into(), json!(max_tokens));
    body.insert("temperature".into(), json!(0));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    if opts.ignore_eos {
        body.insert("ignore_eos".into(), json!(true));
    }
    for (k, v) in &opts.extra {
        body.insert(k.clone(), v.clone());
    }
    let mut out = serde_json::to_vec(&Value::Object(body)).expect("a JSON map always serializes");
    if opts.api == Api::Chat {
        // The tools go in as the bytes serialised when they were read, not as a copy.
        out.pop(); // the closing brace
        opts.tools
            .splice(&mut out, tools, |k| opts.extra.contains_key(k));
        out.push(b'}');
    }
    out
}

/// Token usage as servers report it (any field may be missing or null).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: Option<u32>,
    #[serde(default)]
    pub completion_tokens: Option<u32>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionDetails>,
}

impl Usage {
    /// `completion_tokens_details.reasoning_tokens`, when the server sent it.
    pub fn reasoning_tokens(&self) -> Option<u32> {
        self.completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct CompletionDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u32>,
}

/// What one `data:` event means for the measurement.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkInfo {
    /// The kinds of non-empty generated output it carries; any makes it an output event.
    pub kinds: EventKinds,
    pub finished: bool,
    pub usage: Option<Usage>,
    /// An error object sent in the stream.
    pub error: Option<String>,
    /// The server's own timings of the request (llama.cpp's `timings`, last chunk).
    pub timings: Option<Box<ServerTimings>>,
}

// Borrowing deserializers: only the fields measurement needs are read, the rest is
// skipped without allocation.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    timings: Option<Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default, borrow)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

fn non_empty<'s>(s: &'s Option<Cow<'_, str>>) -> Option<&'s str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Interpret one event's data (not `[DONE]`). Generated text is appended to `text` so
/// the output can be counted with a tokenizer when the server reports no usage.
pub fn parse_chunk(data: &[u8], text: &mut String) -> Result<ChunkInfo, serde_json::Error> {
    parse_chunk_in_stream(data, text, &mut ChunkMemo::default())
}

/// What the scanner keeps from one event of a stream to the next. Servers repeat the
/// members before `choices` (`id`, `object`, `created`, `model`) byte for byte in every
/// chunk of a stream: when an event starts with the same bytes as the last one did up to
/// its `choices` key, reading those bytes again would give the same result, so the walk
/// resumes there (a third of the scanning of a vLLM-shaped chunk).
#[derive(Debug, Default)]
pub struct ChunkMemo {
    /// The last event's bytes before its `"choices"` key; empty when there is nothing to
    /// skip (the key came first, or a member before it mattered).
    prefix: Vec<u8>,
}

/// `parse_chunk` for the events of one stream, in order, with their shared `memo`.
pub fn parse_chunk_in_stream(
    data: &[u8],
    text: &mut String,
    memo: &mut ChunkMemo,
) -> Result<ChunkInfo, serde_json::Error> {
    // One UTF-8 check of the whole event, then parsing a &str: from_slice would check
    // every string again as it parses (7% of the client's CPU in a profile).
    let data = std::str::from_utf8(data).map_err(|e| {
        <serde_json::Error as serde::de::Error>::custom(format_args!("not UTF-8: {e}"))
    })?;
    let before = text.len();
    if let Some(info) = scan_chunk(data, text, memo) {
        return Ok(info);
    }
    memo.prefix.clear();
    // Whatever the scanner did not take (malformed or unusual events) serde_json decides.
    text.truncate(before);
    parse_chunk_reference(data, text)
}

/// The fast path: walks the event once, reading only the fields measurement needs.
/// `None` when anything is unexpected; `parse_chunk` then asks serde_json.
fn scan_chunk<'a>(data: &'a str, text: &mut String, memo: &mut ChunkMemo) -> Option<ChunkInfo> {
    let mut info = ChunkInfo::default();
    let mut error: Option<&'a str> = None;
    let mut object_error = false;
    let mut message: Option<&'a str> = None;
    let before = text.len();
    // Where this event's `"choices"` key starts, when only members that change nothing
    // (skipped ones, a non-error `object`) come before it.
    let mut choices_at: Option<usize> = None;
    let mut plain_so_far = true;
    let resume = (!memo.prefix.is_empty() && data.as_bytes().starts_with(&memo.prefix))
        .then_some(memo.prefix.len());
    let mut c = Cursor::new(data);
    let member = |c: &mut Cursor<'a>, key: RawStr<'a>| match key.plain()? {
        "choices" => {
            if plain_so_far && choices_at.is_none() {
                choices_at = Some(c.offset_of(key.quoted));
            }
            if !c.null() {
                c.array(|c| scan_choice(c, &mut info, text))?;
            }
            Some(())
        }
        "usage" => {
            plain_so_far = false;
            info.usage = serde_json::from_str::<Option<Usage>>(c.raw_value()?).ok()?;
            Some(())
        }
        "error" => {
            plain_so_far = false;
            error = Some(c.raw_value()?).filter(|v| *v != "null");
            Some(())
        }
        "object" => {
            if !c.null() {
                object_error = c.string()?.plain() == Some("error");
                plain_so_far &= !object_error;
            }
            Some(())
        }
        "message" => {
            plain_so_far = false;
            message = Some(c.raw_value()?).filter(|v| *v != "null");
            Some(())
        }
        // Only in a stream's last chunk: parsed there, once per request.
        "timings" => {
            plain_so_far = false;
            info.timings = ServerTimings::parse(c.raw_value()?);
            Some(())
        }
        _ => c.skip(),
    };
    match resume {
        Some(pos) => c.object_from(pos, member)?,
        None => c.object(member)?,
    }
    c.end()?;
    // A resumed walk found `choices` where the last event had it: the memo stands.
    if resume.is_none() {
        memo.prefix.clear();
        if let Some(at) = choices_at.filter(|&at| at > 1) {
            memo.prefix.extend_from_slice(&data.as_bytes()[..at]);
        }
    }
    if error.is_some() || object_error {
        // As the serde path: an error event carries no output.
        text.truncate(before);
        info.kinds = EventKinds::NONE;
        info.finished = false;
        info.timings = None;
        let raw = error.or(message);
        info.error = Some(match raw {
            Some(raw) => error_message(&serde_json::from_str(raw).ok()?),
            None => "error event".to_string(),
        });
    }
    Some(info)
}

fn scan_choice(c: &mut Cursor<'_>, info: &mut ChunkInfo, text: &mut String) -> Option<()> {
    c.object(|c, key| match key.plain()? {
        "delta" => {
            if !c.null() {
                c.object(|c, key| match key.plain()? {
                    "content" => scan_output(c, info, text, EventKinds::ANSWER),
                    "reasoning_content" | "reasoning" => {
                        scan_output(c, info, text, EventKinds::REASONING)
                    }
                    "tool_calls" => {
                        if !c.null() {
                            c.array(|c| {
                                c.object(|c, key| match key.plain()? {
                                    "function" if !c.null() => {
                                        c.object(|c, key| match key.plain()? {
                                            "arguments" => {
                                                scan_output(c, info, text, EventKinds::TOOL)
                                            }
                                            _ => c.skip(),
                                        })
                                    }
                                    "function" => Some(()),
                                    _ => c.skip(),
                                })
                            })?;
                        }
                        Some(())
                    }
                    _ => c.skip(),
                })?;
            }
            Some(())
        }
        "text" => scan_output(c, info, text, EventKinds::ANSWER),
        "finish_reason" => {
            if !c.null() {
                c.skip()?;
                info.finished = true;
            }
            Some(())
        }
        _ => c.skip(),
    })
}

/// A string (or null) of generated output: non-empty makes the event an output event.
fn scan_output(
    c: &mut Cursor<'_>,
    info: &mut ChunkInfo,
    text: &mut String,
    kind: EventKinds,
) -> Option<()> {
    if c.null() {
        return Some(());
    }
    let s = c.string()?;
    if !s.body.is_empty() {
        info.kinds.add(kind);
        s.push_to(text)?;
    }
    Some(())
}

/// The reference interpretation, with serde_json: for events the scanner does not take,
/// and to check the scanner against (tests/fuzz_parsers.rs).
pub fn parse_chunk_reference(
    data: &str,
    text: &mut String,
) -> Result<ChunkInfo, serde_json::Error> {
    let chunk: Chunk<'_> = serde_json::from_str(data)?;
    let mut info = ChunkInfo {
        usage: chunk.usage,
        ..ChunkInfo::default()
    };
    if let Some(err) = chunk.error {
        info.error = Some(error_message(&err));
        return Ok(info);
    }
    // vLLM's older error shape: {"object": "error", "message": ...}
    if chunk.object.as_deref() == Some("error") {
        info.error = Some(
            chunk
                .message
                .as_ref()
                .map_or_else(|| "error event".to_string(), error_message),
        );
        return Ok(info);
    }
    if let Some(t) = chunk.timings.filter(|t| !t.is_null()) {
        info.timings = ServerTimings::parse(&t.to_string());
    }
    for choice in chunk.choices.iter().flatten() {
        if choice.finish_reason.is_some() {
            info.finished = true;
        }
        if let Some(t) = non_empty(&choice.text) {
            info.kinds.add(EventKinds::ANSWER);
            text.push_str(t);
        }
        if let Some(d) = &choice.delta {
            let kinds = [
                (&d.content, EventKinds::ANSWER),
                (&d.reasoning_content, EventKinds::REASONING),
                (&d.reasoning, EventKinds::REASONING),
            ];
            for (t, kind) in kinds {
                if let Some(t) = non_empty(t) {
                    info.kinds.add(kind);
                    text.push_str(t);
                }
            }
            for call in d.tool_calls.iter().flatten() {
                if let Some(a) = call.function.as_ref().and_then(|f| non_empty(&f.arguments)) {
                    info.kinds.add(EventKinds::TOOL);
                    text.push_str(a);
                }
            }
        }
    }
    Ok(info)
}

/// A readable message from an error object: `{"message": ...}`, a string, or the JSON.
pub fn error_message(v: &Value) -> String {
    let msg = match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o
            .get("message")
            .or_else(|| o.get("detail"))
            .or_else(|| o.get("error"))
        {
            Some(Value::String(s)) => s.clone(),
            Some(inner @ Value::Object(_)) => error_message(inner),
            _ => v.to_string(),
        },
        _ => v.to_string(),
    };
    truncate(msg, 500)
}

/// The message of an HTTP error body: a JSON error object if it is one, else the text.
pub fn http_error_message(status: u16, body: &[u8]) -> String {
    let detail = match serde_json::from_slice::<Value>(body) {
        Ok(v) => error_message(&v),
        Err(_) => truncate(String::from_utf8_lossy(body).trim().to_string(), 500),
    };
    if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
#[path = "tests_openai.rs"]
mod tests;
