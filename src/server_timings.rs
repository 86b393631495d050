//! What a server says about its own handling of one request: llama.cpp's `timings`
//! object, sent in the last chunk of a stream (the finish chunk, or the usage chunk
//! with `stream_options.include_usage`), on chat and completions alike:
//! `{"cache_n":30,"prompt_n":1,"prompt_ms":74.9,...,"predicted_n":4,"predicted_ms":796.3,...}`.
//! `prompt_n` counts only the prompt tokens processed (not the `cache_n` reused), and
//! `prompt_ms` is their processing time: the server's part of the time to first token.
//!
//! Read leniently: a field missing or negative is left out, and anything else that is
//! not an object of numbers is ignored, never failing the request it came with.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// One request's server-side timings, as saved in requests.jsonl (`server_timings`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServerTimings {
    /// Time to process the (uncached part of the) prompt, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_ms: Option<f64>,
    /// Time to generate the output tokens, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_ms: Option<f64>,
    /// Prompt tokens processed (the cached ones not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_n: Option<u32>,
    /// Prompt tokens reused from the cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_n: Option<u32>,
    /// Output tokens generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_n: Option<u32>,
}

/// The wire object: every field a plain number, checked after.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    prompt_ms: Option<f64>,
    #[serde(default)]
    predicted_ms: Option<f64>,
    #[serde(default)]
    prompt_n: Option<f64>,
    #[serde(default)]
    cache_n: Option<f64>,
    #[serde(default)]
    predicted_n: Option<f64>,
}

impl ServerTimings {
    /// The `timings` member's raw JSON; `None` when it is null, unreadable or empty.
    /// Once per stream: kept out of line, away from the per-event scanner.
    #[cold]
    #[inline(never)]
    pub fn parse(raw: &str) -> Option<Box<ServerTimings>> {
        // serde would read `[1, 2]` as the struct's fields in order.
        if !raw.trim_start().starts_with('{') {
            return None;
        }
        let w: Wire = serde_json::from_str::<Option<Wire>>(raw).ok()??;
        let ms = |v: Option<f64>| v.filter(|x| x.is_finite() && *x >= 0.0);
        let n = |v: Option<f64>| {
            v.filter(|x| x.is_finite() && *x >= 0.0 && *x <= f64::from(u32::MAX))
                .map(|x| x as u32)
        };
        let t = ServerTimings {
            prompt_ms: ms(w.prompt_ms),
            predicted_ms: ms(w.predicted_ms),
            prompt_n: n(w.prompt_n),
            cache_n: n(w.cache_n),
            predicted_n: n(w.predicted_n),
        };
        (t != ServerTimings::default()).then(|| Box::new(t))
    }

    /// `,"server_timings":{...}` for a requests.jsonl line.
    pub fn write_json_member(&self, out: &mut String) {
        out.push_str(",\"server_timings\":");
        // Numbers and options only: serialising cannot fail.
        let _ = write!(out, "{}", serde_json::to_string(self).unwrap_or_default());
    }

    /// Server decode time per output token after the first, ms (as TPOT counts it).
    pub fn decode_ms_per_token(&self) -> Option<f64> {
        let n = self.predicted_n?;
        (n >= 2).then(|| self.predicted_ms.map(|ms| ms / f64::from(n - 1)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_cpp_timings_read_and_written_back() {
        let raw = r#"{"cache_n":30,"prompt_n":1,"prompt_ms":74.938,"prompt_per_token_ms":74.938,
            "predicted_n":4,"predicted_ms":796.342,"predicted_per_second":3.76}"#;
        let t = ServerTimings::parse(raw).unwrap();
        assert_eq!(t.cache_n, Some(30));
        assert_eq!(t.prompt_n, Some(1));
        assert_eq!(t.prompt_ms, Some(74.938));
        assert_eq!(t.predicted_n, Some(4));
        let mut line = String::new();
        t.write_json_member(&mut line);
        assert_eq!(
            line,
            r#","server_timings":{"prompt_ms":74.938,"predicted_ms":796.342,"prompt_n":1,"cache_n":30,"predicted_n":4}"#
        );
        let back: ServerTimings = serde_json::from_str(&line[18..]).unwrap();
        assert_eq!(back, *t);
        assert!((t.decode_ms_per_token().unwrap() - 796.342 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn odd_timings_are_dropped_not_failed() {
        assert!(ServerTimings::parse("null").is_none());
        assert!(ServerTimings::parse("{}").is_none());
        assert!(ServerTimings::parse("[1,2]").is_none());
        assert!(ServerTimings::parse(r#"{"prompt_ms":"fast"}"#).is_none());
        let t = ServerTimings::parse(r#"{"prompt_ms":-1,"prompt_n":-1,"predicted_ms":5}"#);
        let t = t.unwrap();
        assert_eq!(
            (t.prompt_ms, t.prompt_n, t.predicted_ms),
            (None, None, Some(5.0))
        );
    }
}
