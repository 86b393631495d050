//! Dataset files: prompts (and optional output lengths) from JSON Lines or JSON.
//!
//! A `.json` list is read one entry at a time rather than into one big
//! `serde_json::Value`, so a ShareGPT-sized file (hundreds of MB) costs little more
//! memory than its bytes.

use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::error::Category;

use super::dataset_entry::entry;
pub(crate) use super::dataset_entry::{Role, describe, describe_opt, sharegpt_turn};

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
    /// The entry's own `tools` (checked), sent instead of `--tools`.
    pub tools: Option<super::tools::ToolSet>,
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

/// The prompts `--dataset` sends. A ShareGPT `conversations` list is read as the chat
/// messages up to its last human turn, so it is sent as a `messages` entry with the
/// same turns would be: whole, one request per entry, or with `expand` (the modes that
/// replay turns) as growing histories, one request per user turn.
pub fn dataset_prompts(path: &Path, expand: bool) -> Result<Vec<DatasetEntry>, DatasetError> {
    let mut entries = read_dataset(path, Conversation::WholeConversation)?;
    // Image files are named relative to the dataset's own directory.
    let dir = path.parent().unwrap_or(Path::new("."));
    super::dataset_images::embed_files(&mut entries, dir)?;
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
                tools: e.tools.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
#[path = "tests_dataset.rs"]
mod tests;
