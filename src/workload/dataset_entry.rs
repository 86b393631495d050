//! One dataset entry from its JSON value: the prompt fields, a `messages` list, a
//! ShareGPT `conversations` list (and its speaker names), and the output length.

use serde_json::{Map, Value};

use super::dataset::{Conversation, DatasetEntry, DatasetError, PromptContent};
use super::tools::ToolSet;

/// One entry from one JSON value; takes `value` so strings move rather than copy.
pub(super) fn entry(
    location: String,
    value: Value,
    conv: Conversation,
) -> Result<DatasetEntry, DatasetError> {
    let Value::Object(mut map) = value else {
        return Err(DatasetError::NotObject {
            found: describe(&value),
            location,
        });
    };
    let output_len = output_len(&location, &map)?;
    let tools = tools(&location, &mut map)?;
    let content = content(&location, &mut map, conv)?;
    let content = super::dataset_images::with_images(&location, &mut map, content)?;
    Ok(DatasetEntry {
        location,
        content,
        output_len,
        tools,
    })
}

/// The first of `text`, `prompt`, `content`, `messages`, `conversations` present.
/// A `null` counts as absent: exporters often write every column, null where unused.
fn content(
    location: &str,
    map: &mut Map<String, Value>,
    conv: Conversation,
) -> Result<PromptContent, DatasetError> {
    let field_err = |field, problem| DatasetError::Field {
        location: location.to_string(),
        field,
        problem,
    };
    for field in ["text", "prompt", "content"] {
        match map.remove(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if !s.is_empty() => return Ok(PromptContent::Text(s)),
            Some(other) => {
                return Err(field_err(
                    field,
                    format!("must be a non-empty string, found {}", describe(&other)),
                ));
            }
        }
    }
    match map.remove("messages") {
        None | Some(Value::Null) => {}
        Some(messages) => return check_messages(messages).map_err(|p| field_err("messages", p)),
    }
    match map.remove("conversations") {
        None | Some(Value::Null) => {}
        Some(turns) => return conversation(turns, conv).map_err(|p| field_err("conversations", p)),
    }
    Err(DatasetError::NoText {
        location: location.to_string(),
    })
}

/// Checks only what every chat server needs (a list of objects with a role); the rest
/// (content parts, tool calls) is the server's to judge.
fn check_messages(messages: Value) -> Result<PromptContent, String> {
    let expected = "must be a non-empty list of {\"role\": ..., \"content\": ...} messages";
    let Value::Array(list) = &messages else {
        return Err(format!("{expected}, found {}", describe(&messages)));
    };
    if list.is_empty() {
        return Err(format!("{expected}, found an empty list"));
    }
    if let Some(i) = list
        .iter()
        .position(|m| !m.get("role").is_some_and(Value::is_string))
    {
        return Err(format!(
            "{expected}; message {} has no \"role\" string",
            i + 1
        ));
    }
    Ok(PromptContent::Messages(messages))
}

/// A chat role, from ShareGPT's speaker names (shared with `convert sharegpt`, so every
/// entry it writes reads back here).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    User,
    Assistant,
    System,
}

impl Role {
    const EXPECTED: &str = "human, user, gpt, assistant, chatgpt, bing, bard or system";

    /// ShareGPT's speaker names; bing and bard occur in ShareGPT V3 beside chatgpt.
    pub(crate) fn from_sharegpt(from: &str) -> Option<Role> {
        let is = |name: &str| from.eq_ignore_ascii_case(name);
        if is("human") || is("user") {
            Some(Role::User)
        } else if is("gpt") || is("assistant") || is("chatgpt") || is("bing") || is("bard") {
            Some(Role::Assistant)
        } else if is("system") {
            Some(Role::System)
        } else {
            None
        }
    }

    pub(crate) fn openai(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }
}

/// Turn `n` of a ShareGPT conversation: its role and text. Some exports use OpenAI's
/// names (`role`, `content`) inside a ShareGPT list; both are read.
pub(crate) fn sharegpt_turn(
    n: usize,
    turn: &mut Map<String, Value>,
) -> Result<(Role, String), String> {
    let role = match turn.remove("from").or_else(|| turn.remove("role")) {
        Some(Value::String(s)) => Role::from_sharegpt(&s).ok_or_else(|| {
            format!(
                "turn {n}: unknown speaker {s:?} (expected {})",
                Role::EXPECTED
            )
        })?,
        other => {
            return Err(format!(
                "turn {n}: expected a \"from\" string, found {}",
                describe_opt(other.as_ref())
            ));
        }
    };
    match turn.remove("value").or_else(|| turn.remove("content")) {
        Some(Value::String(text)) => Ok((role, text)),
        other => Err(format!(
            "turn {n}: expected a \"value\" string, found {}",
            describe_opt(other.as_ref())
        )),
    }
}

/// A ShareGPT `conversations` list. Every turn is checked in both modes, so a file
/// valid for one is valid for the other.
fn conversation(turns: Value, conv: Conversation) -> Result<PromptContent, String> {
    let expected = "must be a non-empty list of {\"from\": ..., \"value\": ...} turns";
    let turns = match turns {
        Value::Array(t) if !t.is_empty() => t,
        other => return Err(format!("{expected}, found {}", describe(&other))),
    };
    let mut parsed = Vec::with_capacity(turns.len());
    for (i, turn) in turns.into_iter().enumerate() {
        let n = i + 1;
        let Value::Object(mut turn) = turn else {
            return Err(format!("{expected}; turn {n} is {}", describe(&turn)));
        };
        let (role, text) = sharegpt_turn(n, &mut turn)?;
        parsed.push((n, role, text));
    }
    let answered = match conv {
        Conversation::FirstTurn => parsed.iter().position(|t| t.1 == Role::User),
        Conversation::WholeConversation => parsed.iter().rposition(|t| t.1 == Role::User),
    };
    let Some(answered) = answered else {
        return Err("has no human/user turn to prompt with".to_string());
    };
    if parsed[answered].2.is_empty() {
        return Err(format!(
            "turn {}: the human/user turn is empty",
            parsed[answered].0
        ));
    }
    match conv {
        Conversation::FirstTurn => Ok(PromptContent::Text(parsed.swap_remove(answered).2)),
        Conversation::WholeConversation => {
            // Turns after the last user turn are the answer the model is to give.
            parsed.truncate(answered + 1);
            let messages = parsed
                .into_iter()
                .map(|(_, role, text)| serde_json::json!({"role": role.openai(), "content": text}))
                .collect();
            Ok(PromptContent::Messages(Value::Array(messages)))
        }
    }
}

/// The entry's own tool definitions (`null` and `[]`, as function-calling datasets
/// write "no tools", count as absent).
fn tools(location: &str, map: &mut Map<String, Value>) -> Result<Option<ToolSet>, DatasetError> {
    match map.remove("tools") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.is_empty() => Ok(None),
        Some(v) => ToolSet::from_value(&v)
            .map(Some)
            .map_err(|problem| DatasetError::Field {
                location: location.to_string(),
                field: "tools",
                problem,
            }),
    }
}

/// `output_length`, else `max_tokens`; `null` counts as absent.
fn output_len(location: &str, map: &Map<String, Value>) -> Result<Option<u32>, DatasetError> {
    for field in ["output_length", "max_tokens"] {
        let v = match map.get(field) {
            None | Some(Value::Null) => continue,
            Some(v) => v,
        };
        return match v.as_u64().map(u32::try_from) {
            Some(Ok(n)) if n > 0 => Ok(Some(n)),
            Some(Err(_)) => Err(DatasetError::Field {
                location: location.to_string(),
                field,
                problem: format!(
                    "must be a positive integer (at most {}), found {v}",
                    u32::MAX
                ),
            }),
            _ => Err(DatasetError::Field {
                location: location.to_string(),
                field,
                problem: format!("must be a positive integer, found {}", describe(v)),
            }),
        };
    }
    Ok(None)
}

/// A short description of a value for error messages (never a whole prompt).
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.is_empty() => "an empty string".into(),
        Value::String(_) => "a string".into(),
        Value::Array(a) if a.is_empty() => "an empty list".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

pub(crate) fn describe_opt(v: Option<&Value>) -> String {
    v.map_or_else(|| "none".to_string(), describe)
}
