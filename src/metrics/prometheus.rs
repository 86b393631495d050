//! The Prometheus text exposition format (0.0.4), parsed by hand: prometheus-parse
//! silently drops names containing `:`, which is every `vllm:*`, `sglang:*` and
//! `llamacpp:*` series.
//!
//! [`parse`] returns an [`Exposition`]: every sample line in order, plus the `# TYPE`
//! and `# HELP` declarations by family name. It follows Prometheus's own parser where
//! it matters (names with colons, escaped label values, `+Inf`/`-Inf`/`NaN`, optional
//! timestamps, CRLF, trailing comma in a label set) and fails with the line number on
//! anything else; it never panics.

use std::collections::HashMap;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }

    fn from_word(w: &str) -> Option<MetricType> {
        Some(match w {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            // OpenMetrics words a server might still print in 0.0.4 text: nothing in
            // them changes how a sample reads, so they are just untyped.
            "untyped" | "unknown" | "info" | "stateset" | "gaugehistogram" => MetricType::Untyped,
            _ => return None,
        })
    }
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order the line gave them, unescaped.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line carried one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The series key, `name{a="x",b="y"}` as Prometheus prints it.
    pub fn key(&self) -> String {
        series_key(&self.name, &self.labels)
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A sample line that [`parse`] reads back to the same sample.
impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            series_key(&self.name, &self.labels),
            format_value(self.value)
        )?;
        if let Some(ts) = self.timestamp_ms {
            write!(f, " {ts}")?;
        }
        Ok(())
    }
}

/// A parsed `/metrics` body.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// `# TYPE` by family name (`vllm:prompt_tokens`, whose samples may be
    /// `vllm:prompt_tokens_total`).
    pub types: HashMap<String, MetricType>,
    /// `# HELP` by family name, unescaped.
    pub help: HashMap<String, String>,
}

impl Exposition {
    /// The family a sample belongs to and its declared type: the sample's own name if
    /// a `# TYPE` names it, else the name without a suffix its type gives samples
    /// (`_total`/`_created` for counters, `_bucket`/`_sum`/`_count`/`_created` for
    /// histograms and summaries). Untyped when nothing declares it.
    pub fn family_of<'a>(&self, sample_name: &'a str) -> (&'a str, MetricType) {
        if let Some(t) = self.types.get(sample_name) {
            return (sample_name, *t);
        }
        const SUFFIXES: [(&str, &[MetricType]); 5] = [
            ("_total", &[MetricType::Counter]),
            ("_bucket", &[MetricType::Histogram]),
            ("_sum", &[MetricType::Histogram, MetricType::Summary]),
            ("_count", &[MetricType::Histogram, MetricType::Summary]),
            (
                "_created",
                &[
                    MetricType::Counter,
                    MetricType::Histogram,
                    MetricType::Summary,
                ],
            ),
        ];
        for (suffix, kinds) in SUFFIXES {
            if let Some(base) = sample_name.strip_suffix(suffix)
                && let Some(t) = self.types.get(base)
                && kinds.contains(t)
            {
                return (base, *t);
            }
        }
        (sample_name, MetricType::Untyped)
    }
}

/// Why a body is not the text format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// `name{a="x",b="y"}` with labels in the order given and values re-escaped; just
/// `name` without labels.
pub fn series_key(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let mut s = String::with_capacity(name.len() + 16 * labels.len());
    s.push_str(name);
    s.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        s.push_str(&escape_label_value(v));
        s.push('"');
    }
    s.push('}');
    s
}

/// A label value as the text format writes it.
pub fn escape_label_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str(r"\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str(r"\n"),
            c => s.push(c),
        }
    }
    s
}

/// A value as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, else the shortest text that
/// reads back to the same float.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Parse a whole `/metrics` body.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let err = |message: String| ParseError {
            line: i + 1,
            message,
        };
        let mut c = Cursor::new(line);
        c.skip_blanks();
        if c.at_end() {
            continue;
        }
        if c.peek() == Some(b'#') {
            c.pos += 1;
            comment(&mut c, &mut out).map_err(err)?;
        } else {
            out.samples.push(sample(&mut c).map_err(err)?);
        }
    }
    Ok(out)
}

/// `# HELP name text`, `# TYPE name type`, or any other comment (ignored).
fn comment(c: &mut Cursor<'_>, out: &mut Exposition) -> Result<(), String> {
    c.skip_blanks();
    let word = c.take_while(|b| b != b' ' && b != b'\t');
    if word != "HELP" && word != "TYPE" {
        return Ok(());
    }
    c.skip_blanks();
    let name = c.take_while(|b| b != b' ' && b != b'\t');
    if !is_metric_name(name) {
        return Err(format!(
            "expected a metric name after # {word}, found {}",
            quote(name)
        ));
    }
    if word == "HELP" {
        c.skip_blanks();
        out.help.insert(name.to_string(), unescape_help(c.rest()));
        return Ok(());
    }
    c.skip_blanks();
    let kind = c.take_while(|b| b != b' ' && b != b'\t');
    let t = MetricType::from_word(kind).ok_or_else(|| {
        format!(
            "expected counter, gauge, histogram, summary or untyped after # TYPE {name}, found {}",
            quote(kind)
        )
    })?;
    c.skip_blanks();
    if !c.at_end() {
        return Err(format!(
            "unexpected {} after # TYPE {name} {kind}",
            quote(c.rest())
        ));
    }
    match out.types.insert(name.to_string(), t) {
        Some(old) if old != t => Err(format!(
            "second # TYPE for {name}: {} after {}",
            t.as_str(),
            old.as_str()
        )),
        _ => Ok(()),
    }
}

/// `name{labels} value [timestamp]`, the cursor at the name.
fn sample(c: &mut Cursor<'_>) -> Result<Sample, String> {
    let name = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    if !is_metric_name(name) {
        let found = if name.is_empty() { c.rest() } else { name };
        return Err(format!("expected a metric name, found {}", quote(found)));
    }
    let blanks = c.skip_blanks();
    let mut labels = Vec::new();
    if c.peek() == Some(b'{') {
        c.pos += 1;
        labels = label_set(c)?;
        c.skip_blanks();
    } else if blanks == 0 && !c.at_end() {
        return Err(format!(
            "expected '{{' or a space after the metric name {name}, found {}",
            quote(c.rest())
        ));
    }
    let token = c.take_while(|b| b != b' ' && b != b'\t');
    if token.is_empty() {
        return Err(format!(
            "expected a value after {}",
            series_key(name, &labels)
        ));
    }
    let value = parse_value(token).ok_or_else(|| {
        format!(
            "expected a number (or +Inf, -Inf, NaN) as the value of {}, found {}",
            series_key(name, &labels),
            quote(token)
        )
    })?;
    c.skip_blanks();
    let mut timestamp_ms = None;
    if !c.at_end() {
        let ts = c.take_while(|b| b != b' ' && b != b'\t');
        timestamp_ms = Some(ts.parse::<i64>().map_err(|_| {
            format!(
                "expected an integer timestamp (ms) or the end of the line after the value, found {}",
                quote(ts)
            )
        })?);
        c.skip_blanks();
        if !c.at_end() {
            return Err(format!(
                "expected the end of the line after the timestamp, found {}",
                quote(c.rest())
            ));
        }
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp_ms,
    })
}

/// After `{`: `a="x", b="y"` up to and including `}`.
fn label_set(c: &mut Cursor<'_>) -> Result<Vec<(String, String)>, String> {
    let mut labels: Vec<(String, String)> = Vec::new();
    loop {
        c.skip_blanks();
        if c.peek() == Some(b'}') {
            c.pos += 1;
            return Ok(labels);
        }
        let name = c.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        let valid = name
            .as_bytes()
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
        if !valid {
            let found = if name.is_empty() { c.rest() } else { name };
            return Err(format!(
                "expected a label name or '}}', found {}",
                quote(found)
            ));
        }
        c.skip_blanks();
        if c.peek() != Some(b'=') {
            return Err(format!(
                "expected '=' after the label name {name}, found {}",
                quote(c.rest())
            ));
        }
        c.pos += 1;
        c.skip_blanks();
        if c.peek() != Some(b'"') {
            return Err(format!(
                "expected '\"' to open the value of label {name}, found {}",
                quote(c.rest())
            ));
        }
        c.pos += 1;
        let value = label_value(c).map_err(|e| format!("label {name}: {e}"))?;
        if labels.iter().any(|(k, _)| k == name) {
            return Err(format!("label {name} appears twice"));
        }
        labels.push((name.to_string(), value));
        c.skip_blanks();
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {
                c.pos += 1;
                return Ok(labels);
            }
            _ => {
                return Err(format!(
                    "expected ',' or '}}' after the value of label {name}, found {}",
                    quote(c.rest())
                ));
            }
        }
    }
}

/// After the opening quote: the unescaped value, the cursor past the closing quote.
fn label_value(c: &mut Cursor<'_>) -> Result<String, String> {
    let mut out = String::new();
    let mut start = c.pos;
    while let Some(b) = c.peek() {
        match b {
            b'"' => {
                out.push_str(&c.text[start..c.pos]);
                c.pos += 1;
                return Ok(out);
            }
            b'\\' => {
                out.push_str(&c.text[start..c.pos]);
                c.pos += 1;
                match c.peek() {
                    Some(b'\\') => out.push('\\'),
                    Some(b'"') => out.push('"'),
                    Some(b'n') => out.push('\n'),
                    Some(_) => {
                        let bad: String = c.rest().chars().take(1).collect();
                        return Err(format!(
                            "invalid escape \\{bad} (only \\\\, \\\" and \\n are allowed)"
                        ));
                    }
                    None => break,
                }
                c.pos += 1;
                start = c.pos;
            }
            _ => c.pos += 1,
        }
    }
    Err("the value has no closing '\"'".into())
}

/// Rust's float syntax is a superset of Go's `ParseFloat` for everything servers print
/// (`+Inf`, `-Inf`, `NaN`, `1.5e-3`); it also takes `inf`/`nan` in any case, as Go does.
fn parse_value(token: &str) -> Option<f64> {
    token.parse::<f64>().ok()
}

/// HELP text escapes only `\\` and `\n`; anything else is kept as written.
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Text for an error message, cut short so a garbage line stays readable.
fn quote(s: &str) -> String {
    if s.is_empty() {
        return "the end of the line".into();
    }
    const MAX: usize = 40;
    let cut: String = s.chars().take(MAX).collect();
    if cut.len() < s.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

/// A position in one line. It only ever stops next to ASCII bytes or at the ends, so
/// slicing `text` at `pos` never splits a UTF-8 character.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    /// Spaces and tabs skipped, how many.
    fn skip_blanks(&mut self) -> usize {
        self.take_while(|b| b == b' ' || b == b'\t').len()
    }

    /// `pred` is only ever true of ASCII bytes or of "not this ASCII byte"; in the
    /// latter case a multi-byte character is consumed whole, so the end stays on a
    /// character boundary.
    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && pred(bytes[self.pos]) {
            self.pos += 1;
        }
        self.text.get(start..self.pos).unwrap_or("")
    }
}

#[cfg(test)]
#[path = "tests_prometheus.rs"]
mod tests;
