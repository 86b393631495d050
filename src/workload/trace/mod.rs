//! Request traces: arrival times, lengths and prefix-block hashes of real traffic, read
//! line by line so a million-request trace never has to sit in memory.
//!
//! Two public JSONL formats, told apart by their fields:
//! - Qwen / Bailian: `chat_id`, `parent_chat_id`, `timestamp` (float seconds),
//!   `input_length`, `output_length`, `type`, `turn`, `hash_ids` (16-token blocks).
//! - Mooncake: `timestamp` (integer milliseconds), `input_length`, `output_length`,
//!   `hash_ids` (512-token blocks).
//!
//! and two public CSV formats, told apart by their header (`csv_trace.rs`): the Azure
//! LLM inference trace and BurstGPT.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

mod csv_trace;
mod fields;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_csv;

pub use csv_trace::LeftOut;
use csv_trace::{AZURE_HEADER, BURSTGPT_HEADER, CsvRows};
use fields::{LineCheck, RawLine};
use serde::de::IgnoredAny;

const QWEN_FIELDS: &str =
    "chat_id, parent_chat_id, timestamp, input_length, output_length, type, turn, hash_ids";
const MOONCAKE_FIELDS: &str = "timestamp, input_length, output_length, hash_ids";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    Qwen,
    Mooncake,
    /// The Azure LLM inference trace (CSV).
    Azure,
    /// BurstGPT (CSV).
    BurstGpt,
}

impl TraceFormat {
    /// Tokens per `hash_ids` entry, fixed by each format's publisher. The CSV formats
    /// have no hash ids (every prompt is unique); 16 only keeps the type whole.
    pub fn block_size(self) -> usize {
        match self {
            TraceFormat::Qwen | TraceFormat::Azure | TraceFormat::BurstGpt => 16,
            TraceFormat::Mooncake => 512,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Qwen => "qwen",
            TraceFormat::Mooncake => "mooncake",
            TraceFormat::Azure => "azure",
            TraceFormat::BurstGpt => "burstgpt",
        }
    }

    /// Prefix-block hashes: requests of these formats share prompt prefixes.
    pub fn has_hash_ids(self) -> bool {
        matches!(self, TraceFormat::Qwen | TraceFormat::Mooncake)
    }

    /// A model per row (`--model-filter`).
    pub fn has_models(self) -> bool {
        self == TraceFormat::BurstGpt
    }

    fn is_csv(self) -> bool {
        matches!(self, TraceFormat::Azure | TraceFormat::BurstGpt)
    }

    fn fields(self) -> &'static str {
        match self {
            TraceFormat::Qwen => QWEN_FIELDS,
            TraceFormat::Mooncake => MOONCAKE_FIELDS,
            TraceFormat::Azure => AZURE_HEADER,
            TraceFormat::BurstGpt => BURSTGPT_HEADER,
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
    /// The file's own lengths where `--input-len`/`--output-len` replaced them (none as
    /// read).
    pub replaced: crate::record::TraceLengths,
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
    #[error(
        "trace {}:{line}: not a known trace format: `{found}`; expected a CSV header `{AZURE_HEADER}` (Azure) or `{BURSTGPT_HEADER}` (BurstGPT), or JSON lines with the Qwen fields ({QWEN_FIELDS}) or the Mooncake fields ({MOONCAKE_FIELDS})",
        path.display()
    )]
    UnknownHeader {
        path: PathBuf,
        line: usize,
        found: String,
    },
    #[error(
        "trace {}:{line}: the header `{found}` has no column `{missing}`; a {format} trace starts with `{}` (columns in any order)",
        path.display(),
        format.fields()
    )]
    Header {
        path: PathBuf,
        line: usize,
        format: TraceFormat,
        missing: &'static str,
        found: String,
    },
    #[error(
        "trace {}:{line}: {found} fields, expected {expected} as in the header (`{}`)",
        path.display(),
        format.fields()
    )]
    Width {
        path: PathBuf,
        line: usize,
        format: TraceFormat,
        expected: usize,
        found: usize,
    },
}

/// Reads a trace one request at a time. Errors stop it: after the first `Err` it yields
/// nothing more, since later lines could not be trusted to be in order.
pub struct TraceReader<R = BufReader<File>> {
    reader: R,
    /// CSV formats: the rows' parser, after the header.
    csv: Option<Box<CsvRows>>,
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
            csv: None,
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
        if r.csv_header(format)? {
            return Ok(r);
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

    /// `--model-filter`: only rows of this model (ASCII case ignored); formats without
    /// a model column ignore it (the caller refuses it for them).
    pub fn filter_model(&mut self, model: Option<String>) {
        if let Some(rows) = &mut self.csv {
            rows.set_model(model);
        }
    }

    /// Rows read but not yielded (CSV formats only).
    pub fn left_out(&self) -> LeftOut {
        self.csv.as_ref().map(|r| r.left_out()).unwrap_or_default()
    }

    /// A few of the distinct models the rows read so far named.
    pub fn models_seen(&self) -> &[String] {
        self.csv.as_ref().map_or(&[], |r| r.models_seen())
    }

    /// The first line (in `buf`) as a CSV header: true when it is one, and the reader
    /// now reads rows. False: a JSON trace. A line that is neither is an error naming both.
    fn csv_header(&mut self, forced: Option<TraceFormat>) -> Result<bool, TraceError> {
        let text = self.buf.trim_ascii();
        let Some((format, cols)) = csv_trace::header(text, forced, &self.path, self.line)? else {
            let json = text.first() == Some(&b'{')
                || serde_json::from_slice::<IgnoredAny>(text).is_ok()
                || forced.is_some();
            if json {
                return Ok(false);
            }
            return Err(TraceError::UnknownHeader {
                path: self.path.clone(),
                line: self.line,
                found: csv_trace::shown(text),
            });
        };
        self.csv = Some(Box::new(CsvRows::new(format, cols)));
        self.format = format;
        Ok(true)
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
        let req = loop {
            if !self.next_line()? {
                return Ok(None);
            }
            match &mut self.csv {
                // A CSV row may be left out (a failed request, another model).
                Some(rows) => match rows.row(&self.buf, self.line, &self.path)? {
                    Some(req) => break req,
                    None => continue,
                },
                None => {
                    let raw = self.parse_raw()?;
                    break self.convert(raw, self.format)?;
                }
            }
        };
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
