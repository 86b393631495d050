//! One response's plan: its ids, timing, length, faults and phases, and how its
//! chat and completions events and whole documents are written from it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Shared;
use super::faults::{self, FaultKind};
use super::http::Parsed;
use super::reasoning;
use super::stream::{Events, Kind, WORDS, mix};
use super::tools::ToolCall;

/// Everything about one response that does not depend on the prompt token count.
pub(super) struct Plan {
    kind: Kind,
    /// Numeric id: the engine's key for the request.
    pub(super) seq: u64,
    id: String,
    pub(super) created: u64,
    pub(super) model: String,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`, shared by every event.
    head: String,
    pub(super) t0: Instant,
    pub(super) output_tokens: u32,
    pub(super) finish_reason: &'static str,
    first_word: usize,
    include_usage: bool,
    send_role: bool,
    pub(super) tokens_per_chunk: u32,
    ttft_base_ms: f64,
    prefill_ms_per_token: f64,
    tpot_ms: f64,
    /// A mid-output fault to inject (set by the handler).
    pub(super) fault: Option<FaultKind>,
    pub(super) stall_ms: Option<u64>,
    /// The tool this response calls instead of answering (`tools.rs`).
    tool: Option<ToolCall>,
    /// The first output tokens that are reasoning, and the delta field they go in;
    /// `None` without a reasoning phase (chat only).
    reasoning: Option<(u32, &'static str)>,
    /// Speculative decoding (`spec.rs`), and the key of this request's draws.
    pub(super) spec: Option<super::spec::SpecDecoding>,
    pub(super) spec_key: u64,
}

impl Plan {
    /// Answer under this name (a LoRA adapter's) instead of the simulator's model.
    pub(super) fn answer_as(&mut self, name: &str) {
        let from = format!(",\"model\":{},", json_str(&self.model));
        let to = format!(",\"model\":{},", json_str(name));
        self.head = self.head.replacen(&from, &to, 1);
        self.model = name.to_string();
    }

    pub(super) fn new(shared: &Shared, kind: Kind, t0: Instant, req: &Parsed) -> Plan {
        let cfg = &shared.config;
        let hash = req.prompt.hash();
        // Reasoning is a chat answer's (vLLM's reasoning parsers serve chat only).
        let reasoning = match (kind, cfg.reasoning_tokens) {
            (Kind::Chat, Some(r)) => r.draw(cfg.seed, hash),
            _ => 0,
        };
        // Deterministic "EOS": the same (seed, prompt) always stops at the same length.
        let output_tokens = reasoning::output_tokens(
            reasoning,
            req.max_tokens,
            req.ignore_eos && !cfg.ignore_ignore_eos,
            mix(cfg.seed ^ hash),
        );
        let prefix = match kind {
            Kind::Chat => "chatcmpl",
            Kind::Completion => "cmpl",
        };
        let seq = shared.next_id();
        let id = format!("{prefix}-{seq}");
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let first_word = (hash >> 32) as usize % WORDS.len();
        let tool = req
            .tools
            .as_ref()
            .and_then(|t| t.decide(cfg.seed, hash, cfg.tool_call_share))
            .map(|name| ToolCall {
                name,
                id: format!("call_{seq}"),
                tokens: output_tokens,
                first_word,
            });
        let head = format!(
            "data: {{\"id\":{},\"object\":\"{}\",\"created\":{created},\"model\":{},\"choices\":[",
            json_str(&id),
            object(kind, true),
            json_str(&cfg.model),
        );
        Plan {
            kind,
            seq,
            id,
            created,
            model: cfg.model.clone(),
            head,
            t0,
            output_tokens,
            finish_reason: if tool.is_some() {
                "tool_calls"
            } else if output_tokens == req.max_tokens {
                "length"
            } else {
                "stop"
            },
            first_word,
            include_usage: req.include_usage,
            send_role: cfg.role_chunk && kind == Kind::Chat,
            tokens_per_chunk: cfg.tokens_per_chunk.max(1),
            ttft_base_ms: cfg.ttft_base_ms,
            prefill_ms_per_token: cfg.prefill_ms_per_token,
            tpot_ms: cfg.tpot_ms,
            fault: None,
            stall_ms: cfg.faults.stall_ms,
            // A response that calls a tool does so at once, without a reasoning phase.
            reasoning: (kind == Kind::Chat && cfg.reasoning_tokens.is_some() && tool.is_none())
                .then(|| (reasoning.min(output_tokens), cfg.reasoning_field.key())),
            tool,
            spec: cfg.spec,
            spec_key: mix(cfg.seed.rotate_left(17) ^ hash),
        }
    }

    /// When output token `j` is produced (see the module docs).
    pub(super) fn deadline(&self, prompt_tokens: u64, j: u32) -> Instant {
        let ms = self.ttft_base_ms
            + self.prefill_ms_per_token * prompt_tokens as f64
            + self.tpot_ms * f64::from(j);
        // NaN or negative settings mean "now"; absurdly large ones mean "in a year".
        Duration::try_from_secs_f64(ms.max(0.0) / 1000.0)
            .ok()
            .and_then(|d| self.t0.checked_add(d))
            .unwrap_or_else(|| self.t0 + Duration::from_secs(365 * 86_400))
    }

    pub(super) fn text(&self, tokens: std::ops::Range<u32>) -> String {
        tokens
            .map(|j| WORDS[(self.first_word + j as usize) % WORDS.len()])
            .collect()
    }

    /// `cached`: prefix-cache hit tokens, reported by the engine only.
    fn usage(&self, prompt_tokens: u64, cached: Option<u64>) -> Value {
        let completion = u64::from(self.output_tokens);
        let mut usage = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        });
        if let Some(cached) = cached {
            usage["prompt_tokens_details"] = json!({"cached_tokens": cached});
        }
        if let Some((r, _)) = self.reasoning {
            usage["completion_tokens_details"] = json!({"reasoning_tokens": r});
        }
        usage
    }

    /// `{"index":0,<body>,"finish_reason":<finish>}` as one SSE event. Chunks are
    /// written as text around a pre-rendered head: building a `Value` per chunk cost a
    /// third of the server's CPU with thousands of streams.
    fn choice_event(&self, body: &str, finish_reason: Option<&str>) -> String {
        let finish = finish_reason.map_or_else(|| "null".to_string(), json_str);
        let head = &self.head;
        format!("{head}{{\"index\":0,{body},\"finish_reason\":{finish}}}]}}\n\n")
    }

    fn role_chunk(&self) -> Bytes {
        self.choice_event(r#""delta":{"role":"assistant","content":""}"#, None)
            .into()
    }

    fn content_chunk(&self, tokens: std::ops::Range<u32>) -> Bytes {
        if let Some(call) = &self.tool {
            // The call's id and name lead its first arguments, in the same write.
            let mut out = String::new();
            if tokens.start == 0 {
                out = self.choice_event(&call.header_delta(), None);
            }
            out += &self.choice_event(&call.arguments_delta(tokens), None);
            return out.into();
        }
        if let Some((r, key)) = self.reasoning
            && tokens.start < r
        {
            return self
                .choice_event(&self.reasoning_delta(tokens, r, key), None)
                .into();
        }
        let text = json_str(&self.text(tokens));
        let body = match self.kind {
            Kind::Chat => format!(r#""delta":{{"content":{text}}}"#),
            Kind::Completion => format!(r#""text":{text}"#),
        };
        self.choice_event(&body, None).into()
    }

    /// The tool this response calls instead of answering, if it calls one.
    pub(super) fn tool_call(&self) -> Option<&ToolCall> {
        self.tool.as_ref()
    }

    /// How many of the first output tokens are reasoning (0 without a reasoning phase).
    pub(super) fn reasoning_tokens(&self) -> u32 {
        self.reasoning.map_or(0, |(r, _)| r)
    }

    /// A chat delta of tokens starting in the reasoning (the first `r`): the reasoning
    /// part under `key`, and any answer part after it in the same delta.
    fn reasoning_delta(&self, tokens: std::ops::Range<u32>, r: u32, key: &str) -> String {
        let split = tokens.end.min(r);
        let thought = json_str(&self.text(tokens.start..split));
        if split == tokens.end {
            return format!(r#""delta":{{"{key}":{thought}}}"#);
        }
        let answer = json_str(&self.text(split..tokens.end));
        format!(r#""delta":{{"{key}":{thought},"content":{answer}}}"#)
    }

    /// Final chunk, the usage chunk if asked for, and `[DONE]`, in one write; `timings`
    /// (llama.cpp's member) goes in the last chunk.
    fn tail(&self, prompt_tokens: u64, cached: Option<u64>, timings: Option<&str>) -> Bytes {
        let body = match self.kind {
            Kind::Chat => r#""delta":{}"#,
            Kind::Completion => r#""text":"""#,
        };
        let mut out = self.choice_event(body, Some(self.finish_reason));
        if self.include_usage {
            let usage = self.usage(prompt_tokens, cached);
            let mut last = format!("{}],\"usage\":{usage}}}\n\n", self.head);
            timings.inspect(|t| super::timings::append(&mut last, t));
            out += &last;
        } else if let Some(t) = timings {
            super::timings::append(&mut out, t);
        }
        out += "data: [DONE]\n\n";
        out.into()
    }
}

fn object(kind: Kind, streaming: bool) -> &'static str {
    match (kind, streaming) {
        (Kind::Chat, true) => "chat.completion.chunk",
        (Kind::Chat, false) => "chat.completion",
        (Kind::Completion, _) => "text_completion",
    }
}

/// `s` as a JSON string literal, quotes and escapes included.
fn json_str(s: &str) -> String {
    Value::from(s).to_string()
}

impl Plan {
    /// The whole non-streamed response.
    fn document(&self, prompt_tokens: u64, cached: Option<u64>) -> Value {
        let text = self.text(0..self.output_tokens);
        let choice = match self.kind {
            Kind::Chat if self.tool.is_some() => json!({
                "index": 0,
                "message": self.tool.as_ref().map(ToolCall::message),
                "finish_reason": self.finish_reason,
            }),
            Kind::Chat => {
                let mut message = json!({"role": "assistant", "content": text});
                if let Some((r, key)) = self.reasoning {
                    message[key] = json!(self.text(0..r));
                    message["content"] = json!(self.text(r..self.output_tokens));
                }
                json!({"index": 0, "message": message, "finish_reason": self.finish_reason})
            }
            Kind::Completion => {
                json!({"index": 0, "text": text, "finish_reason": self.finish_reason})
            }
        };
        json!({
            "id": self.id,
            "object": object(self.kind, false),
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": self.usage(prompt_tokens, cached),
        })
    }
}

/// Chat and completions chunks, as `Plan` writes them.
pub(super) struct Chunks;

impl Events for Chunks {
    fn opening(&mut self, plan: &Plan) -> Option<Bytes> {
        plan.send_role.then(|| plan.role_chunk())
    }
    fn output(&mut self, plan: &Plan, tokens: std::ops::Range<u32>) -> Bytes {
        plan.content_chunk(tokens)
    }
    fn tail(
        &mut self,
        plan: &Plan,
        prompt_tokens: u64,
        cached: Option<u64>,
        timings: Option<&str>,
    ) -> Bytes {
        plan.tail(prompt_tokens, cached, timings)
    }
    fn error(&mut self, _: &Plan) -> Bytes {
        format!("data: {}\n\n", faults::error_json()).into()
    }
    fn document(&self, plan: &Plan, prompt_tokens: u64, cached: Option<u64>) -> Value {
        plan.document(prompt_tokens, cached)
    }
}
