//! Where a response's tokens come from: the ideal timetable, or the engine (with the
//! tokenizing and context-length check that come before queueing a request).

use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::driver::{Arrival, Progress};
use super::engine::EngineConfig;
use super::sched::NewRequest;
use super::stream::{INLINE_COUNT_BYTES, Plan, Prompt, off_thread, sleep_until};
use super::{Shared, kv};
use crate::workload::Tokenizer;

impl Prompt {
    /// Token count and the keys of the full blocks (for the prefix cache).
    async fn blocks(self, tokenizer: &Tokenizer, block_size: usize) -> (u64, Vec<u64>) {
        let work = move |tok: &Tokenizer, prompt: Prompt| {
            let ids = match prompt {
                Prompt::Ids(ids) => ids,
                Prompt::Texts(texts) => texts.iter().flat_map(|t| tok.encode(t)).collect(),
            };
            (ids.len() as u64, kv::block_hashes(&ids, block_size))
        };
        let bytes = match &self {
            Prompt::Texts(texts) => texts.iter().map(String::len).sum(),
            Prompt::Ids(ids) => ids.len() * 4,
        };
        if bytes <= INLINE_COUNT_BYTES {
            return work(tokenizer, self);
        }
        let tok = tokenizer.clone();
        off_thread(move || work(&tok, self)).await
    }
}

/// Where a response's tokens come from.
pub(super) enum Source {
    /// The ideal timetable; the prompt is counted once the response is under way.
    Ideal(Prompt),
    /// The engine; the prompt was tokenized before the request was queued.
    Engine {
        prompt_tokens: u64,
        rx: UnboundedReceiver<Progress>,
    },
}

/// Tokenizes the prompt, checks the context length as vLLM does, and queues the
/// request for the engine.
pub(super) async fn submit(
    shared: &Shared,
    engine: (&EngineConfig, &UnboundedSender<Arrival>),
    plan: &Plan,
    prompt: Prompt,
    max_tokens: u32,
) -> Result<Source, String> {
    let (cfg, queue) = engine;
    let (prompt_tokens, block_keys) = prompt
        .blocks(&shared.tokenizer, cfg.block_size as usize)
        .await;
    let requested = prompt_tokens + u64::from(max_tokens);
    if requested > u64::from(cfg.max_model_len) {
        return Err(format!(
            "This model's maximum context length is {} tokens. However, you requested \
             {requested} tokens ({prompt_tokens} in the messages, {max_tokens} in the \
             completion). Please reduce the length of the messages or completion.",
            cfg.max_model_len
        ));
    }
    shared.count_request();
    let (tx, rx) = mpsc::unbounded_channel();
    let req = NewRequest {
        id: plan.seq,
        // An empty prompt still costs one token (think of it as BOS).
        prompt_len: u32::try_from(prompt_tokens).unwrap_or(u32::MAX).max(1),
        block_keys,
        output_tokens: plan.output_tokens,
        spec_key: plan.spec_key,
    };
    // If the engine is gone, `rx` ends at once and the response is cut.
    let _ = queue.send(Arrival {
        req,
        t0: plan.t0.into_std(),
        tx,
    });
    Ok(Source::Engine { prompt_tokens, rx })
}

/// A source under way: how many tokens are out so far.
pub(super) struct Tokens {
    pub(super) prompt_tokens: u64,
    ready: u32,
    /// Prefix-cache hit tokens (engine mode only).
    pub(super) cached: Option<u64>,
    rx: Option<UnboundedReceiver<Progress>>,
    _in_flight: Option<InFlight>,
}

impl Source {
    pub(super) async fn start(self, shared: &Arc<Shared>) -> Tokens {
        match self {
            Source::Ideal(prompt) => {
                let in_flight = InFlight::new(shared.clone());
                Tokens {
                    prompt_tokens: prompt.count(&shared.tokenizer).await,
                    ready: 0,
                    cached: None,
                    rx: None,
                    _in_flight: Some(in_flight),
                }
            }
            Source::Engine { prompt_tokens, rx } => Tokens {
                prompt_tokens,
                ready: 0,
                cached: Some(0),
                rx: Some(rx),
                _in_flight: None,
            },
        }
    }
}

impl Tokens {
    /// Waits until output token `j` is produced; false if the engine dropped the request.
    pub(super) async fn wait_for(&mut self, shared: &Shared, plan: &Plan, j: u32) -> bool {
        self.wait_step(shared, plan, j, j).await
    }

    /// Output tokens produced so far.
    pub(super) fn ready(&self) -> u32 {
        self.ready
    }

    /// [`Self::wait_for`], the ideal timetable's deadline taken at position `at` rather
    /// than `j` (a speculative step produces several tokens at one deadline).
    pub(super) async fn wait_step(
        &mut self,
        shared: &Shared,
        plan: &Plan,
        j: u32,
        at: u32,
    ) -> bool {
        let Some(rx) = &mut self.rx else {
            sleep_until(plan.deadline(self.prompt_tokens, at)).await;
            // The engine keeps its own metrics; the ideal timetable's are kept here.
            let mut c = shared.counters();
            if self.ready == 0 {
                let ttft = plan.deadline(self.prompt_tokens, 0) - plan.t0;
                c.metrics.observe_ttft(ttft.as_secs_f64());
                c.metrics.prompt_tokens += self.prompt_tokens;
            }
            c.metrics.generation_tokens += u64::from((j + 1).saturating_sub(self.ready));
            self.ready = self.ready.max(j + 1);
            return true;
        };
        while self.ready <= j {
            let Some(p) = rx.recv().await else {
                return false;
            };
            self.ready = p.generated;
            self.cached = Some(u64::from(p.cached_tokens));
        }
        true
    }
}

/// Counts an ideal-mode response as running while it lives.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: Arc<Shared>) -> InFlight {
        shared.counters().metrics.running += 1;
        InFlight(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.counters().metrics.running -= 1;
    }
}
