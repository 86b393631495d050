//! Synthetic prompts of an exact token length, and the length specs that size them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rand::{Rng, RngExt};

use super::Tokenizer;
use super::words::{MIN_WORDS, SafeWords};

/// Decode → encode rounds before giving up; mini-sglang's bound, which random text
/// meets within a few rounds in practice.
const MAX_TRIES: usize = 64;

/// A token length: fixed, or drawn uniformly from an inclusive range. Parsed from CLI text "N" or "LO:HI".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthSpec {
    Fixed(u32),
    Range { lo: u32, hi: u32 },
}

impl FromStr for LengthSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || format!("{s:?}: expected N or LO:HI with 1 <= LO <= HI");
        // Digits only: `u32::from_str` would also take "+5", which would not round-trip.
        let num = |t: &str| -> Option<u32> {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            t.parse().ok().filter(|&n| n >= 1)
        };
        match s.split_once(':') {
            None => num(s).map(LengthSpec::Fixed).ok_or_else(err),
            Some((lo, hi)) => match (num(lo), num(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => Ok(LengthSpec::Range { lo, hi }),
                _ => Err(err()),
            },
        }
    }
}

impl fmt::Display for LengthSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LengthSpec::Fixed(n) => write!(f, "{n}"),
            LengthSpec::Range { lo, hi } => write!(f, "{lo}:{hi}"),
        }
    }
}

impl LengthSpec {
    /// One length: N, or uniform in LO..=HI.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        match *self {
            LengthSpec::Fixed(n) => n,
            LengthSpec::Range { lo, hi } => rng.random_range(lo..=hi),
        }
    }

    /// The largest length `sample` can return.
    pub fn max(&self) -> u32 {
        match *self {
            LengthSpec::Fixed(n) => n,
            LengthSpec::Range { hi, .. } => hi,
        }
    }
}

/// A prompt whose `token_ids` are exactly what the tokenizer makes of `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub token_ids: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    #[error(
        "could not build a prompt of exactly {n} tokens with tokenizer {tokenizer} after {MAX_TRIES} tries (try another --tokenizer or length)"
    )]
    NoExactLength { n: usize, tokenizer: String },
    #[error(
        "tokenizer {tokenizer} has a vocabulary of {vocab} tokens, too small to draw synthetic prompts from (use another --tokenizer)"
    )]
    TinyVocabulary { tokenizer: String, vocab: u32 },
    #[error("tokenizer {tokenizer}: {reason}")]
    Tokenizer { tokenizer: String, reason: String },
}

/// How synthetic prompts are made (`--synthetic-prompts`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntheticKind {
    /// Random safe words (a space and lowercase letters, one token each) from the lower
    /// half of the vocabulary: exact by construction, no tokenizer work per prompt
    Words,
    /// mini-sglang's algorithm: random token ids from the lower half, decoded and
    /// re-encoded until the count is exact (~0.1 ms per 128 tokens)
    RandomIds,
}

/// Synthetic prompts, resolved for one tokenizer.
#[derive(Clone, Debug)]
pub enum SyntheticPrompts {
    /// Draws from the first `pool` safe words.
    Words {
        words: Arc<SafeWords>,
        pool: usize,
    },
    RandomIds,
}

impl SyntheticPrompts {
    /// `Words` falls back to `RandomIds`, with the reason, when the tokenizer has too
    /// few safe words (SentencePiece-style vocabularies).
    pub fn resolve(kind: SyntheticKind, tok: &Tokenizer) -> (Self, Option<String>) {
        if kind == SyntheticKind::RandomIds {
            return (SyntheticPrompts::RandomIds, None);
        }
        match tok.safe_words() {
            Ok(words) => {
                // The seed algorithm's lower half, when it holds enough words.
                let below = words.count_below(tok.vocab_size() / 2);
                let pool = if below >= MIN_WORDS {
                    below
                } else {
                    words.len()
                };
                (SyntheticPrompts::Words { words, pool }, None)
            }
            Err(e) => (SyntheticPrompts::RandomIds, Some(e.to_string())),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            SyntheticPrompts::Words { .. } => "words",
            SyntheticPrompts::RandomIds => "random-ids",
        }
    }

    /// A prompt of exactly `n` tokens.
    pub fn generate<R: Rng + ?Sized>(
        &self,
        tok: &Tokenizer,
        n: usize,
        rng: &mut R,
    ) -> Result<Prompt, SyntheticError> {
        match self {
            SyntheticPrompts::Words { words, pool } => Ok(word_prompt(words, *pool, n, rng)),
            SyntheticPrompts::RandomIds => generate_prompt(tok, n, rng),
        }
    }
}

/// `n` words drawn uniformly from the first `pool`: the text tokenizes to exactly their
/// ids (checked for the tokenizer when its words were found), so nothing is encoded.
pub fn word_prompt<R: Rng + ?Sized>(
    words: &SafeWords,
    pool: usize,
    n: usize,
    rng: &mut R,
) -> Prompt {
    let mut text = String::with_capacity(n * words.bytes_per_word());
    let mut token_ids = Vec::with_capacity(n);
    for _ in 0..n {
        let w = words.word(rng.random_range(0..pool));
        text.push_str(words.text_of(w));
        token_ids.push(w.id);
    }
    Prompt { text, token_ids }
}

/// The mini-sglang `generate_prompt` algorithm: draw n random token ids from the lower half
/// of the vocabulary, decode to text, re-encode; if the count is short append random ids,
/// if long truncate; repeat (decode → encode → fix) up to 64 times; fail clearly if it never matches.
pub fn generate_prompt<R: Rng + ?Sized>(
    tok: &Tokenizer,
    n: usize,
    rng: &mut R,
) -> Result<Prompt, SyntheticError> {
    if n == 0 {
        return Ok(Prompt {
            text: String::new(),
            token_ids: Vec::new(),
        });
    }
    // The lower half holds the common, short merges; the top of some vocabularies is
    // rare or reserved tokens that decode to nothing useful.
    let half = tok.vocab_size() / 2;
    if half == 0 {
        return Err(SyntheticError::TinyVocabulary {
            tokenizer: tok.name().to_string(),
            vocab: tok.vocab_size(),
        });
    }
    let mut ids: Vec<u32> = (0..n).map(|_| rng.random_range(0..half)).collect();
    let failed = |reason| SyntheticError::Tokenizer {
        tokenizer: tok.name().to_string(),
        reason,
    };
    for _ in 0..MAX_TRIES {
        let text = tok.try_decode(&ids).map_err(failed)?;
        ids = tok.try_encode(&text).map_err(failed)?;
        match ids.len().cmp(&n) {
            std::cmp::Ordering::Equal => {
                return Ok(Prompt {
                    text,
                    token_ids: ids,
                });
            }
            std::cmp::Ordering::Less => {
                let missing = n - ids.len();
                ids.extend((0..missing).map(|_| rng.random_range(0..half)));
            }
            std::cmp::Ordering::Greater => ids.truncate(n),
        }
    }
    Err(SyntheticError::NoExactLength {
        n,
        tokenizer: tok.name().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn prompts_have_exact_length_and_ids() {
        let tok = Tokenizer::builtin();
        for &n in &[1usize, 2, 7, 100, 1000, 4096] {
            for seed in 0..3u64 {
                let mut rng = StdRng::seed_from_u64(seed);
                let p = generate_prompt(&tok, n, &mut rng).unwrap();
                let again = tok.encode(&p.text);
                assert_eq!(again.len(), n, "n={n} seed={seed}");
                assert_eq!(p.token_ids, again, "n={n} seed={seed}");
            }
        }
    }

    #[test]
    fn word_prompts_are_exact_and_from_the_lower_half() {
        let tok = Tokenizer::builtin();
        let (p, note) = SyntheticPrompts::resolve(SyntheticKind::Words, &tok);
        assert!(note.is_none());
        let SyntheticPrompts::Words { words, pool } = &p else {
            panic!("cl100k has safe words")
        };
        assert!(*pool >= MIN_WORDS && *pool < words.len());
        for &n in &[0usize, 1, 2, 7, 128, 1000, 4096] {
            for seed in 0..3u64 {
                let mut rng = StdRng::seed_from_u64(seed);
                let prompt = p.generate(&tok, n, &mut rng).unwrap();
                assert_eq!(prompt.token_ids.len(), n);
                assert_eq!(
                    tok.encode(&prompt.text),
                    prompt.token_ids,
                    "n={n} seed={seed}"
                );
                assert!(prompt.token_ids.iter().all(|&id| id < tok.vocab_size() / 2));
            }
        }
        let again = |seed| {
            p.generate(&tok, 50, &mut StdRng::seed_from_u64(seed))
                .unwrap()
        };
        assert_eq!(again(4), again(4));
        assert_ne!(again(4).text, again(5).text);
    }

    #[test]
    fn random_ids_are_kept_on_request() {
        let tok = Tokenizer::builtin();
        let (p, _) = SyntheticPrompts::resolve(SyntheticKind::RandomIds, &tok);
        assert_eq!(p.name(), "random-ids");
        let a = p.generate(&tok, 64, &mut StdRng::seed_from_u64(1)).unwrap();
        let b = generate_prompt(&tok, 64, &mut StdRng::seed_from_u64(1)).unwrap();
        assert_eq!(a, b, "the seed algorithm, unchanged");
    }

    #[test]
    fn zero_tokens_is_an_empty_prompt() {
        let tok = Tokenizer::builtin();
        let p = generate_prompt(&tok, 0, &mut StdRng::seed_from_u64(1)).unwrap();
        assert_eq!(p.text, "");
        assert!(p.token_ids.is_empty());
    }

    #[test]
    fn seeds_decide_the_prompt() {
        let tok = Tokenizer::builtin();
        let gen_with = |seed| generate_prompt(&tok, 200, &mut StdRng::seed_from_u64(seed)).unwrap();
        assert_eq!(gen_with(7), gen_with(7));
        assert_ne!(gen_with(7).text, gen_with(8).text);
    }

    #[test]
    fn many_long_prompts_are_fast_enough() {
        // Run for every request of a benchmark, so it must stay cheap even unoptimised.
        let tok = Tokenizer::builtin();
        let mut rng = StdRng::seed_from_u64(42);
        let start = std::time::Instant::now();
        for _ in 0..64 {
            let p = generate_prompt(&tok, 8192, &mut rng).unwrap();
            assert_eq!(p.token_ids.len(), 8192);
        }
        let took = start.elapsed();
        assert!(
            took.as_secs() < 60,
            "64 prompts of 8192 tokens took {took:?}"
        );
    }

    #[test]
    fn length_specs_parse_and_display() {
        assert_eq!("5".parse(), Ok(LengthSpec::Fixed(5)));
        assert_eq!("1:10".parse(), Ok(LengthSpec::Range { lo: 1, hi: 10 }));
        assert_eq!("3:3".parse(), Ok(LengthSpec::Range { lo: 3, hi: 3 }));
        for s in ["5", "1:10", "3:3", "4294967295"] {
            assert_eq!(s.parse::<LengthSpec>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_length_specs_are_rejected_by_name() {
        for s in [
            "",
            "0",
            "0:5",
            "6:5",
            "-1",
            "-1:5",
            "1:-5",
            "abc",
            "1:",
            ":5",
            "1:2:3",
            "+5",
            " 5",
            "1.5",
            "99999999999",
        ] {
            let err = s.parse::<LengthSpec>().unwrap_err();
            assert_eq!(
                err,
                format!("{s:?}: expected N or LO:HI with 1 <= LO <= HI"),
                "{s}"
            );
        }
    }

    #[test]
    fn sampling_stays_in_range_and_reaches_both_ends() {
        let mut rng = StdRng::seed_from_u64(3);
        let spec = LengthSpec::Range { lo: 10, hi: 14 };
        let draws: Vec<u32> = (0..1000).map(|_| spec.sample(&mut rng)).collect();
        assert!(draws.iter().all(|d| (10..=14).contains(d)));
        assert!(draws.contains(&10) && draws.contains(&14));
        assert_eq!(spec.max(), 14);

        let fixed = LengthSpec::Fixed(9);
        assert!((0..100).all(|_| fixed.sample(&mut rng) == 9));
        assert_eq!(fixed.max(), 9);
    }
}
