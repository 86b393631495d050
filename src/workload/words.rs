//! Safe words: vocabulary entries that are a space and 2–12 lowercase ASCII letters and
//! encode back to themselves. Byte-level BPE pre-tokenizers (tiktoken cl100k/o200k,
//! GPT-2, Llama-3, Qwen2) cut before every space+letters run, so a text made of such
//! words tokenizes to exactly those words' ids: prompts of an exact token length need
//! no tokenizer round trip, and shared text is shared tokens. `scan` checks this claim on
//! the tokenizer at hand instead of trusting it.
//!
//! The default tokenizer's words are embedded (`cl100k_words.txt`, checked against a
//! fresh scan by a test), so building prompts needs no tokenizer at all: nothing is
//! loaded or scanned before the first request.

use super::Tokenizer;

/// Fewer words would make prompts repetitive enough for a server to notice.
pub const MIN_WORDS: usize = 1000;
/// Words in the construction self-test: enough to meet most word pairs a tokenizer
/// could merge across, still only milliseconds to encode.
const SELF_TEST_WORDS: usize = 4000;
const SELF_TEST_STREAM: u64 = 0x5465_7374_0003;

/// `id word` per line (the word without its leading space), ascending ids.
const CL100K_WORDS: &str = include_str!("cl100k_words.txt");

#[derive(Clone, Debug, thiserror::Error)]
pub enum WordsError {
    #[error(
        "tokenizer {tokenizer} has only {found} vocabulary entries that are a space and 2-12 lowercase letters and encode back to themselves (need {MIN_WORDS}), so prompts of an exact token length cannot be built as text with it (SentencePiece-style tokenizers, whose pieces decode without their leading space, have few or none). Use --prompt-token-ids, or a byte-level BPE tokenizer (builtin:cl100k, Llama-3, Qwen2)"
    )]
    TooFew { tokenizer: String, found: usize },
    #[error(
        "tokenizer {tokenizer} does not keep space-separated words as single tokens (self-test: at token {position}, word {word:?} (id {expected}) became {got}), so prompts of an exact token length cannot be built as text with it. Use --prompt-token-ids, or a byte-level BPE tokenizer (builtin:cl100k, Llama-3, Qwen2)"
    )]
    NotSeparable {
        tokenizer: String,
        position: usize,
        word: String,
        expected: u32,
        got: String,
    },
    #[error("tokenizer {tokenizer}: {reason}")]
    Tokenizer { tokenizer: String, reason: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    start: u32,
    end: u32,
    pub id: u32,
}

/// A tokenizer's safe words, in ascending id order.
#[derive(Debug, PartialEq, Eq)]
pub struct SafeWords {
    /// Every word's text (" alpha"), back to back, so building a prompt copies bytes
    /// from one buffer instead of allocating per word.
    text: String,
    words: Vec<Word>,
}

impl SafeWords {
    /// Finds the tokenizer's safe words and checks that text made of them re-tokenizes to
    /// exactly their ids. Costs one decode per vocabulary entry (tens of ms for tiktoken).
    pub fn scan(tok: &Tokenizer) -> Result<SafeWords, WordsError> {
        let found = (0..tok.vocab_size())
            .filter_map(|id| {
                let s = tok.decode(&[id]);
                (is_shaped(&s) && tok.encode(&s) == [id]).then_some((id, s))
            })
            .collect();
        Self::checked(tok, found)
    }

    /// Words found by a scan or some other way (the server's tokenizer): at least
    /// `MIN_WORDS` of them, and text made of them re-tokenizes to their ids.
    pub(super) fn checked(
        tok: &Tokenizer,
        mut found: Vec<(u32, String)>,
    ) -> Result<SafeWords, WordsError> {
        found.sort_unstable();
        found.dedup_by_key(|(id, _)| *id);
        let mut words = SafeWords {
            text: String::new(),
            words: Vec::new(),
        };
        for (id, w) in &found {
            words.push(&[w], *id);
        }
        if words.len() < MIN_WORDS {
            return Err(WordsError::TooFew {
                tokenizer: tok.name().to_string(),
                found: words.len(),
            });
        }
        self_test(tok, &words)?;
        Ok(words)
    }

    /// The largest id among the words.
    pub fn max_id(&self) -> Option<u32> {
        self.words.last().map(|w| w.id)
    }

    /// The embedded words of builtin:cl100k.
    pub fn cl100k() -> SafeWords {
        let mut words = SafeWords {
            text: String::with_capacity(CL100K_WORDS.len()),
            words: Vec::with_capacity(CL100K_WORDS.len() / 8),
        };
        for line in CL100K_WORDS.lines() {
            // The file is checked by a test; a malformed line cannot ship.
            let (id, w) = line
                .split_once(' ')
                .expect("cl100k_words.txt: `id word` lines");
            let id = id.parse().expect("cl100k_words.txt: numeric ids");
            words.push(&[" ", w], id);
        }
        words
    }

    /// Appends a word given as pieces of its text (" " and the letters, or the whole).
    fn push(&mut self, pieces: &[&str], id: u32) {
        let start = self.text.len() as u32;
        for p in pieces {
            self.text.push_str(p);
        }
        self.words.push(Word {
            start,
            end: self.text.len() as u32,
            id,
        });
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn word(&self, i: usize) -> Word {
        self.words[i]
    }

    /// The text of a word, with its leading space.
    pub fn text_of(&self, w: Word) -> &str {
        &self.text[w.start as usize..w.end as usize]
    }

    /// How many words have an id below `id` (they come first: ids ascend).
    pub fn count_below(&self, id: u32) -> usize {
        self.words.partition_point(|w| w.id < id)
    }

    /// Average bytes per word, rounded up, so one reservation usually suffices.
    pub fn bytes_per_word(&self) -> usize {
        self.text.len().div_ceil(self.words.len().max(1))
    }

    /// The `id word` lines `cl100k` reads.
    #[cfg(test)]
    fn to_lines(&self) -> String {
        let mut out = String::new();
        for &w in &self.words {
            out.push_str(&format!("{} {}\n", w.id, &self.text_of(w)[1..]));
        }
        out
    }
}

fn is_shaped(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=13).contains(&b.len()) && b[0] == b' ' && b[1..].iter().all(u8::is_ascii_lowercase)
}

/// Random words joined must encode to exactly their ids; a tokenizer whose pre-tokenizer
/// merges across spaces (or a normalizer that rewrites them) fails here, not mid-run.
fn self_test(tok: &Tokenizer, words: &SafeWords) -> Result<(), WordsError> {
    let mut rng = SplitMix(mix(SELF_TEST_STREAM));
    let n = words.len() as u64;
    let picked: Vec<Word> = (0..SELF_TEST_WORDS)
        .map(|_| words.word(pick(rng.next_u64(), n)))
        .collect();
    let mut text = String::new();
    for &w in &picked {
        text.push_str(words.text_of(w));
    }
    let got = tok
        .try_encode(&text)
        .map_err(|reason| WordsError::Tokenizer {
            tokenizer: tok.name().to_string(),
            reason,
        })?;
    let expected: Vec<u32> = picked.iter().map(|w| w.id).collect();
    if got == expected {
        return Ok(());
    }
    let position = expected
        .iter()
        .zip(&got)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    let w = picked[position.min(picked.len() - 1)];
    let got = match got.get(position) {
        Some(&g) => format!("id {g} ({:?})", tok.decode(&[g])),
        None => format!("the end of {} tokens", got.len()),
    };
    Err(WordsError::NotSeparable {
        tokenizer: tok.name().to_string(),
        position,
        word: words.text_of(w).to_string(),
        expected: w.id,
        got,
    })
}

/// splitmix64's output function: a bijection, so distinct inputs give distinct streams.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64: one add and one mix per word, and seeding is free.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
}

/// Maps 64 random bits onto 0..n by multiply-shift (no division; bias is ~n/2^64).
pub fn pick(r: u64, n: u64) -> usize {
    ((u128::from(r) * u128::from(n)) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_cl100k_words_match_a_fresh_scan() {
        // The scan builds the real cl100k vocabulary and self-tests the words, so the
        // embedded list can never drift from what the tokenizer does.
        let scanned = SafeWords::scan(&Tokenizer::load(Some("builtin:cl100k")).unwrap())
            .expect("cl100k has safe words");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/workload/cl100k_words.txt");
        if std::env::var_os("SERVESCOPE_WRITE_WORDS").is_some() {
            std::fs::write(path, scanned.to_lines()).unwrap();
        }
        let embedded = SafeWords::cl100k();
        assert!(
            embedded == scanned,
            "{path} differs from a scan of cl100k ({} vs {} words); rewrite it with SERVESCOPE_WRITE_WORDS=1 cargo test --release --lib embedded_cl100k",
            embedded.len(),
            scanned.len()
        );
    }

    #[test]
    fn word_shape() {
        for ok in [" ab", " the", " abcdefghijkl"] {
            assert!(is_shaped(ok), "{ok:?}");
        }
        for bad in ["ab", " a", " The", " abc1", "  ab", " abcdefghijklm", " é"] {
            assert!(!is_shaped(bad), "{bad:?}");
        }
    }

    #[test]
    fn words_below_an_id_come_first() {
        let w = SafeWords::cl100k();
        let k = w.count_below(50_000);
        assert!(k > MIN_WORDS && k < w.len());
        assert!(w.word(k - 1).id < 50_000 && w.word(k).id >= 50_000);
        assert_eq!(w.text_of(w.word(0)).as_bytes()[0], b' ');
    }
}
