//! The data every chart of the HTML report is drawn from, computed here so the page
//! ships a few hundred points per curve instead of every sample, and so the numbers
//! can be checked on hand-computed examples. Times in records are µs from the run's
//! start; charts use seconds (time axes) and milliseconds (latencies).

use super::document::{RunMode, RunParams};
use super::rounds::level_of;
use crate::metrics::server_saved::{Series as MetricSeries, ServerMetrics};
use crate::metrics::stats::Counts;
use crate::metrics::summary::Sample;
use crate::metrics::{RunData, Stats, Summary};

/// Points of a curve, (x, y).
pub type Points = Vec<(f64, f64)>;

/// A curve: its name (legend) and points, in drawing order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// At most this many points per CDF curve (the exact samples when there are fewer).
pub const CDF_POINTS: usize = 249;

/// Probabilities (0..=1) a CDF of `n` samples is drawn at: every sample when they are
/// few (i/(n−1): the quantile function then returns the samples themselves), else 201
/// evenly spaced plus 48 more in the top 1%, where tail latency lives (multiples of
/// 1/5000, so no two are almost equal).
pub fn cdf_probabilities(n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![1.0],
        n if n <= CDF_POINTS => (0..n).map(|i| i as f64 / (n - 1) as f64).collect(),
        _ => (0..=5000u32)
            .filter(|k| k % 25 == 0 || *k >= 4950)
            .map(|k| k as f64 / 5000.0)
            .collect(),
    }
}

/// CDF points (value, probability) of `values`, by the same quantile function as the
/// summary's percentiles (numpy's linear interpolation). Sorts `values`.
pub fn cdf(values: &mut [f64]) -> Vec<(f64, f64)> {
    let probs = cdf_probabilities(values.len());
    let pcts: Vec<f64> = probs.iter().map(|p| p * 100.0).collect();
    match Stats::compute(values, &pcts) {
        Some(s) => s.percentiles.iter().map(|&(p, v)| (v, p / 100.0)).collect(),
        None => Vec::new(),
    }
}

/// The same from samples counted by value, each divided by `unit` (1000: µs → ms).
pub fn cdf_counts(counts: &Counts, unit: f64) -> Vec<(f64, f64)> {
    let probs = cdf_probabilities(counts.len() as usize);
    let pcts: Vec<f64> = probs.iter().map(|p| p * 100.0).collect();
    match Stats::from_counts(counts, unit, &pcts) {
        Some(s) => s.percentiles.iter().map(|&(p, v)| (v, p / 100.0)).collect(),
        None => Vec::new(),
    }
}

/// Per-request latencies of the successful requests, in ms, by the metrics spec's
/// formulas (the same as the summary's: a test checks they agree).
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    pub ttft: Vec<f64>,
    pub tpot: Vec<f64>,
    pub e2e: Vec<f64>,
}

pub fn latencies(samples: &[Sample]) -> Latencies {
    let ms = |us: u64| us as f64 / 1000.0;
    let mut l = Latencies::default();
    for s in samples.iter().filter(|s| s.ok) {
        if let Some(f) = s.first {
            l.ttft.push(ms(f.saturating_sub(s.started)));
        }
        l.e2e.push(ms(s.ended.saturating_sub(s.started)));
        if let Some(t) = s.tpot_ms() {
            l.tpot.push(t);
        }
    }
    l
}

/// The four CDFs of one run: TTFT, TPOT, E2E and ITL.
#[derive(Clone, Debug, Default)]
pub struct RunCdfs {
    pub ttft: Vec<(f64, f64)>,
    pub tpot: Vec<(f64, f64)>,
    pub e2e: Vec<(f64, f64)>,
    pub itl: Vec<(f64, f64)>,
}

pub fn run_cdfs(data: &RunData) -> RunCdfs {
    let mut l = latencies(data.samples());
    RunCdfs {
        ttft: cdf(&mut l.ttft),
        tpot: cdf(&mut l.tpot),
        e2e: cdf(&mut l.e2e),
        itl: cdf_counts(data.itl_us(), 1000.0),
    }
}

// ----- load curves -----

/// What a sweep's runs differ in, from a run's mode and params.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadAxis {
    pub label: &'static str,
    /// Lower values mean more load (a trace's time scale): drawn right to left.
    pub reversed: bool,
}

/// The load a run was made at, by its mode: `None` when the mode has no load level
/// (throughput) or the level is not a number (rate `inf`).
pub fn load_level(mode: &RunMode, params: &RunParams) -> Option<(LoadAxis, f64)> {
    let axis = |label, reversed| LoadAxis { label, reversed };
    let n = |v: Option<usize>| v.map(|v| v as f64);
    let (a, x) = match mode {
        RunMode::Batch => (
            axis("batch size (requests sent at once)", false),
            n(params.batch_size),
        ),
        RunMode::Concurrency | RunMode::DualRound => (
            axis("concurrency (requests in flight)", false),
            n(params.concurrency),
        ),
        RunMode::Rate => (axis("request rate (req/s)", false), params.rate.flatten()),
        RunMode::Trace => (
            axis("trace time scale (× its duration; more load →)", true),
            params.time_scale,
        ),
        _ => return None,
    };
    Some((a, x?))
}

/// Runs of one mode at several load levels; one group per round for dual-round runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub mode: RunMode,
    pub axis: LoadAxis,
    /// (group name, [(load level, run index)] by level).
    pub groups: Vec<(String, Vec<(f64, usize)>)>,
    /// Labels of the mode's runs that have no numeric level (rate `inf`).
    pub left_out: Vec<String>,
}

/// One run's place in a sweep.
struct Level {
    mode: RunMode,
    level: Option<(LoadAxis, f64)>,
    /// The curve it is drawn on: its round for dual-round runs, else its mode.
    group: String,
    label: String,
}

/// The sweeps among `runs` (mode, params, label): modes with at least two levels.
pub fn sweeps<'a>(
    runs: impl IntoIterator<Item = (&'a RunMode, &'a RunParams, &'a str)>,
) -> Vec<Sweep> {
    let levels: Vec<Level> = runs
        .into_iter()
        .map(|(mode, params, label)| Level {
            mode: mode.clone(),
            level: load_level(mode, params),
            group: match level_of(mode, params) {
                Some((_, round)) => format!("round {round}"),
                None => mode.to_string(),
            },
            label: label.to_string(),
        })
        .collect();
    let mut modes: Vec<&RunMode> = Vec::new();
    for l in &levels {
        if !modes.contains(&&l.mode) {
            modes.push(&l.mode);
        }
    }
    modes
        .into_iter()
        .filter_map(|mode| sweep_of(mode, &levels))
        .collect()
}

/// The sweep of one mode, when its runs span at least two load levels.
fn sweep_of(mode: &RunMode, levels: &[Level]) -> Option<Sweep> {
    let mut groups: Vec<(String, Vec<(f64, usize)>)> = Vec::new();
    let mut left_out = Vec::new();
    let mut axis = None;
    for (i, l) in levels.iter().enumerate().filter(|(_, l)| l.mode == *mode) {
        let Some((a, x)) = &l.level else {
            left_out.push(l.label.clone());
            continue;
        };
        axis.get_or_insert(a.clone());
        match groups.iter_mut().find(|(g, _)| *g == l.group) {
            Some((_, pts)) => pts.push((*x, i)),
            None => groups.push((l.group.clone(), vec![(*x, i)])),
        }
    }
    let axis = axis?;
    for (_, pts) in &mut groups {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let distinct =
        |pts: &Vec<(f64, usize)>| pts.windows(2).filter(|w| w[0].0 != w[1].0).count() + 1;
    groups
        .iter()
        .any(|(_, pts)| distinct(pts) >= 2)
        .then(|| Sweep {
            mode: mode.clone(),
            axis,
            groups,
            left_out,
        })
}

/// One curve per sweep group: `metric` of each run against its load level (runs
/// without the metric are skipped).
pub fn load_curve(
    sweep: &Sweep,
    summaries: &[&Summary],
    name: &str,
    metric: impl Fn(&Summary) -> Option<f64>,
) -> Vec<Series> {
    sweep
        .groups
        .iter()
        .map(|(group, pts)| Series {
            name: series_name(sweep, group, name),
            points: pts
                .iter()
                .filter_map(|&(x, i)| Some((x, metric(summaries[i])?)))
                .collect(),
        })
        .collect()
}

/// `metric` against output throughput, in load order (the throughput–latency curve).
pub fn latency_vs_throughput(
    sweep: &Sweep,
    summaries: &[&Summary],
    name: &str,
    metric: impl Fn(&Summary) -> Option<f64>,
) -> Vec<Series> {
    sweep
        .groups
        .iter()
        .map(|(group, pts)| Series {
            name: series_name(sweep, group, name),
            points: pts
                .iter()
                .filter_map(|&(_, i)| Some((summaries[i].output_tok_s, metric(summaries[i])?)))
                .collect(),
        })
        .collect()
}

fn series_name(sweep: &Sweep, group: &str, name: &str) -> String {
    if sweep.groups.len() > 1 {
        format!("{name} · {group}")
    } else {
        name.to_string()
    }
}

// ----- timelines -----

/// One request on the timeline, in seconds from the run's start.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// When the schedule wanted it sent (open loop).
    pub scheduled: Option<f64>,
    /// It waited in the client (a --max-concurrency slot, a parent turn) from its
    /// scheduled time.
    pub queued: bool,
    pub started: f64,
    pub first: Option<f64>,
    pub ended: f64,
    pub ok: bool,
}

/// The requests drawn on a run's timeline, by start time.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub bars: Vec<Bar>,
    /// Requests in the run.
    pub total: usize,
    /// Every `stride`-th request (by start time) is drawn; 1 = all.
    pub stride: usize,
}

/// At most `max_bars` requests, evenly spread over the run's requests by start order,
/// so a dense stretch stays dense and every part of the run is represented.
pub fn timeline(samples: &[Sample], max_bars: usize) -> Timeline {
    let s = |us: u64| us as f64 / 1e6;
    let mut order: Vec<&Sample> = samples.iter().collect();
    order.sort_by_key(|x| (x.started, x.ended));
    let stride = order.len().div_ceil(max_bars.max(1)).max(1);
    let bars = order
        .iter()
        .step_by(stride)
        .map(|x| Bar {
            scheduled: x.scheduled.map(s),
            queued: x.queue_wait.is_some_and(|w| w > 0),
            started: s(x.started),
            first: x.first.map(s),
            ended: s(x.ended),
            ok: x.ok,
        })
        .collect();
    Timeline {
        bars,
        total: samples.len(),
        stride,
    }
}

/// A step function: (time in µs, value from then on).
pub type Steps = Vec<(u64, u64)>;

/// TTFT and E2E (ms) of the drawn successful requests against their start time (s):
/// how latency moved during the run.
pub fn latency_over_time(t: &Timeline) -> (Points, Points) {
    let ms = |a: f64, b: f64| ((b - a) * 1e6).round() / 1e3;
    let ok = t.bars.iter().filter(|b| b.ok);
    let ttft = ok
        .clone()
        .filter_map(|b| Some((b.started, ms(b.started, b.first?))))
        .collect();
    let e2e = ok.map(|b| (b.started, ms(b.started, b.ended))).collect();
    (ttft, e2e)
}

/// How many intervals [start, end) are open over time: (time, count from then on),
/// one point per time the count changes. Ends are counted before starts at equal
/// times (half-open intervals), as the summary's concurrency is.
pub fn occupancy(intervals: impl IntoIterator<Item = (u64, u64)>) -> Steps {
    let mut ev: Vec<(u64, i64)> = Vec::new();
    for (a, b) in intervals {
        ev.push((a, 1));
        ev.push((b, -1));
    }
    ev.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut cur = 0i64;
    let mut i = 0;
    while i < ev.len() {
        let t = ev[i].0;
        while i < ev.len() && ev[i].0 == t {
            cur += ev[i].1;
            i += 1;
        }
        let n = cur.max(0) as u64;
        if out.last().is_none_or(|&(_, last)| last != n) {
            out.push((t, n));
        }
    }
    out
}

/// Requests in flight ([started, ended)) and waiting for their first output event
/// ([started, first event or end)).
pub fn in_flight_and_queued(samples: &[Sample]) -> (Steps, Steps) {
    let flight = occupancy(samples.iter().map(|s| (s.started, s.ended)));
    let queued = occupancy(
        samples
            .iter()
            .map(|s| (s.started, s.first.unwrap_or(s.ended))),
    );
    (flight, queued)
}

/// A step function (time µs, value from then on) as at most `max_points` steps in
/// seconds: exact when it has no more, else the largest value within each of
/// `max_points` equal stretches of time, so peaks survive. Ends with the last value at
/// the last time.
pub fn downsample_steps(steps: &[(u64, u64)], max_points: usize) -> Vec<(f64, f64)> {
    let s = |us: u64| us as f64 / 1e6;
    if steps.len() <= max_points.max(2) {
        return steps.iter().map(|&(t, n)| (s(t), n as f64)).collect();
    }
    let (t0, t1) = (steps[0].0, steps[steps.len() - 1].0);
    let buckets = max_points.max(2) - 1;
    let width = (t1 - t0) as f64 / buckets as f64;
    let mut out = Vec::with_capacity(buckets + 1);
    let mut j = 0;
    let mut current = 0u64;
    for b in 0..buckets {
        let start = t0 as f64 + b as f64 * width;
        let end = t0 as f64 + (b + 1) as f64 * width;
        // The value in effect at the bucket's start, then every step inside it.
        while j < steps.len() && (steps[j].0 as f64) <= start {
            current = steps[j].1;
            j += 1;
        }
        let mut max = current;
        while j < steps.len() && (steps[j].0 as f64) < end {
            current = steps[j].1;
            max = max.max(current);
            j += 1;
        }
        out.push((start / 1e6, max as f64));
    }
    out.push((s(t1), steps[steps.len() - 1].1 as f64));
    out
}

/// Schedule lag per open-loop request: (scheduled time in s, lag in ms), lag being
/// started − scheduled − queue wait (the summary's formula). With more than
/// `max_points` requests, the most delayed request of each of `max_points` equal
/// stretches of schedule time is kept, so the worst lag always shows. The flag says
/// whether points were left out.
pub fn schedule_lag(samples: &[Sample], max_points: usize) -> (Vec<(f64, f64)>, bool) {
    let mut pts: Vec<(u64, u64)> = samples
        .iter()
        .filter_map(|s| {
            let at = s.scheduled?;
            let lag = s
                .started
                .saturating_sub(at)
                .saturating_sub(s.queue_wait.unwrap_or(0));
            Some((at, lag))
        })
        .collect();
    pts.sort_unstable();
    let conv = |(t, lag): (u64, u64)| (t as f64 / 1e6, lag as f64 / 1000.0);
    let max_points = max_points.max(1);
    if pts.len() <= max_points {
        return (pts.into_iter().map(conv).collect(), false);
    }
    let (t0, t1) = (pts[0].0, pts[pts.len() - 1].0);
    let span = (t1 - t0).max(1) as f64;
    let mut best: Vec<Option<(u64, u64)>> = vec![None; max_points];
    for &(t, lag) in &pts {
        let b = (((t - t0) as f64 / span) * max_points as f64) as usize;
        let slot = &mut best[b.min(max_points - 1)];
        if slot.is_none_or(|(_, l)| lag > l) {
            *slot = Some((t, lag));
        }
    }
    (best.into_iter().flatten().map(conv).collect(), true)
}

/// Gauge series of a saved `server_metrics` object that carry timed samples:
/// (series key, [(seconds since the scrape before the run, value)]).
pub fn gauge_samples(server_metrics: &ServerMetrics) -> Vec<(String, Vec<(f64, f64)>)> {
    server_metrics
        .series
        .iter()
        .filter_map(|(k, v)| {
            let MetricSeries::Gauge(g) = v else {
                return None;
            };
            let pts: Vec<(f64, f64)> = g
                .samples
                .iter()
                .filter_map(|&(t, v)| Some((t, v?)))
                .collect();
            (!pts.is_empty()).then(|| (k.clone(), pts))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::summarize;
    use crate::record::TokenSource;
    use serde_json::{Value, json};

    /// (mode, params, label) as `sweeps` takes them.
    fn typed<'a>(
        runs: &'a [(&str, RunParams, &'a str)],
    ) -> Vec<(&'a RunMode, &'a RunParams, &'a str)> {
        let modes: &'a [RunMode] = Box::leak(runs.iter().map(|r| RunMode::parse(r.0)).collect());
        modes
            .iter()
            .zip(runs)
            .map(|(m, (_, p, l))| (m, p, *l))
            .collect()
    }

    fn sample(started: u64, first: Option<u64>, ended: u64) -> Sample {
        Sample {
            scheduled: None,
            queue_wait: None,
            started,
            first,
            last: first.map(|f| f.max(ended.saturating_sub(1))),
            ended,
            events: 2,
            input_tokens: 1,
            output_tokens: 2,
            text_tokens: None,
            prompt_tokens: None,
            cached_tokens: None,
            source: TokenSource::Usage,
            ok: true,
            retries: 0,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn cdf_of_few_samples_is_the_samples() {
        // Sorted 1, 2, 4, 8: quantile i/3 is the i-th sample.
        let mut v = vec![8.0, 1.0, 4.0, 2.0];
        let pts = cdf(&mut v);
        let want = [(1.0, 0.0), (2.0, 1.0 / 3.0), (4.0, 2.0 / 3.0), (8.0, 1.0)];
        assert_eq!(pts.len(), 4);
        for (p, w) in pts.iter().zip(want) {
            assert!(close(p.0, w.0) && close(p.1, w.1), "{pts:?}");
        }
        assert_eq!(cdf(&mut [5.0]), vec![(5.0, 1.0)]);
        assert!(cdf(&mut []).is_empty());
    }

    #[test]
    fn cdf_of_many_samples_is_bounded_and_exact_on_a_line() {
        // 0, 1, ..., 10000: the quantile at p is 10000 p exactly.
        let mut v: Vec<f64> = (0..=10_000).rev().map(f64::from).collect();
        let pts = cdf(&mut v);
        assert_eq!(pts.len(), CDF_POINTS);
        assert_eq!(pts[0], (0.0, 0.0));
        assert_eq!(*pts.last().unwrap(), (10_000.0, 1.0));
        for &(x, p) in &pts {
            assert!((x - 10_000.0 * p).abs() < 1e-6, "({x}, {p})");
        }
        // 49 of the points lie strictly inside the top 1 %, 0.0002 apart.
        assert_eq!(pts.iter().filter(|p| p.1 > 0.99 && p.1 < 1.0).count(), 49);
        assert!(pts.windows(2).all(|w| w[0].1 < w[1].1), "increasing");
    }

    #[test]
    fn cdf_from_counts_equals_cdf_from_samples() {
        let gaps = [5_000u32, 5_000, 7_000, 10_000, 5_000, 20_000];
        let mut counts = Counts::default();
        gaps.iter().for_each(|&g| counts.add(g));
        let mut ms: Vec<f64> = gaps.iter().map(|&g| g as f64 / 1000.0).collect();
        assert_eq!(cdf_counts(&counts, 1000.0), cdf(&mut ms));
        // Sorted 5, 5, 5, 7, 10, 20 ms at 0, 0.2, ..., 1.
        assert_eq!(cdf_counts(&counts, 1000.0)[3], (7.0, 0.6));
    }

    #[test]
    fn run_cdfs_agree_with_the_summary() {
        let mut d = RunData::default();
        for (i, (first, end)) in [(100, 300), (150, 160), (20, 990), (500, 501)]
            .into_iter()
            .enumerate()
        {
            let base = i as u64 * 10_000;
            d.push(&crate::record::RequestRecord {
                id: i as u64,
                ..crate::record::RequestRecord::ok_for_test(
                    "r",
                    base,
                    vec![base + first * 1000, base + (first + 5) * 1000],
                    base + end * 1000,
                    1,
                    3,
                )
            });
        }
        let s = summarize(&d, &[]);
        let c = run_cdfs(&d);
        let at =
            |pts: &[(f64, f64)], p: f64| pts.iter().find(|q| close(q.1, p)).map(|q| q.0).unwrap();
        assert_eq!(at(&c.ttft, 0.0), s.ttft_ms.as_ref().unwrap().min);
        assert_eq!(at(&c.ttft, 1.0), s.ttft_ms.as_ref().unwrap().max);
        assert_eq!(at(&c.e2e, 1.0), s.e2e_ms.as_ref().unwrap().max);
        assert_eq!(at(&c.tpot, 0.0), s.tpot_ms.as_ref().unwrap().min);
        // TPOT = 5 ms / (3 − 1) for every request; ITL is 5 ms per gap.
        assert!(c.tpot.iter().all(|p| close(p.0, 2.5)));
        assert!(c.itl.iter().all(|p| close(p.0, 5.0)));
        assert_eq!(c.ttft.len(), 4);
    }

    #[test]
    fn occupancy_counts_half_open_intervals() {
        // [0,10) [5,15) [10,20): 1 from 0, 2 from 5, still 2 at 10 (one ends, one
        // starts), 1 from 15, 0 from 20.
        let steps = occupancy([(0, 10), (5, 15), (10, 20)]);
        assert_eq!(steps, vec![(0, 1), (5, 2), (15, 1), (20, 0)]);
        assert!(occupancy([]).is_empty());
        // Two requests at once, then both done.
        assert_eq!(occupancy([(3, 7), (3, 7)]), vec![(3, 2), (7, 0)]);
    }

    #[test]
    fn in_flight_and_queued_from_samples() {
        // A: [0 s, 1 s) first token 0.4 s; B: [0.2 s, 0.6 s) first token 0.5 s.
        let a = sample(0, Some(400_000), 1_000_000);
        let b = sample(200_000, Some(500_000), 600_000);
        let (flight, queued) = in_flight_and_queued(&[a, b]);
        assert_eq!(
            flight,
            vec![(0, 1), (200_000, 2), (600_000, 1), (1_000_000, 0)]
        );
        assert_eq!(
            queued,
            vec![(0, 1), (200_000, 2), (400_000, 1), (500_000, 0)]
        );
    }

    #[test]
    fn steps_are_downsampled_to_bucket_maxima() {
        let steps = occupancy([(0, 10), (5, 15), (10, 20)]);
        // Few steps: exact, in seconds.
        assert_eq!(downsample_steps(&steps, 10).len(), 4);
        // Three points: two buckets [0,10) [10,20) and the end.
        let d = downsample_steps(&steps, 3);
        assert_eq!(d, vec![(0.0, 2.0), (10e-6, 2.0), (20e-6, 0.0)]);
        // A short spike inside a bucket survives.
        let spiky = vec![(0, 1), (1, 9), (2, 1), (50, 2), (99, 3), (100, 0)];
        let d = downsample_steps(&spiky, 3);
        assert_eq!(
            d.iter().map(|p| p.1).collect::<Vec<_>>(),
            vec![9.0, 3.0, 0.0]
        );
    }

    #[test]
    fn timeline_keeps_every_kth_request_by_start() {
        let samples: Vec<Sample> = (0..10u64)
            .rev()
            .map(|i| {
                sample(
                    i * 1_000_000,
                    Some(i * 1_000_000 + 500_000),
                    i * 1_000_000 + 900_000,
                )
            })
            .collect();
        let all = timeline(&samples, 100);
        assert_eq!((all.stride, all.total, all.bars.len()), (1, 10, 10));
        assert_eq!(all.bars[0].started, 0.0);
        assert_eq!(all.bars[1].first, Some(1.5));
        let few = timeline(&samples, 4);
        // 10 requests, at most 4 bars: every 3rd → requests 0, 3, 6, 9.
        assert_eq!(few.stride, 3);
        let starts: Vec<f64> = few.bars.iter().map(|b| b.started).collect();
        assert_eq!(starts, vec![0.0, 3.0, 6.0, 9.0]);
        assert_eq!(few.total, 10);
    }

    #[test]
    fn latency_over_time_of_drawn_requests() {
        let mut failed = sample(3_000_000, None, 3_500_000);
        failed.ok = false;
        let samples = vec![
            sample(0, Some(250_000), 1_000_000),
            sample(2_000_000, None, 2_100_000),
            failed,
        ];
        let (ttft, e2e) = latency_over_time(&timeline(&samples, 10));
        assert_eq!(ttft, vec![(0.0, 250.0)], "no first token, no TTFT");
        assert_eq!(e2e, vec![(0.0, 1000.0), (2.0, 100.0)], "failed left out");
    }

    #[test]
    fn schedule_lag_keeps_the_worst_per_stretch() {
        let mk = |sched: u64, started: u64, wait: Option<u64>| Sample {
            scheduled: Some(sched),
            queue_wait: wait,
            ..sample(started, Some(started + 10), started + 20)
        };
        let samples = vec![
            mk(0, 100, None),            // 0.1 ms late
            mk(1_000, 1_050, None),      // 0.05 ms
            mk(2_000, 2_300, Some(200)), // 0.3 ms − 0.2 ms queue wait = 0.1 ms
            mk(3_000, 3_900, None),      // 0.9 ms
        ];
        let (all, thinned) = schedule_lag(&samples, 10);
        assert!(!thinned);
        let want = [(0.0, 0.1), (0.001, 0.05), (0.002, 0.1), (0.003, 0.9)];
        for (p, w) in all.iter().zip(want) {
            assert!(close(p.0, w.0) && close(p.1, w.1), "{all:?}");
        }
        // Two stretches of schedule time: [0, 1.5 ms) and [1.5, 3 ms].
        let (two, thinned) = schedule_lag(&samples, 2);
        assert!(thinned);
        assert_eq!(two.len(), 2);
        assert!(close(two[0].1, 0.1) && close(two[1].1, 0.9), "{two:?}");
        // Closed-loop requests have no schedule.
        assert!(schedule_lag(&[sample(0, None, 5)], 10).0.is_empty());
    }

    #[test]
    fn sweeps_by_mode_and_round() {
        let p = |v: Value| -> RunParams { serde_json::from_value(v).unwrap() };
        let runs = [
            (
                "concurrency",
                p(json!({"concurrency": 16})),
                "concurrency 16",
            ),
            ("concurrency", p(json!({"concurrency": 1})), "concurrency 1"),
            ("rate", p(json!({"rate": 5.0})), "rate 5"),
            ("rate", p(json!({"rate": null})), "rate inf"),
            ("rate", p(json!({"rate": 20.0})), "rate 20"),
            ("throughput", p(json!({"num_requests": 4})), "throughput"),
            ("trace", p(json!({"time_scale": 1.6})), "trace x1.6"),
        ];
        let s = sweeps(typed(&runs));
        assert_eq!(s.len(), 2, "one-level trace and throughput are no sweep");
        assert_eq!(s[0].mode, RunMode::Concurrency);
        assert_eq!(
            s[0].groups,
            vec![("concurrency".into(), vec![(1.0, 1), (16.0, 0)])]
        );
        assert_eq!(s[1].groups[0].1, vec![(5.0, 2), (20.0, 4)]);
        assert_eq!(s[1].left_out, vec!["rate inf".to_string()]);

        let dual = [
            (
                "dual-round",
                p(json!({"concurrency": 2, "round": 1})),
                "concurrency 2 round 1",
            ),
            (
                "dual-round",
                p(json!({"concurrency": 2, "round": 2})),
                "concurrency 2 round 2",
            ),
            (
                "dual-round",
                p(json!({"concurrency": 8, "round": 1})),
                "concurrency 8 round 1",
            ),
            (
                "dual-round",
                p(json!({"concurrency": 8, "round": 2})),
                "concurrency 8 round 2",
            ),
        ];
        let s = sweeps(typed(&dual));
        let names: Vec<&str> = s[0].groups.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(names, ["round 1", "round 2"]);
        assert_eq!(s[0].groups[1].1, vec![(2.0, 1), (8.0, 3)]);
        let t = load_level(&RunMode::Trace, &p(json!({"time_scale": 0.8}))).unwrap();
        assert!(t.0.reversed && t.1 == 0.8);
    }

    #[test]
    fn load_curves_follow_the_sweep() {
        let mk = |ttft_us: u64| {
            let mut d = RunData::default();
            let mut r = crate::record::RequestRecord::parse_json_line(
                r#"{"run":"x","id":0,"scheduled_at":null,"started_at":0,"first_token_at":null,"ended_at":1.0,"events":[],"input_tokens":1,"prompt_tokens":null,"cached_tokens":null,"output_tokens":10,"output_tokens_source":"usage","status":"ok","error":null,"http_status":200}"#,
            )
            .unwrap();
            r.events = vec![ttft_us, 1_000_000];
            d.push(&r);
            summarize(&d, &[])
        };
        let (a, b) = (mk(100_000), mk(300_000));
        let p = |v: Value| -> RunParams { serde_json::from_value(v).unwrap() };
        let runs = [
            ("concurrency", p(json!({"concurrency": 4})), "c 4"),
            ("concurrency", p(json!({"concurrency": 2})), "c 2"),
        ];
        let s = &sweeps(typed(&runs))[0];
        let sums = [&a, &b];
        let ttft = load_curve(s, &sums, "TTFT p50", |s| {
            s.ttft_ms.as_ref()?.percentile(50.0)
        });
        assert_eq!(ttft[0].points, vec![(2.0, 300.0), (4.0, 100.0)]);
        assert_eq!(ttft[0].name, "TTFT p50");
        let lt =
            latency_vs_throughput(s, &sums, "TTFT p50", |s| s.ttft_ms.as_ref().map(|t| t.mean));
        // 10 output tokens in 1 s each: x = 10 tok/s.
        assert_eq!(lt[0].points, vec![(10.0, 300.0), (10.0, 100.0)]);
    }

    #[test]
    fn gauge_samples_from_saved_metrics() {
        let m = json!({
            "vllm:num_requests_running": {"type": "gauge", "mean": 1.0, "samples": [[0.0, 1.0], [1.0, 3.0]]},
            "vllm:prompt_tokens_total": {"type": "counter", "delta": 5.0},
            "old:gauge": {"type": "gauge", "mean": 2.0},
            "derived": {}
        });
        let g = gauge_samples(&ServerMetrics::from_json(m).unwrap());
        assert_eq!(
            g,
            vec![(
                "vllm:num_requests_running".to_string(),
                vec![(0.0, 1.0), (1.0, 3.0)]
            )]
        );
    }
}
