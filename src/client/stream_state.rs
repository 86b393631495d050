//! The state of one event stream being read: its SSE framing, what its events said so
//! far, and whether the stream as a whole was a complete answer.

use super::RequestObserver;
use super::openai::{Api, ChunkMemo, parse_chunk_in_stream};
use super::responses;
use super::sse::{self, Leftover, SseParser};
use super::{Failure, Outcome};
use crate::clock::RunClock;
use crate::record::FailureKind;

/// An event stream being read: its framing, what its events said, and its first bytes
/// (quoted when it holds no events at all).
pub(super) struct Reading {
    pub(super) parser: SseParser,
    pub(super) state: StreamState,
    pub(super) excerpt: Vec<u8>,
}

impl Reading {
    pub(super) fn new(format: EventFormat) -> Self {
        Reading {
            parser: SseParser::new(),
            state: StreamState {
                format,
                ..StreamState::default()
            },
            excerpt: Vec::new(),
        }
    }

    /// What one read showed: a failed event, or an event that never ends.
    pub(super) fn after_read(&mut self) -> Result<(), Failure> {
        if let Some(f) = self.state.failure.take() {
            return Err(f);
        }
        if self.parser.overflowed_limit() {
            return Err((
                FailureKind::InvalidResponse,
                format!(
                    "an event or line passed {} MiB without ending",
                    sse::MAX_EVENT_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    /// The body ended (or `[DONE]` came): a last event without its blank line, and
    /// whether the stream as a whole was a complete answer.
    pub(super) fn end(
        mut self,
        content_type: &str,
        clock: &RunClock,
        obs: &impl RequestObserver,
        out: &mut Outcome,
    ) -> Result<(), Failure> {
        let state = &mut self.state;
        if !state.done
            && let Leftover::Partial(data) = self.parser.finish()
        {
            // Tolerate a server that omits the final blank line; a truly cut event
            // fails to parse and is reported as a cut stream.
            if data != b"[DONE]" && serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_err()
            {
                return Err((
                    FailureKind::StreamCut,
                    format!(
                        "connection closed in the middle of an event after {} output events",
                        out.events.len()
                    ),
                ));
            }
            state.on_event(&data, clock.now_us(), out);
            state.publish(obs, out);
            if let Some(f) = state.failure.take() {
                return Err(f);
            }
        }
        if !state.done && state.parsed == 0 {
            return Err((
                FailureKind::InvalidResponse,
                format!(
                    "the response (content-type {:?}) holds no server-sent events: {}",
                    content_type,
                    String::from_utf8_lossy(&self.excerpt).trim()
                ),
            ));
        }
        if !state.done && !state.finished {
            return Err((
                FailureKind::StreamCut,
                format!(
                    "connection closed before the end of the stream ({}) after {} output events",
                    state.format.missing_end(),
                    out.events.len()
                ),
            ));
        }
        if !state.done {
            out.ended_at = clock.now_us();
        }
        if out.events.is_empty() {
            return Err((
                FailureKind::InvalidResponse,
                "the stream ended without any output event".into(),
            ));
        }
        Ok(())
    }
}

/// How a run's events are read, decided once by its API: one dispatch per event, never
/// a second parser tried after the first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum EventFormat {
    /// Chat and completions chunks (`openai.rs`).
    #[default]
    Chunks,
    /// The Responses API's typed events (`responses.rs`).
    Responses,
}

impl EventFormat {
    pub(super) fn of(api: Api) -> Self {
        match api {
            // Embeddings answers are not streamed (`unary.rs`): no event is ever read.
            Api::Chat | Api::Completions | Api::Embeddings => EventFormat::Chunks,
            Api::Responses => EventFormat::Responses,
        }
    }

    /// What a stream cut short did not get.
    fn missing_end(self) -> &'static str {
        match self {
            EventFormat::Chunks => "no [DONE], no finish_reason",
            EventFormat::Responses => "no response.completed or response.incomplete",
        }
    }
}

#[derive(Default)]
pub(super) struct StreamState {
    format: EventFormat,
    pub(super) done: bool,
    finished: bool,
    parsed: u64,
    pub(super) failure: Option<Failure>,
    /// Output events already reported to the observer.
    published: usize,
    memo: ChunkMemo,
}

impl StreamState {
    /// Report the read's new output events, once per read.
    pub(super) fn publish(&mut self, obs: &impl RequestObserver, out: &Outcome) {
        let n = out.events.len();
        if n > self.published {
            obs.output((n - self.published) as u64, self.published == 0);
            self.published = n;
        }
    }

    /// Handle one event; returns false to stop reading the stream.
    /// `at`: when the read holding the event arrived (µs on the run clock).
    pub(super) fn on_event(&mut self, data: &[u8], at: u64, out: &mut Outcome) -> bool {
        self.parsed += 1;
        // An empty event is a heartbeat some servers send.
        if data.iter().all(u8::is_ascii_whitespace) {
            return true;
        }
        if data == b"[DONE]" {
            self.done = true;
            out.ended_at = at;
            return false;
        }
        let parsed = match self.format {
            EventFormat::Chunks => parse_chunk_in_stream(data, &mut out.text, &mut self.memo),
            EventFormat::Responses => responses::parse_event(data, &mut out.text),
        };
        match parsed {
            Ok(info) => {
                if let Some(e) = info.error {
                    self.failure = Some((FailureKind::ErrorEvent, e));
                    return false;
                }
                if info.kinds.any() {
                    out.events.push(at);
                    out.phases.mark(at, info.kinds);
                }
                if let Some(u) = info.usage {
                    out.usage = Some(u);
                }
                if info.timings.is_some() {
                    out.server_timings = info.timings;
                }
                self.finished |= info.finished;
                if info.finished && self.format == EventFormat::Responses {
                    // A Responses stream ends with its terminal event, as a chat stream
                    // with [DONE].
                    self.done = true;
                    out.ended_at = at;
                    return false;
                }
                true
            }
            Err(e) => {
                let shown = String::from_utf8_lossy(&data[..data.len().min(200)]).into_owned();
                self.failure = Some((
                    FailureKind::InvalidResponse,
                    format!("event {} is not valid JSON ({e}): {shown}", self.parsed),
                ));
                false
            }
        }
    }
}
