//! Output tokens over time (a timeline of 10 ms bins kept beside the per-request facts)
//! and a run cut into fixed time slices (`--slice-s`): per slice, output throughput
//! with each event weighted by its tokens, and the latencies of the requests started
//! in it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::{SavedStats, Stats};
use super::summary::{RunData, Sample};

/// The timeline's resolution. A slice width must be a multiple of it, so slices add
/// whole bins and their throughput is exact.
pub const BIN_US: u64 = 10_000;

/// Bins per chunk (one minute): chunks are made only where events fell, so a time far
/// out (a hand-made record) costs one chunk, not a vector reaching it.
const CHUNK_BINS: u64 = 6_000;

/// More slices than this are not kept (the rest are counted in `dropped`).
pub const MAX_SLICES: usize = 10_000;

/// Output tokens of successful requests by when their events arrived: 10 ms bins of
/// f64, allocated a minute at a time where events fell (at most 800 bytes per second
/// of run, however many tokens it streamed).
#[derive(Clone, Debug, Default)]
pub struct TokenTimeline {
    chunks: BTreeMap<u64, Box<[f64]>>,
}

impl TokenTimeline {
    /// `tokens` output at `at_us` from the run's start.
    pub fn add(&mut self, at_us: u64, tokens: f64) {
        let bin = at_us / BIN_US;
        let chunk = self
            .chunks
            .entry(bin / CHUNK_BINS)
            .or_insert_with(|| vec![0.0; CHUNK_BINS as usize].into_boxed_slice());
        chunk[(bin % CHUNK_BINS) as usize] += tokens;
    }

    /// The tokens output in [from_us, to_us). A bin an edge cuts counts in proportion to
    /// its part inside (its tokens taken as spread evenly over its 10 ms).
    pub fn between(&self, from_us: u64, to_us: u64) -> f64 {
        if to_us <= from_us {
            return 0.0;
        }
        let (first, last) = (from_us / BIN_US, (to_us - 1) / BIN_US);
        let mut sum = 0.0;
        for (&c, bins) in self.chunks.range(first / CHUNK_BINS..=last / CHUNK_BINS) {
            let base = c * CHUNK_BINS;
            let lo = first.max(base);
            let hi = last.min(base + CHUNK_BINS - 1);
            for bin in lo..=hi {
                let tokens = bins[(bin - base) as usize];
                if tokens == 0.0 {
                    continue;
                }
                let (b0, b1) = (bin * BIN_US, (bin + 1) * BIN_US);
                let inside = to_us.min(b1) - from_us.max(b0);
                sum += tokens * inside as f64 / BIN_US as f64;
            }
        }
        sum
    }
}

/// One request's output tokens spread over its output events: the records keep each
/// event's time, not its token count, so every event carries tokens ÷ events.
pub fn add_events(timeline: &mut TokenTimeline, events: &[u64], output_tokens: u32) {
    if events.is_empty() {
        return;
    }
    let per_event = output_tokens as f64 / events.len() as f64;
    for &t in events {
        timeline.add(t, per_event);
    }
}

/// TTFT, TPOT and E2E (ms) of the successful requests among `samples`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latencies {
    pub ttft_ms: Option<Stats>,
    pub tpot_ms: Option<Stats>,
    pub e2e_ms: Option<Stats>,
    /// Time to first answer token, when some of the requests reasoned (the steady
    /// window keeps it; time slices do not).
    pub ttfa_ms: Option<Stats>,
}

impl Latencies {
    pub fn of<'a>(samples: impl Iterator<Item = &'a Sample>, pcts: &[f64]) -> Latencies {
        let (mut ttft, mut tpot, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
        let (mut ttfa, mut reasoned) = (Vec::new(), false);
        for s in samples.filter(|s| s.ok) {
            reasoned |= s.phase.reasoned;
            ttfa.extend(s.ttfa_ms());
            if let Some(f) = s.first {
                ttft.push(ms(f.saturating_sub(s.started)));
            }
            tpot.extend(s.tpot_ms());
            e2e.push(ms(s.ended.saturating_sub(s.started)));
        }
        Latencies {
            ttft_ms: Stats::compute(&mut ttft, pcts),
            tpot_ms: Stats::compute(&mut tpot, pcts),
            e2e_ms: Stats::compute(&mut e2e, pcts),
            ttfa_ms: if reasoned {
                Stats::compute(&mut ttfa, pcts)
            } else {
                None
            },
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// One time slice of a run: [start_s, end_s) from the run's start.
pub type Slice = super::steady::Span;

/// A run cut into slices of `slice_s` seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Slices {
    pub slice_s: f64,
    pub slices: Vec<Slice>,
    /// Slices past `MAX_SLICES`, not kept.
    pub dropped: u64,
}

impl Slices {
    /// The slice width in µs.
    pub fn slice_us(&self) -> u64 {
        (self.slice_s * 1e6).round() as u64
    }
}

/// Cut the run into slices of `slice_us` (a positive multiple of `BIN_US`) from its
/// start (time 0 of its clock) to its last request's end.
pub fn slice(data: &RunData, slice_us: u64, pcts: &[f64]) -> Slices {
    let slice_us = slice_us.max(BIN_US);
    let samples = data.samples();
    let end_us = samples.iter().map(|s| s.ended).max().unwrap_or(0);
    let count = end_us.div_ceil(slice_us).max(1);
    let kept = count.min(MAX_SLICES as u64) as usize;
    let mut started: Vec<Vec<&Sample>> = vec![Vec::new(); kept];
    let mut ended = vec![0u64; kept];
    for s in samples {
        let last = count as usize - 1;
        if let Some(v) = started.get_mut(((s.started / slice_us) as usize).min(last)) {
            v.push(s);
        }
        if s.ok
            && let Some(n) = ended.get_mut(((s.ended / slice_us) as usize).min(last))
        {
            *n += 1;
        }
    }
    let slices = started
        .into_iter()
        .zip(ended)
        .enumerate()
        .map(|(i, (reqs, done))| {
            let from = i as u64 * slice_us;
            let to = (from + slice_us).min(end_us.max(from + 1));
            let secs = (to - from) as f64 / 1e6;
            Slice {
                start_s: from as f64 / 1e6,
                end_s: to as f64 / 1e6,
                requests: reqs.len() as u64,
                succeeded: reqs.iter().filter(|s| s.ok).count() as u64,
                // Whole bins (no event comes after the run's end): exact.
                output_tok_s: data.token_timeline().between(from, from + slice_us) / secs,
                req_s: done as f64 / secs,
                latencies: Latencies::of(reqs.into_iter(), pcts),
            }
        })
        .collect();
    Slices {
        slice_s: slice_us as f64 / 1e6,
        slices,
        dropped: count - kept as u64,
    }
}

/// `slices` in results.json (inside the summary): the width, then one object a slice.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub(super) struct SlicesJson {
    slice_s: f64,
    #[serde(skip_serializing_if = "is_zero")]
    dropped: u64,
    slices: Vec<SliceJson>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct SliceJson {
    start_s: f64,
    end_s: f64,
    requests: u64,
    succeeded: u64,
    output_tok_s: f64,
    req_s: f64,
    ttft_ms: SavedStats,
    tpot_ms: SavedStats,
    e2e_ms: SavedStats,
}

pub(super) fn saved(stats: &Option<Stats>, pcts: &[f64]) -> SavedStats {
    SavedStats {
        stats: stats.clone(),
        percentiles: pcts.to_vec(),
    }
}

impl SlicesJson {
    pub(super) fn new(s: &Slices, pcts: &[f64]) -> SlicesJson {
        SlicesJson {
            slice_s: s.slice_s,
            dropped: s.dropped,
            slices: s
                .slices
                .iter()
                .map(|x| SliceJson {
                    start_s: x.start_s,
                    end_s: x.end_s,
                    requests: x.requests,
                    succeeded: x.succeeded,
                    output_tok_s: x.output_tok_s,
                    req_s: x.req_s,
                    ttft_ms: saved(&x.latencies.ttft_ms, pcts),
                    tpot_ms: saved(&x.latencies.tpot_ms, pcts),
                    e2e_ms: saved(&x.latencies.e2e_ms, pcts),
                })
                .collect(),
        }
    }

    pub(super) fn read(self) -> Slices {
        Slices {
            slice_s: self.slice_s,
            dropped: self.dropped,
            slices: self
                .slices
                .into_iter()
                .map(|x| Slice {
                    start_s: x.start_s,
                    end_s: x.end_s,
                    requests: x.requests,
                    succeeded: x.succeeded,
                    output_tok_s: x.output_tok_s,
                    req_s: x.req_s,
                    latencies: Latencies {
                        ttft_ms: x.ttft_ms.stats,
                        tpot_ms: x.tpot_ms.stats,
                        e2e_ms: x.e2e_ms.stats,
                        ttfa_ms: None,
                    },
                })
                .collect(),
        }
    }
}

/// slices.csv: one row per run and slice.
pub fn csv_rows(label: &str, s: &Slices) -> Vec<Vec<String>> {
    let p = |st: &Option<Stats>, q: f64| {
        st.as_ref()
            .and_then(|st| st.percentile(q))
            .map_or(String::new(), |v| format!("{v:.3}"))
    };
    s.slices
        .iter()
        .map(|x| {
            let l = &x.latencies;
            vec![
                label.to_string(),
                format!("{}", x.start_s),
                format!("{}", x.end_s),
                x.requests.to_string(),
                x.succeeded.to_string(),
                format!("{:.3}", x.output_tok_s),
                format!("{:.3}", x.req_s),
                p(&l.ttft_ms, 50.0),
                p(&l.ttft_ms, 90.0),
                p(&l.ttft_ms, 99.0),
                p(&l.tpot_ms, 50.0),
                p(&l.tpot_ms, 90.0),
                p(&l.tpot_ms, 99.0),
                p(&l.e2e_ms, 50.0),
                p(&l.e2e_ms, 90.0),
                p(&l.e2e_ms, 99.0),
            ]
        })
        .collect()
}

/// The header of slices.csv.
pub const CSV_HEADER: [&str; 16] = [
    "run",
    "start_s",
    "end_s",
    "requests",
    "succeeded",
    "output_tok_s",
    "req_s",
    "ttft_ms.p50",
    "ttft_ms.p90",
    "ttft_ms.p99",
    "tpot_ms.p50",
    "tpot_ms.p90",
    "tpot_ms.p99",
    "e2e_ms.p50",
    "e2e_ms.p90",
    "e2e_ms.p99",
];
