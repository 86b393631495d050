//! The report's steady state and time slices: each run's steady-state window beside
//! its whole-run figures, and for runs cut into slices (`--slice-s`) output throughput
//! and latency percentiles per slice.

use super::charts::Series;
use super::page::{Page, num, opt_num, table};
use super::reanalyze::LoadedRun;
use super::svg::{self, Axis, Chart, Style, esc};
use crate::metrics::Stats;
use crate::metrics::slices::Slices;
use crate::metrics::steady::SteadyState;

/// The steady-state table, then each sliced run's charts.
pub fn section(page: &mut Page, runs: &[LoadedRun]) {
    page.section("steady", "Steady state and time slices");
    page.push(
        "<p class=\"muted\">Steady state: closed loop from when the target concurrency was first in flight, \
         open loop from the end of ramp-up, to the last request sent. Latencies are those of the requests \
         started in the window; throughput counts the output tokens of events inside it.</p>",
    );
    steady_table(page, runs);
    let sliced: Vec<(usize, &LoadedRun, &Slices)> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r, r.saved.summary.slices.as_ref()?)))
        .collect();
    if sliced.is_empty() {
        page.push("<p class=\"muted\">No time slices: run with <code>--slice-s S</code> (or <code>servescope report DIR --slice-s S</code>).</p>");
        return;
    }
    for (i, r, s) in sliced {
        let label = &r.saved.label;
        page.push(&format!(
            "<h3>{} in {} s slices</h3><div class=\"charts\">",
            esc(label),
            s.slice_s
        ));
        let window = r.saved.summary.steady.as_ref().and_then(|s| s.window());
        let note = window.map(|w| {
            format!(
                "Steady-state window: {:.3}–{:.3} s, {} output tok/s over it.",
                w.start_s,
                w.end_s,
                num(w.output_tok_s)
            )
        });
        throughput_chart(page, (i, label), s, note);
        latency_chart(page, (i, label), s);
        page.push("</div>");
    }
}

/// One row per run: the window and its figures beside the whole run's, or why none.
fn steady_table(page: &mut Page, runs: &[LoadedRun]) {
    let header: Vec<String> = [
        "run",
        "window (s)",
        "requests started",
        "output tok/s steady (whole run)",
        "requests/s steady (whole run)",
        "TTFT p99 ms steady (whole run)",
        "TPOT p99 ms steady (whole run)",
    ]
    .map(String::from)
    .to_vec();
    let p99 = |st: Option<&Stats>| opt_num(st.and_then(|s| s.percentile(99.0)));
    let rows: Vec<Vec<String>> = runs
        .iter()
        .filter_map(|r| {
            let s = &r.saved.summary;
            let label = esc(&r.saved.label);
            Some(match s.steady.as_ref()? {
                SteadyState::Absent(why) => {
                    vec![label, format!("none: {}", esc(why))]
                }
                SteadyState::Window(w) => vec![
                    label,
                    format!("{:.3}–{:.3}", w.start_s, w.end_s),
                    w.requests.to_string(),
                    format!("{} ({})", num(w.output_tok_s), num(s.output_tok_s)),
                    format!("{:.3} ({:.3})", w.req_s, s.req_s),
                    format!(
                        "{} ({})",
                        p99(w.latencies.ttft_ms.as_ref()),
                        p99(s.ttft_ms.as_ref())
                    ),
                    format!(
                        "{} ({})",
                        p99(w.latencies.tpot_ms.as_ref()),
                        p99(s.tpot_ms.as_ref())
                    ),
                ],
            })
        })
        .collect();
    if !rows.is_empty() {
        page.push(&table(&header, &rows));
    }
}

/// The slices' mid-points against `f`, where it has a value.
fn points(
    s: &Slices,
    f: impl Fn(&crate::metrics::slices::Slice) -> Option<f64>,
) -> Vec<(f64, f64)> {
    s.slices
        .iter()
        .filter_map(|x| Some(((x.start_s + x.end_s) / 2.0, f(x)?)))
        .collect()
}

fn throughput_chart(page: &mut Page, (i, label): (usize, &str), s: &Slices, note: Option<String>) {
    let series = vec![Series {
        name: "output tok/s".into(),
        points: points(s, |x| Some(x.output_tok_s)),
    }];
    let id = format!("run{i}-slices-throughput");
    page.chart(
        &id,
        svg::chart(&Chart {
            id: id.clone(),
            title: format!("{label}: output throughput per slice"),
            x: Axis::zero("slice mid-point since the run's start (s)"),
            y: Axis::zero("output tokens/s"),
            series: &series,
            style: Style::LineAndPoints,
            note,
        }),
    );
}

fn latency_chart(page: &mut Page, (i, label): (usize, &str), s: &Slices) {
    let pct = |st: &Option<Stats>, p: f64| st.as_ref().and_then(|st| st.percentile(p));
    let series: Vec<Series> = [
        ("TTFT p50", 0, 50.0),
        ("TTFT p99", 0, 99.0),
        ("TPOT p50", 1, 50.0),
        ("TPOT p99", 1, 99.0),
        ("E2E p50", 2, 50.0),
        ("E2E p99", 2, 99.0),
    ]
    .into_iter()
    .map(|(name, which, p)| Series {
        name: name.into(),
        points: points(s, |x| {
            let l = &x.latencies;
            pct([&l.ttft_ms, &l.tpot_ms, &l.e2e_ms][which], p)
        }),
    })
    .filter(|s| !s.points.is_empty())
    .collect();
    let y = Axis::auto(
        "latency (ms)",
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
    );
    let id = format!("run{i}-slices-latency");
    page.chart(
        &id,
        svg::chart(&Chart {
            id: id.clone(),
            title: format!("{label}: latency of the requests started in each slice"),
            x: Axis::zero("slice mid-point since the run's start (s)"),
            note: y.log_note(),
            y,
            series: &series,
            style: Style::LineAndPoints,
        }),
    );
}
