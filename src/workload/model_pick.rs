//! Which model a prepared request goes to under a `--model a,b` mix, and its body and
//! tag accordingly. One model (no mix): the body as before and an empty tag, so records
//! stay unchanged.

use std::sync::Arc;

use bytes::Bytes;

use super::prepare::WorkloadSpec;
use super::tools::ToolSet;
use super::{EncodeBody, Prompt};
use crate::record::RequestTag;

/// The model of request `i` (its index in the whole workload, so every shard picks
/// what the whole run would), when the run mixes several.
pub fn model_of(spec: &WorkloadSpec, i: u64) -> Option<&Arc<str>> {
    spec.models
        .as_deref()
        .filter(|m| m.is_mix())
        .map(|m| m.pick(spec.seed, i))
}

/// The body, sent to `model` when there is one; `tools`: the request's own.
pub fn encode(
    body: &dyn EncodeBody,
    model: Option<&Arc<str>>,
    prompt: Prompt<'_>,
    max_tokens: u32,
    tools: Option<&ToolSet>,
) -> Bytes {
    match model {
        Some(m) => body.encode_as(m, prompt, max_tokens, tools),
        None => body.encode_with_tools(prompt, max_tokens, tools),
    }
}

/// The tag of a request sent to `model`: the model only when mixed.
pub fn tag(model: Option<&Arc<str>>) -> RequestTag {
    RequestTag {
        model: model.cloned(),
        ..RequestTag::default()
    }
}

#[cfg(test)]
#[path = "tests_model_pick.rs"]
mod tests;
