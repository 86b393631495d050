//! Safe words of a tokenizer known only through a server's tokenize route. Scanning a
//! vocabulary would cost one request per id, so candidates (the embedded cl100k words,
//! most common first) are tokenized in groups instead: a group of k words that comes
//! back as k tokens is k one-token words, in order (each " word" is at least one token);
//! a group that does not is halved and asked again. Mostly-shared vocabularies (Llama-3,
//! Qwen) pass whole groups, so a few hundred requests find thousands of words; the
//! usual self-test then checks the words on the server, as a scan's are.

use super::Tokenizer;
use super::words::{SafeWords, WordsError};

/// Candidates asked about: plenty for prompts that do not repeat, few requests.
const CANDIDATES: usize = 8192;
/// Words per group in the first round.
const GROUP: usize = 32;

pub fn probe(tok: &Tokenizer) -> Result<SafeWords, WordsError> {
    let cl100k = SafeWords::cl100k();
    let n = CANDIDATES.min(cl100k.len());
    let candidates: Vec<&str> = (0..n).map(|i| cl100k.text_of(cl100k.word(i))).collect();
    let mut groups: Vec<&[&str]> = candidates.chunks(GROUP).collect();
    let mut found: Vec<(u32, String)> = Vec::new();
    while !groups.is_empty() {
        let texts: Vec<String> = groups.iter().map(|g| g.concat()).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ids = tok
            .try_encode_many(&refs)
            .map_err(|reason| WordsError::Tokenizer {
                tokenizer: tok.name().to_string(),
                reason,
            })?;
        let mut next = Vec::new();
        for (g, ids) in groups.iter().zip(ids) {
            if ids.len() == g.len() {
                found.extend(ids.into_iter().zip(g.iter().map(|w| w.to_string())));
            } else if g.len() > 1 {
                let (a, b) = g.split_at(g.len() / 2);
                next.push(a);
                next.push(b);
            }
        }
        groups = next;
    }
    SafeWords::checked(tok, found)
}
