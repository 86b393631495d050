//! Service-level objectives and goodput, per the metrics spec ("SLOs and goodput").
//!
//! An SLO bounds TTFT, TPOT and E2E from above and, optionally, a request's own output
//! throughput from below. vLLM's goodput knows only the three latencies; the dual-round
//! tool bounded output tokens / latency, which is kept here as `min_output_tok_s`.

use std::fmt;
use std::path::Path;

use serde_json::{Value, json};

use crate::yaml::{Node, at_line as at};

use super::summary::{RunData, Sample};

/// The keys a `--slo` value accepts, for error messages.
const KEYS: &str =
    "ttft_ms, tpot_ms (or itl_ms), e2e_ms (or latency_ms), min_output_tok_s, ttfa_ms";
const INLINE_EXAMPLE: &str = "ttft_ms=500,tpot_ms=50";

/// Bounds a request must meet to count towards goodput; `None` = no bound.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    /// Lower bound on output_tokens / E2E of each request.
    pub min_output_tok_s: Option<f64>,
    /// Time to first answer token (`metrics::phases`); saved only when set, so files
    /// without it read and write as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttfa_ms: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SloError {
    #[error(
        "--slo {file}: cannot read the SLO file: {error} (expected a YAML file, or bounds inline like {INLINE_EXAMPLE})"
    )]
    Read { file: String, error: std::io::Error },
    #[error("{location}: not valid YAML: {message}")]
    Yaml { location: String, message: String },
    #[error(
        "{location}: expected a mapping of SLO bounds such as `slo: {{ttft_ms: 500, tpot_ms: 50}}`, found {found}"
    )]
    Shape { location: String, found: String },
    #[error("{location}: unknown SLO key \"{key}\" (accepted: {KEYS})")]
    UnknownKey { location: String, key: String },
    #[error("{location}: \"{key}\" must be a positive number, found {found}")]
    Value {
        location: String,
        key: String,
        found: String,
    },
    #[error(
        "{location}: \"{key}\" repeats \"{first}\" (at {first_location}); give each once (itl_ms is tpot_ms, latency_ms is e2e_ms)"
    )]
    Duplicate {
        location: String,
        key: String,
        first: String,
        first_location: String,
    },
    #[error("--slo {item:?}: expected key=value pairs separated by commas, like {INLINE_EXAMPLE}")]
    Inline { item: String },
    #[error("{source_name}: no SLO bound set (expected at least one of {KEYS})")]
    Empty { source_name: String },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    Ttft,
    Tpot,
    E2e,
    MinTokS,
    Ttfa,
}

impl Bound {
    /// The seed tool's `itl_ms` was its per-request mean inter-token time, which is
    /// TPOT here (the metrics spec's terminology note), and its `latency_ms` is E2E.
    fn from_key(key: &str) -> Option<Bound> {
        match key {
            "ttft_ms" => Some(Bound::Ttft),
            "tpot_ms" | "itl_ms" => Some(Bound::Tpot),
            "e2e_ms" | "latency_ms" => Some(Bound::E2e),
            "min_output_tok_s" => Some(Bound::MinTokS),
            "ttfa_ms" => Some(Bound::Ttfa),
            _ => None,
        }
    }
}

/// Collects bounds, remembering who set each so a repeat can name the first.
#[derive(Default)]
struct Builder {
    slo: Slo,
    set_by: Vec<(Bound, String, String)>,
}

impl Builder {
    /// `value` is `None` for an explicit null: no bound, as config files often write.
    fn set(
        &mut self,
        key: &str,
        location: String,
        value: Result<Option<f64>, String>,
    ) -> Result<(), SloError> {
        let Some(bound) = Bound::from_key(key) else {
            return Err(SloError::UnknownKey {
                location,
                key: key.to_string(),
            });
        };
        let bad = |found: String| SloError::Value {
            location: location.clone(),
            key: key.to_string(),
            found,
        };
        let value = match value.map_err(&bad)? {
            None => return Ok(()),
            Some(v) if v.is_finite() && v > 0.0 => v,
            Some(v) => return Err(bad(v.to_string())),
        };
        if let Some((_, first, first_location)) = self.set_by.iter().find(|s| s.0 == bound) {
            return Err(SloError::Duplicate {
                location,
                key: key.to_string(),
                first: first.clone(),
                first_location: first_location.clone(),
            });
        }
        let slot = match bound {
            Bound::Ttft => &mut self.slo.ttft_ms,
            Bound::Tpot => &mut self.slo.tpot_ms,
            Bound::E2e => &mut self.slo.e2e_ms,
            Bound::MinTokS => &mut self.slo.min_output_tok_s,
            Bound::Ttfa => &mut self.slo.ttfa_ms,
        };
        *slot = Some(value);
        self.set_by.push((bound, key.to_string(), location));
        Ok(())
    }

    fn finish(self, source_name: String) -> Result<Slo, SloError> {
        if self.slo.is_empty() {
            return Err(SloError::Empty { source_name });
        }
        Ok(self.slo)
    }
}

impl Slo {
    /// Parses a `--slo` value: a YAML file, or inline `key=value,...`. A value with `=`
    /// that names no existing file is inline, so a file whose name has `=` still works.
    pub fn parse_arg(s: &str) -> Result<Slo, SloError> {
        let path = Path::new(s);
        if s.contains('=') && !path.exists() {
            return Slo::parse_inline(s);
        }
        let text = std::fs::read_to_string(path).map_err(|error| SloError::Read {
            file: s.to_string(),
            error,
        })?;
        Slo::parse_yaml(s, &text)
    }

    /// `ttft_ms=500,tpot_ms=50`; blanks around items are ignored.
    pub fn parse_inline(s: &str) -> Result<Slo, SloError> {
        let mut b = Builder::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(SloError::Inline {
                    item: item.to_string(),
                });
            };
            let value = value.trim();
            let parsed = value
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("{value:?}"));
            b.set(key.trim(), format!("--slo {item:?}"), parsed)?;
        }
        b.finish(format!("--slo {s:?}"))
    }

    /// A YAML document: `slo: {...}`, or the bounds' mapping at top level. Keys beside
    /// `slo:` are ignored, so the seed tool's config files (which hold other sections)
    /// can be passed as they are. `file` names the source in errors.
    pub fn parse_yaml(file: &str, text: &str) -> Result<Slo, SloError> {
        let top = crate::yaml::parse(file, text).map_err(|e| SloError::Yaml {
            location: e.location,
            message: e.message,
        })?;
        let entries = match top {
            Node::Map(entries) => entries,
            // An empty document is null.
            other => {
                return Err(SloError::Shape {
                    location: file.to_string(),
                    found: other.describe(),
                });
            }
        };
        let entries = match entries
            .into_iter()
            .partition::<Vec<_>, _>(|(k, _)| k.value == "slo")
        {
            (mut section, _) if !section.is_empty() => {
                if let Some((again, _)) = section.get(1) {
                    return Err(SloError::Duplicate {
                        location: at(file, again),
                        key: "slo".into(),
                        first: "slo".into(),
                        first_location: at(file, &section[0].0),
                    });
                }
                let (key, value) = section.swap_remove(0);
                match value.value {
                    Node::Map(inner) => inner,
                    other => {
                        return Err(SloError::Shape {
                            location: at(file, &key),
                            found: other.describe(),
                        });
                    }
                }
            }
            (_, all) => all,
        };
        let mut b = Builder::default();
        for (key, value) in entries {
            let parsed = match value.value {
                Node::Null => Ok(None),
                Node::Num(v) => Ok(Some(v)),
                other => Err(other.describe()),
            };
            b.set(&key.value, at(file, &key), parsed)?;
        }
        b.finish(file.to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.ttft_ms.is_none()
            && self.tpot_ms.is_none()
            && self.e2e_ms.is_none()
            && self.min_output_tok_s.is_none()
            && self.ttfa_ms.is_none()
    }

    /// Whether a request met the SLO: it succeeded and every bound holds.
    ///
    /// - A TTFT bound needs a first output event: a success without one has no TTFT to
    ///   show the bound holds.
    /// - A TPOT bound applies only to requests with a TPOT (≥ 2 output tokens, as in the
    ///   summary); a one-token answer has no time per output token to exceed it.
    /// - A TTFA bound needs an answer (text or a tool call): a request that only
    ///   reasoned misses it.
    /// - Output throughput is output_tokens / E2E seconds (the dual-round tool's choice;
    ///   vLLM has no such bound), so it counts the wait for the first token too.
    pub fn meets(&self, s: &Sample) -> bool {
        if !s.ok {
            return false;
        }
        let e2e_us = s.ended.saturating_sub(s.started);
        if let Some(bound) = self.ttft_ms {
            match s.first {
                Some(f) if ms(f.saturating_sub(s.started)) <= bound => {}
                _ => return false,
            }
        }
        if let Some(bound) = self.ttfa_ms
            && !s.ttfa_ms().is_some_and(|t| t <= bound)
        {
            return false;
        }
        if let (Some(bound), Some(tpot)) = (self.tpot_ms, s.tpot_ms())
            && tpot > bound
        {
            return false;
        }
        if let Some(bound) = self.e2e_ms
            && ms(e2e_us) > bound
        {
            return false;
        }
        if let Some(bound) = self.min_output_tok_s {
            // A zero-length interval with output is infinitely fast; without, it is 0.
            let rate = if e2e_us == 0 {
                if s.output_tokens > 0 {
                    f64::INFINITY
                } else {
                    0.0
                }
            } else {
                s.output_tokens as f64 / (e2e_us as f64 / 1e6)
            };
            if rate < bound {
                return false;
            }
        }
        true
    }
}

/// For a table heading: "TTFT ≤ 500 ms, TPOT ≤ 50 ms".
impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts = [
            self.ttft_ms.map(|v| format!("TTFT ≤ {v} ms")),
            self.tpot_ms.map(|v| format!("TPOT ≤ {v} ms")),
            self.e2e_ms.map(|v| format!("E2E ≤ {v} ms")),
            self.min_output_tok_s
                .map(|v| format!("output ≥ {v} tok/s per request")),
            self.ttfa_ms.map(|v| format!("TTFA ≤ {v} ms")),
        ];
        let parts: Vec<String> = parts.into_iter().flatten().collect();
        f.write_str(&parts.join(", "))
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Goodput of one run under one SLO.
#[derive(Clone, Debug, PartialEq)]
pub struct Goodput {
    /// Requests that met the SLO.
    pub met: u64,
    /// `met` per second of the run's duration.
    pub req_s: f64,
    /// Output tokens of the requests that met the SLO, per second.
    pub tok_s: f64,
    /// `met` / all requests sent (failed ones included).
    pub request_share: f64,
    /// Their output tokens / all output tokens of successful requests (a base other
    /// than `request_share`'s: every display names both).
    pub token_share: f64,
    /// The SLO these were computed under (results.json carries it beside them).
    pub slo: Slo,
}

impl Goodput {
    /// The `goodput` object of results.json.
    pub fn to_json(&self) -> Value {
        json!({
            "req_s": self.req_s,
            "tok_s": self.tok_s,
            "request_share": self.request_share,
            "token_share": self.token_share,
            "met": self.met,
            // Serialising plain options and floats cannot fail.
            "slo": serde_json::to_value(&self.slo).unwrap_or(Value::Null),
        })
    }
}

/// Goodput over `duration_s` (the summary's duration, failed requests included). Rates
/// and shares are 0 when their denominator is.
pub fn goodput(data: &RunData, slo: &Slo, duration_s: f64) -> Goodput {
    let (mut met, mut met_tokens, mut all_tokens) = (0u64, 0u64, 0u64);
    for s in data.samples() {
        if s.ok {
            all_tokens += s.output_tokens as u64;
        }
        if slo.meets(s) {
            met += 1;
            met_tokens += s.output_tokens as u64;
        }
    }
    let ratio = |num: f64, den: f64| {
        if den > 0.0 && den.is_finite() {
            num / den
        } else {
            0.0
        }
    };
    Goodput {
        met,
        req_s: ratio(met as f64, duration_s),
        tok_s: ratio(met_tokens as f64, duration_s),
        request_share: ratio(met as f64, data.len() as f64),
        token_share: ratio(met_tokens as f64, all_tokens as f64),
        slo: slo.clone(),
    }
}

#[cfg(test)]
#[path = "tests_slo.rs"]
mod tests;
