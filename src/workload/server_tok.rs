//! `--tokenizer server`: the served model's own tokenizer, through the endpoint's
//! tokenize route. Engines disagree on its shape, so the first that answers a probe is
//! used: vLLM, SGLang, llama.cpp, TGI (in that order). Every call happens before a run
//! or after it, never while requests are measured; answers are cached, and many texts
//! go in one request (SGLang takes lists) or in concurrent requests (the others).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::{Value, json};

use crate::console::printable;

/// Requests in flight at once when a route takes one text per request.
const CONCURRENCY: usize = 16;
/// Texts per request where the route takes a list (SGLang).
const BATCH: usize = 64;
const TIMEOUT: Duration = Duration::from_secs(60);
/// The probe's text: two common words, one token each in every BPE vocabulary.
const PROBE: &str = "hello world";

/// The engine whose routes and JSON shapes answered the probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `POST /tokenize {"model","prompt"}` → `{"tokens"}`; `/detokenize` → `{"prompt"}`
    Vllm,
    /// `POST /v1/tokenize {"model","prompt":[..]}` → `{"tokens":[[..]]}`;
    /// `/v1/detokenize` → `{"text":[..]}`
    Sglang,
    /// `POST /tokenize {"content"}` → `{"tokens"}`; `/detokenize` → `{"content"}`
    LlamaCpp,
    /// `POST /tokenize {"inputs"}` → `[{"id","text","start","stop"}]`; no detokenize:
    /// ids decode through the token texts earlier answers gave.
    Tgi,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Vllm => "vLLM",
            Shape::Sglang => "SGLang",
            Shape::LlamaCpp => "llama.cpp",
            Shape::Tgi => "TGI",
        }
    }

    fn tokenize_path(self) -> &'static str {
        match self {
            Shape::Sglang => "v1/tokenize",
            _ => "tokenize",
        }
    }
}

/// Where the tokenize routes are and how to reach them.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    /// The server root (`/tokenize` hangs off it, not off `/v1`).
    pub root: Url,
    pub model: String,
    /// Sent only to the benchmarked server itself.
    pub auth: Option<HeaderValue>,
    /// `-H` headers, sent like the key.
    pub headers: reqwest::header::HeaderMap,
    /// `--insecure`, as for the benchmark's own requests.
    pub insecure: bool,
}

/// The endpoint's tokenizer: found by [`ServerTokenizer::detect`].
pub struct ServerTokenizer {
    shape: Shape,
    /// What results record as the tokenizer: the engine shape and where.
    name: String,
    spec: ServerSpec,
    http: reqwest::Client,
    /// Its own small runtime: callers are plain threads (preparation, the recorder).
    rt: Option<tokio::runtime::Runtime>,
    encoded: Mutex<HashMap<String, Vec<u32>>>,
    /// TGI: each id's text, as tokenize answers gave it.
    pieces: Mutex<HashMap<u32, String>>,
}

impl Drop for ServerTokenizer {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's context panics; this never blocks.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl ServerTokenizer {
    /// Tries each engine's shape in turn; the error names every route tried and what
    /// came back.
    pub fn detect(spec: ServerSpec) -> Result<ServerTokenizer, String> {
        crate::client::init_tls();
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .default_headers(spec.headers.clone())
            .tls_danger_accept_invalid_certs(spec.insecure)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let mut tok = ServerTokenizer {
            shape: Shape::Vllm,
            name: String::new(),
            spec,
            http,
            rt: Some(rt),
            encoded: Mutex::default(),
            pieces: Mutex::default(),
        };
        let mut tried = Vec::new();
        for shape in [Shape::Vllm, Shape::Sglang, Shape::LlamaCpp, Shape::Tgi] {
            tok.shape = shape;
            match tok.block_on(tok.probe()) {
                Ok(()) => {
                    tok.name = format!(
                        "server ({} /{} at {})",
                        shape.name(),
                        shape.tokenize_path(),
                        tok.spec.root
                    );
                    return Ok(tok);
                }
                Err(why) => tried.push(format!("  {}: {}", shape.name(), why)),
            }
        }
        Err(format!(
            "--tokenizer server: {} answered no tokenize route this tool knows:\n{}\n(give a tokenizer.json with --tokenizer PATH or ORG/NAME instead)",
            tok.spec.root,
            tried.join("\n")
        ))
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt
            .as_ref()
            .expect("runtime lives until drop")
            .block_on(f)
    }

    /// Tokenize and detokenize "hello world"; both must answer in this shape.
    async fn probe(&self) -> Result<(), String> {
        let ids = self.tokenize(&[PROBE]).await?;
        let ids = ids.into_iter().next().unwrap_or_default();
        if ids.is_empty() {
            return Err(format!(
                "POST /{} gave no tokens for {PROBE:?}",
                self.shape.tokenize_path()
            ));
        }
        if self.shape == Shape::Tgi {
            return Ok(());
        }
        let text = self.detokenize(&ids).await?;
        if !text.contains("hello") {
            return Err(format!(
                "POST /{} gave {:?} for the ids of {PROBE:?}",
                self.detokenize_path(),
                printable(&text)
            ));
        }
        Ok(())
    }

    fn detokenize_path(&self) -> &'static str {
        match self.shape {
            Shape::Sglang => "v1/detokenize",
            _ => "detokenize",
        }
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let url = self
            .spec
            .root
            .join(path)
            .map_err(|e| format!("/{path}: {e}"))?;
        let mut rb = self.http.post(url).json(&body);
        if let Some(a) = &self.spec.auth {
            rb = rb.header(AUTHORIZATION, a.clone());
        }
        let fut = async {
            let resp = rb
                .send()
                .await
                .map_err(|e| crate::client::error_chain(&e.without_url()))?;
            let status = resp.status();
            let bytes = resp
                .bytes()
                .await
                .map_err(|e| crate::client::error_chain(&e.without_url()))?;
            let text = String::from_utf8_lossy(&bytes);
            if !status.is_success() {
                return Err(format!("HTTP {}: {}", status.as_u16(), excerpt(&text)));
            }
            serde_json::from_slice(&bytes)
                .map_err(|_| format!("HTTP 200 but not JSON: {}", excerpt(&text)))
        };
        let answer = tokio::time::timeout(TIMEOUT, fut)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", TIMEOUT.as_secs())));
        answer.map_err(|e| format!("POST /{path} → {e}"))
    }

    /// Token ids of each text, without special tokens: one request for SGLang, one per
    /// text otherwise (the caller runs several at once).
    async fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, String> {
        let path = self.shape.tokenize_path();
        let model = &self.spec.model;
        let shape_err = |got: &Value, want: &str| {
            format!(
                "POST /{path} → HTTP 200 but {} (expected {want})",
                excerpt(&got.to_string())
            )
        };
        if self.shape == Shape::Sglang {
            let body = json!({"model": model, "prompt": texts, "add_special_tokens": false});
            let got = self.post(path, body).await?;
            let lists = got["tokens"].as_array().filter(|l| l.len() == texts.len());
            let parsed: Option<Vec<Vec<u32>>> = lists.and_then(|l| l.iter().map(id_list).collect());
            return parsed.ok_or_else(|| shape_err(&got, "{\"tokens\": [[ids], ...]}"));
        }
        let [text] = texts else {
            unreachable!("one text per request for this shape")
        };
        let body = match self.shape {
            Shape::Vllm => json!({"model": model, "prompt": text, "add_special_tokens": false}),
            Shape::LlamaCpp => json!({"content": text, "add_special": false}),
            _ => json!({"inputs": text}),
        };
        let got = self.post(path, body).await?;
        let ids = match self.shape {
            Shape::Tgi => self.tgi_ids(&got),
            _ => id_list(&got["tokens"]),
        };
        let want = match self.shape {
            Shape::Tgi => "[{\"id\", \"text\", \"start\", \"stop\"}, ...]",
            _ => "{\"tokens\": [ids]}",
        };
        ids.map(|ids| vec![ids])
            .ok_or_else(|| shape_err(&got, want))
    }

    /// TGI's token list; tokens with an empty span are special ones it added (BOS).
    fn tgi_ids(&self, got: &Value) -> Option<Vec<u32>> {
        let mut ids = Vec::new();
        let mut pieces = self.pieces.lock().unwrap_or_else(|e| e.into_inner());
        for t in got.as_array()? {
            let id = u32::try_from(t["id"].as_u64()?).ok()?;
            let (start, stop) = (t["start"].as_u64()?, t["stop"].as_u64()?);
            if start == stop {
                continue;
            }
            if let Some(text) = t["text"].as_str() {
                pieces.entry(id).or_insert_with(|| text.to_string());
            }
            ids.push(id);
        }
        Some(ids)
    }

    async fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        let path = self.detokenize_path();
        let model = &self.spec.model;
        let (body, field) = match self.shape {
            Shape::Vllm => (json!({"model": model, "tokens": ids}), "prompt"),
            Shape::Sglang => (json!({"model": model, "tokens": [ids]}), "text"),
            Shape::LlamaCpp => (json!({"tokens": ids}), "content"),
            Shape::Tgi => return self.tgi_decode(ids),
        };
        let got = self.post(path, body).await?;
        let text = match self.shape {
            Shape::Sglang => got[field][0].as_str(),
            _ => got[field].as_str(),
        };
        text.map(str::to_string).ok_or_else(|| {
            format!(
                "POST /{path} → HTTP 200 but {} (expected {{\"{field}\": ...}})",
                excerpt(&got.to_string())
            )
        })
    }

    /// TGI has no detokenize route: ids decode through the texts its tokenize answers
    /// gave them, which covers cutting a text it tokenized (`--max-input-length`).
    fn tgi_decode(&self, ids: &[u32]) -> Result<String, String> {
        let pieces = self.pieces.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for id in ids {
            match pieces.get(id) {
                Some(p) => out.push_str(p),
                None => {
                    return Err(format!(
                        "TGI has no /detokenize route, and token {id} was never in one of its /tokenize answers (use --synthetic-prompts words, the default)"
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Ids of `text`, from the cache or the server (not kept: one-off texts such as a
    /// random-ids prompt's rounds would only fill memory).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        Ok(self.encode_many(&[text], false)?.pop().unwrap_or_default())
    }

    /// Ids of every text, in order: cached ones from memory, the rest batched; `keep`
    /// caches them (texts that preparing requests will count again: a dataset's).
    pub fn encode_many(&self, texts: &[&str], keep: bool) -> Result<Vec<Vec<u32>>, String> {
        let mut missing: Vec<&str> = {
            let cache = self.encoded.lock().unwrap_or_else(|e| e.into_inner());
            texts
                .iter()
                .copied()
                .filter(|t| !cache.contains_key(*t))
                .collect()
        };
        missing.sort_unstable();
        missing.dedup();
        let found = match missing.is_empty() {
            true => Vec::new(),
            false => self.block_on(self.fetch(&missing))?,
        };
        let mut fresh: HashMap<&str, Vec<u32>> = missing.into_iter().zip(found).collect();
        let mut cache = self.encoded.lock().unwrap_or_else(|e| e.into_inner());
        let out = texts
            .iter()
            .map(|t| match fresh.get(t) {
                Some(ids) => ids.clone(),
                None => cache.get(*t).cloned().unwrap_or_default(),
            })
            .collect();
        if keep {
            cache.extend(fresh.drain().map(|(t, ids)| (t.to_string(), ids)));
        }
        Ok(out)
    }

    async fn fetch(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, String> {
        let per = if self.shape == Shape::Sglang {
            BATCH
        } else {
            1
        };
        let parts: Vec<Result<Vec<Vec<u32>>, String>> =
            futures_util::stream::iter(texts.chunks(per).map(|c| self.tokenize(c)))
                .buffered(CONCURRENCY)
                .collect()
                .await;
        let mut out = Vec::with_capacity(texts.len());
        for p in parts {
            out.extend(p?);
        }
        Ok(out)
    }

    /// Text of `ids` (not cached: decoded ids are random ones, rarely seen twice).
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        if ids.is_empty() {
            return Ok(String::new());
        }
        self.block_on(self.detokenize(ids))
    }

    /// Whether the given root answers any known tokenize route (the warning's cheap
    /// probe, after a run).
    pub fn available(spec: ServerSpec) -> bool {
        Self::detect(spec).is_ok()
    }
}

fn id_list(v: &Value) -> Option<Vec<u32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_u64().and_then(|n| u32::try_from(n).ok()))
        .collect()
}

/// The start of a server's answer, printable, for an error message.
fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(160).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    printable(&out).into_owned()
}
