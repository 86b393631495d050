//! Shared-prefix groups (SGLang's generated-shared-prefix dataset): G system prompts of
//! exactly S tokens, each followed by P questions of exactly Q tokens, the G×P requests
//! sent in a seeded shuffle. A server's prefix cache should then hit on about S/(S+Q)
//! of every group's requests after its first.
//!
//! Prompts are safe words (`words.rs`): each is one token, alone or joined, so the
//! system prompt and question joined are exactly S+Q tokens, and the system prompt is
//! the same S token ids in every request of its group.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::json;

use super::words::{SafeWords, SplitMix, mix, pick};
use super::{EncodeBody, Prompt, Tokenizer};

// Separate streams for system prompts, questions and the shuffle.
const SYSTEM_STREAM: u64 = 0x5379_7374_656d_0001;
const QUESTION_STREAM: u64 = 0x5175_6573_7431_0002;
const SHUFFLE_STREAM: u64 = 0x5368_7566_666c_0003;

/// `--shared-prefix groups=G,prompts=P,system-len=S,question-len=Q`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedPrefixSpec {
    pub groups: u32,
    pub prompts: u32,
    pub system_len: u32,
    pub question_len: u32,
}

impl SharedPrefixSpec {
    /// Requests in one pass over every group's questions: G×P.
    pub fn requests(&self) -> u64 {
        u64::from(self.groups) * u64::from(self.prompts)
    }
}

const KEYS: [&str; 4] = ["groups", "prompts", "system-len", "question-len"];

impl FromStr for SharedPrefixSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expected = "expected groups=G,prompts=P,system-len=S,question-len=Q";
        let mut values: [Option<u32>; 4] = [None; 4];
        for part in s.split(',') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!("{part:?} is not KEY=N ({expected})"));
            };
            let key = key.trim();
            let Some(k) = KEYS.iter().position(|&name| name == key) else {
                return Err(format!("unknown key {key:?} ({expected})"));
            };
            if values[k].is_some() {
                return Err(format!("{key} is given twice"));
            }
            let value = value.trim();
            let n = value
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 1 && value.bytes().all(|b| b.is_ascii_digit()));
            let Some(n) = n else {
                return Err(format!("{key}={value:?}: expected a whole number ≥ 1"));
            };
            values[k] = Some(n);
        }
        if let Some(k) = values.iter().position(Option::is_none) {
            return Err(format!("{} is missing ({expected})", KEYS[k]));
        }
        let [g, p, sys, q] = values.map(|v| v.unwrap_or(1));
        if u64::from(g) * u64::from(p) > u64::from(u32::MAX) {
            return Err(format!(
                "groups × prompts is more than {} requests",
                u32::MAX
            ));
        }
        Ok(SharedPrefixSpec {
            groups: g,
            prompts: p,
            system_len: sys,
            question_len: q,
        })
    }
}

impl fmt::Display for SharedPrefixSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "groups={},prompts={},system-len={},question-len={}",
            self.groups, self.prompts, self.system_len, self.question_len
        )
    }
}

/// Where request `i` of a run falls: its group, its question in the group, and its
/// pass over the G×P questions (requests past G×P start a new pass: the same system
/// prompts, new questions, shuffled anew).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub group: u32,
    pub question: u32,
    pub pass: u64,
}

/// One request's prompt: the group's system prompt and its question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedPrompt {
    pub system: String,
    pub question: String,
    /// The token ids of system then question: exactly S+Q.
    pub ids: Vec<u32>,
}

/// (seed, run, pass): one shuffle of the G×P slots.
type PassKey = (u64, u64, u64);

/// The source, resolved for one tokenizer; cheap to share between threads.
pub struct SharedPrefix {
    pub spec: SharedPrefixSpec,
    words: Arc<SafeWords>,
    /// Each (seed, run, pass)'s shuffle of the G×P slots, built once.
    orders: Mutex<HashMap<PassKey, Arc<Vec<u32>>>>,
}

impl fmt::Debug for SharedPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPrefix")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl SharedPrefix {
    /// Needs the tokenizer's one-token words (every builtin and most BPE tokenizers).
    pub fn new(spec: SharedPrefixSpec, tok: &Tokenizer) -> Result<SharedPrefix, String> {
        let words = tok.safe_words().map_err(|e| {
            format!(
                "--shared-prefix needs exact token lengths, and tokenizer {}: {e}",
                tok.name()
            )
        })?;
        Ok(SharedPrefix {
            spec,
            words,
            orders: Mutex::new(HashMap::new()),
        })
    }

    /// Request `i` of run `run`'s group and question.
    pub fn slot(&self, seed: u64, run: u64, i: u64) -> Slot {
        let n = self.spec.requests();
        let pass = i / n;
        let order = self.order(seed, run, pass);
        let k = order[(i % n) as usize];
        Slot {
            group: k / self.spec.prompts,
            question: k % self.spec.prompts,
            pass,
        }
    }

    fn order(&self, seed: u64, run: u64, pass: u64) -> Arc<Vec<u32>> {
        let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        orders
            .entry((seed, run, pass))
            .or_insert_with(|| {
                let mut v: Vec<u32> = (0..self.spec.requests() as u32).collect();
                let key = mix(seed ^ SHUFFLE_STREAM ^ mix(run ^ mix(pass)));
                v.shuffle(&mut StdRng::seed_from_u64(key));
                Arc::new(v)
            })
            .clone()
    }

    /// Request `i`'s prompt. A run's system prompts are its own (distinct runs get
    /// distinct prompts, so one run cannot warm the cache for the next).
    pub fn prompt(&self, seed: u64, run: u64, i: u64) -> SharedPrompt {
        let slot = self.slot(seed, run, i);
        let base = mix(seed ^ mix(run));
        let sys_key = mix(base ^ SYSTEM_STREAM ^ mix(u64::from(slot.group)));
        let q_key = mix(base
            ^ QUESTION_STREAM
            ^ mix(u64::from(slot.group) << 32 | u64::from(slot.question))
            ^ mix(slot.pass.wrapping_add(0x51)));
        let mut ids = Vec::with_capacity((self.spec.system_len + self.spec.question_len) as usize);
        let system = self.words_text(sys_key, self.spec.system_len, &mut ids);
        let question = self.words_text(q_key, self.spec.question_len, &mut ids);
        SharedPrompt {
            system,
            question,
            ids,
        }
    }

    fn words_text(&self, key: u64, n: u32, ids: &mut Vec<u32>) -> String {
        let w = &*self.words;
        let mut rng = SplitMix(key);
        let mut text = String::with_capacity(n as usize * w.bytes_per_word());
        for _ in 0..n {
            let word = w.word(pick(rng.next_u64(), w.len() as u64));
            text.push_str(w.text_of(word));
            ids.push(word.id);
        }
        text
    }
}

/// The body of request `i`: a system and a user message where the API takes messages,
/// else the two joined as one text (or token ids).
pub fn encode(
    sp: &SharedPrefix,
    body: &dyn EncodeBody,
    (seed, run, i): (u64, u64, u64),
    token_ids: bool,
    max_tokens: u32,
    model: Option<&std::sync::Arc<str>>,
) -> (bytes::Bytes, u32) {
    let p = sp.prompt(seed, run, i);
    let encode = |prompt| super::model_pick::encode(body, model, prompt, max_tokens, None);
    let n = p.ids.len() as u32;
    let bytes = if token_ids {
        encode(Prompt::TokenIds(&p.ids))
    } else if body.sends_messages() {
        let messages = json!([
            {"role": "system", "content": p.system},
            {"role": "user", "content": p.question},
        ]);
        encode(Prompt::Messages(&messages))
    } else {
        let mut text = p.system;
        text.push_str(&p.question);
        encode(Prompt::Text(&text))
    };
    (bytes, n)
}

#[cfg(test)]
#[path = "tests_shared_prefix.rs"]
mod tests;
