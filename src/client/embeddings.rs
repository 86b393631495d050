//! The OpenAI embeddings API: request bodies of `--batch-inputs` prompts, and the lean
//! reading of an answer (the vectors are skipped, their items only counted).

use serde::Deserialize;
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde_json::{Value, json};

use super::openai::{BodyOptions, Usage, error_message};
use crate::record::FailureKind;
use crate::workload::{BatchBody, Prompt};
use bytes::Bytes;

/// One input of an embeddings request as its JSON value: the text (a chat history is
/// flattened to its contents, one per line), or the token ids.
pub fn input(prompt: Prompt<'_>) -> Value {
    match prompt {
        Prompt::Text(t) => json!(t),
        Prompt::TokenIds(ids) => json!(ids),
        Prompt::Messages(m) => json!(crate::workload::flatten_messages(m)),
    }
}

/// The body of one request: the model and the inputs (each one JSON value `input`
/// wrote, joined as they are: no re-parse), `--extra-body` overriding either and added.
pub fn body(opts: &BodyOptions, inputs: &[Bytes]) -> Vec<u8> {
    let extra = &opts.extra;
    let mut out = Vec::with_capacity(64 + inputs.iter().map(|p| p.len() + 1).sum::<usize>());
    let model = json!(opts.model);
    out.extend_from_slice(b"{\"model\":");
    write_json(&mut out, extra.get("model").unwrap_or(&model));
    out.extend_from_slice(b",\"input\":");
    match extra.get("input") {
        Some(v) => write_json(&mut out, v),
        None => {
            out.push(b'[');
            for (i, part) in inputs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(part);
            }
            out.push(b']');
        }
    }
    for (k, v) in extra.iter().filter(|(k, _)| *k != "model" && *k != "input") {
        out.push(b',');
        write_json(&mut out, &Value::String(k.clone()));
        out.push(b':');
        write_json(&mut out, v);
    }
    out.push(b'}');
    out
}

fn write_json(out: &mut Vec<u8>, v: &Value) {
    serde_json::to_writer(out, v).expect("a JSON value always serializes");
}

impl BatchBody for BodyOptions {
    fn inputs(&self) -> u32 {
        self.batch_inputs
    }

    fn input(&self, prompt: Prompt<'_>) -> Bytes {
        Bytes::from(input(prompt).to_string())
    }

    fn join(&self, inputs: &[Bytes]) -> Bytes {
        Bytes::from(body(self, inputs))
    }
}

/// What an embeddings answer says, read without building any vector.
#[derive(Debug, Default, PartialEq)]
pub struct EmbeddingsAnswer {
    /// Items of `data`.
    pub items: u32,
    pub usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    data: Option<Count>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    message: Option<Value>,
}

/// The length of a JSON array, its items skipped unread.
struct Count(u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of embeddings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0u32;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n = n.saturating_add(1);
                }
                Ok(Count(n))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Read a successful (2xx) response's body: an embeddings list with exactly `sent`
/// items, or the failure it is.
pub fn read_answer(body: &[u8], sent: u32) -> Result<EmbeddingsAnswer, (FailureKind, String)> {
    let invalid = |why: String| (FailureKind::InvalidResponse, why);
    let a: Answer = serde_json::from_slice(body).map_err(|e| {
        let head = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
        invalid(format!(
            "not an embeddings response ({e}); the body began {head:?}"
        ))
    })?;
    if let Some(e) = a.error.filter(|e| !e.is_null()) {
        return Err((FailureKind::ErrorEvent, error_message(&e)));
    }
    // vLLM's older error shape: {"object": "error", "message": ...}
    if a.object.as_deref() == Some("error") {
        let msg = a.message.as_ref().map_or("error".into(), error_message);
        return Err((FailureKind::ErrorEvent, msg));
    }
    let Some(Count(items)) = a.data else {
        return Err(invalid(
            "not an embeddings response: no \"data\" list".into(),
        ));
    };
    if items != sent {
        return Err(invalid(format!(
            "{items} embeddings in \"data\" for {sent} inputs sent"
        )));
    }
    Ok(EmbeddingsAnswer {
        items,
        usage: a.usage,
    })
}

#[cfg(test)]
#[path = "tests_embeddings.rs"]
mod tests;
