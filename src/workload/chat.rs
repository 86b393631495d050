//! Synthetic multi-turn sessions (`--sessions`): each session is a user who sends
//! `--turns` turns, each a new input of `--input-len` tokens on top of the whole history
//! so far (an optional shared system prompt, the earlier inputs and the answers the
//! server actually gave), waiting a think time after each answer. A session is drawn
//! from the seed, the run and its index alone, so any shard builds it exactly as one
//! process would. What is known before sending (the inputs, lengths and think times) is
//! built ahead as a `SessionPlan`; each later turn's body is built when it is due,
//! from the answers (`chat_run.rs`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use serde_json::{Value, json};

use super::prepare::{PrepareError, PreparedRequest, WorkloadSpec};
use super::synthetic::{LengthSpec, SyntheticPrompts};
use super::{EncodeBody, Prompt, Tokenizer};
use crate::record::RequestTag;

/// `--think-time-ms N|LO:HI`: milliseconds, 0 allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MillisSpec {
    pub lo: u64,
    pub hi: u64,
}

impl FromStr for MillisSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("{s:?}: expected milliseconds N or LO:HI with 0 <= LO <= HI");
        let num = |t: &str| -> Option<u64> {
            (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
                // A day: more is a typo, and keeps µs far from overflowing.
                .filter(|&n| n <= 86_400_000)
        };
        let (lo, hi) = match s.split_once(':') {
            None => (num(s), num(s)),
            Some((lo, hi)) => (num(lo), num(hi)),
        };
        match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi => Ok(MillisSpec { lo, hi }),
            _ => Err(err()),
        }
    }
}

impl fmt::Display for MillisSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.lo == self.hi {
            true => write!(f, "{}", self.lo),
            false => write!(f, "{}:{}", self.lo, self.hi),
        }
    }
}

/// `--think-time-dist`: how a think time is drawn from `--think-time-ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThinkDist {
    /// N exactly, or uniform in LO..=HI.
    #[default]
    Fixed,
    /// Exponential with the mean N (or a mean drawn uniformly in LO..=HI per think).
    Exponential,
}

/// The shape of every session of a run, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSpec {
    pub turns: LengthSpec,
    pub think_ms: MillisSpec,
    pub think_dist: ThinkDist,
    /// One system prompt of exactly this many tokens, shared by every session.
    pub system_prompt_len: Option<u32>,
}

impl SessionSpec {
    /// A think time, µs.
    pub fn think_us<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let MillisSpec { lo, hi } = self.think_ms;
        let ms = rng.random_range(lo..=hi) as f64;
        let ms = match self.think_dist {
            ThinkDist::Fixed => ms,
            // Inverse transform; 1 − u is in (0, 1], so the log is finite.
            ThinkDist::Exponential => -ms * (1.0 - rng.random::<f64>()).ln(),
        };
        (ms * 1e3).round().min(86_400e6 * 10.0) as u64
    }

    /// Turns per session on average.
    pub fn mean_turns(&self) -> f64 {
        match self.turns {
            LengthSpec::Fixed(n) => f64::from(n),
            LengthSpec::Range { lo, hi } => (f64::from(lo) + f64::from(hi)) / 2.0,
        }
    }

    /// Request ids of a session's turns: session s's turn k is `s · max_turns + k`,
    /// unique in the run and the same on every shard.
    pub fn turn_id(&self, session: u64, turn: u32) -> u64 {
        session
            .saturating_mul(u64::from(self.turns.max()))
            .saturating_add(u64::from(turn))
    }
}

/// A session's source: the spec, how inputs are made, and the shared system prompt.
#[derive(Clone, Debug)]
pub struct SyntheticSessions {
    pub spec: SessionSpec,
    pub input_len: LengthSpec,
    pub prompts: SyntheticPrompts,
    /// The system prompt's text and tokens (drawn once from the seed).
    pub system: Option<(Arc<str>, u32)>,
}

/// One later turn, known before sending.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedTurn {
    /// The user's new input and its tokens.
    pub input: Arc<str>,
    pub tokens: u32,
    pub max_tokens: u32,
    /// Wait after the previous turn's answer, µs.
    pub think_us: u64,
}

/// A session, as far as it is known before sending: turn 0 is the prepared request
/// itself; `later` are turns 1… .
#[derive(Clone, Debug, PartialEq)]
pub struct SessionPlan {
    pub session: u64,
    /// Request id of turn 0; turn k's is `first_id + k`.
    pub first_id: u64,
    /// The history turn 0 sent: [system], user₀.
    pub opening: Vec<(&'static str, Arc<str>)>,
    pub later: Vec<PlannedTurn>,
}

impl SessionPlan {
    /// Bytes held for the later turns (for the prepare-ahead budget).
    pub fn bytes(&self) -> usize {
        self.later.iter().map(|t| t.input.len()).sum()
    }

    pub fn turns(&self) -> usize {
        1 + self.later.len()
    }
}

/// A history as a chat `messages` list.
pub fn messages_json(messages: &[(&'static str, Arc<str>)]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|(role, text)| json!({"role": role, "content": &**text}))
            .collect(),
    )
}

impl SyntheticSessions {
    /// The run's sessions: the system prompt is drawn once from the seed.
    pub fn new(
        spec: SessionSpec,
        input_len: LengthSpec,
        prompts: SyntheticPrompts,
        tok: &Tokenizer,
        seed: u64,
    ) -> Result<Self, PrepareError> {
        let system = match spec.system_prompt_len {
            Some(n) => {
                let mut rng = StdRng::seed_from_u64(seed ^ 0x5359_5354_454D);
                let p = prompts.generate(tok, n as usize, &mut rng)?;
                Some((Arc::from(p.text), p.token_ids.len() as u32))
            }
            None => None,
        };
        Ok(SyntheticSessions {
            spec,
            input_len,
            prompts,
            system,
        })
    }

    /// How many turns session `s` of run `run` has (as `prepare` draws them: first).
    pub fn turns_of(&self, seed: u64, run: u64, s: u64) -> u32 {
        let mut rng = StdRng::seed_from_u64(super::prepare::request_seed(seed, run, s));
        self.spec.turns.sample(&mut rng)
    }

    /// Session `s` of run `run`: its first turn ready to send (id: the session's index,
    /// as the schedule counts sessions), the rest planned.
    pub fn prepare(
        &self,
        spec: &WorkloadSpec,
        body: &dyn EncodeBody,
        tok: &Tokenizer,
        rng: &mut StdRng,
        s: u64,
    ) -> Result<PreparedRequest, PrepareError> {
        // The first draw: `turns_of` repeats it.
        let turns = self.spec.turns.sample(rng);
        let mut input = || -> Result<(Arc<str>, u32, u32), PrepareError> {
            let n = self.input_len.sample(rng);
            let max_tokens = spec.output_len.sample(rng);
            let p = self.prompts.generate(tok, n as usize, rng)?;
            Ok((Arc::from(p.text), p.token_ids.len() as u32, max_tokens))
        };
        let (first, first_tokens, max_tokens) = input()?;
        let mut later = Vec::with_capacity(turns as usize - 1);
        for _ in 1..turns {
            let (text, tokens, max_tokens) = input()?;
            later.push(PlannedTurn {
                input: text,
                tokens,
                max_tokens,
                think_us: 0,
            });
        }
        // Think times after the inputs, so --think-time-ms leaves the inputs unchanged.
        for t in &mut later {
            t.think_us = self.spec.think_us(rng);
        }
        let mut opening = Vec::with_capacity(2);
        let mut input_tokens = first_tokens;
        if let Some((text, tokens)) = &self.system {
            opening.push(("system", text.clone()));
            input_tokens += tokens + separator_tokens(body, tok);
        }
        opening.push(("user", first));
        // The session's index is its first request's: the mix picks per session.
        let model = super::model_pick::model_of(spec, s).cloned();
        let history = messages_json(&opening);
        let prompt = Prompt::Messages(&history);
        let bytes = super::model_pick::encode(body, model.as_ref(), prompt, max_tokens, None);
        let plan = SessionPlan {
            session: s,
            first_id: self.spec.turn_id(s, 0),
            opening,
            later,
        };
        Ok(PreparedRequest {
            id: s,
            body: bytes,
            input_tokens,
            max_tokens,
            tag: RequestTag {
                session: Some(s),
                turn: Some(0),
                model,
                ..RequestTag::default()
            },
            chat: Some(Arc::new(plan)),
        })
    }
}

/// Tokens each message adds besides its own when an API flattens a history to one text
/// (completions: the messages joined by line ends, `workload::flatten_messages`).
pub(super) fn separator_tokens(body: &dyn EncodeBody, tok: &Tokenizer) -> u32 {
    match body.sends_messages() {
        true => 0,
        false => tok.count("\n") as u32,
    }
}

#[cfg(test)]
#[path = "tests_chat.rs"]
mod tests;
