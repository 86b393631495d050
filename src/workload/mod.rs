//! What is sent: prompts (synthetic, from a dataset, from a trace, a session's next
//! turn) and their token counts; the client encodes them (`EncodeBody`).

pub mod blocks;
pub mod chat;
pub mod chat_run;
pub mod dataset;
mod dataset_entry;
mod dataset_images;
pub mod download;
pub mod hf_cache;
pub mod images;
pub mod model_pick;
pub mod models;
pub mod prepare;
pub mod server_tok;
mod server_words;
pub mod sessions;
pub mod shared_prefix;
pub mod synthetic;
pub mod tokenizer;
pub mod tools;
pub mod trace;
pub mod trace_file;
pub mod trace_reshape;
pub mod truncate;
pub mod words;

pub use tokenizer::{Tokenizer, TokenizerError};

use bytes::Bytes;

/// What the prompt of one request is; the client's API module turns it into a body.
#[derive(Clone, Copy, Debug)]
pub enum Prompt<'a> {
    Text(&'a str),
    TokenIds(&'a [u32]),
    /// An OpenAI chat `messages` list, sent as is.
    Messages(&'a serde_json::Value),
}

/// Encodes a prompt and its max_tokens as a request body: the client's API format
/// (`client::openai::BodyOptions`) implements it, and the workload calls it as it
/// prepares each request, before the run's clock starts (or ahead of sending), so no
/// encoding sits on the hot path.
pub trait EncodeBody: Sync {
    fn encode(&self, prompt: Prompt<'_>, max_tokens: u32) -> Bytes;

    /// With this request's own tools (a dataset entry's), which replace the run's.
    fn encode_with_tools(
        &self,
        prompt: Prompt<'_>,
        max_tokens: u32,
        tools: Option<&tools::ToolSet>,
    ) -> Bytes {
        let _ = tools;
        self.encode(prompt, max_tokens)
    }
    /// Sent to `model` instead of the run's (a `--model` mix picks one per request or
    /// session), with this request's own tools, if any.
    fn encode_as(
        &self,
        model: &str,
        prompt: Prompt<'_>,
        max_tokens: u32,
        tools: Option<&tools::ToolSet>,
    ) -> Bytes {
        let _ = model;
        self.encode_with_tools(prompt, max_tokens, tools)
    }
    /// Whether a chat history is sent as messages (chat, Responses) rather than
    /// flattened to one text: a shared-prefix prompt is then a system and a user message.
    fn sends_messages(&self) -> bool {
        true
    }
    /// An API that sends several prompts per request (embeddings): how.
    fn batch(&self) -> Option<&dyn BatchBody> {
        None
    }
}

/// Several prompts in one request body (`--api embeddings --batch-inputs N`): request
/// `i` carries the prompts the workload would give requests `i·N … i·N+N−1`.
pub trait BatchBody: Sync {
    /// Prompts per request.
    fn inputs(&self) -> u32;
    /// One prompt as its part of the body.
    fn input(&self, prompt: Prompt<'_>) -> Bytes;
    /// The body of one request from its parts.
    fn join(&self, inputs: &[Bytes]) -> Bytes;
}

/// A chat history as one completions prompt: the contents in order, one per line.
pub fn flatten_messages(m: &serde_json::Value) -> String {
    let mut out = String::new();
    for msg in m.as_array().into_iter().flatten() {
        if let Some(c) = msg.get("content").and_then(serde_json::Value::as_str) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(c);
        }
    }
    out
}
