//! Request traces: arrival times, lengths and prefix-block hashes of real traffic, read
//! line by line so a million-request trace never has to sit in memory.
//!
//! Two public JSONL formats, told apart by their fields:
//! - Qwen / Bailian: `chat_id`, `parent_chat_id`, `timestamp` (float seconds),
//!   `input_length`, `output_length`, `type`, `turn`, `hash_ids` (16-token blocks).
//! - Mooncake: `timestamp` (integer milliseconds), `input_length`, `output_length`,
//!   `hash_ids` (512-token blocks).

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

mod fields;
#[cfg(test)]
mod tests;

use fields::{LineCheck, RawLine};
use serde::de::IgnoredAny;

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

    fn convert(&self, raw: RawLine<'_>, format: TraceFormat) -> Result<TraceRequest, TraceError> {
        let check = LineCheck {
            path: &self.path,
            line: self.line,
            format,
        };
        check.request(raw)
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
