//! One workload split across client processes or machines (`--shard I/N`). Every
//! shard generates the whole workload exactly as one process would (same seed, same
//! requests, same send times) and sends only its part, so the union of the shards'
//! records is the one-process run, request for request.

use std::sync::Arc;

/// `--shard I/N`: this process sends request i of the workload iff i mod N == I.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl Shard {
    /// No sharding: one process sends everything.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    pub fn is_whole(self) -> bool {
        self.count == 1
    }

    pub fn keeps(self, i: u64) -> bool {
        i % self.count as u64 == self.index as u64
    }

    /// How many of requests `0..n` this shard keeps.
    pub fn len_of(self, n: usize) -> usize {
        let (n, c, i) = (n as u64, self.count as u64, self.index as u64);
        (n / c + u64::from(n % c > i)) as usize
    }

    /// This shard's part of a limit on requests in flight that describes the whole run
    /// (`--concurrency`, `--max-concurrency`): C/N, plus one for the first C mod N
    /// shards, so the parts add up to C; at least 1, so no shard is left unable to send.
    pub fn part_of(self, c: usize) -> usize {
        let (n, i) = (self.count as usize, self.index as usize);
        (c / n + usize::from(i < c % n)).max(1)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected I/N with 0 ≤ I < N, e.g. 0/4 (shard 0 of 4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which requests of the workload (by index in the unsharded workload) this process
/// sends.
#[derive(Clone, Debug, PartialEq)]
pub enum Pick {
    /// Request i iff i mod N == I.
    Every(Shard),
    /// `--sessions`: a later turn needs its parent's answer, so a conversation stays on
    /// one shard: request i iff the index of its conversation's first turn mod N == I.
    ByRoot { shard: Shard, roots: Arc<Vec<u32>> },
}

impl Default for Pick {
    fn default() -> Self {
        Pick::Every(Shard::WHOLE)
    }
}

impl Pick {
    pub fn shard(&self) -> Shard {
        match self {
            Pick::Every(s) | Pick::ByRoot { shard: s, .. } => *s,
        }
    }

    pub fn keeps(&self, i: u64) -> bool {
        match self {
            Pick::Every(s) => s.keeps(i),
            // A request past the table (none should be) is its own root.
            Pick::ByRoot { shard, roots } => {
                let root = usize::try_from(i)
                    .ok()
                    .and_then(|i| roots.get(i))
                    .map_or(i, |&r| r as u64);
                shard.keeps(root)
            }
        }
    }

    /// How many of requests `0..n` are kept.
    pub fn len_of(&self, n: usize) -> usize {
        match self {
            Pick::Every(s) => s.len_of(n),
            Pick::ByRoot { .. } => (0..n as u64).filter(|&i| self.keeps(i)).count(),
        }
    }

    /// The kept requests' indexes, in order.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        (0u64..).filter(move |&i| self.keeps(i))
    }
}

/// The first turn of each request's conversation, from each request's parent turn (an
/// earlier request, as `link_parents` gives them).
pub fn conversation_roots(parents: &[Option<u32>]) -> Vec<u32> {
    let mut roots: Vec<u32> = Vec::with_capacity(parents.len());
    for (i, p) in parents.iter().enumerate() {
        let root = match p {
            Some(p) => roots.get(*p as usize).copied().unwrap_or(*p),
            None => i as u32,
        };
        roots.push(root);
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::document::ShardDoc;

    #[test]
    fn shard_flag_parses_i_of_n() {
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard::WHOLE);
        assert_eq!(
            "3/4".parse::<Shard>().unwrap(),
            Shard { index: 3, count: 4 }
        );
        assert_eq!("3/4".parse::<Shard>().unwrap().to_string(), "3/4");
        for bad in [
            "", "1", "4/4", "5/4", "0/0", "-1/2", "a/2", "1/b", "1/2/3", "1.0/2",
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("expected I/N with 0 ≤ I < N"), "{bad}: {e}");
        }
        // As saved in results.json (`ShardDoc`), and read back only when it is a shard.
        let s = Shard { index: 1, count: 3 };
        let saved = serde_json::to_value(ShardDoc::from(s)).unwrap();
        assert_eq!(saved, serde_json::json!({"index": 1, "count": 3}));
        let read = |v| serde_json::from_value::<ShardDoc>(v).unwrap().shard();
        assert_eq!(read(saved), Some(s));
        assert_eq!(read(serde_json::json!({"index": 3, "count": 3})), None);
    }

    #[test]
    fn shards_take_every_nth_request_and_together_all() {
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        for n in 0..20usize {
            let total: usize = shards.iter().map(|s| s.len_of(n)).sum();
            assert_eq!(total, n);
            for s in &shards {
                let kept: Vec<u64> = Pick::Every(*s)
                    .ids()
                    .take_while(|&i| i < n as u64)
                    .collect();
                assert_eq!(kept.len(), s.len_of(n));
                assert!(kept.iter().all(|i| i % 3 == s.index as u64));
            }
        }
        assert_eq!(Shard::WHOLE.len_of(7), 7);
        assert!((0..10).all(|i| Shard::WHOLE.keeps(i)));
    }

    #[test]
    fn concurrency_is_split_so_the_parts_add_up() {
        let parts = |c: usize, n: u32| -> Vec<usize> {
            (0..n)
                .map(|index| Shard { index, count: n }.part_of(c))
                .collect()
        };
        assert_eq!(parts(10, 1), [10]);
        assert_eq!(parts(10, 2), [5, 5]);
        assert_eq!(parts(10, 3), [4, 3, 3]);
        assert_eq!(parts(7, 4), [2, 2, 2, 1]);
        // Fewer slots than shards: every shard still sends, one at a time.
        assert_eq!(parts(2, 4), [1, 1, 1, 1]);
        for c in 4..50 {
            for n in 1..=4 {
                assert_eq!(parts(c, n).iter().sum::<usize>(), c, "c={c} n={n}");
            }
        }
    }

    #[test]
    fn sessions_are_split_by_conversation() {
        // Conversations: 0 → 2 → 5, 1 → 3, 4, 6 → 7 (parents are earlier requests).
        let parents = [None, None, Some(0), Some(1), None, Some(2), None, Some(6)];
        let roots = Arc::new(conversation_roots(&parents));
        assert_eq!(*roots, [0, 1, 0, 1, 4, 0, 6, 6]);
        let kept = |index: u32| -> Vec<u64> {
            let pick = Pick::ByRoot {
                shard: Shard { index, count: 2 },
                roots: roots.clone(),
            };
            (0..8).filter(|&i| pick.keeps(i)).collect()
        };
        // Roots 0, 4, 6 are even; root 1 is odd.
        assert_eq!(kept(0), [0, 2, 4, 5, 6, 7]);
        assert_eq!(kept(1), [1, 3]);
        let pick = Pick::ByRoot {
            shard: Shard { index: 1, count: 2 },
            roots,
        };
        assert_eq!(pick.len_of(8), 2);
        assert_eq!(pick.ids().take(2).collect::<Vec<_>>(), [1, 3]);
    }
}
