//! The report's charts over time: each run's requests as bars, latency over the run,
//! requests in flight and queued, schedule lag, and the server's gauges.

use super::charts::{self, Series, Timeline};
use super::page::Page;
use super::reanalyze::LoadedRun;
use super::svg::{self, Axis, Chart, Style, esc};
use crate::metrics::summary::Sample;

/// Requests drawn per run timeline; more are thinned evenly (and the page says so).
pub const MAX_BARS: usize = 2000;
/// Steps per in-flight curve; more are thinned to the peak per stretch of time.
pub const MAX_STEP_POINTS: usize = 1500;
/// Requests per schedule-lag chart; more are thinned to the worst per stretch of time.
pub const MAX_LAG_POINTS: usize = 2000;

/// Per run: requests as bars, latency over the run, in flight and queued, schedule lag.
pub fn section(page: &mut Page, runs: &[LoadedRun]) {
    page.section("timelines", "Timelines");
    page.push(&format!(
        "<p class=\"muted\">Per run: each request as a bar (sent → first token → end), requests in flight and \
         waiting for their first token over time, and for open-loop runs how late the client sent each request \
         (schedule lag). Runs with more than {MAX_BARS} requests show an evenly spread sample of them.</p>"
    ));
    for (i, r) in runs.iter().enumerate() {
        let label = &r.saved.label;
        let samples = r.data.samples();
        page.push(&format!("<h3>{}</h3><div class=\"charts\">", esc(label)));
        let tl = charts::timeline(samples, MAX_BARS);
        let note = (tl.stride > 1).then(|| {
            format!(
                "Downsampled: {} of {} requests drawn (every {}th by start time).",
                tl.bars.len(),
                tl.total,
                tl.stride
            )
        });
        let id = format!("run{i}-requests");
        let title = format!("{label}: requests");
        page.chart(&id, svg::timeline_chart(&id, &title, &tl, note.clone()));
        latency_chart(page, (i, label), &tl, note);
        occupancy_chart(page, (i, label), samples);
        lag_chart(page, (i, label), samples);
        page.push("</div>");
    }
}

/// TTFT and end-to-end latency of the drawn requests, by start time; `note` says how
/// the requests were sampled, if they were.
fn latency_chart(page: &mut Page, (i, label): (usize, &str), tl: &Timeline, note: Option<String>) {
    let (ttft, e2e) = charts::latency_over_time(tl);
    let series = vec![
        Series {
            name: "TTFT".into(),
            points: ttft,
        },
        Series {
            name: "E2E latency".into(),
            points: e2e,
        },
    ];
    let y = Axis::auto(
        "latency (ms)",
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
    );
    let id = format!("run{i}-latency");
    page.chart(
        &id,
        svg::chart(&Chart {
            id: id.clone(),
            title: format!("{label}: latency over the run"),
            x: Axis::zero("request start since the run's start (s)"),
            note: [note, y.log_note()]
                .into_iter()
                .flatten()
                .reduce(|a, b| a + " " + &b),
            y,
            series: &series,
            style: Style::Points,
        }),
    );
}

/// Requests in flight and waiting for their first token over the run.
fn occupancy_chart(page: &mut Page, (i, label): (usize, &str), samples: &[Sample]) {
    let (flight, queued) = charts::in_flight_and_queued(samples);
    let thinned = flight.len() > MAX_STEP_POINTS || queued.len() > MAX_STEP_POINTS;
    let series = vec![
        Series {
            name: "in flight".into(),
            points: charts::downsample_steps(&flight, MAX_STEP_POINTS),
        },
        Series {
            name: "waiting for a first token".into(),
            points: charts::downsample_steps(&queued, MAX_STEP_POINTS),
        },
    ];
    let id = format!("run{i}-occupancy");
    page.chart(
        &id,
        svg::chart(&Chart {
            id: id.clone(),
            title: format!("{label}: requests in flight"),
            x: Axis::zero("time since the run's start (s)"),
            y: Axis::zero("requests"),
            series: &series,
            style: Style::StepArea,
            note: thinned.then(|| {
                format!("Downsampled to {MAX_STEP_POINTS} stretches of time, each showing its largest count.")
            }),
        }),
    );
}

/// How late the client sent each scheduled request; nothing for a run without a
/// schedule (closed loop).
fn lag_chart(page: &mut Page, (i, label): (usize, &str), samples: &[Sample]) {
    let (lag, thinned) = charts::schedule_lag(samples, MAX_LAG_POINTS);
    if lag.is_empty() {
        return;
    }
    let series = vec![Series {
        name: "schedule lag".into(),
        points: lag,
    }];
    let id = format!("run{i}-lag");
    page.chart(
        &id,
        svg::chart(&Chart {
            id: id.clone(),
            title: format!("{label}: schedule lag"),
            x: Axis::zero("scheduled time since the run's start (s)"),
            y: Axis::zero("schedule lag (ms)"),
            series: &series,
            style: Style::Points,
            note: Some(if thinned {
                format!("Downsampled: the most delayed request of each of {MAX_LAG_POINTS} stretches of schedule time.")
            } else {
                "One point per request: sent − scheduled − queue wait. Over 5 ms, the client, not the server, limited the run.".into()
            }),
        }),
    );
}

/// The server's gauges over time, one chart per series, one line per run.
pub fn server_metrics(page: &mut Page, runs: &[LoadedRun]) {
    // Gauge key → one series per run that sampled it.
    let mut by_key: Vec<(String, Vec<Series>)> = Vec::new();
    for r in runs {
        let summary = &r.saved.summary;
        // The server's own series as they are named; another source's led by its name
        // (`dcgm: DCGM_FI_DEV_POWER_USAGE{gpu="0",...}`: one chart per GPU).
        let own = summary.server_metrics.iter().map(|m| (String::new(), m));
        let others = summary
            .metric_sources
            .iter()
            .map(|(name, m)| (format!("{name}: "), m));
        let gauges = own.chain(others).flat_map(|(lead, m)| {
            charts::gauge_samples(m)
                .into_iter()
                .map(move |(key, points)| (format!("{lead}{key}"), points))
        });
        for (key, points) in gauges {
            let s = Series {
                name: r.saved.label.clone(),
                points,
            };
            match by_key.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(s),
                None => by_key.push((key, vec![s])),
            }
        }
    }
    page.section("server", "Server metrics over time");
    if by_key.is_empty() {
        page.push("<p class=\"muted\">None: runs without --metrics, or saved before servescope kept gauge samples. \
                   Counters (increase and rate per run) are in the terminal tables above.</p>");
        return;
    }
    page.push("<p class=\"muted\">Gauges sampled during each run (--metrics-interval), one line per run; \
               time from the scrape just before the run. Counters are in the terminal tables above.</p><div class=\"charts\">");
    for (k, (key, series)) in by_key.iter().enumerate() {
        let id = format!("server-{k}");
        page.chart(
            &id,
            svg::chart(&Chart {
                id: id.clone(),
                title: key.clone(),
                x: Axis::zero("time since the run's first scrape (s)"),
                y: Axis::zero(gauge_unit(key)),
                series,
                style: Style::LineAndPoints,
                note: None,
            }),
        );
    }
    page.push("</div>");
}

/// The y label of a gauge, from its name's conventions.
fn gauge_unit(key: &str) -> &'static str {
    let name = key.split('{').next().unwrap_or(key);
    if name.ends_with("DCGM_FI_DEV_POWER_USAGE") {
        "W"
    } else if name.ends_with("_UTIL") {
        "%"
    } else if name.ends_with("DCGM_FI_DEV_FB_USED") {
        "MiB"
    } else if name.ends_with("_perc") || name.contains("usage") {
        "share (0–1)"
    } else if name.ends_with("_seconds") {
        "seconds"
    } else if name.contains("requests") || name.contains("num_") {
        "requests"
    } else {
        "value"
    }
}
