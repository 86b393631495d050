//! Dataset prompts before any run: `--max-input-length N` cuts them to N tokens of the
//! run's tokenizer, and a server tokenizer learns every text once, batched, so
//! preparing requests later finds them all cached (no tokenize call mid-run).
//!
//! A chat entry over N tokens loses its oldest turns first (system messages stay, the
//! last user turn stays), as a chat front end sliding its context window would; only
//! when the last user turn alone is still too long is its text cut. Cutting the last
//! turn first would change the question the model is asked, which a benchmark of
//! long conversations should keep.

use serde_json::Value;

use super::Tokenizer;
use super::dataset::{DatasetEntry, PromptContent};

/// Every text the preparation of these entries will count, in order.
fn texts(entries: &[DatasetEntry], token_ids: bool) -> Vec<String> {
    let mut out = Vec::new();
    for e in entries {
        match &e.content {
            PromptContent::Text(t) => out.push(t.clone()),
            PromptContent::Messages(m) if token_ids => out.push(super::flatten_messages(m)),
            PromptContent::Messages(m) => {
                for msg in m.as_array().into_iter().flatten() {
                    out.extend(contents(msg).into_iter().map(str::to_string));
                }
            }
        }
    }
    out
}

/// A message's text parts (a string content, or the `text` of each part).
fn contents(msg: &Value) -> Vec<&str> {
    match msg.get("content") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => Vec::new(),
    }
}

/// Tokenizes every text these entries hold in one batched exchange (a server tokenizer
/// caches them; the others need nothing).
pub fn prewarm(entries: &[DatasetEntry], tok: &Tokenizer, token_ids: bool) -> Result<(), String> {
    if !tok.is_server() {
        return Ok(());
    }
    let all = texts(entries, token_ids);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    tok.try_encode_many(&refs).map(|_| ())
}

/// Cuts every entry to at most `n` tokens; returns how many were cut.
pub fn truncate_all(
    entries: &mut [DatasetEntry],
    tok: &Tokenizer,
    n: usize,
) -> Result<usize, String> {
    // One batched exchange for a server tokenizer; every count below is then cached.
    prewarm(entries, tok, false)?;
    let mut cut = 0;
    for e in entries.iter_mut() {
        let changed = match &mut e.content {
            PromptContent::Text(t) => match tok.truncate(t, n)? {
                Some(short) => {
                    *t = short;
                    true
                }
                None => false,
            },
            PromptContent::Messages(m) => truncate_messages(m, tok, n)?,
        };
        if changed {
            cut += 1;
        }
    }
    Ok(cut)
}

fn count_message(msg: &Value, tok: &Tokenizer) -> Result<usize, String> {
    let mut n = 0;
    for t in contents(msg).into_iter().chain(call_arguments(msg)) {
        n += tok.try_encode(t)?.len();
    }
    Ok(n)
}

/// An assistant message's tool-call arguments: they take room in the prompt too.
fn call_arguments(msg: &Value) -> impl Iterator<Item = &str> {
    msg.get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.pointer("/function/arguments").and_then(Value::as_str))
}

/// Drops the oldest turns that are neither system messages nor the last user turn,
/// then cuts the last user turn's text; returns whether anything changed.
fn truncate_messages(m: &mut Value, tok: &Tokenizer, n: usize) -> Result<bool, String> {
    let Some(list) = m.as_array_mut() else {
        return Ok(false);
    };
    let mut counts = Vec::with_capacity(list.len());
    for msg in list.iter() {
        counts.push(count_message(msg, tok)?);
    }
    let mut total: usize = counts.iter().sum();
    if total <= n {
        return Ok(false);
    }
    let role = |v: &Value| v.get("role").and_then(Value::as_str).map(str::to_string);
    let last_user = list
        .iter()
        .rposition(|v| role(v).as_deref() == Some("user"))
        .unwrap_or(list.len().saturating_sub(1));
    let mut keep: Vec<bool> = vec![true; list.len()];
    for i in 0..list.len() {
        if total <= n {
            break;
        }
        if !keep[i] || i == last_user || role(&list[i]).as_deref() == Some("system") {
            continue;
        }
        keep[i] = false;
        total -= counts[i];
        // A call's results go with it: a `tool` message without its call is refused.
        if list[i].get("tool_calls").is_some() {
            for j in i + 1..list.len() {
                if j == last_user || role(&list[j]).as_deref() != Some("tool") {
                    break;
                }
                keep[j] = false;
                total -= counts[j];
            }
        }
    }
    if total > n {
        let over = total - n;
        let room = counts[last_user].saturating_sub(over);
        cut_message(&mut list[last_user], tok, room)?;
    }
    let mut i = 0;
    list.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    Ok(true)
}

/// The message's text cut to `room` tokens (a string content; a parts list keeps its
/// parts up to the one that overflows, cut).
fn cut_message(msg: &mut Value, tok: &Tokenizer, room: usize) -> Result<(), String> {
    match msg.get_mut("content") {
        Some(Value::String(s)) => {
            if let Some(short) = tok.truncate(s, room)? {
                *s = short;
            }
        }
        Some(Value::Array(parts)) => {
            let mut left = room;
            for p in parts.iter_mut() {
                let Some(Value::String(t)) = p.get_mut("text") else {
                    continue;
                };
                let here = tok.try_encode(t)?.len();
                if here <= left {
                    left -= here;
                } else {
                    *t = tok.truncate(t, left)?.unwrap_or_default();
                    left = 0;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests_truncate.rs"]
mod tests;
