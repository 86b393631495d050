//! A trace's lengths replaced and its prefix sharing switched off (`--input-len`,
//! `--output-len`, `--prompts unique`): every request keeps its timestamp, its place
//! and its session links; only what it asks for changes.
//!
//! A replaced length is drawn per request from (seed, the request's position in the
//! trace), never from the run: every time scale, repeat and shard sees the same lengths,
//! and `--limit 100` the same first hundred as `--limit 1000`.
//!
//! Under `--sessions` a replaced input length is each turn's own text: a trace's input
//! length counts the whole conversation, so a later turn's is its conversation so far
//! (its parent's input and output, as replaced) plus the drawn length.

use std::collections::HashMap;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::synthetic::LengthSpec;
use super::trace::TraceRequest;
use crate::record::TraceLengths;

/// What a trace's prompts share (results.json's `params.prompts`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum TracePrompts {
    /// Built from the trace's hash ids: requests that shared a prefix in production
    /// share it here
    #[default]
    HashIds,
    /// Every prompt distinct (the seed's dummy mode): nothing for a prefix cache to find
    Unique,
}

impl TracePrompts {
    pub fn as_str(self) -> &'static str {
        match self {
            TracePrompts::HashIds => "hash-ids",
            TracePrompts::Unique => "unique",
        }
    }
}

/// `--input-len`, `--output-len` and `--prompts` on a trace, as given.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reshape {
    pub input_len: Option<LengthSpec>,
    pub output_len: Option<LengthSpec>,
    /// `--prompts`; None: hash ids, as the trace has them.
    pub prompts: Option<TracePrompts>,
}

/// Keep each request's two draws apart from each other and from every other random
/// stream, so giving one flag does not move the other's lengths.
const INPUT_STREAM: u64 = 0x496e_7075_744c_0003;
const OUTPUT_STREAM: u64 = 0x4f75_7470_744c_0004;

impl Reshape {
    /// Changes nothing: the trace as it is.
    pub fn is_none(&self) -> bool {
        *self == Reshape::default()
    }

    /// Request `k` (its position among the requests read, from 0) reshaped; `history`:
    /// the tokens of the conversation it continues (0 for a request on its own). With
    /// hash-id prompts the hash ids are cut to the new length (tokens past them are the
    /// request's own), so requests that shared leading blocks still share them up to
    /// the shorter length; with unique prompts it has none.
    pub fn apply(&self, seed: u64, block_size: usize, k: u64, history: u64, r: &mut TraceRequest) {
        if self.is_none() {
            return;
        }
        let draw = |spec: Option<LengthSpec>, stream: u64| match spec? {
            LengthSpec::Fixed(n) => Some(n),
            range => {
                let seed = super::prepare::request_seed(seed, stream, k);
                Some(range.sample(&mut StdRng::seed_from_u64(seed)))
            }
        };
        let mut replaced = TraceLengths::default();
        if let Some(n) = draw(self.input_len, INPUT_STREAM) {
            replaced.input_len = Some(r.input_len);
            r.input_len = u32::try_from(history + u64::from(n)).unwrap_or(u32::MAX);
        }
        if let Some(n) = draw(self.output_len, OUTPUT_STREAM) {
            replaced.output_len = Some(r.output_len);
            r.output_len = n;
        }
        r.replaced = replaced;
        match self.prompts {
            Some(TracePrompts::Unique) => r.hash_ids.clear(),
            _ => r
                .hash_ids
                .truncate((r.input_len as usize).div_ceil(block_size.max(1))),
        }
    }
}

/// `--sessions` with `--input-len`: each conversation's tokens after each turn read
/// (input and output, as replaced and fitted), by chat id, so the turn that continues
/// it starts from there.
#[derive(Debug, Default)]
pub struct Conversations {
    after: HashMap<i64, u64>,
}

impl Conversations {
    /// The tokens of the conversation `r` continues; 0 when its parent was not read.
    pub fn history(&self, r: &TraceRequest) -> u64 {
        match r.parent_chat_id {
            Some(p) if p >= 0 => self.after.get(&p).copied().unwrap_or(0),
            _ => 0,
        }
    }

    /// `r` was read (and kept): its conversation now holds its input and output.
    pub fn read(&mut self, r: &TraceRequest) {
        if let Some(id) = r.chat_id {
            let tokens = u64::from(r.input_len) + u64::from(r.output_len);
            self.after.insert(id, tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(input: u32, output: u32, hash_ids: &[u64]) -> TraceRequest {
        TraceRequest {
            line: 1,
            timestamp_us: 7,
            input_len: input,
            output_len: output,
            hash_ids: hash_ids.to_vec(),
            chat_id: Some(3),
            parent_chat_id: Some(1),
            turn: Some(2),
            kind: None,
            replaced: TraceLengths::default(),
        }
    }

    #[test]
    fn nothing_given_changes_nothing() {
        let mut r = req(40, 5, &[1, 2, 3]);
        Reshape::default().apply(0, 16, 0, 0, &mut r);
        assert_eq!(r, req(40, 5, &[1, 2, 3]));
    }

    #[test]
    fn a_fixed_input_cuts_or_extends_the_blocks_and_keeps_the_rest() {
        let cut = Reshape {
            input_len: Some(LengthSpec::Fixed(20)),
            ..Reshape::default()
        };
        let mut r = req(40, 5, &[1, 2, 3]);
        cut.apply(0, 16, 0, 0, &mut r);
        // 20 tokens: the first block and 4 of the second.
        assert_eq!(
            (r.input_len, r.output_len, &r.hash_ids[..]),
            (20, 5, &[1, 2][..])
        );
        assert_eq!(
            r.replaced,
            TraceLengths {
                input_len: Some(40),
                output_len: None
            }
        );
        assert_eq!(
            (r.timestamp_us, r.chat_id, r.parent_chat_id, r.turn),
            (7, Some(3), Some(1), Some(2))
        );
        let longer = Reshape {
            input_len: Some(LengthSpec::Fixed(100)),
            ..Reshape::default()
        };
        let mut r = req(40, 5, &[1, 2, 3]);
        longer.apply(0, 16, 0, 0, &mut r);
        assert_eq!(
            (r.input_len, &r.hash_ids[..]),
            (100, &[1, 2, 3][..]),
            "all blocks kept"
        );
    }

    #[test]
    fn unique_prompts_have_no_blocks_and_keep_the_lengths() {
        let unique = Reshape {
            prompts: Some(TracePrompts::Unique),
            ..Reshape::default()
        };
        let mut r = req(40, 5, &[1, 2, 3]);
        unique.apply(0, 16, 0, 0, &mut r);
        assert_eq!((r.input_len, r.output_len, r.hash_ids.len()), (40, 5, 0));
        assert_eq!(r.replaced, TraceLengths::default(), "no length replaced");
    }

    #[test]
    fn ranges_are_drawn_per_request_from_the_seed() {
        let ranged = Reshape {
            input_len: Some(LengthSpec::Range { lo: 10, hi: 1000 }),
            output_len: Some(LengthSpec::Range { lo: 1, hi: 50 }),
            ..Reshape::default()
        };
        let draw = |seed: u64, k: u64| {
            let mut r = req(40, 5, &[1, 2, 3]);
            ranged.apply(seed, 16, k, 0, &mut r);
            assert_eq!(
                r.replaced,
                TraceLengths {
                    input_len: Some(40),
                    output_len: Some(5)
                }
            );
            (r.input_len, r.output_len)
        };
        let first: Vec<_> = (0..200).map(|k| draw(0, k)).collect();
        assert_eq!(
            first,
            (0..200).map(|k| draw(0, k)).collect::<Vec<_>>(),
            "same seed, same lengths"
        );
        assert_ne!(
            first,
            (0..200).map(|k| draw(1, k)).collect::<Vec<_>>(),
            "the seed decides"
        );
        assert!(
            first
                .iter()
                .all(|&(i, o)| (10..=1000).contains(&i) && (1..=50).contains(&o))
        );
        let distinct: std::collections::HashSet<_> = first.iter().map(|p| p.0).collect();
        assert!(
            distinct.len() > 150,
            "drawn per request: {}",
            distinct.len()
        );
        // The output's draw does not depend on whether the input is replaced.
        let output_only = Reshape {
            output_len: ranged.output_len,
            ..Reshape::default()
        };
        for k in 0..50 {
            let mut r = req(40, 5, &[1, 2, 3]);
            output_only.apply(0, 16, k, 0, &mut r);
            assert_eq!((r.input_len, r.output_len), (40, first[k as usize].1));
        }
    }

    #[test]
    fn mooncakes_512_token_blocks_are_cut_to_the_new_length() {
        let cut = Reshape {
            input_len: Some(LengthSpec::Fixed(1100)),
            ..Reshape::default()
        };
        let mut r = req(40160, 6, &(0..79).collect::<Vec<u64>>());
        cut.apply(0, 512, 0, 0, &mut r);
        assert_eq!(
            (r.input_len, &r.hash_ids[..]),
            (1100, &[0, 1, 2][..]),
            "ceil(1100 / 512)"
        );
    }

    #[test]
    fn a_later_turn_adds_its_own_length_to_its_conversation() {
        let per_turn = Reshape {
            input_len: Some(LengthSpec::Fixed(100)),
            output_len: Some(LengthSpec::Fixed(10)),
            ..Reshape::default()
        };
        let mut conv = Conversations::default();
        let mut turns = Vec::new();
        // chat 1 → 2 → 4, chat 3 on its own; a parent never read counts nothing.
        for (chat, parent) in [(1, -1), (2, 1), (3, -1), (4, 2), (5, 99)] {
            let mut r = req(5000, 50, &[1, 2, 3]);
            (r.chat_id, r.parent_chat_id) = (Some(chat), Some(parent));
            let history = conv.history(&r);
            per_turn.apply(0, 16, chat as u64, history, &mut r);
            conv.read(&r);
            turns.push(r.input_len);
        }
        assert_eq!(turns, [100, 210, 100, 320, 100]);
    }
}
