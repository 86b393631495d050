//! Speculative decoding in the reports: the table's line and the HTML chart of the
//! acceptance rate over each run (`summary.spec_decode`, from `--metrics spec-decode`).

use super::charts::Series;
use super::page::Page;
use super::reanalyze::LoadedRun;
use super::svg::{self, Axis, Chart, Style};
use crate::console::printable;
use crate::metrics::summary::Summary;

/// The terminal table's line; empty for a run without the figures.
pub fn table_line(s: &Summary) -> String {
    let Some(sd) = &s.spec_decode else {
        return String::new();
    };
    let mut parts = Vec::new();
    match (sd.acceptance_rate, sd.mean_accepted_length) {
        (None, None) => parts.push("no drafts during the run".to_string()),
        (rate, length) => {
            if let Some(r) = rate {
                parts.push(format!("acceptance rate {:.1}%", r * 100.0));
            }
            if let Some(l) = length {
                parts.push(format!("mean accepted length {l:.2} tokens"));
            }
        }
    }
    if let (Some(d), Some(t), Some(a)) = (sd.drafts, sd.draft_tokens, sd.accepted_tokens) {
        parts.push(format!(
            "{d:.0} drafts, {t:.0} draft tokens, {a:.0} accepted"
        ));
    }
    if !sd.per_position.is_empty() {
        let by_pos: Vec<String> = sd
            .per_position
            .iter()
            .map(|r| format!("{:.0}%", r * 100.0))
            .collect();
        parts.push(format!("by position {}", by_pos.join(" ")));
    }
    format!(
        "spec decode {} ({})\n",
        parts.join(" · "),
        printable(&sd.from)
    )
}

/// The acceptance rate per scrape interval, one line per run; nothing when no run has
/// it.
pub fn section(page: &mut Page, runs: &[LoadedRun]) {
    let series: Vec<Series> = runs
        .iter()
        .filter_map(|r| {
            let sd = r.saved.summary.spec_decode.as_ref()?;
            let points: Vec<(f64, f64)> = sd
                .over_time
                .iter()
                .filter_map(|&(t, v)| Some((t, v? * 100.0)))
                .collect();
            (!points.is_empty()).then(|| Series {
                name: r.saved.label.clone(),
                points,
            })
        })
        .collect();
    if series.is_empty() {
        return;
    }
    page.section("spec-decode", "Speculative decoding");
    page.push(
        "<p class=\"muted\">The share of draft tokens the server accepted in each interval between two \
         scrapes of its metrics (--metrics-interval), one line per run; time from the scrape just before \
         the run. Intervals without drafts are left out. Each run's figures are in its terminal table.</p>\
         <div class=\"charts\">",
    );
    let id = "spec-decode-acceptance".to_string();
    page.chart(
        &id,
        svg::chart(&Chart {
            id: id.clone(),
            title: "acceptance rate over time".into(),
            x: Axis::zero("time since the run's first scrape (s)"),
            y: Axis::zero("accepted draft tokens (%)"),
            series: &series,
            style: Style::LineAndPoints,
            note: None,
        }),
    );
    page.push("</div>");
}
