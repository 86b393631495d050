//! KV cache blocks and the prefix cache over them, modelled on vLLM v1's block pool:
//! blocks are reference-counted; a full prompt block is cached under a hash chain of
//! its tokens; every unreferenced block, cached or not, waits in one queue in the
//! order it was freed, and allocation takes the front, evicting its cache entry (LRU).

use std::collections::{BTreeMap, HashMap};

pub(super) type BlockId = u32;

/// Keys of the full blocks of `tokens`: block i's key hashes block i−1's key with
/// block i's tokens, so equal keys mean equal whole prefixes.
pub(super) fn block_hashes(tokens: &[u32], block_size: usize) -> Vec<u64> {
    let mut prev = 0u64;
    tokens
        .chunks_exact(block_size.max(1))
        .map(|block| {
            // FNV-1a seeded by the parent key: stable across Rust versions.
            let mut h = 0xcbf2_9ce4_8422_2325 ^ prev.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for t in block {
                for b in t.to_le_bytes() {
                    h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
            prev = h;
            h
        })
        .collect()
}

pub(super) struct BlockPool {
    refs: Vec<u32>,
    /// The cache key a block is registered under, if any.
    key: Vec<Option<u64>>,
    cached: HashMap<u64, BlockId>,
    /// Unreferenced blocks by the tick they were freed at: the first is evicted first.
    free: BTreeMap<u64, BlockId>,
    /// Each free block's tick in `free`.
    free_tick: Vec<u64>,
    tick: u64,
}

impl BlockPool {
    pub(super) fn new(num_blocks: u32) -> BlockPool {
        let n = num_blocks as usize;
        BlockPool {
            refs: vec![0; n],
            key: vec![None; n],
            cached: HashMap::new(),
            free: (0..num_blocks).map(|b| (u64::from(b), b)).collect(),
            free_tick: (0..u64::from(num_blocks)).collect(),
            tick: u64::from(num_blocks),
        }
    }

    pub(super) fn num_free(&self) -> usize {
        self.free.len()
    }

    /// Share of blocks held by requests (cached but unreferenced blocks are free), 0..1.
    pub(super) fn usage(&self) -> f64 {
        if self.refs.is_empty() {
            return 0.0;
        }
        1.0 - self.free.len() as f64 / self.refs.len() as f64
    }

    /// The cached blocks of the longest prefix of `keys` (no reference taken).
    pub(super) fn lookup(&self, keys: &[u64]) -> Vec<BlockId> {
        keys.iter()
            .map_while(|k| self.cached.get(k).copied())
            .collect()
    }

    /// Blocks that taking a reference on `blocks` would remove from the free queue.
    pub(super) fn free_among(&self, blocks: &[BlockId]) -> usize {
        blocks
            .iter()
            .filter(|&&b| self.refs[b as usize] == 0)
            .count()
    }

    /// Takes a reference on a block found by [`Self::lookup`].
    pub(super) fn touch(&mut self, b: BlockId) {
        if self.refs[b as usize] == 0 {
            self.free.remove(&self.free_tick[b as usize]);
        }
        self.refs[b as usize] += 1;
    }

    /// A fresh block with one reference, evicting the least recently freed one's cache
    /// entry; `None` when every block is referenced.
    pub(super) fn allocate(&mut self) -> Option<BlockId> {
        let (_, b) = self.free.pop_first()?;
        if let Some(key) = self.key[b as usize].take() {
            self.cached.remove(&key);
        }
        self.refs[b as usize] = 1;
        Some(b)
    }

    /// Drops one reference on each block, last block first, so that a request's tail
    /// blocks (the least likely to be shared) are evicted before its head.
    pub(super) fn release(&mut self, blocks: &[BlockId]) {
        for &b in blocks.iter().rev() {
            let r = &mut self.refs[b as usize];
            *r -= 1;
            if *r == 0 {
                self.free.insert(self.tick, b);
                self.free_tick[b as usize] = self.tick;
                self.tick += 1;
            }
        }
    }

    /// Forgets every cached block no request holds (vLLM's `reset_prefix_cache`); blocks
    /// in use keep their entries. Returns how many were dropped.
    pub(super) fn reset_cache(&mut self) -> usize {
        let mut dropped = 0;
        for &b in self.free.values() {
            if let Some(key) = self.key[b as usize].take() {
                self.cached.remove(&key);
                dropped += 1;
            }
        }
        dropped
    }

    /// Caches a block whose tokens are now computed. If another block already holds the
    /// same key (two requests computed the same prefix at once), that one stays cached.
    pub(super) fn register(&mut self, b: BlockId, key: u64) {
        if self.key[b as usize].is_none() && !self.cached.contains_key(&key) {
            self.cached.insert(key, b);
            self.key[b as usize] = Some(key);
        }
    }
}
