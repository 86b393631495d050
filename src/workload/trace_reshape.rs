//! A trace's lengths replaced and its prefix sharing switched off (`--input-len`,
//! `--output-len`, `--prompts unique`): every request keeps its timestamp, its place
//! and its session links; only what it asks for changes.
//!
//! A replaced length is drawn per request from (seed, the request's position in the
//! trace), never from the run: every time scale, repeat and shard sees the same lengths,
//! and `--limit 100` the same first hundred as `--limit 1000`.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::synthetic::LengthSpec;
use super::trace::TraceRequest;
use crate::record::TraceLengths;

/// What a trace's prompts share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

    /// Request `k` (its position among the requests read, from 0) reshaped. With
    /// hash-id prompts the hash ids are cut to the new length (tokens past them are the
    /// request's own), so requests that shared leading blocks still share them up to
    /// the shorter length; with unique prompts it has none.
    pub fn apply(&self, seed: u64, block_size: usize, k: u64, r: &mut TraceRequest) {
        if self.is_none() {
            return;
        }
        let draw = |spec: Option<LengthSpec>, stream: u64| {
            let seed = super::prepare::request_seed(seed, stream, k);
            spec.map(|l| l.sample(&mut StdRng::seed_from_u64(seed)))
        };
        let input = draw(self.input_len, INPUT_STREAM);
        let output = draw(self.output_len, OUTPUT_STREAM);
        let mut replaced = TraceLengths::default();
        if let Some(n) = input {
            replaced.input_len = Some(r.input_len);
            r.input_len = n;
        }
        if let Some(n) = output {
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
        Reshape::default().apply(0, 16, 0, &mut r);
        assert_eq!(r, req(40, 5, &[1, 2, 3]));
    }

    #[test]
    fn a_fixed_input_cuts_or_extends_the_blocks_and_keeps_the_rest() {
        let cut = Reshape {
            input_len: Some(LengthSpec::Fixed(20)),
            ..Reshape::default()
        };
        let mut r = req(40, 5, &[1, 2, 3]);
        cut.apply(0, 16, 0, &mut r);
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
        longer.apply(0, 16, 0, &mut r);
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
        unique.apply(0, 16, 0, &mut r);
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
            ranged.apply(seed, 16, k, &mut r);
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
            output_only.apply(0, 16, k, &mut r);
            assert_eq!((r.input_len, r.output_len), (40, first[k as usize].1));
        }
    }
}
