//! Token counting: a Hugging Face `tokenizer.json` (a path, or `ORG/NAME` in the local
//! cache), the served model's own through the endpoint (`server`), or an embedded
//! tiktoken vocabulary that needs no download (the default, so nothing touches the
//! network).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tiktoken_rs::CoreBPE;

use super::hf_cache::{self, CacheEnv};
use super::server_tok::{ServerSpec, ServerTokenizer};
use super::words::{SafeWords, WordsError};

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("--tokenizer {path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("--tokenizer {path}: directory holds no tokenizer.json")]
    NoTokenizerJson { path: PathBuf },
    #[error("--tokenizer {path}: not a valid Hugging Face tokenizer.json: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "--tokenizer {name}: unknown built-in vocabulary (expected builtin:cl100k or builtin:o200k)"
    )]
    UnknownBuiltin { name: String },
    #[error(
        "--tokenizer {repo}: no tokenizer.json for it in the local Hugging Face cache ({searched}); nothing is downloaded: get it with `huggingface-cli download {repo} tokenizer.json`, or give the file's path"
    )]
    NotInCache { repo: String, searched: String },
    #[error("{0}")]
    Server(String),
    #[error("--tokenizer server needs the endpoint, which resolves it")]
    ServerUnresolved,
}

/// A tokenizer shared by every part of a run (cheap to clone).
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<Shared>,
}

struct Shared {
    kind: Inner,
    words: OnceLock<Result<Arc<SafeWords>, WordsError>>,
}

enum Inner {
    /// Built on first use: the vocabulary costs ~40 ms and ~20 MB, and a run whose
    /// prompts come from safe words and whose server reports usage never needs it.
    Tiktoken {
        name: &'static str,
        bpe: fn() -> &'static CoreBPE,
    },
    HuggingFace {
        name: String,
        tok: Box<tokenizers::Tokenizer>,
        vocab: u32,
    },
    /// The endpoint's tokenize route (`--tokenizer server`).
    Server(Box<ServerTokenizer>),
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({})", self.name())
    }
}

impl Tokenizer {
    /// cl100k_base: of the embedded vocabularies, the closest to the Llama-3 and Qwen BPEs
    /// most served models use.
    pub fn builtin() -> Self {
        Self::new(Inner::Tiktoken {
            name: "builtin:cl100k",
            bpe: tiktoken_rs::cl100k_base_singleton,
        })
    }

    fn new(kind: Inner) -> Self {
        Tokenizer {
            inner: Arc::new(Shared {
                kind,
                words: OnceLock::new(),
            }),
        }
    }

    /// The vocabulary's safe words (see `words.rs`): embedded for builtin:cl100k,
    /// else scanned and self-tested on first use, once per tokenizer.
    pub fn safe_words(&self) -> Result<Arc<SafeWords>, WordsError> {
        self.inner
            .words
            .get_or_init(|| match &self.inner.kind {
                Inner::Tiktoken {
                    name: "builtin:cl100k",
                    ..
                } => Ok(Arc::new(SafeWords::cl100k())),
                Inner::Server(_) => super::server_words::probe(self).map(Arc::new),
                _ => SafeWords::scan(self).map(Arc::new),
            })
            .clone()
    }

    /// The served model's tokenizer, through the endpoint's tokenize route.
    pub fn server(spec: ServerSpec) -> Result<Self, TokenizerError> {
        let s = ServerTokenizer::detect(spec).map_err(TokenizerError::Server)?;
        Ok(Self::new(Inner::Server(Box::new(s))))
    }

    pub fn is_server(&self) -> bool {
        matches!(self.inner.kind, Inner::Server(_))
    }

    /// `None` → the built-in default; `builtin:cl100k` / `builtin:o200k`; a
    /// `tokenizer.json` file; a model directory holding one; or `ORG/NAME` in the local
    /// Hugging Face cache. `server` is resolved by the session (`Tokenizer::server`).
    pub fn load(spec: Option<&str>) -> Result<Self, TokenizerError> {
        let Some(spec) = spec else {
            return Ok(Self::builtin());
        };
        if spec == "server" {
            return Err(TokenizerError::ServerUnresolved);
        }
        if let Some(name) = spec.strip_prefix("builtin:") {
            return match name {
                "cl100k" | "cl100k_base" => Ok(Self::builtin()),
                "o200k" | "o200k_base" => Ok(Self::new(Inner::Tiktoken {
                    name: "builtin:o200k",
                    bpe: tiktoken_rs::o200k_base_singleton,
                })),
                _ => Err(TokenizerError::UnknownBuiltin {
                    name: spec.to_string(),
                }),
            };
        }
        let path = Path::new(spec);
        let file = if path.is_dir() {
            let f = path.join("tokenizer.json");
            if !f.is_file() {
                return Err(TokenizerError::NoTokenizerJson {
                    path: path.to_path_buf(),
                });
            }
            f
        } else if path.is_file() {
            path.to_path_buf()
        } else if hf_cache::is_repo_id(spec) {
            hf_cache::find(spec, &CacheEnv::from_process()).map_err(|searched| {
                TokenizerError::NotInCache {
                    repo: spec.to_string(),
                    searched,
                }
            })?
        } else {
            return Err(TokenizerError::NotFound {
                path: path.to_path_buf(),
            });
        };
        let tok = tokenizers::Tokenizer::from_file(&file).map_err(|e| TokenizerError::Invalid {
            path: file.clone(),
            reason: e.to_string(),
        })?;
        let vocab = tok.get_vocab_size(false) as u32;
        Ok(Self::new(Inner::HuggingFace {
            name: file.display().to_string(),
            tok: Box::new(tok),
            vocab,
        }))
    }

    /// What results record as the tokenizer that counted.
    pub fn name(&self) -> &str {
        match &self.inner.kind {
            Inner::Tiktoken { name, .. } => name,
            Inner::HuggingFace { name, .. } => name,
            Inner::Server(s) => s.name(),
        }
    }

    /// Token ids of `text`, without special tokens (what a prompt costs the model). A
    /// server that fails is reported once on stderr and counts as no tokens; callers
    /// that can stop use `try_encode`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.try_encode(text).unwrap_or_else(|e| {
            self.report_failure(&e);
            Vec::new()
        })
    }

    /// As `encode`; only a server tokenizer can fail.
    pub fn try_encode(&self, text: &str) -> Result<Vec<u32>, String> {
        match &self.inner.kind {
            Inner::Tiktoken { bpe, .. } => Ok(bpe().encode_ordinary(text)),
            Inner::HuggingFace { tok, .. } => Ok(tok
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default()),
            Inner::Server(s) => s.encode(text),
        }
    }

    /// Many texts at once: one batched exchange with a server (cached after, for the
    /// texts preparing requests counts again), a loop otherwise.
    pub fn try_encode_many(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, String> {
        match &self.inner.kind {
            Inner::Server(s) => s.encode_many(texts, true),
            _ => texts.iter().map(|t| self.try_encode(t)).collect(),
        }
    }

    /// Token counts of many texts (a run's output), batched for a server, not cached.
    pub fn try_count_many(&self, texts: &[&str]) -> Result<Vec<usize>, String> {
        let ids = match &self.inner.kind {
            Inner::Server(s) => s.encode_many(texts, false)?,
            _ => {
                return texts
                    .iter()
                    .map(|t| self.try_encode(t).map(|i| i.len()))
                    .collect();
            }
        };
        Ok(ids.iter().map(Vec::len).collect())
    }

    fn report_failure(&self, e: &str) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            errln!(
                "WARNING: tokenizer {}: {}; such texts count as 0 tokens",
                self.name(),
                crate::console::printable(e)
            )
        });
    }

    pub fn count(&self, text: &str) -> usize {
        self.encode(text).len()
    }

    /// Text of `ids`; byte sequences that are not valid UTF-8 become U+FFFD, as
    /// Python's `decode` does, so any id sequence decodes.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.try_decode(ids).unwrap_or_else(|e| {
            self.report_failure(&e);
            String::new()
        })
    }

    /// As `decode`; only a server tokenizer can fail.
    pub fn try_decode(&self, ids: &[u32]) -> Result<String, String> {
        Ok(match &self.inner.kind {
            Inner::Tiktoken { bpe, .. } => match bpe().decode_bytes(ids) {
                Ok(bytes) => String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                Err(_) => String::new(),
            },
            Inner::HuggingFace { tok, .. } => tok.decode(ids, true).unwrap_or_default(),
            Inner::Server(s) => return s.decode(ids),
        })
    }

    /// `text` cut to at most `n` tokens, or `None` when it is not longer. The cut is
    /// re-encoded: a decoded prefix can tokenize differently at its end, so it shrinks
    /// until it fits.
    pub fn truncate(&self, text: &str, n: usize) -> Result<Option<String>, String> {
        let ids = self.try_encode(text)?;
        if ids.len() <= n {
            return Ok(None);
        }
        let mut keep = n;
        loop {
            let cut = self.try_decode(&ids[..keep])?;
            if keep == 0 || self.try_encode(&cut)?.len() <= n {
                return Ok(Some(cut));
            }
            keep -= 1;
        }
    }

    /// Size of the base vocabulary (special/added tokens excluded).
    pub fn vocab_size(&self) -> u32 {
        match &self.inner.kind {
            // cl100k has 100,256 ordinary ranks, o200k 199,998; both keep specials above.
            Inner::Tiktoken { name, .. } if name.ends_with("o200k") => 199_998,
            Inner::Tiktoken { .. } => 100_256,
            Inner::HuggingFace { vocab, .. } => *vocab,
            // The server does not say; its safe words show how far ids go at least, and
            // 32,000 (Llama-2, Mistral) is below every current vocabulary.
            Inner::Server(_) => self
                .safe_words()
                .ok()
                .and_then(|w| w.max_id())
                .map_or(32_000, |m| m + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_round_trips_text() {
        let t = Tokenizer::builtin();
        let ids = t.encode("Hello, world! Benchmarks are fun.");
        assert!(!ids.is_empty());
        assert_eq!(t.decode(&ids), "Hello, world! Benchmarks are fun.");
        assert_eq!(t.name(), "builtin:cl100k");
    }

    #[test]
    fn unknown_builtin_and_missing_path_are_errors() {
        assert!(matches!(
            Tokenizer::load(Some("builtin:nope")),
            Err(TokenizerError::UnknownBuiltin { .. })
        ));
        let err = Tokenizer::load(Some("/no/such/tokenizer.json")).unwrap_err();
        assert!(err.to_string().contains("/no/such/tokenizer.json"));
    }

    #[test]
    fn directory_without_tokenizer_json_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Tokenizer::load(Some(dir.path().to_str().unwrap())).unwrap_err();
        assert!(matches!(err, TokenizerError::NoTokenizerJson { .. }));
    }
}
