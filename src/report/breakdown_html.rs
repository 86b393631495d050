//! The report's sessions and models section: TTFT p50 and p90 against the turn index
//! (what a prefix cache saves as a conversation grows), the per-session totals and the
//! latency by model. Absent from the page when no run's records carry the tags.

use super::charts::Series;
use super::page::{Page, num, opt_num, table};
use super::reanalyze::LoadedRun;
use super::svg::{self, Axis, Chart, Style, esc};
use crate::metrics::by_turn::TurnRow;

pub fn section(page: &mut Page, runs: &[LoadedRun]) {
    let tagged = runs.iter().any(|r| {
        let s = &r.saved.summary;
        s.by_turn.is_some() || s.sessions.is_some() || s.by_model.is_some()
    });
    if !tagged {
        return;
    }
    page.section("breakdown", "Turns, sessions and models");
    page.push(
        "<p class=\"muted\">Over the same requests as each run's main figures (warm-up excluded): \
         latency by the turn index of a session's requests (from 0), each session's totals \
         (duration: its first request's start to its last request's end, think time included), \
         and latency by the model each request was sent to.</p><div class=\"charts\">",
    );
    for (i, r) in runs.iter().enumerate() {
        if let Some(rows) = &r.saved.summary.by_turn {
            turn_chart(page, (i, &r.saved.label), rows);
        }
    }
    page.push("</div>");
    sessions_table(page, runs);
    models_table(page, runs);
}

fn turn_chart(page: &mut Page, (i, label): (usize, &str), rows: &[TurnRow]) {
    let points = |f: fn(&TurnRow) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| Some((f64::from(r.turn), f(r)?)))
            .collect()
    };
    let series: Vec<Series> = [
        ("TTFT p50", points(|r| r.ttft_ms_p50)),
        ("TTFT p90", points(|r| r.ttft_ms_p90)),
    ]
    .into_iter()
    .map(|(name, points)| Series {
        name: name.into(),
        points,
    })
    .filter(|s| !s.points.is_empty())
    .collect();
    if series.is_empty() {
        return;
    }
    let y = Axis::auto(
        "TTFT (ms)",
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
    );
    let id = format!("run{i}-ttft-by-turn");
    page.chart(
        &id,
        svg::chart(&Chart {
            id: id.clone(),
            title: format!("{label}: TTFT by turn"),
            x: Axis::zero("turn index in the session (from 0)"),
            note: y.log_note(),
            y,
            series: &series,
            style: Style::LineAndPoints,
        }),
    );
}

fn sessions_table(page: &mut Page, runs: &[LoadedRun]) {
    let header: Vec<String> = [
        "run",
        "sessions",
        "completed",
        "turns per session",
        "duration p50 (s)",
        "duration p99 (s)",
        "input tokens per session",
        "output tokens per session",
    ]
    .map(String::from)
    .to_vec();
    let secs = |v: Option<f64>| opt_num(v.map(|v| v / 1000.0));
    let rows: Vec<Vec<String>> = runs
        .iter()
        .filter_map(|r| {
            let x = r.saved.summary.sessions.as_ref()?;
            Some(vec![
                esc(&r.saved.label),
                x.count.to_string(),
                x.completed.to_string(),
                num(x.turns_mean),
                secs(x.duration_ms_p50),
                secs(x.duration_ms_p99),
                num(x.input_tokens_mean),
                num(x.output_tokens_mean),
            ])
        })
        .collect();
    if !rows.is_empty() {
        page.push("<h3>Sessions</h3>");
        page.push(&table(&header, &rows));
    }
}

fn models_table(page: &mut Page, runs: &[LoadedRun]) {
    let header: Vec<String> = [
        "run",
        "model",
        "requests",
        "ok",
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "TPOT p50 (ms)",
        "TPOT p99 (ms)",
        "E2E p50 (ms)",
        "E2E p99 (ms)",
        "output tok/s",
    ]
    .map(String::from)
    .to_vec();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for r in runs {
        for m in r.saved.summary.by_model.iter().flatten() {
            rows.push(vec![
                esc(&r.saved.label),
                // From the user or the server: never markup.
                format!("<code>{}</code>", esc(&m.model)),
                m.requests.to_string(),
                m.succeeded.to_string(),
                opt_num(m.ttft_ms_p50),
                opt_num(m.ttft_ms_p99),
                opt_num(m.tpot_ms_p50),
                opt_num(m.tpot_ms_p99),
                opt_num(m.e2e_ms_p50),
                opt_num(m.e2e_ms_p99),
                num(m.output_tok_s),
            ]);
        }
    }
    if !rows.is_empty() {
        page.push("<h3>By model</h3>");
        page.push(&table(&header, &rows));
    }
}
