//! `compare --html`: the comparison as a page — both sides' headers, the rule, a table
//! per matched run with coloured verdicts, the unmatched runs, and when both sides swept
//! the same mode, their load curves overlaid (A against B).

use super::charts::{Series, load_level};
use super::compare::{Better, Comparison, Verdict};
use super::compare_repeats::{decided_by_note, shown_ci};
use super::document::{RunMode, SavedRun};
use super::page::{Page, table};
use super::svg::{self, Axis, Chart, Style, esc};
use crate::metrics::catalogue::{self, Metric};

/// (catalogue key, chart title, y label, a latency).
const OVERLAYS: [(&str, &str, &str, bool); 4] = [
    (
        "throughput.output_tok_s",
        "Output throughput vs load",
        "output tokens/s",
        false,
    ),
    ("ttft_ms.p99", "TTFT p99 vs load", "TTFT p99 (ms)", true),
    ("tpot_ms.p99", "TPOT p99 vs load", "TPOT p99 (ms)", true),
    (
        "e2e_ms.p99",
        "E2E latency p99 vs load",
        "E2E p99 (ms)",
        true,
    ),
];

/// `metric` of each run of `mode` against its load level, by level.
fn curve(runs: &[SavedRun], mode: &RunMode, metric: &Metric) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = runs
        .iter()
        .filter(|r| r.mode == *mode)
        .filter_map(|r| {
            let (_, x) = load_level(mode, &r.params)?;
            Some((x, metric.value(&r.summary)?))
        })
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// Modes both sides swept (two or more levels each). Dual-round runs are left out:
/// their rounds share levels, and the tables compare them round by round.
fn shared_sweeps(c: &Comparison) -> Vec<RunMode> {
    let mut modes: Vec<RunMode> = Vec::new();
    for r in &c.a.doc.runs {
        let mode = &r.mode;
        let swept = |runs: &[SavedRun]| {
            let levels = runs.iter().filter(|r| r.mode == *mode);
            levels.filter_map(|r| load_level(mode, &r.params)).count() >= 2
        };
        if *mode != RunMode::DualRound
            && !modes.contains(mode)
            && swept(&c.a.doc.runs)
            && swept(&c.b.doc.runs)
        {
            modes.push(mode.clone());
        }
    }
    modes
}

fn overlays(page: &mut Page, c: &Comparison) {
    for mode in shared_sweeps(c) {
        page.section(&format!("sweep-{mode}"), &format!("{mode} sweep: A and B"));
        page.push("<div class=\"charts\">");
        let axis = c.a.doc.runs.iter().find_map(|r| {
            (r.mode == mode)
                .then(|| load_level(&mode, &r.params))
                .flatten()
                .map(|(a, _)| a)
        });
        let Some(axis) = axis else { continue };
        // Open loop: latency from the schedule, so holding requests back shows.
        let from_schedule = |key: &str| {
            let alt = catalogue::metric(&key.replacen("_ms.", "_from_scheduled_ms.", 1))?;
            let saved = |runs: &[SavedRun]| runs.iter().any(|r| alt.value(&r.summary).is_some());
            (saved(&c.a.doc.runs) && saved(&c.b.doc.runs)).then_some(alt)
        };
        for (key, title, y_label, latency) in OVERLAYS {
            let (metric, title, y_label) = match from_schedule(key) {
                Some(alt) if key.starts_with("ttft") || key.starts_with("e2e") => (
                    alt,
                    title.replace(" vs load", " from schedule vs load"),
                    y_label.replace(" (ms)", " from schedule (ms)"),
                ),
                _ => (
                    catalogue::known(key),
                    title.to_string(),
                    y_label.to_string(),
                ),
            };
            let path = metric.key;
            let series = vec![
                Series {
                    name: "A (baseline)".into(),
                    points: curve(&c.a.doc.runs, &mode, metric),
                },
                Series {
                    name: "B".into(),
                    points: curve(&c.b.doc.runs, &mode, metric),
                },
            ];
            if series.iter().all(|s| s.points.is_empty()) {
                continue;
            }
            let y = if latency {
                Axis::auto(
                    y_label,
                    series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
                )
            } else {
                Axis::zero(y_label)
            };
            let id = format!("cmp-{mode}-{}", path.replace('.', "-"));
            let chart = svg::chart(&Chart {
                id: id.clone(),
                title,
                x: Axis {
                    reversed: axis.reversed,
                    ..Axis::zero(axis.label)
                },
                note: y.log_note(),
                y,
                series: &series,
                style: Style::LineAndPoints,
            });
            page.chart(&id, chart);
        }
        page.push("</div>");
    }
}

/// The comparison as a self-contained page.
pub fn to_html(c: &Comparison) -> String {
    let mut page = Page::default();
    page.push("<h1>servescope compare</h1><dl class=\"meta\">");
    for (name, s) in [("A (baseline)", &c.a), ("B", &c.b)] {
        page.push(&format!(
            "<dt>{name}</dt><dd><code>{}</code></dd>",
            esc(&Comparison::side_line("", s)[2..])
        ));
    }
    page.push(&format!("</dl><p>{}</p>", esc(&c.rule())));
    overlays(&mut page, c);
    for run in &c.runs {
        page.section(&format!("run-{}", run.label.replace(' ', "-")), &run.label);
        if let Some((ma, mb)) = &run.modes_differ {
            page.push(&format!(
                "<p><b>Warning:</b> mode {} in A but {} in B.</p>",
                esc(ma),
                esc(mb)
            ));
        }
        if let Some(w) = &run.workload_differs {
            page.push(&format!("<p>{}</p>", esc(w)));
        }
        if let Some(note) = decided_by_note(run.decided_by) {
            page.push(&format!("<p class=\"muted\">{}</p>", esc(&note)));
        }
        let header: Vec<String> = ["metric", "A", "B", "B/A", "verdict"]
            .map(String::from)
            .to_vec();
        let rows: Vec<Vec<String>> = run
            .rows
            .iter()
            .map(|r| {
                let class = match r.verdict {
                    Verdict::Better => "better",
                    Verdict::Worse => "worse",
                    _ => "noise",
                };
                let arrow = if r.metric.better == Better::Lower {
                    "↓"
                } else {
                    "↑"
                };
                vec![
                    format!("{} {arrow}", esc(r.metric.label)),
                    shown_ci(r, 0),
                    shown_ci(r, 1),
                    r.ratio.map_or("-".into(), |x| format!("{x:.3}")),
                    // `table` wraps cells in <td>; the class goes on an inner span.
                    format!("<span class=\"v {class}\">{}</span>", r.verdict.as_str()),
                ]
            })
            .collect();
        page.push(&table(&header, &rows));
        page.push(&format!(
            "<p class=\"muted\">{} (↓ lower is better, ↑ higher is better)</p>",
            Comparison::counts(&run.rows)
        ));
    }
    if c.runs.is_empty() {
        page.push("<p>No run label is in both A and B.</p>");
    }
    for (name, list) in [("A", &c.only_a), ("B", &c.only_b)] {
        if !list.is_empty() {
            page.push(&format!(
                "<p><b>Only in {name}</b> (not compared): {}</p>",
                esc(&list.join(", "))
            ));
        }
    }
    page.finish("servescope compare")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::compare;
    use serde_json::{Value, json};

    fn sweep(dir: &std::path::Path, runs: &[(u64, f64)]) {
        let runs: Vec<Value> = runs
            .iter()
            .map(|(c, tok_s)| {
                json!({"label": format!("concurrency {c}"), "mode": "concurrency",
                       "params": {"concurrency": c},
                       "summary": {"requests": {"total": 4, "succeeded": 4, "failed": 0}, "duration_s": 1.0,
                                   "throughput": {"output_tok_s": tok_s},
                                   "ttft_ms": {"p99": 10.0 * *c as f64}}})
            })
            .collect();
        let doc = json!({"model": "m", "runs": runs});
        std::fs::write(dir.join("results.json"), doc.to_string()).unwrap();
    }

    #[test]
    fn sweeps_on_both_sides_are_overlaid() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        sweep(a.path(), &[(4, 400.0), (1, 100.0)]);
        sweep(b.path(), &[(1, 120.0), (4, 300.0), (16, 900.0)]);
        let c = compare(a.path(), b.path(), 5.0).unwrap();
        assert_eq!(shared_sweeps(&c), [RunMode::Concurrency]);
        assert_eq!(
            curve(
                &c.b.doc.runs,
                &RunMode::Concurrency,
                catalogue::known("throughput.output_tok_s")
            ),
            vec![(1.0, 120.0), (4.0, 300.0), (16.0, 900.0)]
        );
        let html = to_html(&c);
        assert!(html.contains("id=\"cmp-concurrency-throughput-output_tok_s\""));
        assert!(html.contains("id=\"cmp-concurrency-ttft_ms-p99\""));
        // Two lines (A, B) in each chart that has data on both sides.
        assert!(
            html.contains("cmp-concurrency-throughput-output_tok_s:2"),
            "render check"
        );
        assert!(
            !html.contains("cmp-concurrency-tpot_ms-p99"),
            "no TPOT saved: no chart"
        );
        assert!(html.contains("Only in B</b> (not compared): concurrency 16"));

        // One level on a side: nothing to overlay.
        sweep(b.path(), &[(1, 120.0)]);
        let c = compare(a.path(), b.path(), 5.0).unwrap();
        assert!(shared_sweeps(&c).is_empty());
    }
}
