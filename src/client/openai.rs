//! The OpenAI-compatible wire format: request bodies, and what a streamed chunk means
//! for measurement (output or not, usage, errors).

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use super::json_scan::{Cursor, RawStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Chat,
    Completions,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Completions => "completions",
        }
    }
}

/// What the prompt of one request is.
#[derive(Clone, Debug)]
pub enum PromptBody<'a> {
    Text(&'a str),
    TokenIds(&'a [u32]),
    /// An OpenAI chat `messages` list, sent as is.
    Messages(&'a Value),
}

/// Settings shared by every request body of a run.
#[derive(Clone, Debug)]
pub struct BodyOptions {
    pub api: Api,
    pub model: String,
    pub ignore_eos: bool,
    /// Merged in last, so it can override anything.
    pub extra: Map<String, Value>,
}

/// The JSON body of one streaming request.
pub fn build_body(opts: &BodyOptions, prompt: PromptBody<'_>, max_tokens: u32) -> Vec<u8> {
    let mut body = Map::new();
    body.insert("model".into(), json!(opts.model));
    match (opts.api, prompt) {
        (Api::Chat, PromptBody::Messages(m)) => {
            body.insert("messages".into(), m.clone());
        }
        (Api::Chat, PromptBody::Text(t)) => {
            body.insert("messages".into(), json!([{"role": "user", "content": t}]));
        }
        (Api::Completions, PromptBody::Text(t)) => {
            body.insert("prompt".into(), json!(t));
        }
        // Options reject token ids for the chat API; were one to slip through, the server
        // answers 400 and the request is recorded as failed, never a panic.
        (_, PromptBody::TokenIds(ids)) => {
            body.insert("prompt".into(), json!(ids));
        }
        (Api::Completions, PromptBody::Messages(m)) => {
            body.insert("prompt".into(), json!(flatten_messages(m)));
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
    serde_json::to_vec(&Value::Object(body)).expect("a JSON map always serializes")
}

/// A chat history as one completions prompt: the contents in order, one per line.
fn flatten_messages(m: &Value) -> String {
    let mut out = String::new();
    for msg in m.as_array().into_iter().flatten() {
        if let Some(c) = msg.get("content").and_then(Value::as_str) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(c);
        }
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
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize)]
pub struct PromptDetails {
    #[serde(default)]
    pub cached_tokens: Option<u32>,
}

/// What one `data:` event means for the measurement.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkInfo {
    /// Carries non-empty generated output: an output event.
    pub output: bool,
    pub finished: bool,
    pub usage: Option<Usage>,
    /// An error object sent in the stream.
    pub error: Option<String>,
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
        info.output = false;
        info.finished = false;
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
                    "content" | "reasoning_content" | "reasoning" => scan_output(c, info, text),
                    "tool_calls" => {
                        if !c.null() {
                            c.array(|c| {
                                c.object(|c, key| match key.plain()? {
                                    "function" if !c.null() => {
                                        c.object(|c, key| match key.plain()? {
                                            "arguments" => scan_output(c, info, text),
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
        "text" => scan_output(c, info, text),
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
fn scan_output(c: &mut Cursor<'_>, info: &mut ChunkInfo, text: &mut String) -> Option<()> {
    if c.null() {
        return Some(());
    }
    let s = c.string()?;
    if !s.body.is_empty() {
        info.output = true;
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
    for choice in chunk.choices.iter().flatten() {
        if choice.finish_reason.is_some() {
            info.finished = true;
        }
        if let Some(t) = non_empty(&choice.text) {
            info.output = true;
            text.push_str(t);
        }
        if let Some(d) = &choice.delta {
            for t in [&d.content, &d.reasoning_content, &d.reasoning]
                .into_iter()
                .filter_map(non_empty)
            {
                info.output = true;
                text.push_str(t);
            }
            for call in d.tool_calls.iter().flatten() {
                if let Some(a) = call.function.as_ref().and_then(|f| non_empty(&f.arguments)) {
                    info.output = true;
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
mod tests {
    use super::*;

    fn parse(s: &str) -> (ChunkInfo, String) {
        let mut text = String::new();
        let info = parse_chunk(s.as_bytes(), &mut text).unwrap();
        (info, text)
    }

    #[test]
    fn role_only_and_empty_deltas_are_not_output() {
        let (i, t) = parse(
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        );
        assert!(!i.output && !i.finished && t.is_empty());
        let (i, _) =
            parse(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}"#);
        assert!(!i.output);
        let (i, _) = parse(r#"{"choices":[{"index":0,"delta":{}}]}"#);
        assert!(!i.output);
    }

    #[test]
    fn content_reasoning_text_and_tool_arguments_are_output() {
        let (i, t) = parse(r#"{"choices":[{"delta":{"content":"Hi\n\"there\""}}]}"#);
        assert!(i.output);
        assert_eq!(t, "Hi\n\"there\"");
        let (i, t) = parse(r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#);
        assert!(i.output && t == "think");
        let (i, _) = parse(r#"{"choices":[{"delta":{"reasoning":"hmm"}}]}"#);
        assert!(i.output);
        let (i, t) = parse(r#"{"choices":[{"index":0,"text":" world","finish_reason":null}]}"#);
        assert!(i.output && t == " world");
        let (i, t) = parse(
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\""}}]}}]}"#,
        );
        assert!(i.output && t == "{\"x\"");
    }

    #[test]
    fn finish_and_usage_only_chunks() {
        let (i, _) = parse(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#);
        assert!(i.finished && !i.output);
        let (i, _) = parse(
            r#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":8}}}"#,
        );
        assert!(!i.output);
        let u = i.usage.unwrap();
        assert_eq!(u.prompt_tokens, Some(12));
        assert_eq!(u.completion_tokens, Some(5));
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, Some(8));
        let (i, _) = parse(r#"{"choices":[],"usage":null}"#);
        assert!(i.usage.is_none());
        let (i, _) = parse(
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":null,"prompt_tokens_details":null}}"#,
        );
        assert_eq!(i.usage.unwrap().completion_tokens, None);
    }

    #[test]
    fn error_events_in_both_shapes() {
        let (i, _) =
            parse(r#"{"error":{"message":"out of KV cache","type":"server_error","code":500}}"#);
        assert_eq!(i.error.as_deref(), Some("out of KV cache"));
        let (i, _) = parse(r#"{"error":"boom"}"#);
        assert_eq!(i.error.as_deref(), Some("boom"));
        let (i, _) = parse(r#"{"object":"error","message":"bad request","code":400}"#);
        assert_eq!(i.error.as_deref(), Some("bad request"));
    }

    #[test]
    fn invalid_json_is_an_error() {
        let mut t = String::new();
        assert!(parse_chunk(b"{\"choices\":[", &mut t).is_err());
        assert!(parse_chunk(b"not json", &mut t).is_err());
    }

    #[test]
    fn http_error_bodies() {
        assert_eq!(
            http_error_message(400, br#"{"error":{"message":"max_tokens too large"}}"#),
            "HTTP 400: max_tokens too large"
        );
        assert_eq!(
            http_error_message(422, br#"{"detail":"field required"}"#),
            "HTTP 422: field required"
        );
        assert_eq!(
            http_error_message(502, b"Bad Gateway\n"),
            "HTTP 502: Bad Gateway"
        );
        assert_eq!(http_error_message(503, b""), "HTTP 503");
    }

    #[test]
    fn body_has_required_fields_and_extra_body_wins() {
        let mut extra = Map::new();
        extra.insert("top_k".into(), json!(1));
        extra.insert("temperature".into(), json!(0.7));
        let opts = BodyOptions {
            api: Api::Chat,
            model: "m".into(),
            ignore_eos: true,
            extra,
        };
        let b: Value =
            serde_json::from_slice(&build_body(&opts, PromptBody::Text("hi"), 32)).unwrap();
        assert_eq!(b["messages"][0]["content"], "hi");
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["max_tokens"], 32);
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["ignore_eos"], true);
        assert_eq!(b["top_k"], 1);
        assert_eq!(b["temperature"], 0.7);

        let opts = BodyOptions {
            api: Api::Completions,
            model: "m".into(),
            ignore_eos: false,
            extra: Map::new(),
        };
        let b: Value =
            serde_json::from_slice(&build_body(&opts, PromptBody::TokenIds(&[1, 2, 3]), 4))
                .unwrap();
        assert_eq!(b["prompt"], json!([1, 2, 3]));
        assert_eq!(b["temperature"], 0);
        assert!(b.get("ignore_eos").is_none());
    }

    /// Chunks as real servers send them must take the fast path (and agree with serde).
    #[test]
    fn real_server_chunks_take_the_fast_path() {
        let chunks = [
            // vLLM chat
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" tok"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length","stop_reason":null}]}"#,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":128,"total_tokens":384,"completion_tokens":256,"prompt_tokens_details":{"cached_tokens":64}}}"#,
            // vLLM completions
            r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" a\nb \"q\" \u00e9","logprobs":null,"finish_reason":null,"stop_reason":null}]}"#,
            // SGLang, reasoning
            r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":null,"content":null,"reasoning_content":"think","tool_calls":null},"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}"#,
            // llama.cpp
            r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hi"}}],"created":1,"id":"chatcmpl-x","model":"m","system_fingerprint":"b1","object":"chat.completion.chunk","timings":{"prompt_n":5,"predicted_ms":1.5}}"#,
            // tool call arguments
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":"{\"x\":"}}]}}]}"#,
            // errors
            r#"{"error":{"message":"out of memory","type":"InternalServerError","code":500}}"#,
            r#"{"object":"error","message":"too long","type":"BadRequestError","code":400}"#,
        ];
        for c in chunks {
            let mut fast = String::new();
            let got = scan_chunk(c, &mut fast, &mut ChunkMemo::default())
                .unwrap_or_else(|| panic!("slow path: {c}"));
            let mut slow = String::new();
            assert_eq!(got, parse_chunk_reference(c, &mut slow).unwrap(), "{c}");
            assert_eq!(fast, slow, "{c}");
        }
        // Too deep for the scanner: serde_json decides, as it would alone.
        let deep = format!(
            r#"{{"x":{}{},"choices":[{{"text":"a"}}]}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(scan_chunk(&deep, &mut String::new(), &mut ChunkMemo::default()).is_none());
        assert!(parse(&deep).0.output);
        let (info, text) = parse(chunks[4]);
        assert_eq!(text, " a\nb \"q\" é");
        assert!(info.output);
        assert_eq!(parse(chunks[8]).0.error.as_deref(), Some("out of memory"));
        assert_eq!(parse(chunks[9]).0.error.as_deref(), Some("too long"));
    }

    /// Events of one stream share their members before `choices`: the scanner skips them
    /// after the first and must read exactly what it reads without the memo.
    #[test]
    fn a_stream_resumes_at_choices_and_reads_the_same() {
        let head = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","#;
        let events = [
            format!(
                r#"{head}"choices":[{{"index":0,"delta":{{"content":"a"}},"finish_reason":null}}]}}"#
            ),
            format!(
                r#"{head}"choices":[{{"index":0,"delta":{{"content":"bc"}},"finish_reason":null}}]}}"#
            ),
            format!(r#"{head}"choices":[{{"index":0,"delta":{{}},"finish_reason":"length"}}]}}"#),
            format!(r#"{head}"choices":[],"usage":{{"prompt_tokens":3,"completion_tokens":2}}}}"#),
            format!(r#"{head}"choices":[],"error":{{"message":"late"}}}}"#),
            // Another head: the memo is dropped, then rebuilt.
            r#"{"id":"c2","object":"chat.completion.chunk","choices":[{"delta":{"content":"d"}}]}"#
                .to_string(),
            r#"{"id":"c2","object":"chat.completion.chunk","choices":[{"delta":{"content":"e"}}]}"#
                .to_string(),
            // A prefix that is not a whole member any more: the walk fails, serde decides.
            r#"{"id":"c2","object":"chat.completion.chunk","choices"]"#.to_string(),
            r#"{"id":"c2","object":"chat.completion.chunk","choices":[{"delta":{"content":"f"}}]}"#
                .to_string(),
        ];
        let mut memo = ChunkMemo::default();
        let (mut fast, mut slow) = (String::new(), String::new());
        for (i, e) in events.iter().enumerate() {
            let resumed = !memo.prefix.is_empty() && e.as_bytes().starts_with(&memo.prefix);
            let got = parse_chunk_in_stream(e.as_bytes(), &mut fast, &mut memo);
            let want = parse_chunk_reference(e, &mut slow);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "event {i}"),
                (Err(_), Err(_)) => {}
                (g, w) => panic!("event {i}: {g:?} vs {w:?}"),
            }
            assert_eq!(fast, slow, "event {i}");
            // The second event of each head takes the shortcut.
            if i == 1 || i == 6 {
                assert!(resumed, "event {i} resumed at choices");
            }
        }
        assert_eq!(fast, "abcdef");
        // A non-error `object` may come before `choices`; an error one may not be skipped.
        let mut memo = ChunkMemo::default();
        let e = r#"{"object":"error","choices":[],"message":"boom"}"#;
        assert!(
            parse_chunk_in_stream(e.as_bytes(), &mut String::new(), &mut memo)
                .unwrap()
                .error
                .is_some()
        );
        assert!(memo.prefix.is_empty());
    }
}
