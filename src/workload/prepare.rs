//! Turn a workload description into ready-to-send requests: prompt, exact input token
//! count, max_tokens and the serialized body. Everything is built before the run's
//! clock starts, so no tokenizer work sits on the hot path.

use std::sync::Arc;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::blocks::BlockPrompts;
use super::dataset::{DatasetEntry, PromptContent};
use super::model_pick as pick;
use super::synthetic::{LengthSpec, SyntheticError, SyntheticPrompts};
use super::tokenizer::Tokenizer;
use super::trace::{TraceError, TraceRequest};
use super::trace_file::{TraceFile, TraceStream};
use super::{BatchBody, EncodeBody, Prompt};
use crate::record::RequestTag;
use crate::shard::Pick;

/// One request, ready to send.
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    pub id: u64,
    pub body: Bytes,
    /// Prompt tokens as the client's tokenizer counts them.
    pub input_tokens: u32,
    pub max_tokens: u32,
    /// Session, turn and model, carried to the request's record.
    pub tag: crate::record::RequestTag,
    /// `--sessions`: this is a session's first turn, and the rest of it is planned here.
    pub chat: Option<Arc<super::chat::SessionPlan>>,
}

/// Where prompts come from.
#[derive(Clone, Debug)]
pub enum PromptSource {
    /// Random prompts of an exact token length.
    Synthetic {
        input_len: LengthSpec,
        prompts: SyntheticPrompts,
    },
    /// Entries of a dataset file, in order, cycling when more requests are asked for.
    Dataset(Arc<Vec<DatasetEntry>>),
    /// A request trace, read as a stream: lengths from the trace, prompts built from
    /// its hash ids.
    Trace {
        file: Arc<TraceFile>,
        blocks: Arc<BlockPrompts>,
    },
    /// `--shared-prefix`: groups of questions behind one system prompt each, shuffled.
    SharedPrefix(Arc<super::shared_prefix::SharedPrefix>),
    /// `--sessions`: synthetic multi-turn sessions, one per request index.
    Sessions(Arc<super::chat::SyntheticSessions>),
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Synthetic(#[from] SyntheticError),
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error("--images: {0}")]
    Images(String),
    #[error("trace {}: there is no request {index} (counting from 0)", path.display())]
    Past {
        path: std::path::PathBuf,
        index: u64,
    },
}

impl PromptSource {
    /// Cheap to build per request (a trace's prompts are copies of generated blocks), so
    /// requests can be prepared while the run goes instead of all before it.
    pub fn is_streamable(&self) -> bool {
        matches!(self, PromptSource::Trace { .. })
    }
}

#[derive(Clone, Debug)]
pub struct WorkloadSpec {
    pub source: PromptSource,
    /// max_tokens when a dataset entry names none.
    pub output_len: LengthSpec,
    pub seed: u64,
    /// Send prompts as token ids (completions API only).
    pub token_ids: bool,
    /// `--model a,b`: the model of each request (or session), when several are mixed.
    pub models: Option<Arc<super::models::ModelMix>>,
    /// `--images N`: synthetic images added to every request.
    pub images: Option<super::images::ImageSpec>,
}

/// Mix seed, run and request index into one independent stream per request, so requests
/// can be built in parallel and the same seed always gives the same requests.
pub(crate) fn request_seed(seed: u64, run: u64, i: u64) -> u64 {
    let mut x =
        seed ^ run.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Build `count` requests for run number `run` (distinct runs get distinct prompts, so a
/// server's prefix cache cannot carry one run's prompts into the next).
pub fn prepare(
    spec: &WorkloadSpec,
    body: &dyn EncodeBody,
    tok: &Tokenizer,
    run: u64,
    count: usize,
) -> Result<Vec<PreparedRequest>, PrepareError> {
    prepare_range(spec, body, tok, run, 0..count)
}

/// Requests `range` of run `run`, built on every core (a trace's are read in order).
pub fn prepare_range(
    spec: &WorkloadSpec,
    body: &dyn EncodeBody,
    tok: &Tokenizer,
    run: u64,
    range: std::ops::Range<usize>,
) -> Result<Vec<PreparedRequest>, PrepareError> {
    if let PromptSource::Trace { .. } = spec.source {
        // Quick to build (copies of generated blocks), but read in order from the file.
        return RequestStream::new(spec, body, tok, run)?
            .skip(range.start)
            .take(range.len())
            .map(|r| r.map(|p| p.req))
            .collect();
    }
    let ids: Vec<u64> = range.map(|i| i as u64).collect();
    prepare_ids(spec, body, tok, run, &ids, &|| false)
}

/// Requests `ids` (indexes in the whole workload, e.g. one shard's) of run `run` of a
/// synthetic or dataset source, built on every core. Once `stop` says so (a signal),
/// no more are built and the result lacks some: the caller must not use it.
pub fn prepare_ids(
    spec: &WorkloadSpec,
    body: &dyn EncodeBody,
    tok: &Tokenizer,
    run: u64,
    ids: &[u64],
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<PreparedRequest>, PrepareError> {
    let count = ids.len();
    // A server tokenizer waits on the network, not the CPU: more threads, more
    // requests in flight.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match tok.is_server() {
        true => cores.max(16),
        false => cores,
    }
    .min(count.max(1));
    let per = count.div_ceil(threads.max(1)).max(1);
    let mut out: Vec<Result<Vec<PreparedRequest>, PrepareError>> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .take_while(|_| !stop())
                        .map(|&i| prepare_one(spec, body, tok, run, i))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        out = handles
            .into_iter()
            .map(|h| h.join().expect("prompt preparation thread panicked"))
            .collect();
    });
    let mut all = Vec::with_capacity(count);
    for part in out {
        all.extend(part?);
    }
    Ok(all)
}

/// One prepared request, and the trace request it was made from (trace sources only).
pub struct Prepared {
    pub req: PreparedRequest,
    pub trace: Option<TraceRequest>,
}

/// The requests of run `run`, in order, built one at a time as they are taken: endless
/// for synthetic and dataset sources, the trace's requests for a trace. With a shard's
/// pick, only its requests (the others are passed over unbuilt).
pub struct RequestStream<'a> {
    spec: &'a WorkloadSpec,
    body: &'a dyn EncodeBody,
    tok: &'a Tokenizer,
    run: u64,
    next: u64,
    trace: Option<(TraceStream, &'a BlockPrompts)>,
    pick: Pick,
}

impl<'a> RequestStream<'a> {
    pub fn new(
        spec: &'a WorkloadSpec,
        body: &'a dyn EncodeBody,
        tok: &'a Tokenizer,
        run: u64,
    ) -> Result<Self, PrepareError> {
        let trace = match &spec.source {
            PromptSource::Trace { file, blocks } => Some((file.requests()?, &**blocks)),
            _ => None,
        };
        Ok(RequestStream {
            spec,
            body,
            tok,
            run,
            next: 0,
            trace,
            pick: Pick::default(),
        })
    }

    /// Only the requests `pick` keeps (a shard's).
    pub fn picking(mut self, pick: Pick) -> Self {
        self.pick = pick;
        self
    }

    /// Pass over the first `k` requests to be taken (they were prepared some other way).
    pub fn starting_at(mut self, k: u64) -> Self {
        for _ in 0..k {
            if !self.advance() {
                break;
            }
        }
        self
    }

    /// Move past the next kept request without building it; false at the trace's end.
    fn advance(&mut self) -> bool {
        loop {
            let i = self.next;
            self.next += 1;
            if let Some((requests, _)) = &mut self.trace
                && requests.next().is_none()
            {
                return false;
            }
            if self.pick.keeps(i) {
                return true;
            }
        }
    }
}

impl Iterator for RequestStream<'_> {
    type Item = Result<Prepared, PrepareError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (i, line) = loop {
            let i = self.next;
            self.next += 1;
            // A trace line is read even when another shard sends it; an unreadable one
            // is reported whoever sends it.
            let line = match &mut self.trace {
                Some((requests, _)) => Some(requests.next()?),
                None => None,
            };
            if self.pick.keeps(i) || matches!(line, Some(Err(_))) {
                break (i, line);
            }
        };
        let s = self.spec;
        Some(match (&self.trace, line) {
            (Some((_, blocks)), Some(line)) => match line {
                Ok(t) => Ok(Prepared {
                    req: prepare_trace(s, blocks, self.body, self.run, i, &t),
                    trace: Some(t),
                }),
                Err(e) => Err(e.into()),
            },
            _ => prepare_one(s, self.body, self.tok, self.run, i)
                .map(|req| Prepared { req, trace: None }),
        })
    }
}

/// Request `i` of a trace replay.
pub fn prepare_trace(
    spec: &WorkloadSpec,
    blocks: &BlockPrompts,
    body: &dyn EncodeBody,
    run: u64,
    i: u64,
    t: &TraceRequest,
) -> PreparedRequest {
    let model = pick::model_of(spec, i);
    // `--images` with a trace: each request's synthetic images beside its text (the
    // image cannot fail to encode at checked sizes; were it to, the text goes alone).
    let with = spec.images.and_then(|im| {
        let urls = im.urls(spec.seed, run, i).ok()?;
        Some(super::images::WithImages { inner: body, urls })
    });
    let body: &dyn EncodeBody = match &with {
        Some(w) => w,
        None => body,
    };
    let bytes = if spec.token_ids {
        let mut out = Vec::new();
        trace_prompt(blocks, spec.seed, run, i, t, TraceOut::Ids(&mut out));
        pick::encode(body, model, Prompt::TokenIds(&out), t.output_len, None)
    } else {
        let mut out = String::new();
        trace_prompt(blocks, spec.seed, run, i, t, TraceOut::Text(&mut out));
        pick::encode(body, model, Prompt::Text(&out), t.output_len, None)
    };
    PreparedRequest {
        id: i,
        body: bytes,
        input_tokens: t.input_len,
        max_tokens: t.output_len,
        tag: RequestTag {
            trace: t.replaced,
            ..pick::tag(model)
        },
        chat: None,
    }
}

/// Request `i` of run `run`.
pub fn prepare_one(
    spec: &WorkloadSpec,
    body: &dyn EncodeBody,
    tok: &Tokenizer,
    run: u64,
    i: u64,
) -> Result<PreparedRequest, PrepareError> {
    if let Some(batch) = body.batch() {
        return prepare_batch(spec, batch, tok, run, i);
    }
    let with = spec
        .images
        .map(|im| im.urls(spec.seed, run, i).map_err(PrepareError::Images))
        .transpose()?
        .map(|urls| super::images::WithImages { inner: body, urls });
    let body: &dyn EncodeBody = match &with {
        Some(w) => w,
        None => body,
    };
    let mut rng = StdRng::seed_from_u64(request_seed(spec.seed, run, i));
    let model = pick::model_of(spec, i);
    match &spec.source {
        PromptSource::SharedPrefix(sp) => {
            let max_tokens = spec.output_len.sample(&mut rng);
            let at = (spec.seed, run, i);
            let (body, input_tokens) =
                super::shared_prefix::encode(sp, body, at, spec.token_ids, max_tokens, model);
            Ok(PreparedRequest {
                id: i,
                body,
                input_tokens,
                max_tokens,
                tag: pick::tag(model),
                chat: None,
            })
        }
        PromptSource::Synthetic { input_len, prompts } => {
            let n = input_len.sample(&mut rng) as usize;
            let max_tokens = spec.output_len.sample(&mut rng);
            let prompt = prompts.generate(tok, n, &mut rng)?;
            let pb = match spec.token_ids {
                true => Prompt::TokenIds(&prompt.token_ids),
                false => Prompt::Text(&prompt.text),
            };
            Ok(PreparedRequest {
                id: i,
                body: pick::encode(body, model, pb, max_tokens, None),
                input_tokens: prompt.token_ids.len() as u32,
                max_tokens,
                tag: pick::tag(model),
                chat: None,
            })
        }
        // Reads the file up to request i: for one-off use (`RequestStream` is the way to
        // go through a trace).
        PromptSource::Trace { file, blocks } => match file.requests()?.nth(i as usize) {
            Some(t) => Ok(prepare_trace(spec, blocks, body, run, i, &t?)),
            None => Err(PrepareError::Past {
                path: file.path().to_path_buf(),
                index: i,
            }),
        },
        PromptSource::Sessions(sessions) => sessions.prepare(spec, body, tok, &mut rng, i),
        PromptSource::Dataset(entries) => {
            let e = &entries[(i as usize) % entries.len()];
            let max_tokens = e
                .output_len
                .unwrap_or_else(|| spec.output_len.sample(&mut rng));
            // The entry's own tools, else the run's (which the body options carry).
            let encode = |p: Prompt<'_>| pick::encode(body, model, p, max_tokens, e.tools.as_ref());
            let (bytes, input_tokens) = encode_entry(&e.content, spec.token_ids, tok, &encode);
            Ok(PreparedRequest {
                id: i,
                body: bytes,
                input_tokens: input_tokens as u32,
                max_tokens,
                tag: pick::tag(model),
                chat: None,
            })
        }
    }
}

/// A dataset entry's prompt as a body, and its input tokens.
fn encode_entry(
    content: &PromptContent,
    token_ids: bool,
    tok: &Tokenizer,
    encode: &dyn Fn(Prompt<'_>) -> Bytes,
) -> (Bytes, usize) {
    match content {
        PromptContent::Text(t) if token_ids => {
            let ids = tok.encode(t);
            (encode(Prompt::TokenIds(&ids)), ids.len())
        }
        PromptContent::Text(t) => (encode(Prompt::Text(t)), tok.count(t)),
        // As token ids, a history is the completions prompt it flattens to.
        PromptContent::Messages(m) if token_ids => {
            let ids = tok.encode(&super::flatten_messages(m));
            (encode(Prompt::TokenIds(&ids)), ids.len())
        }
        PromptContent::Messages(m) => (encode(Prompt::Messages(m)), messages_tokens(tok, m)),
    }
}

/// Request `i` of a batching API: the prompts of requests `i·N … i·N+N−1` of the same
/// workload, each encoded as one input; its input tokens are theirs summed.
fn prepare_batch(
    spec: &WorkloadSpec,
    batch: &dyn BatchBody,
    tok: &Tokenizer,
    run: u64,
    i: u64,
) -> Result<PreparedRequest, PrepareError> {
    /// Encodes each prompt as one input, not as a request.
    struct Input<'a>(&'a dyn BatchBody);
    impl EncodeBody for Input<'_> {
        fn encode(&self, prompt: Prompt<'_>, _max_tokens: u32) -> Bytes {
            self.0.input(prompt)
        }
    }
    let n = u64::from(batch.inputs().max(1));
    let mut parts = Vec::with_capacity(n as usize);
    let mut input_tokens = 0u32;
    for k in 0..n {
        let one = prepare_one(spec, &Input(batch), tok, run, i * n + k)?;
        input_tokens = input_tokens.saturating_add(one.input_tokens);
        parts.push(one.body);
    }
    Ok(PreparedRequest {
        id: i,
        body: batch.join(&parts),
        input_tokens,
        max_tokens: 0,
        tag: Default::default(),
        chat: None,
    })
}

/// Where a trace prompt goes: text, or token ids.
pub enum TraceOut<'a> {
    Text(&'a mut String),
    Ids(&'a mut Vec<u32>),
}

/// The prompt of trace request `i` of run `run`: its hash ids' blocks, cut to its input
/// length. Each replay gets its own block contents (the sharing structure stays), so one
/// time scale's replay cannot warm the server's cache for the next.
pub fn trace_prompt(
    blocks: &BlockPrompts,
    seed: u64,
    run: u64,
    i: u64,
    t: &TraceRequest,
    out: TraceOut<'_>,
) {
    trace_blocks(blocks, seed, run, i, &t.hash_ids, t.input_len as usize, out)
}

/// `n` tokens from these hash ids' blocks (as `trace_prompt` maps them for a run).
pub fn trace_blocks(
    blocks: &BlockPrompts,
    seed: u64,
    run: u64,
    i: u64,
    hash_ids: &[u64],
    n: usize,
    out: TraceOut<'_>,
) {
    let ids: Vec<u64> = hash_ids
        .iter()
        .map(|&h| if run == 0 { h } else { request_seed(h, run, 0) })
        .collect();
    let filler = request_seed(seed, run, i);
    match out {
        TraceOut::Text(s) => {
            s.reserve(n * 7);
            blocks.text(&ids, n, filler, s)
        }
        TraceOut::Ids(v) => {
            v.reserve(n);
            blocks.token_ids(&ids, n, filler, v)
        }
    }
}

/// Tokens of every message's text content (the server adds its chat template on top).
fn messages_tokens(tok: &Tokenizer, messages: &serde_json::Value) -> usize {
    let mut n = 0;
    for m in messages.as_array().into_iter().flatten() {
        match m.get("content") {
            Some(serde_json::Value::String(s)) => n += tok.count(s),
            Some(serde_json::Value::Array(parts)) => {
                for p in parts {
                    if let Some(t) = p.get("text").and_then(|t| t.as_str()) {
                        n += tok.count(t);
                    }
                }
            }
            _ => {}
        }
    }
    n
}

#[cfg(test)]
#[path = "tests_prepare.rs"]
mod tests;
