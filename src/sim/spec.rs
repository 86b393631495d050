//! Speculative decoding (`--spec-tokens K --acceptance P`): every decode step of a
//! request proposes K draft tokens, the target model accepts them one by one with
//! probability P until the first rejection, and the step emits the accepted ones plus
//! the bonus token it samples itself, in one stream event and for one step's time. The
//! draws hang on the seed, the request's prompt and the step, so a run repeats exactly.
//! `/metrics` counts drafts, draft tokens and accepted tokens under vLLM v1's names.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::Shared;
use super::stream::{Plan, mix};

/// `--spec-tokens K --acceptance P`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpecDecoding {
    /// Draft tokens proposed per decode step (vLLM's `num_speculative_tokens`).
    pub tokens: u32,
    /// Probability that each draft token is accepted, given the ones before it were.
    pub acceptance: f64,
}

/// Longest draft accepted: vLLM's own configs stay far below this.
pub const MAX_SPEC_TOKENS: u32 = 64;

impl SpecDecoding {
    /// The message names the setting by `name` (a flag or a file's key).
    pub fn check(&self, name: impl Fn(&str) -> String) -> Result<(), String> {
        if !(1..=MAX_SPEC_TOKENS).contains(&self.tokens) {
            return Err(format!(
                "{}: expected 1 to {MAX_SPEC_TOKENS} draft tokens, got {}",
                name("tokens"),
                self.tokens
            ));
        }
        if !(0.0..=1.0).contains(&self.acceptance) {
            return Err(format!(
                "{}: expected a probability from 0 to 1, got {}",
                name("acceptance"),
                self.acceptance
            ));
        }
        Ok(())
    }

    /// Draft tokens accepted at decode step `step` of the request keyed `key`: leading
    /// successes of K draws, each below P with probability P.
    pub(super) fn accepted(&self, key: u64, step: u32) -> u32 {
        let base = mix(key ^ u64::from(step).wrapping_mul(0xa076_1d64_78bd_642f));
        for i in 0..self.tokens {
            // 53 random bits as a uniform draw in [0, 1).
            let u = (mix(base ^ u64::from(i)) >> 11) as f64 / (1u64 << 53) as f64;
            if u >= self.acceptance {
                return i;
            }
        }
        self.tokens
    }
}

/// A request's steps in the ideal timetable: the first token is the prefill's, then
/// each decode step gives `1 + accepted` tokens.
#[derive(Debug)]
pub(super) struct Steps {
    spec: SpecDecoding,
    key: u64,
    /// The next step's index (0: the prefill's token).
    step: u32,
}

impl Steps {
    pub(super) fn new(spec: SpecDecoding, key: u64) -> Steps {
        Steps { spec, key, step: 0 }
    }

    /// The next step from output token `start` of `n`: its index, the end of its
    /// tokens, and the draft tokens it accepted (`None` for the prefill's step).
    pub(super) fn next(&mut self, start: u32, n: u32) -> (u32, u32, Option<u32>) {
        let step = self.step;
        self.step += 1;
        if step == 0 {
            return (0, start.saturating_add(1).min(n), None);
        }
        let a = self.spec.accepted(self.key, step);
        (step, start.saturating_add(1 + a).min(n), Some(a))
    }
}

/// How a response's output is cut into events: `tokens_per_chunk` tokens each, or with
/// speculative decoding one event per step (`spec.rs`).
pub(super) struct EventCuts {
    per_chunk: u32,
    /// The ideal timetable's speculative steps.
    steps: Option<Steps>,
    /// The engine decides each step's tokens: an event carries what one step gave.
    pub(super) engine_steps: bool,
}

impl EventCuts {
    pub(super) fn new(plan: &Plan, engine: bool) -> EventCuts {
        let engine = plan.spec.is_some() && engine;
        EventCuts {
            per_chunk: plan.tokens_per_chunk,
            steps: plan
                .spec
                .filter(|_| !engine)
                .map(|s| Steps::new(s, plan.spec_key)),
            engine_steps: engine,
        }
    }

    /// The next event's end (at least; the engine's step may give more) and the
    /// ideal timetable's position of its deadline. Ideal speculative steps are
    /// counted in `/metrics` here (the engine counts its own).
    pub(super) fn next(&mut self, shared: &Shared, start: u32, n: u32) -> (u32, u32) {
        if self.engine_steps {
            return (start + 1, start);
        }
        let Some(steps) = &mut self.steps else {
            let end = n.min(start.saturating_add(self.per_chunk));
            return (end, end - 1);
        };
        let (step, end, draft) = steps.next(start, n);
        if let Some(a) = draft
            && let Some(spec) = shared.counters().metrics.spec.as_mut()
        {
            spec.observe(spec.per_pos.len() as u32, a);
        }
        (end, step)
    }

    /// The timetable position of the last of `n` tokens, all steps taken at once (a
    /// non-streamed answer).
    pub(super) fn last_at(mut self, shared: &Shared, n: u32) -> u32 {
        if self.engine_steps || self.steps.is_none() {
            return n - 1;
        }
        let (mut start, mut at) = (0, 0);
        while start < n {
            (start, at) = self.next(shared, start, n);
        }
        at
    }
}

/// vLLM's speculative-decoding counters, as `/metrics` shows them.
#[derive(Clone, Debug, Default)]
pub(super) struct SpecCounters {
    pub drafts: u64,
    pub draft_tokens: u64,
    pub accepted: u64,
    /// Accepted tokens by draft position (0-based), as vLLM's `…_per_pos`.
    pub per_pos: Vec<u64>,
}

impl SpecCounters {
    pub(super) fn new(k: u32) -> SpecCounters {
        SpecCounters {
            per_pos: vec![0; k as usize],
            ..SpecCounters::default()
        }
    }

    /// One verified draft of `k` tokens, `accepted` of them taken. Accepted tokens are
    /// counted even where max_tokens then cuts the output, as vLLM counts them.
    pub(super) fn observe(&mut self, k: u32, accepted: u32) {
        self.drafts += 1;
        self.draft_tokens += u64::from(k);
        self.accepted += u64::from(accepted);
        for slot in self.per_pos.iter_mut().take(accepted as usize) {
            *slot += 1;
        }
    }

    /// Appends the counters; `label` is the `model_name="…"` pair every series carries.
    pub(super) fn render(&self, out: &mut String, label: &str) {
        let counters = [
            (
                "vllm:spec_decode_num_drafts",
                "Number of spec decoding drafts.",
                self.drafts,
            ),
            (
                "vllm:spec_decode_num_draft_tokens",
                "Number of draft tokens.",
                self.draft_tokens,
            ),
            (
                "vllm:spec_decode_num_accepted_tokens",
                "Number of accepted tokens.",
                self.accepted,
            ),
        ];
        for (name, help, v) in counters {
            let _ = write!(
                out,
                "# HELP {name}_total {help}\n# TYPE {name}_total counter\n{name}_total{{{label}}} {v}\n"
            );
        }
        let name = "vllm:spec_decode_num_accepted_tokens_per_pos";
        let _ = write!(
            out,
            "# HELP {name}_total Accepted tokens per draft position.\n# TYPE {name}_total counter\n"
        );
        for (pos, v) in self.per_pos.iter().enumerate() {
            let _ = writeln!(out, "{name}_total{{{label},position=\"{pos}\"}} {v}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptance_follows_the_geometric_law() {
        let spec = SpecDecoding {
            tokens: 3,
            acceptance: 0.6,
        };
        let n = 200_000u32;
        let total: u64 = (0..n).map(|s| u64::from(spec.accepted(7, s))).sum();
        // E[accepted] = P + P² + P³ = 1.176 for K = 3, P = 0.6.
        let mean = total as f64 / f64::from(n);
        assert!((mean - 1.176).abs() < 0.01, "{mean}");
        assert_eq!(spec.accepted(7, 5), spec.accepted(7, 5), "deterministic");
        let none = SpecDecoding {
            tokens: 4,
            acceptance: 0.0,
        };
        let all = SpecDecoding {
            tokens: 4,
            acceptance: 1.0,
        };
        assert!((0..100).all(|s| none.accepted(1, s) == 0 && all.accepted(1, s) == 4));
    }

    #[test]
    fn steps_give_the_prefill_token_then_accepted_plus_one() {
        let spec = SpecDecoding {
            tokens: 2,
            acceptance: 1.0,
        };
        let mut steps = Steps::new(spec, 0);
        assert_eq!(steps.next(0, 6), (0, 1, None));
        assert_eq!(steps.next(1, 6), (1, 4, Some(2)));
        // Cut at the output's end.
        assert_eq!(steps.next(4, 6), (2, 6, Some(2)));
    }

    #[test]
    fn counters_render_with_vllm_names() {
        let mut c = SpecCounters::new(2);
        c.observe(2, 1);
        c.observe(2, 2);
        let mut out = String::new();
        c.render(&mut out, "model_name=\"m\"");
        assert!(out.contains("vllm:spec_decode_num_drafts_total{model_name=\"m\"} 2\n"));
        assert!(out.contains("vllm:spec_decode_num_draft_tokens_total{model_name=\"m\"} 4\n"));
        assert!(out.contains("vllm:spec_decode_num_accepted_tokens_total{model_name=\"m\"} 3\n"));
        assert!(out.contains(
            "vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name=\"m\",position=\"1\"} 1\n"
        ));
        crate::metrics::prometheus::parse(&out).expect("valid exposition");
    }
}
