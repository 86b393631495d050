//! The phases of one response: reasoning, answer (content) and tool calls. A reasoning
//! model's first output is usually reasoning, so "time to first token" says little about
//! when the user sees an answer; each output event is classified as it is read, and the
//! first time and count of each kind are kept (the event times themselves stay in
//! `RequestRecord::events`).

/// Which kinds of output one event carried (an event may carry several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventKinds(u8);

impl EventKinds {
    pub const NONE: EventKinds = EventKinds(0);
    /// `reasoning_content` / `reasoning` deltas; Responses reasoning text and summaries.
    pub const REASONING: EventKinds = EventKinds(1);
    /// `content` deltas, completions `text`; Responses output text.
    pub const ANSWER: EventKinds = EventKinds(2);
    /// Tool-call (function) argument deltas.
    pub const TOOL: EventKinds = EventKinds(4);

    /// The event carried generated output of some kind: an output event.
    pub fn any(self) -> bool {
        self.0 != 0
    }

    pub fn has(self, kind: EventKinds) -> bool {
        self.0 & kind.0 != 0
    }

    pub fn add(&mut self, kind: EventKinds) {
        self.0 |= kind.0;
    }
}

/// What the output events of one response were, by kind. µs on the run clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    pub first_reasoning_at: Option<u64>,
    pub last_reasoning_at: Option<u64>,
    /// The first content event (answer text).
    pub first_answer_at: Option<u64>,
    pub first_tool_at: Option<u64>,
    /// Output events carrying each kind (an event carrying two kinds counts in both).
    pub reasoning_events: u32,
    pub answer_events: u32,
    pub tool_events: u32,
    /// `usage.completion_tokens_details.reasoning_tokens` (Responses:
    /// `output_tokens_details.reasoning_tokens`), when the server sent it.
    pub usage_reasoning_tokens: Option<u32>,
}

impl Phases {
    /// Note one output event arriving at `at` with the given kinds.
    #[inline]
    pub fn mark(&mut self, at: u64, kinds: EventKinds) {
        if kinds.has(EventKinds::REASONING) {
            self.first_reasoning_at.get_or_insert(at);
            self.last_reasoning_at = Some(at);
            self.reasoning_events += 1;
        }
        if kinds.has(EventKinds::ANSWER) {
            self.first_answer_at.get_or_insert(at);
            self.answer_events += 1;
        }
        if kinds.has(EventKinds::TOOL) {
            self.first_tool_at.get_or_insert(at);
            self.tool_events += 1;
        }
    }

    /// All output was answer text: nothing to record beyond the events themselves
    /// (requests.jsonl then carries no phase fields, as before phases existed).
    pub fn is_plain(&self) -> bool {
        !self.reasoned() && self.tool_events == 0
    }

    /// Reasoning events arrived, or the server counted reasoning tokens.
    pub fn reasoned(&self) -> bool {
        self.reasoning_events > 0 || self.usage_reasoning_tokens.unwrap_or(0) > 0
    }

    /// Reasoning tokens: the server's count when given, else one per reasoning event. A
    /// server count of 0 beside streamed reasoning is a placeholder (vLLM's Responses
    /// usage carries a fixed `"reasoning_tokens": 0`), not a count: the events win.
    pub fn reasoning_tokens(&self) -> u32 {
        match self.usage_reasoning_tokens {
            Some(n) if n > 0 || self.reasoning_events == 0 => n,
            _ => self.reasoning_events,
        }
    }

    /// The first output that is not reasoning (answer text or a tool call): when the
    /// user, or the calling program, starts getting the answer.
    pub fn first_non_reasoning_at(&self) -> Option<u64> {
        match (self.first_answer_at, self.first_tool_at) {
            (Some(a), Some(t)) => Some(a.min(t)),
            (a, t) => a.or(t),
        }
    }

    /// The phases of a response whose every output event was answer text.
    pub fn plain(events: &[u64]) -> Phases {
        Phases {
            first_answer_at: events.first().copied(),
            answer_events: events.len() as u32,
            ..Phases::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_first_times_and_counts_by_kind() {
        let mut p = Phases::default();
        p.mark(10, EventKinds::REASONING);
        p.mark(20, EventKinds::REASONING);
        let mut both = EventKinds::REASONING;
        both.add(EventKinds::ANSWER);
        p.mark(30, both);
        p.mark(40, EventKinds::ANSWER);
        p.mark(50, EventKinds::TOOL);
        assert_eq!(p.first_reasoning_at, Some(10));
        assert_eq!(p.last_reasoning_at, Some(30));
        assert_eq!(p.first_answer_at, Some(30));
        assert_eq!(p.first_tool_at, Some(50));
        assert_eq!(
            (p.reasoning_events, p.answer_events, p.tool_events),
            (3, 2, 1)
        );
        assert_eq!(p.reasoning_tokens(), 3);
        p.usage_reasoning_tokens = Some(7);
        assert_eq!(p.reasoning_tokens(), 7, "the server's count wins");
        p.usage_reasoning_tokens = Some(0);
        assert_eq!(
            p.reasoning_tokens(),
            3,
            "a 0 beside streamed reasoning is no count"
        );
        assert_eq!(p.first_non_reasoning_at(), Some(30));
        assert!(!p.is_plain());
    }

    #[test]
    fn plain_answers_and_tool_only_answers() {
        let p = Phases::plain(&[5, 6, 7]);
        assert!(p.is_plain());
        assert_eq!((p.first_answer_at, p.answer_events), (Some(5), 3));
        let mut t = Phases::default();
        t.mark(9, EventKinds::TOOL);
        assert!(!t.is_plain());
        assert_eq!(t.first_non_reasoning_at(), Some(9));
        let hidden = Phases {
            usage_reasoning_tokens: Some(40),
            ..Phases::plain(&[5])
        };
        assert!(!hidden.is_plain(), "reasoning the server did not stream");
        assert!(EventKinds::NONE.has(EventKinds::ANSWER) == EventKinds::NONE.any());
    }
}
