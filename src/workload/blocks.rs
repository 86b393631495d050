//! Prompts that keep a trace's prefix-cache structure: every hash id stands for one block
//! of `block_size` tokens, built deterministically from (hash id, seed), so requests that
//! share leading hash ids share exactly that many tokens of prompt prefix.
//!
//! Blocks are made of safe words (`words.rs`): a text of them tokenizes to exactly those
//! words' ids, so lengths are exact and shared text is shared tokens.

use std::fmt;
use std::sync::Arc;

use super::Tokenizer;
use super::words::{SafeWords, SplitMix, Word, WordsError, mix, pick};

// Separate streams for blocks and for per-request filler, so a request's filler can never
// repeat a block by construction.
const BLOCK_STREAM: u64 = 0x426c_6f63_6b73_0001;
const FILLER_STREAM: u64 = 0x4669_6c6c_6572_0002;

#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("block size must be at least 1 token")]
    ZeroBlockSize,
    #[error(transparent)]
    Words(#[from] WordsError),
}

/// Builds trace prompts; cheap to clone and share between threads.
#[derive(Clone)]
pub struct BlockPrompts {
    words: Arc<SafeWords>,
    block_size: usize,
    block_key: u64,
    filler_key: u64,
}

impl fmt::Debug for BlockPrompts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockPrompts")
            .field("words", &self.words.len())
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

impl BlockPrompts {
    /// Blocks from the tokenizer's safe words (embedded for the default tokenizer, else
    /// scanned and self-tested once per tokenizer).
    pub fn new(tok: &Tokenizer, block_size: usize, seed: u64) -> Result<Self, BlockError> {
        if block_size == 0 {
            return Err(BlockError::ZeroBlockSize);
        }
        Ok(BlockPrompts {
            words: tok.safe_words()?,
            block_size,
            block_key: mix(seed ^ BLOCK_STREAM),
            filler_key: mix(seed ^ FILLER_STREAM),
        })
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Number of distinct words blocks are drawn from.
    pub fn word_count(&self) -> usize {
        self.words.len()
    }

    /// Appends the text of the prompt for `hash_ids`, cut to `input_len` tokens. Tokens past
    /// `hash_ids.len() × block_size` are filler drawn from `extra_key`, so requests with
    /// different keys share none of it.
    pub fn text(&self, hash_ids: &[u64], input_len: usize, extra_key: u64, out: &mut String) {
        let w = &*self.words;
        out.reserve(input_len.saturating_mul(w.bytes_per_word()));
        self.for_each_word(hash_ids, input_len, extra_key, |word| {
            out.push_str(w.text_of(word));
        });
    }

    /// Appends the token ids of the same prompt `text` builds: exactly what the tokenizer
    /// makes of that text.
    pub fn token_ids(
        &self,
        hash_ids: &[u64],
        input_len: usize,
        extra_key: u64,
        out: &mut Vec<u32>,
    ) {
        out.reserve(input_len);
        self.for_each_word(hash_ids, input_len, extra_key, |word| out.push(word.id));
    }

    fn for_each_word(
        &self,
        hash_ids: &[u64],
        input_len: usize,
        extra_key: u64,
        mut f: impl FnMut(Word),
    ) {
        let words = &*self.words;
        let n = words.len() as u64;
        let mut left = input_len;
        for &id in hash_ids {
            if left == 0 {
                return;
            }
            let take = left.min(self.block_size);
            // A block depends on its hash id only, not its position, as in the trace.
            let mut rng = SplitMix(mix(id ^ self.block_key));
            for _ in 0..take {
                f(words.word(pick(rng.next_u64(), n)));
            }
            left -= take;
        }
        let mut rng = SplitMix(mix(extra_key ^ self.filler_key));
        for _ in 0..left {
            f(words.word(pick(rng.next_u64(), n)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;
    use std::time::Instant;

    fn cl100k() -> &'static Tokenizer {
        static T: OnceLock<Tokenizer> = OnceLock::new();
        T.get_or_init(Tokenizer::builtin)
    }

    fn o200k() -> &'static Tokenizer {
        static T: OnceLock<Tokenizer> = OnceLock::new();
        T.get_or_init(|| Tokenizer::load(Some("builtin:o200k")).unwrap())
    }

    fn text_of(b: &BlockPrompts, ids: &[u64], len: usize, key: u64) -> String {
        let mut s = String::new();
        b.text(ids, len, key, &mut s);
        s
    }

    fn ids_of(b: &BlockPrompts, ids: &[u64], len: usize, key: u64) -> Vec<u32> {
        let mut v = Vec::new();
        b.token_ids(ids, len, key, &mut v);
        v
    }

    #[test]
    fn lengths_are_exact_in_both_builtin_vocabularies() {
        for tok in [cl100k(), o200k()] {
            let start = Instant::now();
            let b16 = BlockPrompts::new(tok, 16, 3).unwrap();
            eprintln!(
                "{}: {} safe words, built in {:?}",
                tok.name(),
                b16.word_count(),
                start.elapsed()
            );
            let b512 = BlockPrompts::new(tok, 512, 3).unwrap();
            for b in [&b16, &b512] {
                let bs = b.block_size();
                for len in [1usize, 2, 15, 16, 17, 100, 511, 512, 513, 1500, 3000] {
                    let full: Vec<u64> = (0..len.div_ceil(bs) as u64).collect();
                    // Exactly enough hash ids, too few (filler) and none at all.
                    for hash_ids in [&full[..], &full[..full.len() / 2], &[]] {
                        let text = text_of(b, hash_ids, len, 11);
                        let ids = ids_of(b, hash_ids, len, 11);
                        assert_eq!(ids.len(), len);
                        assert_eq!(tok.encode(&text), ids, "{} bs={bs} len={len}", tok.name());
                    }
                    // More hash ids than the length needs: cut.
                    let more: Vec<u64> = (0..full.len() as u64 + 3).collect();
                    assert_eq!(ids_of(b, &more, len, 11), ids_of(b, &full, len, 11));
                }
                assert_eq!(text_of(b, &[1, 2], 0, 0), "");
            }
        }
    }

    #[test]
    fn shared_leading_hash_ids_share_exactly_that_prefix() {
        for bs in [16, 512] {
            let b = BlockPrompts::new(cl100k(), bs, 0).unwrap();
            let a = ids_of(&b, &[1, 2, 3], 3 * bs, 0);
            let c = ids_of(&b, &[1, 2, 9], 3 * bs, 1);
            assert_eq!(a[..2 * bs], c[..2 * bs]);
            assert_ne!(a[2 * bs], c[2 * bs]);
            assert_ne!(a[2 * bs..], c[2 * bs..]);
            // The shared tokens are shared text too.
            let ta = text_of(&b, &[1, 2, 3], 3 * bs, 0);
            let tc = text_of(&b, &[1, 2, 9], 3 * bs, 1);
            let prefix = cl100k().decode(&a[..2 * bs]);
            assert!(ta.starts_with(&prefix) && tc.starts_with(&prefix));
            assert_eq!(cl100k().encode(&tc), c);

            let x = ids_of(&b, &[5, 1], 2 * bs, 0);
            let y = ids_of(&b, &[6, 1], 2 * bs, 0);
            assert_ne!(x[..bs], y[..bs]);
            // A block is the same wherever it appears.
            assert_eq!(x[bs..], a[..bs]);
            assert_eq!(y[bs..], a[..bs]);
        }
    }

    #[test]
    fn seeds_decide_the_blocks_and_keys_decide_the_filler() {
        let tok = cl100k();
        let s1 = BlockPrompts::new(tok, 16, 1).unwrap();
        let s1b = BlockPrompts::new(tok, 16, 1).unwrap();
        let s2 = BlockPrompts::new(tok, 16, 2).unwrap();
        let h = [4, 8, 15];
        assert_eq!(text_of(&s1, &h, 48, 0), text_of(&s1b, &h, 48, 0));
        assert_ne!(text_of(&s1, &h, 16, 0), text_of(&s2, &h, 16, 0));

        // 48 tokens of blocks, then 100 of filler that only the key decides.
        let a = ids_of(&s1, &h, 148, 1);
        let b = ids_of(&s1, &h, 148, 2);
        assert_eq!(a[..48], b[..48]);
        assert_ne!(a[48..], b[48..]);
        assert_eq!(a, ids_of(&s1, &h, 148, 1));
        // The key changes nothing while the hash ids cover the length.
        assert_eq!(ids_of(&s1, &h, 48, 1), ids_of(&s1, &h, 48, 2));
    }

    #[test]
    fn output_is_appended() {
        let b = BlockPrompts::new(cl100k(), 16, 0).unwrap();
        let mut s = String::from("x");
        b.text(&[1], 16, 0, &mut s);
        assert_eq!(&s[1..], text_of(&b, &[1], 16, 0));
        let mut v = vec![7];
        b.token_ids(&[1], 16, 0, &mut v);
        assert_eq!(v[1..], ids_of(&b, &[1], 16, 0));
    }

    #[test]
    fn zero_block_size_is_an_error() {
        assert!(matches!(
            BlockPrompts::new(cl100k(), 0, 0),
            Err(BlockError::ZeroBlockSize)
        ));
    }

    /// A Hugging Face WordLevel tokenizer without a pre-tokenizer: each " word" is a
    /// token on its own, but a text of several is one unknown token.
    fn word_level(n: usize, pre_tokenizer: &str) -> (tempfile::TempDir, Tokenizer) {
        let mut vocab = serde_json::Map::new();
        vocab.insert("[UNK]".into(), 0.into());
        for i in 0..n {
            let mut w = String::from(" w");
            let mut k = i;
            for _ in 0..3 {
                w.push((b'a' + (k % 26) as u8) as char);
                k /= 26;
            }
            vocab.insert(w, (i + 1).into());
        }
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": serde_json::from_str::<serde_json::Value>(pre_tokenizer).unwrap(),
            "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, json.to_string()).unwrap();
        let tok = Tokenizer::load(Some(path.to_str().unwrap())).unwrap();
        (dir, tok)
    }

    #[test]
    fn tokenizers_that_break_words_are_refused() {
        let (_d, few) = word_level(10, "null");
        let e = BlockPrompts::new(&few, 16, 0).unwrap_err();
        assert!(
            matches!(e, BlockError::Words(WordsError::TooFew { found: 10, .. })),
            "{e}"
        );
        assert!(e.to_string().contains("--prompt-token-ids"));

        let (_d, joined) = word_level(1500, "null");
        let e = BlockPrompts::new(&joined, 16, 0).unwrap_err();
        assert!(
            matches!(
                e,
                BlockError::Words(WordsError::NotSeparable { position: 0, .. })
            ),
            "{e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(joined.name()) && msg.contains("--prompt-token-ids"),
            "{msg}"
        );
    }

    /// Prompt building for the first 1000 Mooncake requests (~15M tokens) on one core.
    /// Run with `cargo test --release --lib blocks -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn mooncake_prompts_are_fast() {
        let path = std::path::Path::new("/work/shared/traces/mooncake_synthetic_trace.jsonl");
        if !path.exists() {
            eprintln!("skipped: {} is not here", path.display());
            return;
        }
        let (format, reqs) = super::super::trace::read_trace(path, None, Some(1000)).unwrap();
        let tok = cl100k();
        let start = Instant::now();
        let b = BlockPrompts::new(tok, format.block_size(), 0).unwrap();
        eprintln!("BlockPrompts::new: {:?}", start.elapsed());

        let mut text = String::new();
        let (mut tokens, mut bytes) = (0usize, 0usize);
        let start = Instant::now();
        for (i, r) in reqs.iter().enumerate() {
            text.clear();
            b.text(&r.hash_ids, r.input_len as usize, i as u64, &mut text);
            tokens += r.input_len as usize;
            bytes += text.len();
        }
        let took = start.elapsed();
        eprintln!(
            "text: {tokens} tokens, {bytes} bytes in {took:?} ({:.1} ns/token)",
            took.as_nanos() as f64 / tokens as f64
        );

        let mut ids = Vec::new();
        let start = Instant::now();
        for (i, r) in reqs.iter().enumerate() {
            ids.clear();
            b.token_ids(&r.hash_ids, r.input_len as usize, i as u64, &mut ids);
        }
        eprintln!("token ids: {:?}", start.elapsed());
        assert!(took.as_secs_f64() < 1.0, "{took:?}");

        // Spot-check exactness on real lengths.
        for (i, r) in reqs.iter().enumerate().take(5) {
            text.clear();
            b.text(&r.hash_ids, r.input_len as usize, i as u64, &mut text);
            assert_eq!(tok.encode(&text).len(), r.input_len as usize);
        }
    }
}
