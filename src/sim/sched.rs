//! The continuous-batching scheduler, modelled on vLLM v1: pure and synchronous, so
//! the same arrivals give the same steps. The engine loop (`driver.rs`) adds the clock.
//!
//! A request has `num_tokens` = prompt + generated tokens, of which `computed` have KV
//! in the cache. Each step gives it `num_tokens − computed` more (at most what the
//! budget leaves); when it catches up, a token is sampled. So a prompt is prefilled
//! over one or more steps and then one token is decoded per step; a preempted request
//! starts again at `computed = 0` and recomputes prompt and output (as vLLM does).

use std::collections::{BTreeMap, VecDeque};

use super::engine::EngineConfig;
use super::kv::{BlockId, BlockPool};
use super::spec::SpecDecoding;

pub(super) struct NewRequest {
    pub id: u64,
    /// At least 1.
    pub prompt_len: u32,
    /// Keys of the prompt's full blocks (`kv::block_hashes`).
    pub block_keys: Vec<u64>,
    /// Tokens to generate, at least 1.
    pub output_tokens: u32,
    /// Keys the request's speculative-decoding draws (`spec.rs`).
    pub spec_key: u64,
}

struct Seq {
    req: NewRequest,
    generated: u32,
    computed: u32,
    blocks: Vec<BlockId>,
    /// Prompt blocks already in the prefix cache.
    registered: usize,
    /// Prefix-cache hit of the first admission, reported in `usage`.
    cached_tokens: Option<u32>,
}

impl Seq {
    fn num_tokens(&self) -> u32 {
        self.req.prompt_len + self.generated
    }

    fn is_decoding(&self) -> bool {
        self.generated > 0 && self.computed + 1 == self.num_tokens()
    }
}

/// What one step computes.
#[derive(Debug, Default)]
pub(super) struct Step {
    /// (request, tokens computed for it), decodes first, then prefills, then admissions.
    pub work: Vec<(u64, u32)>,
    pub prefill_tokens: u64,
    pub decode_seqs: u64,
    /// Tokens in the KV cache of the decoding requests, the new ones included.
    pub decode_context_tokens: u64,
    pub preemptions: u64,
    /// Prompt tokens looked up in the prefix cache, and how many were found.
    pub prefix_queries: u64,
    pub prefix_hits: u64,
}

impl Step {
    pub(super) fn tokens(&self) -> u64 {
        self.work.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    pub(super) fn cost_ms(&self, cfg: &EngineConfig) -> f64 {
        cfg.step_base_ms
            + cfg.prefill_ms_per_token * self.prefill_tokens as f64
            + cfg.decode_ms_per_seq * self.decode_seqs as f64
            + cfg.kv_read_ms_per_1k_tokens * self.decode_context_tokens as f64 / 1000.0
    }
}

/// A token sampled at the end of a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Sampled {
    pub id: u64,
    /// Tokens generated so far, this one included.
    pub generated: u32,
    pub prompt_len: u32,
    pub cached_tokens: u32,
    pub finished: bool,
    /// Tokens this step added: 1, or with speculative decoding the accepted draft
    /// tokens and the bonus one (cut at the output's end).
    pub new_tokens: u32,
    /// A verified draft: (draft tokens, accepted ones).
    pub draft: Option<(u32, u32)>,
}

pub(super) struct Scheduler {
    cfg: EngineConfig,
    pool: BlockPool,
    seqs: BTreeMap<u64, Seq>,
    waiting: VecDeque<u64>,
    /// In admission order: the last is the first preempted.
    running: Vec<u64>,
    spec: Option<SpecDecoding>,
}

impl Scheduler {
    pub(super) fn new(cfg: &EngineConfig) -> Scheduler {
        // `EngineConfig::validate` keeps this far below u32::MAX.
        let blocks = u32::try_from(cfg.num_blocks()).unwrap_or(u32::MAX);
        Scheduler {
            cfg: cfg.clone(),
            pool: BlockPool::new(blocks),
            seqs: BTreeMap::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            spec: None,
        }
    }

    /// Decode steps verify drafts (`spec.rs`). Verifying K draft tokens is costed as
    /// one decode: decode is bound by reading the weights, which a few more tokens
    /// per request hardly change.
    pub(super) fn with_spec(mut self, spec: Option<SpecDecoding>) -> Scheduler {
        self.spec = spec;
        self
    }

    pub(super) fn add(&mut self, req: NewRequest) {
        let id = req.id;
        let seq = Seq {
            req,
            generated: 0,
            computed: 0,
            blocks: Vec::new(),
            registered: 0,
            cached_tokens: None,
        };
        self.seqs.insert(id, seq);
        self.waiting.push_back(id);
    }

    /// Forgets a request (its client went away) and frees its blocks.
    pub(super) fn cancel(&mut self, id: u64) {
        if let Some(seq) = self.seqs.remove(&id) {
            self.pool.release(&seq.blocks);
            self.running.retain(|&r| r != id);
            self.waiting.retain(|&r| r != id);
        }
    }

    /// Empty the prefix cache of blocks no request holds.
    pub(super) fn reset_prefix_cache(&mut self) -> usize {
        self.pool.reset_cache()
    }

    pub(super) fn has_work(&self) -> bool {
        !self.seqs.is_empty()
    }

    pub(super) fn num_running(&self) -> usize {
        self.running.len()
    }

    pub(super) fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    pub(super) fn kv_usage(&self) -> f64 {
        self.pool.usage()
    }

    /// Forms the next step: decodes, then unfinished prefills, then admissions.
    pub(super) fn schedule(&mut self) -> Step {
        let mut step = Step::default();
        let mut budget = self.cfg.max_num_batched_tokens;
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            let id = self.running[i];
            if !self.seqs[&id].is_decoding() {
                i += 1;
                continue;
            }
            if self.grow(id) {
                let ctx = self.seqs[&id].num_tokens();
                step.work.push((id, 1));
                step.decode_seqs += 1;
                step.decode_context_tokens += u64::from(ctx);
                budget -= 1;
                i += 1;
            } else {
                // Free blocks by preempting the latest admitted; it is never one already
                // in this step, since those come before index i. It may be `id` itself.
                self.preempt_last();
                step.preemptions += 1;
            }
        }
        for &id in &self.running {
            let seq = &self.seqs[&id];
            if budget == 0 {
                break;
            }
            if seq.is_decoding() || seq.computed == seq.num_tokens() {
                continue;
            }
            let n = (seq.num_tokens() - seq.computed).min(budget);
            step.work.push((id, n));
            step.prefill_tokens += u64::from(n);
            budget -= n;
        }
        // As vLLM: a step that had to preempt admits nobody, or the freed blocks would
        // go straight to a newcomer.
        while budget > 0
            && step.preemptions == 0
            && self.running.len() < self.cfg.max_num_seqs as usize
        {
            let Some(&id) = self.waiting.front() else {
                break;
            };
            let Some(cached) = self.admit(id, &mut step) else {
                break; // no room in the KV cache: later requests wait too (FIFO)
            };
            self.waiting.pop_front();
            self.running.push(id);
            let n = (self.seqs[&id].num_tokens() - cached).min(budget);
            step.work.push((id, n));
            step.prefill_tokens += u64::from(n);
            budget -= n;
        }
        step
    }

    /// Makes sure `id` has blocks for all its tokens; false if none is free.
    fn grow(&mut self, id: u64) -> bool {
        let bs = self.cfg.block_size;
        let seq = self.seqs.get_mut(&id).expect("running request");
        while (seq.blocks.len() as u64) * u64::from(bs) < u64::from(seq.num_tokens()) {
            match self.pool.allocate() {
                Some(b) => seq.blocks.push(b),
                None => return false,
            }
        }
        true
    }

    fn preempt_last(&mut self) {
        if let Some(id) = self.running.pop() {
            let seq = self.seqs.get_mut(&id).expect("running request");
            self.pool.release(&seq.blocks);
            seq.blocks.clear();
            seq.computed = 0;
            seq.registered = 0;
            self.waiting.push_front(id);
        }
    }

    /// Gives a waiting request its cached prefix and blocks for the rest of its tokens;
    /// returns the tokens found cached, or `None` if the blocks are not there.
    fn admit(&mut self, id: u64, step: &mut Step) -> Option<u32> {
        let bs = self.cfg.block_size;
        let seq = self.seqs.get_mut(&id).expect("waiting request");
        let num_tokens = seq.num_tokens();
        let mut hit = Vec::new();
        if self.cfg.prefix_caching {
            // At least the last token is computed, for its logits; blocks are whole, so
            // a fully cached prompt recomputes its last block (as vLLM does).
            let max_blocks = ((num_tokens - 1) / bs) as usize;
            let keys = &seq.req.block_keys[..seq.req.block_keys.len().min(max_blocks)];
            hit = self.pool.lookup(keys);
        }
        let total = num_tokens.div_ceil(bs) as usize;
        let fresh = total - hit.len();
        if fresh > self.pool.num_free() - self.pool.free_among(&hit) {
            return None;
        }
        for &b in &hit {
            self.pool.touch(b);
        }
        let cached = hit.len() as u32 * bs;
        seq.blocks = hit;
        seq.registered = seq.blocks.len();
        for _ in 0..fresh {
            let b = self.pool.allocate().expect("counted free blocks");
            seq.blocks.push(b);
        }
        seq.computed = cached;
        seq.cached_tokens.get_or_insert(cached);
        if self.cfg.prefix_caching {
            step.prefix_queries += u64::from(num_tokens);
            step.prefix_hits += u64::from(cached);
        }
        Some(cached)
    }

    /// Applies a step's work: caches newly full prompt blocks and samples a token for
    /// every request that caught up. Finished requests are removed.
    pub(super) fn finish(&mut self, step: &Step) -> Vec<Sampled> {
        let bs = self.cfg.block_size;
        let mut out = Vec::new();
        for &(id, n) in &step.work {
            let Some(seq) = self.seqs.get_mut(&id) else {
                continue;
            };
            let decoding = seq.is_decoding();
            seq.computed += n;
            if self.cfg.prefix_caching {
                let full = (seq.computed.min(seq.req.prompt_len) / bs) as usize;
                let full = full.min(seq.req.block_keys.len());
                for b in seq.registered..full {
                    self.pool.register(seq.blocks[b], seq.req.block_keys[b]);
                }
                seq.registered = seq.registered.max(full);
            }
            if seq.computed < seq.num_tokens() {
                continue; // a prefill chunk that did not reach the end
            }
            // The prefill's token comes without a draft (none was proposed yet).
            let draft = match self.spec {
                Some(sp) if decoding => {
                    Some((sp.tokens, sp.accepted(seq.req.spec_key, seq.generated)))
                }
                _ => None,
            };
            let accepted = draft.map_or(0, |(_, a)| a);
            let left = seq.req.output_tokens.saturating_sub(seq.generated);
            let new_tokens = (1 + accepted).min(left.max(1));
            seq.generated += new_tokens;
            // The verify pass computed the accepted tokens' KV too.
            seq.computed += new_tokens - 1;
            let finished = seq.generated >= seq.req.output_tokens;
            out.push(Sampled {
                id,
                generated: seq.generated,
                prompt_len: seq.req.prompt_len,
                cached_tokens: seq.cached_tokens.unwrap_or(0),
                finished,
                new_tokens,
                draft,
            });
            if finished {
                let blocks = std::mem::take(&mut seq.blocks);
                self.pool.release(&blocks);
                self.seqs.remove(&id);
                self.running.retain(|&r| r != id);
            }
        }
        out
    }
}
