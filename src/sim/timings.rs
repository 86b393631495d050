//! llama.cpp's `timings` object in the simulator's streams (`--timings`): the server's
//! own account of a request, which the client compares with what it measured.
//!
//! Like llama.cpp, `prompt_ms` runs from when the simulator started on the request to
//! its first output token (an adapter's `@MS` delay comes before and is not in it, as a
//! queue or a proxy in front of the engine would not be), and `predicted_ms` from the
//! first output token to the last. The object goes in the stream's last chunk: the usage
//! chunk when one is sent, else the finish chunk.

use std::time::Instant;

/// What the simulator measured of one streamed response.
pub(super) struct Clock {
    begun: Instant,
    first: Option<Instant>,
}

impl Clock {
    /// Timed from `begun`: the ideal timetable's origin (its deadlines count from
    /// there, so the prompt time is the timetable's exactly), or now for the engine.
    pub(super) fn start(begun: Instant) -> Clock {
        Clock { begun, first: None }
    }

    /// An output chunk is ready; the first one ends the prompt's processing.
    pub(super) fn token(&mut self) {
        self.first.get_or_insert_with(Instant::now);
    }

    /// The `"timings":{...}` member, as llama.cpp writes it, at the end of the stream.
    pub(super) fn member(&self, prompt_tokens: u64, cached: Option<u64>, output: u32) -> String {
        let now = Instant::now();
        let first = self.first.unwrap_or(now);
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        let prompt_ms = ms(first - self.begun);
        let predicted_ms = ms(now - first);
        let cache_n = cached.unwrap_or(0);
        let prompt_n = prompt_tokens.saturating_sub(cache_n);
        let per_s = |n: u64, ms: f64| if ms > 0.0 { n as f64 * 1e3 / ms } else { 0.0 };
        format!(
            "\"timings\":{{\"cache_n\":{cache_n},\"prompt_n\":{prompt_n},\"prompt_ms\":{prompt_ms:.3},\
             \"prompt_per_second\":{:.3},\"predicted_n\":{output},\"predicted_ms\":{predicted_ms:.3},\
             \"predicted_per_second\":{:.3}}}",
            per_s(prompt_n, prompt_ms),
            per_s(u64::from(output), predicted_ms),
        )
    }
}

/// `event` (one SSE event, a JSON object then a blank line) with `member` added last.
pub(super) fn append(event: &mut String, member: &str) {
    if let Some(end) = event.trim_end().strip_suffix('}').map(str::len) {
        event.replace_range(end.., &format!(",{member}}}\n\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_goes_inside_the_last_event() {
        let mut e = "data: {\"a\":1}\n\n".to_string();
        append(&mut e, "\"timings\":{\"cache_n\":0}");
        assert_eq!(e, "data: {\"a\":1,\"timings\":{\"cache_n\":0}}\n\n");
        let clock = Clock::start(Instant::now());
        let m = clock.member(10, Some(4), 3);
        let v: serde_json::Value = serde_json::from_str(&format!("{{{m}}}")).unwrap();
        assert_eq!(v["timings"]["prompt_n"], 6);
        assert_eq!(v["timings"]["cache_n"], 4);
        assert_eq!(v["timings"]["predicted_n"], 3);
    }
}
