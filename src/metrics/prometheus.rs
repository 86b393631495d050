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
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.0123
# HELP vllm:prefix_cache_queries Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1.2345e+06
vllm:prefix_cache_queries_created{engine="0",model_name="m"} 1.7345e+09
# HELP vllm:prompt_tokens Number of prefill tokens processed.
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 48213.0
# HELP vllm:request_success Count of successfully processed requests.
# TYPE vllm:request_success counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 17.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 83.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="m"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 61.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 100.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 100.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 9.87
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{implementation="CPython",major="3",minor="12",patchlevel="3",version="3.12.3"} 1.0
"#;

    #[test]
    fn vllm_excerpt() {
        let e = parse(VLLM).unwrap();
        assert_eq!(e.samples.len(), 14);
        let s = &e.samples[0];
        assert_eq!(s.name, "vllm:num_requests_running");
        assert_eq!(s.value, 3.0);
        assert_eq!(s.label("model_name"), Some("m"));
        assert_eq!(
            s.key(),
            r#"vllm:num_requests_running{engine="0",model_name="m"}"#
        );
        assert_eq!(e.samples[3].value, 1.2345e6);
        assert_eq!(
            e.family_of("vllm:prefix_cache_queries_total"),
            ("vllm:prefix_cache_queries", MetricType::Counter)
        );
        assert_eq!(
            e.family_of("vllm:time_to_first_token_seconds_sum"),
            ("vllm:time_to_first_token_seconds", MetricType::Histogram)
        );
        assert_eq!(
            e.family_of("vllm:time_to_first_token_seconds_bucket"),
            ("vllm:time_to_first_token_seconds", MetricType::Histogram)
        );
        assert_eq!(
            e.family_of("vllm:num_requests_running"),
            ("vllm:num_requests_running", MetricType::Gauge)
        );
        assert_eq!(
            e.family_of("nothing_total"),
            ("nothing_total", MetricType::Untyped)
        );
        let inf = e
            .samples
            .iter()
            .find(|s| s.label("le") == Some("+Inf"))
            .unwrap();
        assert_eq!(inf.value, 100.0);
        assert_eq!(
            e.help["vllm:kv_cache_usage_perc"],
            "KV-cache usage. 1 means 100 percent usage."
        );
        // Two label sets of one name stay two series.
        let keys: Vec<String> = e
            .samples
            .iter()
            .filter(|s| s.name == "vllm:request_success_total")
            .map(Sample::key)
            .collect();
        assert_eq!(keys.len(), 2);
        assert_ne!(keys[0], keys[1]);
    }

    #[test]
    fn sglang_and_llamacpp_names() {
        let text = "# HELP sglang:num_running_reqs The number of running requests.\r\n\
            # TYPE sglang:num_running_reqs gauge\r\n\
            sglang:num_running_reqs{model_name=\"qwen\",tp_rank=\"0\"} 4.0\r\n\
            # TYPE sglang:prompt_tokens counter\r\n\
            sglang:prompt_tokens_total{model_name=\"qwen\"} 1024.0\r\n\
            sglang:cache_hit_rate{model_name=\"qwen\"} NaN\r\n\
            \r\n\
            # HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n\
            # TYPE llamacpp:prompt_tokens_total counter\n\
            llamacpp:prompt_tokens_total 6886\n\
            llamacpp:prompt_tokens_cached_total 2048\n\
            llamacpp:requests_processing 0\n\
            llamacpp:predicted_tokens_seconds 2.37151\n";
        let e = parse(text).unwrap();
        let names: Vec<&str> = e.samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sglang:num_running_reqs",
                "sglang:prompt_tokens_total",
                "sglang:cache_hit_rate",
                "llamacpp:prompt_tokens_total",
                "llamacpp:prompt_tokens_cached_total",
                "llamacpp:requests_processing",
                "llamacpp:predicted_tokens_seconds",
            ]
        );
        assert!(e.samples[2].value.is_nan());
        assert_eq!(e.samples[3].value, 6886.0);
        assert_eq!(
            e.family_of("llamacpp:prompt_tokens_total"),
            ("llamacpp:prompt_tokens_total", MetricType::Counter)
        );
        assert_eq!(
            e.samples[0].key(),
            r#"sglang:num_running_reqs{model_name="qwen",tp_rank="0"}"#
        );
    }

    #[test]
    fn values_escapes_and_timestamps() {
        let text = concat!(
            "a 1\n",
            "b +Inf\n",
            "c -Inf 1700000000000\n",
            "d{x=\"a\\\\b\\\"c\\nd\"} 1.5e-3 -5\n",
            "e{ y = \"2\" , x=\"1\", } 2E3\n",
            "  f\t7\t \n",
            "g{} 0\n",
            "# a free comment with \"quotes\" {\n",
            "#TYPE h counter\n",
            "h_total{le=\"ünïcødé ✓\"} 42\n",
            "# HELP i multi\\nline \\\\ \\x kept\n",
        );
        let e = parse(text).unwrap();
        let s = &e.samples;
        assert_eq!(s[0].value, 1.0);
        assert_eq!(s[1].value, f64::INFINITY);
        assert_eq!(s[2].value, f64::NEG_INFINITY);
        assert_eq!(s[2].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(s[3].label("x"), Some("a\\b\"c\nd"));
        assert_eq!(s[3].value, 1.5e-3);
        assert_eq!(s[3].timestamp_ms, Some(-5));
        // Re-escaped as it was given.
        assert_eq!(s[3].key(), r#"d{x="a\\b\"c\nd"}"#);
        // Label order is kept as given.
        assert_eq!(s[4].key(), r#"e{y="2",x="1"}"#);
        assert_eq!(s[4].value, 2000.0);
        assert_eq!((s[5].name.as_str(), s[5].value), ("f", 7.0));
        assert_eq!(s[6].key(), "g");
        assert_eq!(e.types["h"], MetricType::Counter);
        assert_eq!(s[7].label("le"), Some("ünïcødé ✓"));
        assert_eq!(e.help["i"], "multi\nline \\ \\x kept");
        assert_eq!(s.len(), 8);
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let cases: &[(&str, usize, &str)] = &[
            ("ok 1\nbad\n", 2, "expected a value"),
            ("ok 1\n\nx{a=\"1\" 2\n", 3, "expected ',' or '}'"),
            ("x{a=1} 2", 1, "expected '\"'"),
            ("x{a=\"1} 2", 1, "no closing"),
            ("x{a=\"\\t\"} 2", 1, "invalid escape"),
            ("x{1a=\"1\"} 2", 1, "expected a label name"),
            ("x{a=\"1\",a=\"2\"} 2", 1, "appears twice"),
            ("x 1 2 3", 1, "end of the line after the timestamp"),
            ("x 1 1.5", 1, "integer timestamp"),
            ("x one", 1, "expected a number"),
            ("9x 1", 1, "expected a metric name"),
            ("x-y 1", 1, "expected '{' or a space"),
            ("# TYPE x countr", 1, "expected counter, gauge"),
            ("# TYPE x", 1, "expected counter, gauge"),
            ("# TYPE x gauge\n# TYPE x counter", 2, "second # TYPE"),
            ("# HELP", 1, "expected a metric name after # HELP"),
            ("a 1\r\nb{", 2, "label name"),
        ];
        for (text, line, want) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, *line, "{text:?}: {e}");
            assert!(e.message.contains(want), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    fn random_name(rng: &mut StdRng) -> String {
        const FIRST: &[u8] = b"abcxyzABZ_:";
        const REST: &[u8] = b"abcxyzABZ_:0189";
        let n = rng.random_range(0..12);
        let mut s = String::new();
        s.push(FIRST[rng.random_range(0..FIRST.len())] as char);
        for _ in 0..n {
            s.push(REST[rng.random_range(0..REST.len())] as char);
        }
        s
    }

    fn random_label_value(rng: &mut StdRng) -> String {
        const CHARS: &[char] = &[
            'a', 'Z', '0', ' ', '\t', '\\', '"', '\n', '{', '}', ',', '=', '#', 'é', '✓', '\r',
        ];
        let n = rng.random_range(0..10);
        (0..n)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())])
            .collect()
    }

    fn random_value(rng: &mut StdRng) -> f64 {
        match rng.random_range(0..8) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2 => f64::NAN,
            3 => rng.random_range(0..1000) as f64,
            4 => f64::from_bits(rng.random::<u64>()),
            _ => rng.random::<f64>() * 10f64.powi(rng.random_range(-300..300)),
        }
    }

    fn same_value(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
    }

    #[test]
    fn random_round_trip() {
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..300 {
            let mut want = Vec::new();
            let mut text = String::new();
            for _ in 0..rng.random_range(0..20) {
                if rng.random_bool(0.2) {
                    text.push_str(
                        "# HELP some_name text with \\\\ and \"quotes\"\n# other comment\n\n",
                    );
                }
                let mut labels: Vec<(String, String)> = Vec::new();
                for _ in 0..rng.random_range(0..4) {
                    let k = random_name(&mut rng).replace(':', "_");
                    if !labels.iter().any(|(x, _)| *x == k) {
                        labels.push((k, random_label_value(&mut rng)));
                    }
                }
                let s = Sample {
                    name: random_name(&mut rng),
                    labels,
                    value: random_value(&mut rng),
                    timestamp_ms: rng.random_bool(0.3).then(|| rng.random::<i64>()),
                };
                text.push_str(&s.to_string());
                text.push_str(if rng.random_bool(0.5) { "\r\n" } else { "\n" });
                want.push(s);
            }
            let got = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(got.samples.len(), want.len(), "{text}");
            for (g, w) in got.samples.iter().zip(&want) {
                assert_eq!(g.name, w.name);
                assert_eq!(g.labels, w.labels, "{text}");
                assert!(same_value(g.value, w.value), "{} vs {}", g.value, w.value);
                assert_eq!(g.timestamp_ms, w.timestamp_ms);
                assert_eq!(g.key(), w.key());
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = StdRng::seed_from_u64(9);
        // Bytes biased towards the format's own punctuation, so parsing gets deep.
        const PIECES: &[&str] = &[
            "a", ":", "_", "{", "}", "=", "\"", "\\", ",", " ", "\t", "\n", "\r", "#", "1", "e",
            "+Inf", "NaN", "-", ".", "é", "✓", "HELP", "TYPE", "counter", "\u{0}", "le=\"",
        ];
        for _ in 0..3000 {
            let mut s = String::new();
            for _ in 0..rng.random_range(0..40) {
                s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
            }
            let _ = parse(&s);
            let bytes: Vec<u8> = (0..rng.random_range(0..64))
                .map(|_| rng.random::<u8>())
                .collect();
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
