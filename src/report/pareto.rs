//! Throughput against interactivity: each run's median output tokens/s per user (how
//! fast one answer streams) against its total output tokens/s (what the deployment
//! serves, per GPU with `--gpus`), and the Pareto frontier of those points: the runs
//! no other run beats on both. Saved in results.json (`interactivity`) and drawn in
//! the HTML report.

use super::charts::Series;
use super::document::{InteractivityPoint, SavedRun};
use super::page::{Page, num, table};
use super::reanalyze::LoadedRun;
use super::svg::{self, Axis, Chart, Style, esc};
use crate::metrics::Summary;

/// Which of `points` (x, y; higher is better on both) are on the Pareto frontier: no
/// other point is at least as high on both axes and higher on one. Equal points are
/// both on it.
pub fn frontier(points: &[(f64, f64)]) -> Vec<bool> {
    points
        .iter()
        .map(|&(x, y)| {
            !points
                .iter()
                .any(|&(a, b)| a >= x && b >= y && (a > x || b > y))
        })
        .collect()
}

/// A run's point: (median per-user tok/s, output tok/s), when it has a per-user speed.
fn point(s: &Summary) -> Option<(f64, f64)> {
    let p50 = s.per_user_tok_s.as_ref()?.percentile(50.0)?;
    (p50.is_finite() && s.output_tok_s.is_finite()).then_some((p50, s.output_tok_s))
}

/// The interactivity points of `runs` (those with a per-user speed), `None` when none has.
pub fn interactivity<'a>(
    runs: impl IntoIterator<Item = (&'a str, &'a Summary)>,
    gpus: Option<u32>,
) -> Option<Vec<InteractivityPoint>> {
    let pts: Vec<(&str, (f64, f64))> = runs
        .into_iter()
        .filter_map(|(label, s)| Some((label, point(s)?)))
        .collect();
    if pts.is_empty() {
        return None;
    }
    let xy: Vec<(f64, f64)> = pts.iter().map(|p| p.1).collect();
    let on = frontier(&xy);
    Some(
        pts.iter()
            .zip(on)
            .map(|(&(label, (x, y)), on_frontier)| InteractivityPoint {
                label: label.to_string(),
                per_user_tok_s: x,
                output_tok_s: y,
                per_gpu: gpus.map(|g| y / g as f64),
                on_frontier,
            })
            .collect(),
    )
}

/// Of saved runs.
pub fn of_runs(runs: &[SavedRun], gpus: Option<u32>) -> Option<Vec<InteractivityPoint>> {
    interactivity(runs.iter().map(|r| (r.label.as_str(), &r.summary)), gpus)
}

/// The report's section: the chart and a table of its points.
pub fn section(page: &mut Page, runs: &[LoadedRun], gpus: Option<u32>) {
    page.section("interactivity", "Throughput vs interactivity");
    let pts = interactivity(
        runs.iter()
            .map(|r| (r.saved.label.as_str(), &r.saved.summary)),
        gpus,
    )
    .unwrap_or_default();
    if pts.len() < 2 {
        page.push("<p class=\"muted\">Needs two or more runs with a per-user speed (successful requests of two or more output tokens).</p>");
        return;
    }
    let y_of = |p: &InteractivityPoint| p.per_gpu.unwrap_or(p.output_tok_s);
    let mut front: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| p.on_frontier)
        .map(|p| (p.per_user_tok_s, y_of(p)))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rest: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| !p.on_frontier)
        .map(|p| (p.per_user_tok_s, y_of(p)))
        .collect();
    let series = [
        Series {
            name: "Pareto frontier".into(),
            points: front,
        },
        Series {
            name: "other runs".into(),
            points: rest,
        },
    ];
    let y_label = match gpus {
        Some(g) => format!("output tokens/s per GPU ({g} GPUs)"),
        None => "output tokens/s (total)".into(),
    };
    let chart = svg::chart(&Chart {
        id: "pareto".into(),
        title: "Throughput vs interactivity (Pareto frontier)".into(),
        x: Axis::zero("output tokens/s per user (median)"),
        y: Axis::zero(y_label),
        series: &series,
        style: Style::FirstLineRestPoints,
        note: Some(
            "Up and to the right is better. On the frontier, no other run serves more tokens/s with each user's answer streaming at least as fast.".into(),
        ),
    });
    page.push("<div class=\"charts\">");
    page.chart("pareto", chart);
    page.push("</div>");
    page.push(&points_table(&pts));
}

fn points_table(pts: &[InteractivityPoint]) -> String {
    let mut header: Vec<String> = ["run", "per-user tok/s p50", "output tok/s"]
        .map(String::from)
        .to_vec();
    let per_gpu = pts.iter().any(|p| p.per_gpu.is_some());
    if per_gpu {
        header.push("per GPU".into());
    }
    header.push("on the frontier".into());
    let rows: Vec<Vec<String>> = pts
        .iter()
        .map(|p| {
            let mut row = vec![esc(&p.label), num(p.per_user_tok_s), num(p.output_tok_s)];
            if per_gpu {
                row.push(p.per_gpu.map_or("-".into(), num));
            }
            row.push(if p.on_frontier { "yes" } else { "" }.into());
            row
        })
        .collect();
    table(&header, &rows)
}

#[cfg(test)]
#[path = "tests_pareto.rs"]
mod tests;
