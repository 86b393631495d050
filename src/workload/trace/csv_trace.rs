//! CSV traces: the Azure LLM inference trace and BurstGPT. Recognised from their header
//! line, then read row by row through the `csv` crate (never the whole file).
//!
//! - Azure: `TIMESTAMP,ContextTokens,GeneratedTokens`, wall-clock timestamps
//!   (`2023-11-16 18:15:46.6805900`, no zone or `+00:00`).
//! - BurstGPT: `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`,
//!   seconds from the trace's start; later releases add `Session ID` and `Elapsed time`,
//!   so columns are found by name and extra ones are ignored.
//!
//! Neither has prefix hashes: every prompt is unique. A row with 0 request or response
//! tokens (BurstGPT's failed requests) is left out and counted, never sent.

use std::io::{self, Read};
use std::path::Path;

use super::{TraceError, TraceFormat, TraceRequest};

pub(super) const AZURE_HEADER: &str = "TIMESTAMP,ContextTokens,GeneratedTokens";
pub(super) const BURSTGPT_HEADER: &str =
    "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type";

/// Column names (compared ignoring ASCII case) of the fields read.
struct Names {
    timestamp: &'static str,
    input: &'static str,
    output: &'static str,
    model: Option<&'static str>,
}

const AZURE: Names = Names {
    timestamp: "TIMESTAMP",
    input: "ContextTokens",
    output: "GeneratedTokens",
    model: None,
};
const BURSTGPT: Names = Names {
    timestamp: "Timestamp",
    input: "Request tokens",
    output: "Response tokens",
    model: Some("Model"),
};

fn names(format: TraceFormat) -> &'static Names {
    match format {
        TraceFormat::BurstGpt => &BURSTGPT,
        _ => &AZURE,
    }
}

/// Where each field read sits in a row.
#[derive(Clone, Copy, Debug)]
pub(super) struct Columns {
    timestamp: usize,
    input: usize,
    output: usize,
    model: Option<usize>,
    width: usize,
}

/// Rows a CSV trace holds but a replay leaves out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeftOut {
    /// 0 request or response tokens: BurstGPT's failed requests.
    pub empty: usize,
    /// Another model than `--model-filter`'s.
    pub other_model: usize,
}

/// The CSV format of a first line, with its columns: `Ok(None)` when it is no CSV
/// header (a JSON trace, or neither). `forced` must match; other CSV formats are not
/// guessed then.
pub(super) fn header(
    text: &[u8],
    forced: Option<TraceFormat>,
    path: &Path,
    line: usize,
) -> Result<Option<(TraceFormat, Columns)>, TraceError> {
    let cells = split_header(text);
    let candidates: &[TraceFormat] = match forced {
        Some(f) if f.is_csv() => &[f][..],
        Some(_) => return Ok(None),
        None => &[TraceFormat::Azure, TraceFormat::BurstGpt],
    };
    for &format in candidates {
        match columns(&cells, format) {
            Ok(cols) => return Ok(Some((format, cols))),
            Err(missing) if forced.is_some() => {
                return Err(TraceError::Header {
                    path: path.to_path_buf(),
                    line,
                    format,
                    missing,
                    found: shown(text),
                });
            }
            Err(_) => {}
        }
    }
    Ok(None)
}

/// The first line as shown in a message: cut, lossy.
pub(super) fn shown(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(text);
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.into_owned(),
    }
}

fn split_header(text: &[u8]) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(text);
    let mut rec = csv::StringRecord::new();
    match r.read_record(&mut rec) {
        Ok(true) => rec.iter().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// The columns of `format` in a header, or the first one missing.
fn columns(cells: &[String], format: TraceFormat) -> Result<Columns, &'static str> {
    let n = names(format);
    let find = |name: &'static str| {
        cells
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .ok_or(name)
    };
    Ok(Columns {
        timestamp: find(n.timestamp)?,
        input: find(n.input)?,
        output: find(n.output)?,
        model: n.model.map(find).transpose()?,
        width: cells.len(),
    })
}

/// The one line the csv reader parses next: lines are read (bounded, counted, blank
/// ones skipped) by `TraceReader`, so error lines are exact.
#[derive(Default)]
struct Feed {
    line: Vec<u8>,
    at: usize,
    /// The parser asked for more than the line: a quote was left open.
    drained: bool,
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.drained |= self.at == self.line.len();
        let n = buf.len().min(self.line.len() - self.at);
        buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Parses the rows after the header, one line at a time.
pub(super) struct CsvRows {
    rows: csv::Reader<Feed>,
    record: csv::ByteRecord,
    format: TraceFormat,
    cols: Columns,
    model: Option<String>,
    left_out: LeftOut,
    /// Distinct models seen (a few), to name them when the filter matched none.
    models: Vec<String>,
}

impl CsvRows {
    pub(super) fn new(format: TraceFormat, cols: Columns) -> Self {
        CsvRows {
            rows: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(Feed::default()),
            record: csv::ByteRecord::new(),
            format,
            cols,
            model: None,
            left_out: LeftOut::default(),
            models: Vec::new(),
        }
    }

    pub(super) fn set_model(&mut self, model: Option<String>) {
        self.model = model;
    }

    pub(super) fn left_out(&self) -> LeftOut {
        self.left_out
    }

    pub(super) fn models_seen(&self) -> &[String] {
        &self.models
    }

    /// The request of one non-blank line; `Ok(None)` when it is left out.
    pub(super) fn row(
        &mut self,
        text: &[u8],
        line: usize,
        path: &Path,
    ) -> Result<Option<TraceRequest>, TraceError> {
        let feed = self.rows.get_mut();
        feed.line.clear();
        feed.line.extend_from_slice(text.trim_ascii_end());
        // One line end: the parser returns the record without asking for more.
        feed.line.push(b'\n');
        feed.at = 0;
        feed.drained = false;
        let read = self.rows.read_byte_record(&mut self.record);
        let whole = matches!(read, Ok(true)) && !self.rows.get_ref().drained;
        if !whole {
            // A quote left open would run into later lines (and end the parser).
            return Err(TraceError::Read {
                path: path.to_path_buf(),
                line,
                source: match read {
                    Err(e) => io::Error::other(e.to_string()),
                    Ok(_) => io::Error::other("a quoted field is not closed on its line"),
                },
            });
        }
        let width = self.cols.width;
        if self.record.len() == width
            && let Some(i) = self.cols.model
        {
            let model = &self.record[i];
            remember(&mut self.models, model);
            if let Some(want) = &self.model
                && !model.eq_ignore_ascii_case(want.as_bytes())
            {
                self.left_out.other_model += 1;
                return Ok(None);
            }
        }
        let row = Row {
            path,
            line,
            format: self.format,
            cells: &self.record,
        };
        if self.record.len() != width {
            return Err(row.bad_width(width));
        }
        let names = names(self.format);
        let timestamp_us = row.timestamp_us(self.cols.timestamp, names.timestamp)?;
        let input = row.tokens(self.cols.input, names.input)?;
        let output = row.tokens(self.cols.output, names.output)?;
        if input == 0 || output == 0 {
            self.left_out.empty += 1;
            return Ok(None);
        }
        Ok(Some(TraceRequest {
            line,
            timestamp_us,
            input_len: input,
            output_len: output,
            hash_ids: Vec::new(),
            chat_id: None,
            parent_chat_id: None,
            turn: None,
            kind: None,
            replaced: Default::default(),
        }))
    }
}

fn remember(models: &mut Vec<String>, model: &[u8]) {
    if models.len() < 8 && !models.iter().any(|m| m.as_bytes() == model) {
        models.push(String::from_utf8_lossy(model).into_owned());
    }
}

/// One row's cells, checked with errors naming the file, line and column.
struct Row<'a> {
    path: &'a Path,
    line: usize,
    format: TraceFormat,
    cells: &'a csv::ByteRecord,
}

impl Row<'_> {
    fn bad(&self, field: &'static str, expected: &'static str, i: usize) -> TraceError {
        let cell = shown(&self.cells[i]);
        TraceError::Field {
            path: self.path.to_path_buf(),
            line: self.line,
            field,
            expected,
            found: if cell.is_empty() {
                "nothing".into()
            } else {
                format!("{cell:?}")
            },
        }
    }

    fn bad_width(&self, width: usize) -> TraceError {
        TraceError::Width {
            path: self.path.to_path_buf(),
            line: self.line,
            format: self.format,
            expected: width,
            found: self.cells.len(),
        }
    }

    fn text(&self, i: usize) -> Option<&str> {
        std::str::from_utf8(&self.cells[i]).ok()
    }

    /// A whole number of tokens ≥ 0 (`12.0` counts).
    fn tokens(&self, i: usize, field: &'static str) -> Result<u32, TraceError> {
        let v = self.text(i).and_then(|s| {
            s.parse::<u32>().ok().or_else(|| {
                let f = s.parse::<f64>().ok()?;
                (f >= 0.0 && f.fract() == 0.0 && f <= u32::MAX as f64).then_some(f as u32)
            })
        });
        v.ok_or_else(|| self.bad(field, "a whole number of tokens ≥ 0", i))
    }

    fn timestamp_us(&self, i: usize, field: &'static str) -> Result<u64, TraceError> {
        let text = self.text(i).unwrap_or("");
        match self.format {
            TraceFormat::BurstGpt => {
                let us = text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s >= 0.0)
                    .map(|s| (s * 1e6).round())
                    .filter(|us| us.is_finite() && *us < 1.8e19);
                us.map(|us| us as u64)
                    .ok_or_else(|| self.bad(field, "seconds ≥ 0 from the trace's start", i))
            }
            _ => wall_clock_us(text).ok_or_else(|| {
                self.bad(
                    field,
                    "a time like 2023-11-16 18:15:46.6805900 (optionally +HH:MM or Z)",
                    i,
                )
            }),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS[.fraction][Z|±HH:MM]` (or a `T` between date and time) as µs
/// since 1970-01-01 UTC, the fraction rounded to the µs.
pub(super) fn wall_clock_us(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 19 || !matches!(b[10], b' ' | b'T') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let seps = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ds = &frac.as_bytes()[..digits];
        for k in 0..6 {
            micros = micros * 10 + ds.get(k).map_or(0, |c| i64::from(c - b'0'));
        }
        if ds.get(6).is_some_and(|c| *c >= b'5') {
            micros += 1;
        }
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "" | "Z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let tz = rest.get(1..)?;
            let (oh, om) = match tz.len() {
                5 if tz.as_bytes()[2] == b':' => (tz.get(0..2)?, tz.get(3..5)?),
                4 => (tz.get(0..2)?, tz.get(2..4)?),
                _ => return None,
            };
            let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    u64::try_from(secs.checked_mul(1_000_000)?.checked_add(micros)?).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
