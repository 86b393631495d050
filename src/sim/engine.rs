//! Settings of the serving-engine model: a continuous-batching scheduler, a KV cache
//! of fixed-size blocks with a prefix cache, and a cost model giving each step's time.
//!
//! The defaults resemble Llama-3.1-8B-Instruct in bf16 on one H100 SXM 80 GB under
//! vLLM; each number says where it comes from. They are estimates from the hardware's
//! datasheet and the model's shape, not measurements: calibrate them against your own
//! server when absolute numbers matter.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Most requests running (admitted, holding KV blocks) at once. 256 was vLLM's
    /// default for years; recent vLLM allows up to 1024 on 80 GB GPUs.
    pub max_num_seqs: u32,
    /// Token budget of one step: prefill-chunk tokens plus one per decoding request.
    /// A prompt longer than what is left is prefilled over several steps (chunked
    /// prefill, as in vLLM v1). 8192 is vLLM v1's default for its OpenAI server on
    /// H100-class GPUs. Must be at least `max_num_seqs`, so every decode fits a step.
    pub max_num_batched_tokens: u32,
    /// KV cache size in tokens. Llama-3-8B stores 128 KiB per token (32 layers × 8 KV
    /// heads × 128 dims × 2 (K and V) × 2 bytes). At gpu_memory_utilization 0.9 vLLM
    /// has 72 GiB, less 15 GiB of weights and ~2 GiB of activations and CUDA graphs:
    /// ~55 GiB, so ~450k tokens.
    pub kv_capacity_tokens: u64,
    /// Tokens per KV block, also the prefix cache's unit: vLLM's default on CUDA.
    pub block_size: u32,
    /// Longest prompt + max_tokens accepted; longer requests get HTTP 400 as in vLLM.
    /// 131072 is Llama-3.1's context length.
    pub max_model_len: u32,
    /// Reuse cached KV blocks of identical prompt prefixes (vLLM's default since v1).
    pub prefix_caching: bool,
    /// Fixed cost of every step, ms: reading 16 GB of weights at ~80% of the H100's
    /// 3.35 TB/s takes ~6 ms, which is also the batch-1 decode time vLLM reaches.
    pub step_base_ms: f64,
    /// Cost per prefill token, ms: 2 × 8B = 16 GFLOP per token at ~50% of the H100's
    /// 989 bf16 TFLOP/s is ~0.033 ms (~30k prompt tokens/s).
    pub prefill_ms_per_token: f64,
    /// Cost per decoding request in a step, ms: the same 16 GFLOP per token at the
    /// lower efficiency of batched decode matrix products, plus sampling: ~0.03 ms.
    pub decode_ms_per_seq: f64,
    /// Attention's KV reads per 1000 context tokens of the decoding requests, ms:
    /// 1000 × 128 KiB = 131 MB at ~80% of 3.35 TB/s is ~0.05 ms.
    pub kv_read_ms_per_1k_tokens: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_num_seqs: 256,
            max_num_batched_tokens: 8192,
            kv_capacity_tokens: 450_000,
            block_size: 16,
            max_model_len: 131_072,
            prefix_caching: true,
            step_base_ms: 6.0,
            prefill_ms_per_token: 0.033,
            decode_ms_per_seq: 0.03,
            kv_read_ms_per_1k_tokens: 0.05,
        }
    }
}

/// 4M blocks: 67M tokens in blocks of 16, some 150 times an H100's KV cache.
const MAX_BLOCKS: u64 = 1 << 22;

impl EngineConfig {
    /// Whole KV blocks that fit the capacity.
    pub fn num_blocks(&self) -> u64 {
        self.kv_capacity_tokens / u64::from(self.block_size.max(1))
    }

    /// Checks that the engine can run every request it accepts; the message names the
    /// settings by their field names.
    pub fn validate(&self) -> Result<(), String> {
        self.check(|field| field.to_string())
    }

    /// [`Self::validate`] with `name` rendering a field's name (e.g. as a flag).
    pub(crate) fn check(&self, name: impl Fn(&'static str) -> String) -> Result<(), String> {
        let positive = [
            ("max_num_seqs", u64::from(self.max_num_seqs)),
            (
                "max_num_batched_tokens",
                u64::from(self.max_num_batched_tokens),
            ),
            ("block_size", u64::from(self.block_size)),
            ("max_model_len", u64::from(self.max_model_len)),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(format!("{}: expected at least 1, got 0", name(field)));
            }
        }
        let ms = [
            ("step_base_ms", self.step_base_ms),
            ("prefill_ms_per_token", self.prefill_ms_per_token),
            ("decode_ms_per_seq", self.decode_ms_per_seq),
            ("kv_read_ms_per_1k_tokens", self.kv_read_ms_per_1k_tokens),
        ];
        for (field, v) in ms {
            if !(v.is_finite() && v >= 0.0) {
                let f = name(field);
                return Err(format!("{f}: expected a finite number ≥ 0 (ms), got {v}"));
            }
        }
        if self.max_num_batched_tokens < self.max_num_seqs {
            return Err(format!(
                "{} ({}) must be at least {} ({}), so every running request can decode in each step",
                name("max_num_batched_tokens"),
                self.max_num_batched_tokens,
                name("max_num_seqs"),
                self.max_num_seqs
            ));
        }
        // The block table is allocated up front: keep it to a few hundred MB.
        if self.num_blocks() > MAX_BLOCKS {
            return Err(format!(
                "{} ({}) is more than {MAX_BLOCKS} blocks of {} tokens",
                name("kv_capacity_tokens"),
                self.kv_capacity_tokens,
                self.block_size
            ));
        }
        // vLLM refuses to start when one request of max_model_len cannot fit either.
        let needed = u64::from(self.max_model_len).div_ceil(u64::from(self.block_size));
        if self.num_blocks() < needed {
            return Err(format!(
                "{} ({}) must hold one request of {} ({} tokens in blocks of {})",
                name("kv_capacity_tokens"),
                self.kv_capacity_tokens,
                name("max_model_len"),
                self.max_model_len,
                self.block_size
            ));
        }
        Ok(())
    }
}
