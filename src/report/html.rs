//! `--html OUT.html`: the report of a result directory as one self-contained page —
//! header, the terminal's tables, latency CDFs, load curves of a sweep, per-run
//! timelines, the dual-round comparison, goodput and the server's gauges over time.
//! Summaries are recomputed from requests.jsonl exactly as `servescope report` does.

use std::fmt::Write as _;
use std::path::Path;

use super::charts::{self, Series};
use super::document::ResultsDoc;
use super::page::{Page, num, opt_num, table};
use super::reanalyze::{Loaded, LoadedRun, Reanalysis, load};
use super::svg::{self, Axis, Chart, Style, esc};
use super::table::{TERMINOLOGY_NOTE, render_saved_in};
use super::{load_curves, pareto, rounds, slices, timelines};
use crate::error::Error;
use crate::metrics::Summary;
use crate::metrics::catalogue;
use crate::metrics::slo::Slo;

/// How the report is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct HtmlOptions<'a> {
    /// Percentiles besides 50, 90, 99 (in the tables).
    pub percentiles: &'a [f64],
    /// Goodput under this SLO; without one, under the SLO each run was saved with.
    pub slo: Option<&'a Slo>,
    /// `--slice-s` in µs; without it, each run is sliced as it was saved (if it was).
    pub slice_us: Option<u64>,
}

/// Read DIR, build the page and write it to `out`; returns its size in bytes.
pub fn write_report(dir: &Path, out: &Path, opts: HtmlOptions) -> Result<u64, Error> {
    let loaded = load(
        dir,
        Reanalysis {
            percentiles: opts.percentiles,
            slo: opts.slo,
            saved_slo: true,
            slice_us: opts.slice_us,
        },
    )?;
    let html = render_report(&loaded, &dir.display().to_string());
    std::fs::write(out, &html)
        .map_err(|e| Error::Output(format!("--html {}: cannot write: {e}", out.display())))?;
    Ok(html.len() as u64)
}

/// The page for loaded results; `source` names where they came from.
pub fn render_report(loaded: &Loaded, source: &str) -> String {
    let mut page = Page::default();
    let runs = &loaded.runs;
    header(&mut page, &loaded.header, source, runs.len());
    overview(&mut page, runs);
    cdfs(&mut page, runs);
    load_curves::section(&mut page, runs);
    pareto::section(&mut page, runs, loaded.header.gpus);
    dual_round(&mut page, runs);
    goodput(&mut page, runs);
    slices::section(&mut page, runs);
    super::breakdown_html::section(&mut page, runs);
    timelines::section(&mut page, runs);
    timelines::server_metrics(&mut page, runs);
    super::spec_decode::section(&mut page, runs);
    terminal_tables(&mut page, runs, loaded.header.metadata.as_ref());
    page.section("definitions", "What the numbers mean");
    page.push(&format!(
        "<p class=\"muted\">TTFT: first output event − request start. E2E: end of stream − request start. \
         {} Statistics are over successful requests; percentiles interpolate linearly (numpy's default). \
         Throughput counts the output tokens of successful requests over the run's duration. \
         An embeddings run (--api embeddings) has no output: its latency is E2E (request start → the whole answer), \
         its throughput inputs/s and input tok/s of successful requests over the run's duration.</p>",
        esc(TERMINOLOGY_NOTE.trim_start_matches("Note: "))
    ));
    page.finish(&format!("servescope report: {source}"))
}

fn header(page: &mut Page, h: &ResultsDoc, source: &str, runs: usize) {
    let s = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let version = h.tool.as_ref().map_or("-", |t| t.version.as_str());
    let command = h.command.as_ref().map_or_else(
        || "-".into(),
        |a| {
            a.iter()
                .map(|w| shell_word(w))
                .collect::<Vec<_>>()
                .join(" ")
        },
    );
    let mut endpoint = s(&h.endpoint);
    if h.simulated == Some(true) {
        endpoint.push_str(" (the built-in simulator)");
    }
    let mut rows = vec![
        ("endpoint", endpoint),
        // The server's id: one line, its controls shown, not obeyed.
        (
            "model",
            crate::console::printable(&s(&h.model)).into_owned(),
        ),
        ("API", s(&h.api)),
        ("tokenizer", s(&h.tokenizer)),
        ("command", command),
        ("started", s(&h.started)),
        ("seed", h.seed.map_or("-".into(), |v| v.to_string())),
        ("servescope", version.to_string()),
        ("results", format!("{source} ({runs} runs)")),
    ];
    if let Some(m) = &h.metadata {
        // Labels given on the command line (a study's configuration among them).
        let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(("metadata", pairs.join(", ")));
    }
    if let Some(m) = &h.merged_from {
        let dirs: Vec<&str> = m.iter().map(|d| d.dir.as_str()).collect();
        rows.push(("merged from", dirs.join(", ")));
    }
    let mut out = String::from("<h1>servescope report</h1><dl class=\"meta\">");
    for (k, v) in rows {
        let _ = write!(out, "<dt>{k}</dt><dd><code>{}</code></dd>", esc(&v));
    }
    out.push_str(
        "</dl><nav><a href=\"#summary\">summary</a><a href=\"#cdf\">distributions</a>\
         <a href=\"#load\">load curves</a><a href=\"#interactivity\">interactivity</a><a href=\"#timelines\">timelines</a>\
         <a href=\"#server\">server metrics</a><a href=\"#tables\">tables</a>\
         <a href=\"#definitions\">definitions</a></nav>",
    );
    page.push(&out);
}

/// Quote a word for a shell when it needs it, so the command line can be pasted.
fn shell_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// The catalogue's latencies in the overview, between throughput and concurrency.
const OVERVIEW_LATENCIES: [&str; 9] = [
    "ttft_ms.p50",
    "ttft_ms.p99",
    "tpot_ms.p50",
    "tpot_ms.p99",
    "itl_ms.p50",
    "itl_ms.p99",
    "e2e_ms.p50",
    "e2e_ms.p99",
    "schedule_lag_ms.p99",
];

/// One column per run, key figures per row; then every run's terminal table.
fn overview(page: &mut Page, runs: &[LoadedRun]) {
    page.section("summary", "Summary");
    for r in runs {
        if let Some(note) = r.saved.incomplete_note() {
            page.push(&format!(
                "<p class=\"incomplete\"><strong>{}</strong>: {}</p>",
                esc(&r.saved.label),
                esc(&note)
            ));
        }
    }
    super::validity_html::blocks(page, runs);
    let mut header = vec![String::new()];
    header.extend(runs.iter().map(|r| esc(&r.saved.label)));
    type Row = (&'static str, fn(&Summary) -> String);
    let before: [Row; 5] = [
        ("requests ok / sent", |s| {
            format!("{} / {}", s.succeeded, s.total)
        }),
        ("duration (s)", |s| format!("{:.3}", s.duration_s)),
        ("output tok/s", |s| {
            opt_num(catalogue::known("throughput.output_tok_s").value(s))
        }),
        ("total tok/s", |s| num(s.total_tok_s)),
        ("requests/s", |s| format!("{:.3}", s.req_s)),
    ];
    let after: [Row; 2] = [
        ("in flight max (mean)", |s| {
            format!(
                "{} ({:.2})",
                s.concurrency.max_in_flight, s.concurrency.mean_in_flight
            )
        }),
        ("goodput (req/s)", |s| {
            s.goodput
                .as_ref()
                .map_or("-".into(), |g| format!("{:.3}", g.req_s))
        }),
    ];
    let row = |name: &str, f: &dyn Fn(&Summary) -> String| {
        let mut row = vec![name.to_string()];
        row.extend(runs.iter().map(|r| f(&r.saved.summary)));
        row
    };
    // An embeddings run's throughput, when the page has one.
    let embeddings: &[&str] = if runs.iter().any(|r| r.saved.summary.embeddings.is_some()) {
        &["embeddings.inputs_s", "throughput.input_tok_s"]
    } else {
        &[]
    };
    let body: Vec<Vec<String>> = before
        .iter()
        .map(|(name, f)| row(name, f))
        .chain(embeddings.iter().map(|k| {
            let m = catalogue::known(k);
            row(m.label, &|s| opt_num(m.value(s)))
        }))
        .chain(OVERVIEW_LATENCIES.iter().map(|k| {
            let m = catalogue::known(k);
            row(m.label, &|s| opt_num(m.value(s)))
        }))
        .chain(after.iter().map(|(name, f)| row(name, f)))
        .collect();
    page.push(&table(&header, &body));
    page.push("<p class=\"muted\">Every statistic of every run is in <a href=\"#tables\">the terminal tables</a> below the charts.</p>");
}

/// Every run's table, as `servescope report` prints it.
fn terminal_tables(
    page: &mut Page,
    runs: &[LoadedRun],
    metadata: Option<&crate::metrics::ordered_map::OrderedMap<String, String>>,
) {
    page.section("tables", "Every run, as the terminal shows it");
    let mut text = String::new();
    for r in runs {
        text.push_str(&render_saved_in(&r.saved, metadata));
        text.push('\n');
    }
    page.push(&format!("<pre>{}</pre>", esc(text.trim_end())));
}

fn cdfs(page: &mut Page, runs: &[LoadedRun]) {
    page.section("cdf", "Latency distributions");
    page.push(
        "<p class=\"muted\">Share of requests (of ITL gaps) at or below each latency; one line per run. \
         Curves with many samples are drawn from 249 quantiles (denser in the top 1%).</p><div class=\"charts\">",
    );
    let all: Vec<charts::RunCdfs> = runs.iter().map(|r| charts::run_cdfs(&r.data)).collect();
    type Pick = fn(&charts::RunCdfs) -> &Vec<(f64, f64)>;
    let mut metrics: Vec<(&str, &str, &str, Pick)> = vec![
        ("ttft", "Time to first token", "TTFT (ms)", |c| &c.ttft),
        (
            "tpot",
            "Time per output token (per request)",
            "TPOT (ms)",
            |c| &c.tpot,
        ),
        ("e2e", "End-to-end latency", "E2E latency (ms)", |c| &c.e2e),
        (
            "itl",
            "Inter-token latency (every gap, pooled)",
            "ITL (ms)",
            |c| &c.itl,
        ),
    ];
    // TTFA beside TTFT when some run reasoned (`metrics::phases`).
    if all.iter().any(|c| !c.ttfa.is_empty()) {
        let ttfa: Pick = |c| &c.ttfa;
        metrics.insert(1, ("ttfa", "Time to first answer token", "TTFA (ms)", ttfa));
    }
    for (key, title, xl, pick) in metrics {
        let series: Vec<Series> = runs
            .iter()
            .zip(&all)
            // A run without reasoning has no TTFA curve.
            .filter(|(_, c)| !pick(c).is_empty() || key != "ttfa")
            .map(|(r, c)| Series {
                name: r.saved.label.clone(),
                points: pick(c).clone(),
            })
            .collect();
        let x = Axis::auto(xl, series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
        let note = x.log_note();
        let id = format!("cdf-{key}");
        page.chart(
            &id,
            svg::chart(&Chart {
                id: id.clone(),
                title: format!("{title}: CDF"),
                x,
                y: Axis::zero("share of samples ≤ x"),
                series: &series,
                style: Style::Line,
                note,
            }),
        );
    }
    page.push("</div>");
}

fn dual_round(page: &mut Page, runs: &[LoadedRun]) {
    let cmps = rounds::round_comparisons(runs.iter().map(|r| &r.saved));
    if cmps.is_empty() {
        return;
    }
    page.section("dual-round", "Dual-round: rounds compared");
    page.push("<p class=\"muted\">The same requests each round: round k against round 1 (r2/r1 < 1 for a latency means round 2 was faster).</p>");
    let text: String = cmps.iter().map(|c| c.render() + "\n").collect();
    page.push(&format!("<pre>{}</pre>", esc(text.trim_end())));
}

fn goodput(page: &mut Page, runs: &[LoadedRun]) {
    if runs.iter().all(|r| r.saved.summary.goodput.is_none()) {
        return;
    }
    page.section("goodput", "Goodput under the SLO");
    let header: Vec<String> = [
        "run",
        "SLO",
        "met",
        "goodput req/s",
        "goodput output tok/s",
        "share of sent requests meeting it",
        "share of succeeded requests' output tokens meeting it",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = runs
        .iter()
        .filter_map(|r| {
            let g = r.saved.summary.goodput.as_ref()?;
            Some(vec![
                esc(&r.saved.label),
                esc(&g.slo.to_string()),
                format!("{} / {}", g.met, r.saved.summary.total),
                format!("{:.3}", g.req_s),
                num(g.tok_s),
                format!("{:.1}%", g.request_share * 100.0),
                format!("{:.1}%", g.token_share * 100.0),
            ])
        })
        .collect();
    page.push(&table(&header, &rows));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{RunData, summarize};
    use crate::record::RequestRecord;
    use crate::report::document::RunMode;
    use crate::report::results::SavedRun;
    use serde_json::{Value, json};

    fn run(label: &str, mode: &str, params: Value, n: u64) -> LoadedRun {
        let mut d = RunData::default();
        for i in 0..n {
            let line = format!(
                r#"{{"run":"{label}","id":{i},"scheduled_at":null,"started_at":{s},"ended_at":{e},"events":[{f},{g}],"input_tokens":5,"prompt_tokens":null,"cached_tokens":null,"output_tokens":2,"output_tokens_source":"usage","status":"ok","error":null,"http_status":200}}"#,
                s = i as f64 * 0.01,
                f = i as f64 * 0.01 + 0.005,
                g = i as f64 * 0.01 + 0.007,
                e = i as f64 * 0.01 + 0.008,
            );
            d.push(&RequestRecord::parse_json_line(&line).unwrap());
        }
        LoadedRun {
            saved: SavedRun {
                label: label.into(),
                mode: RunMode::parse(mode),
                params: serde_json::from_value(params).unwrap(),
                started: String::new(),
                started_unix: 0.0,
                complete: None,
                incomplete_reason: None,
                requests_planned: None,
                requests_sent: None,
                summary: summarize(&d, &[]),
            },
            data: d,
            series: None,
        }
    }

    #[test]
    fn a_sweep_page_has_every_chart_with_one_series_per_run() {
        let loaded = Loaded {
            header: serde_json::from_value(json!({"model": "m", "endpoint": "http://x", "command": ["servescope", "concurrency", "--api-key", "***"], "tool": {"version": "0.1.0"}}))
                .unwrap(),
            runs: vec![
                run("concurrency 1", "concurrency", json!({"concurrency": 1}), 3),
                run("concurrency 4", "concurrency", json!({"concurrency": 4}), 5),
            ],
        };
        let html = render_report(&loaded, "dir");
        let mut page = Page::default();
        cdfs(&mut page, &loaded.runs);
        assert_eq!(
            page.expected(),
            [
                ("cdf-ttft".to_string(), 2),
                ("cdf-tpot".into(), 2),
                ("cdf-e2e".into(), 2),
                ("cdf-itl".into(), 2)
            ]
        );
        for id in [
            "load-concurrency-throughput",
            "load-concurrency-ttft-vs-throughput",
            "run1-requests",
            "run1-occupancy",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
        assert!(
            !html.contains("run0-lag"),
            "closed-loop runs have no schedule lag"
        );
        assert!(
            html.contains("concurrency --api-key &#39;***&#39;"),
            "the saved, masked command line"
        );
        assert!(html.contains("┌"), "the terminal table");
    }

    #[test]
    fn a_large_run_is_downsampled_and_says_so() {
        // 20,000 requests: 10 per 100 ms-wide slot, overlapping.
        let loaded = Loaded {
            header: ResultsDoc::default(),
            runs: vec![run("rate 100", "rate", json!({"rate": 100.0}), 20_000)],
        };
        let html = render_report(&loaded, "big");
        assert!(
            html.contains("Downsampled: 2000 of 20000 requests drawn (every 10th by start time)."),
            "the page says what it left out"
        );
        // Bars: one subpath per drawn segment, two segments per request.
        let bars = html.matches("h-").count();
        assert!(bars <= 2 * timelines::MAX_BARS, "{bars} bar segments");
        assert!(html.len() < 1_000_000, "{} bytes", html.len());
        // Every CDF stays within its point budget.
        let cdf = charts::run_cdfs(&loaded.runs[0].data);
        assert!(cdf.ttft.len() <= charts::CDF_POINTS && cdf.e2e.len() <= charts::CDF_POINTS);
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("--rates"), "--rates");
        assert_eq!(shell_word("ttft_ms=200,tpot_ms=5"), "ttft_ms=200,tpot_ms=5");
        assert_eq!(shell_word("{\"a\": 1}"), "'{\"a\": 1}'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }
}
