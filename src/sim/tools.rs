//! Tool calls: a chat request that carries `tools` (and a `tool_choice` other than
//! "none") is answered with a call of one of them. The call streams as OpenAI's chat API
//! does: a first `delta.tool_calls` chunk with the call's id, type and function name,
//! then the arguments in pieces of one token each (grouped like content tokens by
//! `tokens_per_chunk`), and finish_reason "tool_calls". The arguments are the output
//! tokens: `{"q":"` + words + `"}`, a valid JSON object of the response's length.

use serde::Deserialize;
use serde_json::{Value, json};

use super::stream::{WORDS, mix};

/// The tools of a request, reduced to what the simulator needs.
#[derive(Debug, Default)]
pub(super) struct RequestTools {
    names: Vec<String>,
    choice: Choice,
}

#[derive(Debug, Default, PartialEq)]
enum Choice {
    #[default]
    Auto,
    None,
    Required,
    Named(String),
}

/// One tool definition as sent (chat shape, or the Responses API's flat one).
#[derive(Deserialize)]
pub(super) struct RawTool {
    #[serde(default)]
    function: Option<RawFunction>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawFunction {
    #[serde(default)]
    name: Option<String>,
}

impl RequestTools {
    /// `None` when the request carries no tools.
    pub(super) fn parse(
        tools: Option<Vec<RawTool>>,
        choice: Option<Value>,
    ) -> Result<Option<RequestTools>, String> {
        let Some(tools) = tools.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let mut names = Vec::with_capacity(tools.len());
        for (i, t) in tools.into_iter().enumerate() {
            let name = t.function.and_then(|f| f.name).or(t.name);
            names.push(name.ok_or_else(|| format!("tools[{i}]: no function name"))?);
        }
        let choice = match choice {
            None | Some(Value::Null) => Choice::Auto,
            Some(Value::String(s)) => match s.as_str() {
                "auto" => Choice::Auto,
                "none" => Choice::None,
                "required" => Choice::Required,
                other => {
                    return Err(format!(
                        "tool_choice {other:?} is not auto, none or required"
                    ));
                }
            },
            Some(v) => {
                let name = v["function"]["name"].as_str().or(v["name"].as_str());
                match name {
                    Some(n) if names.iter().any(|t| t == n) => Choice::Named(n.to_string()),
                    Some(n) => {
                        return Err(format!("tool_choice names {n:?}, which is not in tools"));
                    }
                    None => return Err(format!("tool_choice {v} names no function")),
                }
            }
        };
        Ok(Some(RequestTools { names, choice }))
    }

    /// The tool this response calls, if it calls one: the named one, else one drawn from
    /// (seed, prompt hash); under "auto" only a `share` of responses call one.
    pub(super) fn decide(&self, seed: u64, hash: u64, share: f64) -> Option<String> {
        let draw = mix(seed ^ hash ^ 0x7001_ca11);
        match &self.choice {
            Choice::None => None,
            Choice::Named(n) => Some(n.clone()),
            Choice::Auto if (draw >> 11) as f64 / (1u64 << 53) as f64 >= share => None,
            Choice::Auto | Choice::Required => {
                Some(self.names[(draw % self.names.len() as u64) as usize].clone())
            }
        }
    }
}

/// A response's tool call: what it calls, under which id.
#[derive(Debug)]
pub(super) struct ToolCall {
    pub name: String,
    pub id: String,
    /// Arguments tokens (the response's output tokens).
    pub tokens: u32,
    pub first_word: usize,
}

impl ToolCall {
    /// The arguments' piece for output token `j`.
    fn piece(&self, j: u32) -> &'static str {
        let n = self.tokens;
        match j {
            _ if n == 1 => "{}",
            0 => "{\"q\":\"",
            _ if j + 1 == n => "\"}",
            _ => WORDS[(self.first_word + j as usize) % WORDS.len()],
        }
    }

    /// The arguments of output tokens `range`.
    pub fn arguments(&self, range: std::ops::Range<u32>) -> String {
        range.map(|j| self.piece(j)).collect()
    }

    /// The delta of the call's first chunk: id, type and name, no arguments yet.
    pub fn header_delta(&self) -> String {
        let call = json!([{
            "index": 0,
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": ""},
        }]);
        format!(r#""delta":{{"role":"assistant","content":null,"tool_calls":{call}}}"#)
    }

    /// The delta carrying output tokens `range` of the arguments.
    pub fn arguments_delta(&self, range: std::ops::Range<u32>) -> String {
        let args = Value::from(self.arguments(range)).to_string();
        format!(r#""delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":{args}}}}}]}}"#)
    }

    /// The assistant message of a non-streamed response.
    pub fn message(&self) -> Value {
        json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{
                "id": self.id,
                "type": "function",
                "function": {"name": self.name, "arguments": self.arguments(0..self.tokens)},
            }],
        })
    }
}
