//! The report's load curves: for each sweep (runs of one mode at several load levels),
//! throughput and p50/p99 latency against load, and latency against throughput.

use super::charts::{self, Series, Sweep};
use super::document::{RunMode, RunParams, SavedRun};
use super::page::Page;
use super::reanalyze::LoadedRun;
use super::svg::{self, Axis, Chart, Style, esc};
use crate::metrics::Summary;
use crate::metrics::catalogue;

/// Load curves of every sweep among the runs.
pub fn section(page: &mut Page, runs: &[LoadedRun]) {
    let params: Vec<RunParams> = runs.iter().map(|r| placed(&r.saved)).collect();
    let sweeps = charts::sweeps_in_series(runs.iter().zip(&params).map(|(r, p)| {
        (
            &r.saved.mode,
            p,
            r.saved.label.as_str(),
            r.series.as_deref(),
        )
    }));
    page.section("load", "Load curves");
    if sweeps.is_empty() {
        page.push("<p class=\"muted\">No sweep: load curves need runs of one mode at two or more load levels.</p>");
        return;
    }
    let summaries: Vec<&Summary> = runs.iter().map(|r| &r.saved.summary).collect();
    for sweep in &sweeps {
        page.push(&format!("<h3>{} sweep</h3>", esc(sweep.mode.as_str())));
        if !sweep.left_out.is_empty() {
            page.push(&format!(
                "<p class=\"note\">Not on the load axis (no numeric level): {}.</p>",
                esc(&sweep.left_out.join(", "))
            ));
        }
        page.push("<div class=\"charts\">");
        sweep_charts(page, sweep, &summaries);
        page.push("</div>");
    }
}

/// A run's params for the load axis: a `sweep` run without a set rate (synchronous,
/// max throughput) at the request rate it reached, so the curves span the whole sweep.
fn placed(run: &SavedRun) -> RunParams {
    let mut p = run.params.clone();
    if run.mode == RunMode::Sweep && p.rate.flatten().is_none() && run.summary.req_s > 0.0 {
        p.rate = Some(Some(run.summary.req_s));
    }
    p
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// One chart of a sweep.
struct LoadChart {
    /// Unique within the sweep; the page id is `load-MODE-KEY`.
    key: String,
    title: String,
    x: Axis,
    y_label: String,
    series: Vec<Series>,
    /// A latency: logarithmic when it spans a wide range.
    latency: bool,
}

fn add(page: &mut Page, sweep: &Sweep, c: LoadChart) {
    let y = if c.latency {
        let ys = c.series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        Axis::auto(c.y_label, ys)
    } else {
        Axis::zero(c.y_label)
    };
    let id = format!("load-{}-{}", slug(sweep.mode.as_str()), c.key);
    let chart = svg::chart(&Chart {
        id: id.clone(),
        title: c.title,
        x: c.x,
        note: y.log_note(),
        y,
        series: &c.series,
        style: Style::LineAndPoints,
    });
    page.chart(&id, chart);
}

/// (chart key, name, the catalogue's p50 and p99 of the latency).
const LATENCIES: [(&str, &str, [&str; 2]); 3] = [
    ("ttft", "TTFT", ["ttft_ms.p50", "ttft_ms.p99"]),
    ("tpot", "TPOT", ["tpot_ms.p50", "tpot_ms.p99"]),
    ("e2e", "E2E latency", ["e2e_ms.p50", "e2e_ms.p99"]),
];

/// One curve per sweep group of the catalogue's metric `key`.
fn curve(sweep: &Sweep, summaries: &[&Summary], key: &str) -> Vec<Series> {
    let m = catalogue::known(key);
    charts::load_curve(sweep, summaries, &m.short_label(), |s| m.value(s))
}

fn sweep_charts(page: &mut Page, sweep: &Sweep, summaries: &[&Summary]) {
    let load_axis = || Axis {
        reversed: sweep.axis.reversed,
        ..Axis::zero(sweep.axis.label)
    };
    // Output only: with long prompts total tok/s is 50× larger and would flatten it.
    let chart = LoadChart {
        key: "throughput".into(),
        title: "Output throughput vs load".into(),
        x: load_axis(),
        y_label: "output tokens/s".into(),
        series: curve(sweep, summaries, "throughput.output_tok_s"),
        latency: false,
    };
    add(page, sweep, chart);
    let chart = LoadChart {
        key: "requests".into(),
        title: "Request throughput vs load".into(),
        x: load_axis(),
        y_label: "requests/s".into(),
        series: curve(sweep, summaries, "throughput.req_s"),
        latency: false,
    };
    add(page, sweep, chart);
    for (key, name, metrics) in &LATENCIES {
        let series = metrics
            .iter()
            .flat_map(|k| curve(sweep, summaries, k))
            .collect();
        let chart = LoadChart {
            key: key.to_string(),
            title: format!("{name} p50 / p99 vs load"),
            x: load_axis(),
            y_label: format!("{name} (ms)"),
            series,
            latency: true,
        };
        add(page, sweep, chart);
    }
    for (key, name, metrics) in &LATENCIES {
        let series = metrics
            .iter()
            .map(|k| catalogue::known(k))
            .flat_map(|m| {
                charts::latency_vs_throughput(sweep, summaries, &m.short_label(), |s| m.value(s))
            })
            .collect();
        let chart = LoadChart {
            key: format!("{key}-vs-throughput"),
            title: format!("{name} vs output throughput"),
            x: Axis::zero("output tokens/s"),
            y_label: format!("{name} (ms)"),
            series,
            latency: true,
        };
        add(page, sweep, chart);
    }
    if summaries.iter().any(|s| s.goodput.is_some()) {
        let series = curve(sweep, summaries, "goodput.req_s");
        let chart = LoadChart {
            key: "goodput".into(),
            title: "Goodput vs load (requests meeting the SLO)".into(),
            x: load_axis(),
            y_label: "requests/s".into(),
            series,
            latency: false,
        };
        add(page, sweep, chart);
    }
}
