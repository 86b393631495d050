//! Dataset files: prompts (and optional output lengths) from JSON Lines or JSON.
//!
//! A `.json` list is read one entry at a time rather than into one big
//! `serde_json::Value`, so a ShareGPT-sized file (hundreds of MB) costs little more
//! memory than its bytes.

use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;
use serde_json::{Map, Value};

/// What a request sends.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptContent {
    /// A plain prompt.
    Text(String),
    /// An OpenAI chat `messages` array, sent as is.
    Messages(Value),
}

#[derive(Clone, Debug, PartialEq)]
pub struct DatasetEntry {
    /// "FILE:LINE" for JSON Lines, "FILE: entry N" (N from 1) for a `.json` list.
    pub location: String,
    pub content: PromptContent,
    pub output_len: Option<u32>,
}

/// What to take from a ShareGPT `conversations` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Conversation {
    /// The first human/user turn, as text.
    #[default]
    FirstTurn,
    /// Every turn up to the last human/user one, as chat messages.
    WholeConversation,
}

const SHAPE: &str = "a list of objects or an object with a \"data\" list";

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read dataset {file}: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: not valid JSON (expected {SHAPE}): {error}")]
    Syntax {
        file: String,
        error: serde_json::Error,
    },
    /// Valid JSON of the wrong shape; serde's message says what was found and where.
    #[error("{file}: {error}")]
    Shape {
        file: String,
        error: serde_json::Error,
    },
    #[error("{file}: a JSON object without a \"data\" list (expected {SHAPE})")]
    NoDataList { file: String },
    #[error("{location}: not valid JSON (expected one JSON object per line): {detail}")]
    LineSyntax { location: String, detail: String },
    #[error("{location}: expected a JSON object, found {found}")]
    NotObject { location: String, found: String },
    #[error(
        "{location}: no usable text (expected a non-empty \"text\", \"prompt\" or \"content\" string, a \"messages\" list or a \"conversations\" list)"
    )]
    NoText { location: String },
    #[error("{location}: \"{field}\" {problem}")]
    Field {
        location: String,
        field: &'static str,
        problem: String,
    },
    #[error(
        "{file}: no entries (expected one JSON object per line, or a JSON file holding {SHAPE})"
    )]
    Empty { file: String },
}

impl DatasetError {
    /// The file may be in the other format: it did not parse, or is a lone object that
    /// could be one JSON Lines entry. Valid JSON of another shape (a string, a `data`
    /// that is no list) is plainly meant as one document, so it does not count.
    fn may_be_other_format(&self) -> bool {
        matches!(
            self,
            DatasetError::Syntax { .. }
                | DatasetError::NoDataList { .. }
                | DatasetError::LineSyntax { .. }
        )
    }

    /// The file as a whole is not in the format it was read as (as opposed to one bad entry).
    fn is_format_error(&self) -> bool {
        self.may_be_other_format() || matches!(self, DatasetError::Shape { .. })
    }
}

/// Reads every entry of a `.jsonl` file, a `.json` list of objects, or a `.json` object
/// with a `data` list.
///
/// A file starting with `[` or named `.json` is read as one JSON document, anything else
/// as JSON Lines. If that fails to parse as a whole and the other format reads cleanly,
/// the other is used: JSON Lines saved as `.json`, and a pretty-printed `{"data": [...]}`
/// saved as `.jsonl`, are both common.
pub fn read_dataset(path: &Path, conv: Conversation) -> Result<Vec<DatasetEntry>, DatasetError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| DatasetError::Read {
        file: file.clone(),
        error,
    })?;
    // Editors on Windows add a UTF-8 byte-order mark, which serde_json rejects.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let first = bytes.iter().copied().find(|b| !b.is_ascii_whitespace());
    if first == Some(b'[') {
        return read_whole(&file, bytes, conv);
    }
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let (primary, other): (Reader, Reader) = if is_json {
        (read_whole, read_jsonl)
    } else {
        (read_jsonl, read_whole)
    };
    match primary(&file, bytes, conv) {
        Err(e) if e.may_be_other_format() => match other(&file, bytes, conv) {
            Err(alt) if alt.is_format_error() => Err(e),
            alt => alt,
        },
        res => res,
    }
}

type Reader = fn(&str, &[u8], Conversation) -> Result<Vec<DatasetEntry>, DatasetError>;

fn read_jsonl(
    file: &str,
    bytes: &[u8],
    conv: Conversation,
) -> Result<Vec<DatasetEntry>, DatasetError> {
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let location = format!("{file}:{}", i + 1);
        let value: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                return Err(DatasetError::LineSyntax {
                    location,
                    detail: without_line(&e),
                });
            }
        };
        out.push(entry(location, value, conv)?);
    }
    if out.is_empty() {
        return Err(DatasetError::Empty {
            file: file.to_string(),
        });
    }
    Ok(out)
}

/// serde's message with "at line 1 column C" shortened to "at column C": the location
/// already names the line, and "line 1" would contradict it.
fn without_line(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(head) => format!("{head} at column {}", e.column()),
        None => msg,
    }
}

fn read_whole(
    file: &str,
    bytes: &[u8],
    conv: Conversation,
) -> Result<Vec<DatasetEntry>, DatasetError> {
    let mut sink = Sink {
        file,
        conv,
        out: Vec::new(),
        failure: None,
        no_data_list: false,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let res = (&mut de)
        .deserialize_any(TopLevel(&mut sink))
        .and_then(|()| de.end());
    // A rejected entry aborts parsing through serde with a placeholder error; the real
    // error waits here.
    if let Some(failure) = sink.failure {
        return Err(failure);
    }
    if let Err(error) = res {
        let file = file.to_string();
        return Err(match error.classify() {
            Category::Data => DatasetError::Shape { file, error },
            _ => DatasetError::Syntax { file, error },
        });
    }
    if sink.no_data_list {
        return Err(DatasetError::NoDataList {
            file: file.to_string(),
        });
    }
    if sink.out.is_empty() {
        return Err(DatasetError::Empty {
            file: file.to_string(),
        });
    }
    Ok(sink.out)
}

/// Where streamed entries go.
struct Sink<'a> {
    file: &'a str,
    conv: Conversation,
    out: Vec<DatasetEntry>,
    failure: Option<DatasetError>,
    /// Reported only after the document is known to be one valid object: with trailing
    /// text, the syntax error says more.
    no_data_list: bool,
}

impl Sink<'_> {
    fn take_list<'de, A: SeqAccess<'de>>(&mut self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        while let Some(value) = seq.next_element::<Value>()? {
            n += 1;
            let location = format!("{}: entry {n}", self.file);
            match entry(location, value, self.conv) {
                Ok(e) => self.out.push(e),
                Err(e) => {
                    self.failure = Some(e);
                    return Err(de::Error::custom("rejected entry"));
                }
            }
        }
        Ok(())
    }
}

/// The document: a list of entries, or an object whose `data` is one.
struct TopLevel<'s, 'a>(&'s mut Sink<'a>);

impl<'de> Visitor<'de> for TopLevel<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(SHAPE)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.take_list(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let sink = self.0;
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            // Only the first "data" counts, so a repeated key cannot double the entries.
            if key == "data" && !found {
                map.next_value_seed(DataList(&mut *sink))?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        sink.no_data_list = !found;
        Ok(())
    }
}

struct DataList<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for DataList<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for DataList<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a \"data\" list of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.0.take_list(seq)
    }
}

/// One entry from one JSON value; takes `value` so strings move rather than copy.
fn entry(location: String, value: Value, conv: Conversation) -> Result<DatasetEntry, DatasetError> {
    let Value::Object(mut map) = value else {
        return Err(DatasetError::NotObject {
            found: describe(&value),
            location,
        });
    };
    let output_len = output_len(&location, &map)?;
    let content = content(&location, &mut map, conv)?;
    Ok(DatasetEntry {
        location,
        content,
        output_len,
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

/// The prompts `--dataset` sends. A ShareGPT `conversations` list is read as the chat
/// messages up to its last human turn, so it is sent as a `messages` entry with the
/// same turns would be: whole, one request per entry, or with `expand` (the modes that
/// replay turns) as growing histories, one request per user turn.
pub fn dataset_prompts(path: &Path, expand: bool) -> Result<Vec<DatasetEntry>, DatasetError> {
    let entries = read_dataset(path, Conversation::WholeConversation)?;
    Ok(if expand {
        expand_turns(entries)
    } else {
        entries
    })
}

/// Multi-turn entries as growing chat histories: a conversation u1 a1 u2 a2 u3 becomes
/// three requests, [u1], [u1 a1 u2] and [u1 a1 u2 a2 u3], so each turn resends the
/// history as a chat client does. Other entries are kept as they are.
pub fn expand_turns(entries: Vec<DatasetEntry>) -> Vec<DatasetEntry> {
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let PromptContent::Messages(serde_json::Value::Array(msgs)) = &e.content else {
            out.push(e);
            continue;
        };
        let user_turns: Vec<usize> = msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.get("role").and_then(|r| r.as_str()) == Some("user"))
            .map(|(i, _)| i)
            .collect();
        if user_turns.len() < 2 {
            out.push(e);
            continue;
        }
        for (k, &end) in user_turns.iter().enumerate() {
            out.push(DatasetEntry {
                location: format!("{} (turn {})", e.location, k + 1),
                content: PromptContent::Messages(serde_json::Value::Array(msgs[..=end].to_vec())),
                output_len: e.output_len,
            });
        }
    }
    out
}

#[cfg(test)]
#[path = "tests_dataset.rs"]
mod tests;
