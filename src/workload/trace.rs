//! Request traces: arrival times, lengths and prefix-block hashes of real traffic, read
//! line by line so a million-request trace never has to sit in memory.
//!
//! Two public JSONL formats, told apart by their fields:
//! - Qwen / Bailian: `chat_id`, `parent_chat_id`, `timestamp` (float seconds),
//!   `input_length`, `output_length`, `type`, `turn`, `hash_ids` (16-token blocks).
//! - Mooncake: `timestamp` (integer milliseconds), `input_length`, `output_length`,
//!   `hash_ids` (512-token blocks).

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

const QWEN_FIELDS: &str =
    "chat_id, parent_chat_id, timestamp, input_length, output_length, type, turn, hash_ids";
const MOONCAKE_FIELDS: &str = "timestamp, input_length, output_length, hash_ids";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    Qwen,
    Mooncake,
}

impl TraceFormat {
    /// Tokens per `hash_ids` entry, fixed by each format's publisher.
    pub fn block_size(self) -> usize {
        match self {
            TraceFormat::Qwen => 16,
            TraceFormat::Mooncake => 512,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Qwen => "qwen",
            TraceFormat::Mooncake => "mooncake",
        }
    }

    fn fields(self) -> &'static str {
        match self {
            TraceFormat::Qwen => QWEN_FIELDS,
            TraceFormat::Mooncake => MOONCAKE_FIELDS,
        }
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One request of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRequest {
    /// 1-based line in the file.
    pub line: usize,
    /// µs since the trace's own zero: Mooncake ms × 1000 exactly, Qwen seconds × 1e6 rounded.
    pub timestamp_us: u64,
    pub input_len: u32,
    pub output_len: u32,
    pub hash_ids: Vec<u64>,
    /// Qwen only.
    pub chat_id: Option<i64>,
    /// Qwen only; -1 for the first turn of a conversation, as in the file.
    pub parent_chat_id: Option<i64>,
    /// Qwen only.
    pub turn: Option<u32>,
    /// Qwen only: `type` (text, search, image, file).
    pub kind: Option<String>,
}

/// The longest trace line read; real lines are a few KB (a 374-block Mooncake line is
/// under 3 KB).
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("trace {}: cannot open: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("trace {}:{line}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        line: usize,
        source: io::Error,
    },
    #[error("trace {}: holds no requests (every line is blank)", path.display())]
    Empty { path: PathBuf },
    #[error("trace {}:{line}: not valid JSON ({reason}); expected one JSON object per line", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("trace {}:{line}: expected a JSON object, found {found}", path.display())]
    NotObject {
        path: PathBuf,
        line: usize,
        found: &'static str,
    },
    #[error(
        "trace {}:{line}: not a request trace line: expected the Qwen fields ({QWEN_FIELDS}) or the Mooncake fields ({MOONCAKE_FIELDS})",
        path.display()
    )]
    Unrecognized { path: PathBuf, line: usize },
    #[error(
        "trace {}:{line}: missing field `{field}`; every {format} trace line needs {}",
        path.display(),
        format.fields()
    )]
    Missing {
        path: PathBuf,
        line: usize,
        field: &'static str,
        format: TraceFormat,
    },
    #[error("trace {}:{line}: field `{field}`: expected {expected}, found {found}", path.display())]
    Field {
        path: PathBuf,
        line: usize,
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error(
        "trace {}:{line}: timestamp {timestamp_us} µs comes before {prev_us} µs on line {prev_line}; a trace must be sorted by timestamp",
        path.display()
    )]
    Unsorted {
        path: PathBuf,
        line: usize,
        timestamp_us: u64,
        prev_line: usize,
        prev_us: u64,
    },
    #[error("trace {}: a limit of 0 requests selects nothing (use at least 1)", path.display())]
    ZeroLimit { path: PathBuf },
}

/// Reads a trace one request at a time. Errors stop it: after the first `Err` it yields
/// nothing more, since later lines could not be trusted to be in order.
pub struct TraceReader<R = BufReader<File>> {
    reader: R,
    path: PathBuf,
    format: TraceFormat,
    buf: Vec<u8>,
    /// Lines read so far (the number of the line in `buf`).
    line: usize,
    /// The first request, parsed by `new` to recognise the format.
    first: Option<TraceRequest>,
    /// Line and timestamp of the last request yielded, for the order check.
    prev: Option<(usize, u64)>,
    done: bool,
}

impl TraceReader {
    /// Opens `path`; `format` forces a format instead of recognising it from the first
    /// request line.
    pub fn open(path: &Path, format: Option<TraceFormat>) -> Result<Self, TraceError> {
        let file = File::open(path).map_err(|source| TraceError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // A large buffer: Mooncake lines hold hundreds of hash ids.
        Self::from_reader(BufReader::with_capacity(1 << 16, file), path, format)
    }
}

impl<R: BufRead> TraceReader<R> {
    /// Reads from any buffered source; `path` names it in error messages.
    pub fn from_reader(
        reader: R,
        path: impl Into<PathBuf>,
        format: Option<TraceFormat>,
    ) -> Result<Self, TraceError> {
        let mut r = TraceReader {
            reader,
            path: path.into(),
            format: format.unwrap_or(TraceFormat::Mooncake),
            buf: Vec::with_capacity(4096),
            line: 0,
            first: None,
            prev: None,
            done: false,
        };
        if !r.next_line()? {
            return Err(TraceError::Empty { path: r.path });
        }
        let raw = r.parse_raw()?;
        let format = match format {
            Some(f) => f,
            None => r.detect(&raw)?,
        };
        let first = r.convert(raw, format)?;
        r.format = format;
        r.prev = Some((first.line, first.timestamp_us));
        r.first = Some(first);
        Ok(r)
    }

    pub fn format(&self) -> TraceFormat {
        self.format
    }

    /// Loads the next non-blank line into `buf`; false at the end of the input.
    fn next_line(&mut self) -> Result<bool, TraceError> {
        loop {
            self.buf.clear();
            // Bounded, so a file without line ends cannot fill memory.
            let n = std::io::Read::take(&mut self.reader, MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| TraceError::Read {
                    path: self.path.clone(),
                    line: self.line + 1,
                    source,
                })?;
            if n == 0 {
                return Ok(false);
            }
            if n > MAX_LINE_BYTES {
                return Err(TraceError::Read {
                    path: self.path.clone(),
                    line: self.line + 1,
                    source: io::Error::other(format!(
                        "the line is longer than {} MiB (a request line is a few KB)",
                        MAX_LINE_BYTES >> 20
                    )),
                });
            }
            self.line += 1;
            // Editors on Windows may start the file with a byte-order mark.
            if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.buf.drain(..3);
            }
            if !self.buf.trim_ascii().is_empty() {
                return Ok(true);
            }
        }
    }

    fn parse_raw(&self) -> Result<RawLine<'_>, TraceError> {
        let text = self.buf.trim_ascii();
        // Serde would also accept a JSON list as a struct (fields by position); only
        // objects are trace lines.
        if text.first() != Some(&b'{') {
            return Err(match serde_json::from_slice::<IgnoredAny>(text) {
                Ok(_) => TraceError::NotObject {
                    path: self.path.clone(),
                    line: self.line,
                    found: match text.first() {
                        Some(b'[') => "a list",
                        Some(b'"') => "a string",
                        Some(b'n') => "null",
                        Some(b't' | b'f') => "a boolean",
                        _ => "a number",
                    },
                },
                Err(e) => self.json_error(e),
            });
        }
        serde_json::from_slice(text).map_err(|e| self.json_error(e))
    }

    fn json_error(&self, e: serde_json::Error) -> TraceError {
        // serde_json counts lines within the one line it was given; only the column helps.
        let text = e.to_string();
        let position = format!(" at line {} column {}", e.line(), e.column());
        let reason = match text.strip_suffix(&position) {
            Some(msg) => format!("{msg} at column {}", e.column()),
            None => text,
        };
        TraceError::Json {
            path: self.path.clone(),
            line: self.line,
            reason,
        }
    }

    fn detect(&self, raw: &RawLine<'_>) -> Result<TraceFormat, TraceError> {
        // Not `type`: a generic name another Mooncake-like trace could add.
        let qwen_only = [&raw.chat_id, &raw.parent_chat_id, &raw.turn];
        let shared = [
            &raw.timestamp,
            &raw.input_length,
            &raw.output_length,
            &raw.hash_ids,
        ];
        if qwen_only.iter().any(|v| !v.is_absent()) {
            Ok(TraceFormat::Qwen)
        } else if shared.iter().any(|v| !v.is_absent()) {
            Ok(TraceFormat::Mooncake)
        } else {
            Err(TraceError::Unrecognized {
                path: self.path.clone(),
                line: self.line,
            })
        }
    }

    fn convert<'a>(
        &self,
        raw: RawLine<'a>,
        format: TraceFormat,
    ) -> Result<TraceRequest, TraceError> {
        let line = self.line;
        let present = |v: Val<'a>, field: &'static str| -> Result<Val<'a>, TraceError> {
            if v.is_absent() {
                Err(TraceError::Missing {
                    path: self.path.clone(),
                    line,
                    field,
                    format,
                })
            } else {
                Ok(v)
            }
        };
        let bad = |field: &'static str, expected: &'static str, found: String| TraceError::Field {
            path: self.path.clone(),
            line,
            field,
            expected,
            found,
        };
        // Lengths are u32 and at least 1: a request has a prompt and makes a token.
        let length = |v: Val<'a>, field: &'static str, expected: &'static str| {
            let v = present(v, field)?;
            match v.whole() {
                Some(n @ 1..=0xFFFF_FFFF) => Ok(n as u32),
                _ => Err(bad(field, expected, v.describe())),
            }
        };

        let timestamp = present(raw.timestamp, "timestamp")?;
        let timestamp_us = match format {
            TraceFormat::Mooncake => {
                const EXPECTED: &str = "whole milliseconds ≥ 0 (Qwen traces use float seconds)";
                timestamp
                    .whole()
                    .and_then(|ms| ms.checked_mul(1000))
                    .ok_or_else(|| bad("timestamp", EXPECTED, timestamp.describe()))?
            }
            TraceFormat::Qwen => {
                // Checked before rounding, so -0.0000001 s is an error, not 0 µs.
                let us = timestamp
                    .number()
                    .filter(|&s| s >= 0.0)
                    .map(|s| (s * 1e6).round());
                // 1.8e19 µs is below u64::MAX, and any real trace is far shorter.
                match us {
                    Some(us) if us.is_finite() && (0.0..1.8e19).contains(&us) => us as u64,
                    _ => {
                        return Err(bad(
                            "timestamp",
                            "seconds ≥ 0 (a number)",
                            timestamp.describe(),
                        ));
                    }
                }
            }
        };
        let input_len = length(
            raw.input_length,
            "input_length",
            "a whole number of prompt tokens ≥ 1",
        )?;
        let output_len = length(
            raw.output_length,
            "output_length",
            "a whole number ≥ 1 (a request must generate at least 1 token)",
        )?;
        let hash_ids = match present(raw.hash_ids, "hash_ids")? {
            Val::List(Ok(ids)) => ids,
            Val::List(Err((index, found))) => {
                return Err(bad(
                    "hash_ids",
                    "a list of whole numbers ≥ 0",
                    format!("{found} at index {index}"),
                ));
            }
            v => return Err(bad("hash_ids", "a list of whole numbers ≥ 0", v.describe())),
        };

        let mut req = TraceRequest {
            line,
            timestamp_us,
            input_len,
            output_len,
            hash_ids,
            chat_id: None,
            parent_chat_id: None,
            turn: None,
            kind: None,
        };
        if format == TraceFormat::Qwen {
            let chat_id = present(raw.chat_id, "chat_id")?;
            req.chat_id = Some(
                chat_id
                    .integer()
                    .ok_or_else(|| bad("chat_id", "an integer", chat_id.describe()))?,
            );
            let parent = present(raw.parent_chat_id, "parent_chat_id")?;
            req.parent_chat_id = Some(parent.integer().filter(|&p| p >= -1).ok_or_else(|| {
                bad(
                    "parent_chat_id",
                    "an integer (-1 for a first turn)",
                    parent.describe(),
                )
            })?);
            let turn = present(raw.turn, "turn")?;
            req.turn = Some(
                turn.whole()
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(|| bad("turn", "a whole number ≥ 0", turn.describe()))?,
            );
            req.kind = Some(match present(raw.kind, "type")? {
                Val::Str(s) => s.into_owned(),
                v => {
                    return Err(bad(
                        "type",
                        "a string (text, search, image or file)",
                        v.describe(),
                    ));
                }
            });
        }
        Ok(req)
    }

    fn read_next(&mut self) -> Result<Option<TraceRequest>, TraceError> {
        if !self.next_line()? {
            return Ok(None);
        }
        let raw = self.parse_raw()?;
        let req = self.convert(raw, self.format)?;
        if let Some((prev_line, prev_us)) = self.prev
            && req.timestamp_us < prev_us
        {
            return Err(TraceError::Unsorted {
                path: self.path.clone(),
                line: req.line,
                timestamp_us: req.timestamp_us,
                prev_line,
                prev_us,
            });
        }
        self.prev = Some((req.line, req.timestamp_us));
        Ok(Some(req))
    }
}

impl<R: BufRead> Iterator for TraceReader<R> {
    type Item = Result<TraceRequest, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(first) = self.first.take() {
            return Some(Ok(first));
        }
        if self.done {
            return None;
        }
        match self.read_next() {
            Ok(Some(req)) => Some(Ok(req)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<R: BufRead> FusedIterator for TraceReader<R> {}

/// The first `limit` requests (all when `None`) of a trace, and its format. Lines after
/// the limit are not read, so errors there go unnoticed.
pub fn read_trace(
    path: &Path,
    format: Option<TraceFormat>,
    limit: Option<usize>,
) -> Result<(TraceFormat, Vec<TraceRequest>), TraceError> {
    if limit == Some(0) {
        return Err(TraceError::ZeroLimit {
            path: path.to_path_buf(),
        });
    }
    let reader = TraceReader::open(path, format)?;
    let format = reader.format();
    let requests = reader
        .take(limit.unwrap_or(usize::MAX))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((format, requests))
}

/// One line's fields, each kept as whatever JSON value it held so that a wrong type
/// becomes a message naming the field rather than serde's generic one.
#[derive(serde::Deserialize)]
struct RawLine<'a> {
    #[serde(default, borrow)]
    chat_id: Val<'a>,
    #[serde(default, borrow)]
    parent_chat_id: Val<'a>,
    #[serde(default, borrow)]
    timestamp: Val<'a>,
    #[serde(default, borrow)]
    input_length: Val<'a>,
    #[serde(default, borrow)]
    output_length: Val<'a>,
    #[serde(default, borrow, rename = "type")]
    kind: Val<'a>,
    #[serde(default, borrow)]
    turn: Val<'a>,
    #[serde(default, borrow)]
    hash_ids: Val<'a>,
}

/// A shallow JSON value. Lists are read as hash ids straight away (the only list a trace
/// line holds), so the hot path allocates nothing but the id vector.
#[derive(Debug, Default)]
enum Val<'a> {
    #[default]
    Absent,
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(f64),
    Str(Cow<'a, str>),
    /// Whole numbers ≥ 0, or the index and description of the first element that is not.
    List(Result<Vec<u64>, (usize, String)>),
    Object,
}

impl Val<'_> {
    fn is_absent(&self) -> bool {
        matches!(self, Val::Absent)
    }

    /// A whole number ≥ 0; `40.0` counts, `40.5` and `-1` do not.
    fn whole(&self) -> Option<u64> {
        match *self {
            Val::U(n) => Some(n),
            Val::F(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Some(f as u64),
            _ => None,
        }
    }

    fn integer(&self) -> Option<i64> {
        match *self {
            Val::U(n) => i64::try_from(n).ok(),
            Val::I(n) => Some(n),
            Val::F(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
            _ => None,
        }
    }

    fn number(&self) -> Option<f64> {
        match *self {
            Val::U(n) => Some(n as f64),
            Val::I(n) => Some(n as f64),
            Val::F(f) => Some(f),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Val::Absent => "nothing".into(),
            Val::Null => "null".into(),
            Val::Bool(b) => b.to_string(),
            Val::U(n) => n.to_string(),
            Val::I(n) => n.to_string(),
            // Debug keeps 1e300 short and shows 40.0 as a float.
            Val::F(f) => format!("{f:?}"),
            Val::Str(s) if s.chars().count() > 40 => {
                format!("the string {:?}…", s.chars().take(40).collect::<String>())
            }
            Val::Str(s) => format!("the string {s:?}"),
            Val::List(_) => "a list".into(),
            Val::Object => "an object".into(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Val<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Val::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Val::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Val::U(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(if v >= 0 { Val::U(v as u64) } else { Val::I(v) })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Val::F(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ids = Vec::with_capacity(seq.size_hint().unwrap_or(64));
        let mut first_bad = None;
        let mut index = 0;
        while let Some(v) = seq.next_element::<Val<'de>>()? {
            match v.whole() {
                Some(id) if first_bad.is_none() => ids.push(id),
                Some(_) => {}
                None => {
                    first_bad.get_or_insert_with(|| (index, v.describe()));
                }
            }
            index += 1;
        }
        Ok(Val::List(match first_bad {
            None => Ok(ids),
            Some(bad) => Err(bad),
        }))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Val::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::time::Instant;

    const MOONCAKE: &str = "\
{\"timestamp\": 0, \"input_length\": 1100, \"output_length\": 6, \"hash_ids\": [0, 1, 2]}
{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 4, \"hash_ids\": [3, 4]}

{\"timestamp\": 40, \"input_length\": 13, \"output_length\": 3, \"hash_ids\": [0]}
";

    const QWEN: &str = "\
{\"chat_id\": 159, \"parent_chat_id\": -1, \"timestamp\": 61.114, \"input_length\": 40, \"output_length\": 12, \"type\": \"text\", \"turn\": 1, \"hash_ids\": [0, 1, 2]}
{\"chat_id\": 160, \"parent_chat_id\": 159, \"timestamp\": 62.5, \"input_length\": 70, \"output_length\": 30, \"type\": \"search\", \"turn\": 2, \"hash_ids\": [0, 1, 2, 3, 4]}
{\"chat_id\": 161, \"parent_chat_id\": -1, \"timestamp\": 63, \"input_length\": 5, \"output_length\": 1, \"type\": \"image\", \"turn\": 1, \"hash_ids\": [9]}
";

    fn reader(
        text: &str,
        format: Option<TraceFormat>,
    ) -> Result<TraceReader<Cursor<Vec<u8>>>, TraceError> {
        TraceReader::from_reader(Cursor::new(text.as_bytes().to_vec()), "t.jsonl", format)
    }

    fn read_all(
        text: &str,
        format: Option<TraceFormat>,
    ) -> Result<(TraceFormat, Vec<TraceRequest>), TraceError> {
        let r = reader(text, format)?;
        let f = r.format();
        Ok((f, r.collect::<Result<Vec<_>, _>>()?))
    }

    /// The error message of reading `text`, which must fail.
    fn error(text: &str, format: Option<TraceFormat>) -> String {
        match read_all(text, format) {
            Ok(r) => panic!("expected an error, read {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn mooncake_is_recognised_and_converted_exactly() {
        let (format, reqs) = read_all(MOONCAKE, None).unwrap();
        assert_eq!(format, TraceFormat::Mooncake);
        assert_eq!(format.block_size(), 512);
        assert_eq!(reqs.len(), 3);
        assert_eq!(
            reqs[0],
            TraceRequest {
                line: 1,
                timestamp_us: 0,
                input_len: 1100,
                output_len: 6,
                hash_ids: vec![0, 1, 2],
                chat_id: None,
                parent_chat_id: None,
                turn: None,
                kind: None,
            }
        );
        // The blank line 3 is skipped but still counted.
        assert_eq!(reqs[2].line, 4);
        assert_eq!(reqs[2].timestamp_us, 40_000);
        assert_eq!(reqs[2].hash_ids, vec![0]);
    }

    #[test]
    fn qwen_is_recognised_and_converted_exactly() {
        let (format, reqs) = read_all(QWEN, None).unwrap();
        assert_eq!(format, TraceFormat::Qwen);
        assert_eq!(format.block_size(), 16);
        assert_eq!(reqs.len(), 3);
        let r = &reqs[0];
        assert_eq!(r.timestamp_us, 61_114_000);
        assert_eq!((r.input_len, r.output_len), (40, 12));
        assert_eq!(r.chat_id, Some(159));
        assert_eq!(r.parent_chat_id, Some(-1));
        assert_eq!(r.turn, Some(1));
        assert_eq!(r.kind.as_deref(), Some("text"));
        assert_eq!(reqs[1].parent_chat_id, Some(159));
        assert_eq!(reqs[1].timestamp_us, 62_500_000);
        assert_eq!(reqs[1].kind.as_deref(), Some("search"));
        // An integer number of seconds is fine too.
        assert_eq!(reqs[2].timestamp_us, 63_000_000);
    }

    #[test]
    fn qwen_seconds_round_to_the_nearest_microsecond() {
        for (secs, us) in [
            ("0.0000004", 0),
            ("0.0000006", 1),
            ("1.000001", 1_000_001),
            ("7199.999999", 7_199_999_999),
        ] {
            let line = QWEN.lines().next().unwrap().replace("61.114", secs);
            let (_, reqs) = read_all(&line, None).unwrap();
            assert_eq!(reqs[0].timestamp_us, us, "{secs}");
        }
    }

    #[test]
    fn forced_formats() {
        // A Qwen line holds every Mooncake field, but its seconds are not whole ms.
        let (f, reqs) = read_all(MOONCAKE, Some(TraceFormat::Mooncake)).unwrap();
        assert_eq!((f, reqs.len()), (TraceFormat::Mooncake, 3));
        let (f, reqs) = read_all(QWEN, Some(TraceFormat::Qwen)).unwrap();
        assert_eq!((f, reqs.len()), (TraceFormat::Qwen, 3));

        let e = error(MOONCAKE, Some(TraceFormat::Qwen));
        assert!(
            e.starts_with("trace t.jsonl:1: missing field `chat_id`"),
            "{e}"
        );
        assert!(e.contains("every qwen trace line needs"), "{e}");
        let e = error(QWEN, Some(TraceFormat::Mooncake));
        assert_eq!(
            e,
            "trace t.jsonl:1: field `timestamp`: expected whole milliseconds ≥ 0 (Qwen traces use float seconds), found 61.114"
        );
    }

    #[test]
    fn a_later_line_missing_a_field_names_it() {
        let text = format!(
            "{}{{\"timestamp\": 50, \"input_length\": 3, \"hash_ids\": []}}\n",
            MOONCAKE
        );
        assert_eq!(
            error(&text, None),
            "trace t.jsonl:5: missing field `output_length`; every mooncake trace line needs timestamp, input_length, output_length, hash_ids"
        );
        let mut lines: Vec<String> = QWEN.lines().map(String::from).collect();
        lines[2] = lines[2].replace("\"turn\": 1, ", "");
        let e = error(&lines.join("\n"), None);
        assert!(
            e.starts_with("trace t.jsonl:3: missing field `turn`"),
            "{e}"
        );
    }

    #[test]
    fn limit_stops_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jsonl");
        // Line 3 is broken, but a limit of 2 never reads it.
        std::fs::write(
            &path,
            "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}\n\
             {\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [1]}\n\
             not json\n",
        )
        .unwrap();
        let (f, reqs) = read_trace(&path, None, Some(2)).unwrap();
        assert_eq!((f, reqs.len()), (TraceFormat::Mooncake, 2));
        assert_eq!(read_trace(&path, None, Some(1)).unwrap().1.len(), 1);
        let e = read_trace(&path, None, None).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("trace {}:3: not valid JSON", path.display())),
            "{e}"
        );
        let e = read_trace(&path, None, Some(0)).unwrap_err().to_string();
        assert!(e.contains("limit of 0"), "{e}");
        let e = read_trace(&dir.path().join("none.jsonl"), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.jsonl: cannot open"), "{e}");
    }

    #[test]
    fn empty_traces_are_errors() {
        for text in ["", "\n", "  \n\r\n\t\n"] {
            assert_eq!(
                error(text, None),
                "trace t.jsonl: holds no requests (every line is blank)"
            );
        }
    }

    #[test]
    fn every_bad_field_is_named_with_its_line() {
        let ok =
            "{\"timestamp\": 5, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [7]}";
        let cases: &[(&str, &str, &str)] = &[
            (
                "\"input_length\": 10",
                "\"input_length\": -4",
                "field `input_length`: expected a whole number of prompt tokens ≥ 1, found -4",
            ),
            (
                "\"input_length\": 10",
                "\"input_length\": 2.5",
                "field `input_length`: expected a whole number of prompt tokens ≥ 1, found 2.5",
            ),
            (
                "\"input_length\": 10",
                "\"input_length\": 0",
                "field `input_length`: expected a whole number of prompt tokens ≥ 1, found 0",
            ),
            (
                "\"input_length\": 10",
                "\"input_length\": \"10\"",
                "field `input_length`: expected a whole number of prompt tokens ≥ 1, found the string \"10\"",
            ),
            (
                "\"input_length\": 10",
                "\"input_length\": 4294967296",
                "field `input_length`: expected a whole number of prompt tokens ≥ 1, found 4294967296",
            ),
            (
                "\"output_length\": 2",
                "\"output_length\": 0",
                "field `output_length`: expected a whole number ≥ 1 (a request must generate at least 1 token), found 0",
            ),
            (
                "\"output_length\": 2",
                "\"output_length\": null",
                "field `output_length`: expected a whole number ≥ 1 (a request must generate at least 1 token), found null",
            ),
            (
                "\"timestamp\": 5",
                "\"timestamp\": -5",
                "field `timestamp`: expected whole milliseconds ≥ 0 (Qwen traces use float seconds), found -5",
            ),
            (
                "\"timestamp\": 5",
                "\"timestamp\": 18446744073709552",
                "field `timestamp`: expected whole milliseconds ≥ 0 (Qwen traces use float seconds), found 18446744073709552",
            ),
            (
                "\"hash_ids\": [7]",
                "\"hash_ids\": [7, -1]",
                "field `hash_ids`: expected a list of whole numbers ≥ 0, found -1 at index 1",
            ),
            (
                "\"hash_ids\": [7]",
                "\"hash_ids\": [7, 8, 1.5, -2]",
                "field `hash_ids`: expected a list of whole numbers ≥ 0, found 1.5 at index 2",
            ),
            (
                "\"hash_ids\": [7]",
                "\"hash_ids\": [[7]]",
                "field `hash_ids`: expected a list of whole numbers ≥ 0, found a list at index 0",
            ),
            (
                "\"hash_ids\": [7]",
                "\"hash_ids\": {\"a\": 1}",
                "field `hash_ids`: expected a list of whole numbers ≥ 0, found an object",
            ),
            (
                "\"hash_ids\": [7]",
                "\"hash_ids\": \"7\"",
                "field `hash_ids`: expected a list of whole numbers ≥ 0, found the string \"7\"",
            ),
            (
                "\"hash_ids\": [7]",
                "\"hash_ids\": true",
                "field `hash_ids`: expected a list of whole numbers ≥ 0, found true",
            ),
        ];
        for &(from, to, msg) in cases {
            let bad = ok.replace(from, to);
            assert_ne!(bad, ok);
            // On the first line (where the format is recognised) and on a later one.
            assert_eq!(
                error(&bad, None),
                format!("trace t.jsonl:1: {msg}"),
                "{bad}"
            );
            let text = format!("{ok}\n\n{bad}\n{ok}\n");
            assert_eq!(
                error(&text, None),
                format!("trace t.jsonl:3: {msg}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_bad_qwen_field_is_named_with_its_line() {
        let ok = QWEN.lines().next().unwrap();
        let cases: &[(&str, &str, &str)] = &[
            (
                "61.114",
                "-0.5",
                "field `timestamp`: expected seconds ≥ 0 (a number), found -0.5",
            ),
            (
                "61.114",
                "-0.0000001",
                "field `timestamp`: expected seconds ≥ 0 (a number), found -1e-7",
            ),
            (
                "61.114",
                "\"61\"",
                "field `timestamp`: expected seconds ≥ 0 (a number), found the string \"61\"",
            ),
            (
                "61.114",
                "1e300",
                "field `timestamp`: expected seconds ≥ 0 (a number), found 1e300",
            ),
            (
                "\"chat_id\": 159",
                "\"chat_id\": 1.5",
                "field `chat_id`: expected an integer, found 1.5",
            ),
            (
                "\"parent_chat_id\": -1",
                "\"parent_chat_id\": -2",
                "field `parent_chat_id`: expected an integer (-1 for a first turn), found -2",
            ),
            (
                "\"turn\": 1",
                "\"turn\": -1",
                "field `turn`: expected a whole number ≥ 0, found -1",
            ),
            (
                "\"type\": \"text\"",
                "\"type\": 3",
                "field `type`: expected a string (text, search, image or file), found 3",
            ),
            (
                "\"type\": \"text\", ",
                "",
                "missing field `type`; every qwen trace line needs chat_id, parent_chat_id, timestamp, input_length, output_length, type, turn, hash_ids",
            ),
        ];
        for &(from, to, msg) in cases {
            let bad = ok.replace(from, to);
            assert_ne!(bad, ok);
            let text = format!("{ok}\n{bad}\n");
            assert_eq!(
                error(&text, None),
                format!("trace t.jsonl:2: {msg}"),
                "{bad}"
            );
        }
    }

    #[test]
    fn lines_that_are_not_objects() {
        let ok =
            "{\"timestamp\": 5, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [7]}";
        for (line, msg) in [
            ("[5, 10, 2, [7]]", "expected a JSON object, found a list"),
            ("42", "expected a JSON object, found a number"),
            ("\"x\"", "expected a JSON object, found a string"),
            ("null", "expected a JSON object, found null"),
        ] {
            assert_eq!(
                error(&format!("{ok}\n{line}\n"), None),
                format!("trace t.jsonl:2: {msg}")
            );
        }
        for line in [
            "{\"timestamp\": 5,",
            "hello",
            "{\"timestamp\": 5} x",
            "\u{0}",
        ] {
            let e = error(&format!("{ok}\n{line}\n"), None);
            assert!(e.starts_with("trace t.jsonl:2: not valid JSON ("), "{e}");
        }
        assert_eq!(
            error(
                &format!("{ok}\n{{\"timestamp\": 5, \"timestamp\": 6}}\n"),
                None
            ),
            "trace t.jsonl:2: not valid JSON (duplicate field `timestamp` at column 28); expected one JSON object per line"
        );
        // Invalid UTF-8 is reported, not a panic.
        let mut bytes = format!("{ok}\n").into_bytes();
        bytes.extend_from_slice(b"{\"type\": \"\xFF\"}\n");
        let r = TraceReader::from_reader(Cursor::new(bytes), "t.jsonl", None).unwrap();
        let e = r.collect::<Result<Vec<_>, _>>().unwrap_err().to_string();
        assert!(e.starts_with("trace t.jsonl:2: not valid JSON"), "{e}");
        // Neither format's fields.
        assert_eq!(
            error("{\"prompt\": \"hi\"}\n", None),
            format!(
                "trace t.jsonl:1: not a request trace line: expected the Qwen fields ({QWEN_FIELDS}) or the Mooncake fields ({MOONCAKE_FIELDS})"
            )
        );
    }

    #[test]
    fn timestamps_must_not_go_back() {
        let text = "\
{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}
{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}

{\"timestamp\": 4, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}
";
        assert_eq!(
            error(text, None),
            "trace t.jsonl:4: timestamp 4000 µs comes before 5000 µs on line 2; a trace must be sorted by timestamp"
        );
        // Nothing follows an error.
        let mut r = reader(&format!("{text}{}", MOONCAKE.lines().next().unwrap()), None).unwrap();
        assert!(r.next().unwrap().is_ok());
        assert!(r.next().unwrap().is_ok());
        assert!(r.next().unwrap().is_err());
        assert!(r.next().is_none());
    }

    #[test]
    fn extras_are_tolerated() {
        // Unknown fields, CRLF line ends, a byte-order mark, empty hash ids, 40.0 ms.
        let text = "\u{feff}{\"timestamp\": 40.0, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": [], \"note\": {\"a\": [1]}}\r\n\r\n";
        let (f, reqs) = read_all(text, None).unwrap();
        assert_eq!(f, TraceFormat::Mooncake);
        assert_eq!(reqs[0].timestamp_us, 40_000);
        assert!(reqs[0].hash_ids.is_empty());
        // An escaped string in `type` is not borrowed from the line, and still read.
        let line = QWEN
            .lines()
            .next()
            .unwrap()
            .replace("\"text\"", "\"te\\u0078t\"");
        let (_, reqs) = read_all(&line, None).unwrap();
        assert_eq!(reqs[0].kind.as_deref(), Some("text"));
    }

    /// The real Mooncake file, when present: counts from its README, and parse speed.
    #[test]
    fn real_mooncake_trace() {
        let path = Path::new("/work/shared/traces/mooncake_synthetic_trace.jsonl");
        if !path.exists() {
            eprintln!("skipped: {} is not here", path.display());
            return;
        }
        let start = Instant::now();
        let (format, reqs) = read_trace(path, None, None).unwrap();
        let took = start.elapsed();
        eprintln!("parsed {} requests in {took:?}", reqs.len());
        assert_eq!(format, TraceFormat::Mooncake);
        assert_eq!(reqs.len(), 3993);
        let input: u64 = reqs.iter().map(|r| u64::from(r.input_len)).sum();
        let output: u64 = reqs.iter().map(|r| u64::from(r.output_len)).sum();
        let blocks: usize = reqs.iter().map(|r| r.hash_ids.len()).sum();
        assert_eq!((input, output, blocks), (61_194_628, 595_432, 121_877));
        assert_eq!(reqs.last().unwrap().timestamp_us, 1_022_025_000);
        assert!(
            reqs.iter()
                .all(|r| r.hash_ids.len() == (r.input_len as usize).div_ceil(512))
        );
    }
}
