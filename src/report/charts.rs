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
    /// Time to first answer token: empty unless some request reasoned.
    pub ttfa: Vec<(f64, f64)>,
}

pub fn run_cdfs(data: &RunData) -> RunCdfs {
    let mut l = latencies(data.samples());
    let ok = || data.samples().iter().filter(|s| s.ok);
    let mut ttfa: Vec<f64> = if ok().any(|s| s.phase.reasoned) {
        ok().filter_map(Sample::ttfa_ms).collect()
    } else {
        Vec::new()
    };
    RunCdfs {
        ttfa: cdf(&mut ttfa),
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
        // A sweep's synchronous and max-throughput runs have no set rate: the load
        // curves place them at the rate they reached (`load_curves::placed`).
        RunMode::Sweep => (
            axis(
                "request rate (req/s; synchronous and max runs: as reached)",
                false,
            ),
            params.rate.flatten(),
        ),
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
    sweeps_in_series(runs.into_iter().map(|(m, p, l)| (m, p, l, None)))
}

/// `sweeps`, each run on the curve of its series when it has one (a study's server
/// configuration: one curve per configuration).
pub fn sweeps_in_series<'a>(
    runs: impl IntoIterator<Item = (&'a RunMode, &'a RunParams, &'a str, Option<&'a str>)>,
) -> Vec<Sweep> {
    let levels: Vec<Level> = runs
        .into_iter()
        .map(|(mode, params, label, series)| Level {
            mode: mode.clone(),
            level: load_level(mode, params),
            group: match (series, level_of(mode, params)) {
                (Some(s), Some((_, round))) => format!("{s} round {round}"),
                (Some(s), None) => s.to_string(),
                (None, Some((_, round))) => format!("round {round}"),
                (None, None) => mode.to_string(),
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
    /// When drawn by phase: the first reasoning event, and the first output that was
    /// not reasoning, with whether it was a tool call.
    pub reasoning: Option<f64>,
    pub answer: Option<(f64, bool)>,
}

/// The requests drawn on a run's timeline, by start time.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub bars: Vec<Bar>,
    /// Requests in the run.
    pub total: usize,
    /// Every `stride`-th request (by start time) is drawn; 1 = all.
    pub stride: usize,
    /// Some request had output other than answer text: bars are drawn by phase.
    pub phased: bool,
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
            reasoning: x.phase.first_reasoning().map(s),
            answer: x
                .phase
                .first_answer()
                .map(|f| (s(f), x.phase.first_tool() == Some(f))),
        })
        .collect();
    Timeline {
        bars,
        total: samples.len(),
        stride,
        phased: samples.iter().any(|x| x.phase.phased()),
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
#[path = "tests_charts.rs"]
mod tests;
