//! The terminal table of one run: latency statistics, throughput, concurrency and
//! failures, as a serving engineer reads them.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use crate::console::printable;
use crate::metrics::Stats;
use crate::metrics::catalogue::{E2E_FROM_SCHEDULE, TABLE_ROWS, TTFT_FROM_SCHEDULE};
use crate::metrics::ordered_map::OrderedMap;
use crate::metrics::server::only_in_some_versions;
use crate::metrics::server_saved::{Series, ServerMetrics};
use crate::metrics::stats::percentile_key;
use crate::metrics::steady::SteadyState;
use crate::metrics::summary::Summary;
use crate::report::document::SavedRun;

/// Printed once per session: the seed tools use these names the other way round.
pub const TERMINOLOGY_NOTE: &str = "Note: TPOT = per-request (last event − first event) / (output tokens − 1) (the dual-round tool's \"ITL\"); \
ITL = every gap between output events, pooled (mini-sglang's \"TPOT\" list).";

fn fmt_ms(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Render a run's summary as text (table plus a few lines), ending with a newline.
pub fn render(label: &str, s: &Summary) -> String {
    let mut out = format!("── {label} ──\n{}\n", latency_table(s));
    out.push_str(&totals(s));
    out.push_str(&super::breakdown::table_section(s));
    out.push_str(&steady_block(s));
    if let Some(m) = &s.server_metrics {
        out.push_str(&server_lines(m));
    }
    out.push_str(&super::spec_decode::table_line(s));
    out.push_str(&super::energy::lines(s, source_lines));
    if let Some(t) = &s.server_timings {
        out.push_str(&t.table_line(s.succeeded));
    }
    out.push_str(&verdicts(s));
    out
}

/// A saved run's table, led by the INCOMPLETE line of a run that did not finish.
pub fn render_saved(run: &SavedRun) -> String {
    render_saved_in(run, None)
}

/// `render_saved`, its heading also naming the session's `--metadata` labels
/// (`── concurrency 8 · config=parallel=4 ──`), so runs of several configurations
/// printed together say which is which.
pub fn render_saved_in(run: &SavedRun, metadata: Option<&OrderedMap<String, String>>) -> String {
    let mut label = run.label.clone();
    for (k, v) in metadata.into_iter().flat_map(|m| m.iter()) {
        label.push_str(&format!(" · {k}={}", printable(v)));
    }
    let text = render(&label, &run.summary);
    match run.incomplete_note() {
        Some(note) => match text.split_once('\n') {
            Some((heading, rest)) => format!("{heading}\n{note}\n{rest}"),
            None => format!("{text}{note}\n"),
        },
        None => text,
    }
}

/// The latency statistics of the catalogue's table rows, in ms.
fn latency_table(s: &Summary) -> Table {
    let mut t = stats_table("ms", &s.percentiles);
    // Latency from the schedule differs from TTFT/E2E only by lag unless requests
    // waited (a concurrency cap, a session's parent): shown then. The first four rows
    // are always shown; the others when the run has them.
    let waited = s.queue_wait_ms.is_some();
    let rows = TABLE_ROWS.iter().enumerate().filter_map(|(i, d)| {
        let from_schedule = d.key == TTFT_FROM_SCHEDULE.key || d.key == E2E_FROM_SCHEDULE.key;
        let stats = (d.get)(s);
        // An embeddings run has no output events: its rows would be empty, not zero.
        if s.embeddings.is_some() && super::embeddings::no_output_row(d.key) {
            return None;
        }
        let shown = i < 4 || (stats.is_some() && (waited || !from_schedule));
        shown.then_some((d.short, stats))
    });
    for (name, st) in rows {
        t.add_row(stats_row(name, st, s.percentiles.len()));
    }
    align(&mut t, s.percentiles.len());
    t
}

/// A table of latency statistics headed `unit`, mean, the percentiles, min, max, std, n.
fn stats_table(unit: &str, percentiles: &[f64]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let mut header = vec![unit.to_string(), "mean".to_string()];
    header.extend(percentiles.iter().map(|p| percentile_key(*p)));
    header.extend(["min", "max", "std", "n"].map(String::from));
    t.set_header(header);
    t
}

fn align(t: &mut Table, percentiles: usize) {
    for i in 1..(percentiles + 6) {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// One row: name, mean, the percentiles, min, max, std, n.
fn stats_row(name: &str, st: Option<&Stats>, percentiles: usize) -> Vec<String> {
    let mut row = vec![name.to_string()];
    match st {
        Some(st) => {
            row.push(fmt_ms(st.mean));
            row.extend(st.percentiles.iter().map(|(_, v)| fmt_ms(*v)));
            row.extend([fmt_ms(st.min), fmt_ms(st.max), fmt_ms(st.std)]);
            row.push(st.count.to_string());
        }
        None => {
            row.extend(std::iter::repeat_n("-".to_string(), percentiles + 4));
            row.push("0".into());
        }
    }
    row
}

/// The steady-state block, after the whole run's figures: the window and its
/// throughput in a line, then its latencies in a table headed "steady ms"; or why the
/// run has none. The whole run's table above stays as it was.
fn steady_block(s: &Summary) -> String {
    let w = match &s.steady {
        None => return String::new(),
        Some(SteadyState::Absent(why)) => return format!("steady     none: {why}\n"),
        Some(SteadyState::Window(w)) => w,
    };
    let mut t = stats_table("steady ms", &s.percentiles);
    let l = &w.latencies;
    let embeddings = s.embeddings.is_some();
    for (name, st) in [
        ("TTFT", &l.ttft_ms),
        ("TPOT", &l.tpot_ms),
        ("E2E", &l.e2e_ms),
    ] {
        // An embeddings run has only E2E.
        if !embeddings || name == "E2E" {
            t.add_row(stats_row(name, st.as_ref(), s.percentiles.len()));
        }
    }
    if let Some(ttfa) = &l.ttfa_ms {
        t.add_row(stats_row("TTFA", Some(ttfa), s.percentiles.len()));
    }
    align(&mut t, s.percentiles.len());
    let output = if embeddings {
        String::new()
    } else {
        format!("{:.1} output tok/s · ", w.output_tok_s)
    };
    format!(
        "steady     window {:.3}–{:.3} s ({:.3} s; {} requests started in it, {} ok): {output}{:.3} req/s; the figures above are the whole run's\n{t}\n",
        w.start_s,
        w.end_s,
        w.end_s - w.start_s,
        w.requests,
        w.succeeded,
        w.req_s
    )
}

/// Requests, throughput, tokens and concurrency, a line each.
/// The requests line (sent, ok, failed, retried, duration) and the warm-up line, for
/// every kind of run.
pub(super) fn requests_lines(s: &Summary) -> String {
    let mut out = format!(
        "requests   {} ok / {} sent ({} failed{})   duration {:.3} s\n",
        s.succeeded,
        s.total,
        s.total - s.succeeded,
        if s.retried > 0 {
            format!(", {} retried", s.retried)
        } else {
            String::new()
        },
        s.duration_s
    );
    if s.warmup_requests > 0 {
        out.push_str(&format!(
            "           {} warm-up requests excluded\n",
            s.warmup_requests
        ));
    }
    out
}

fn totals(s: &Summary) -> String {
    if let Some(e) = &s.embeddings {
        return super::embeddings::totals(s, e);
    }
    let mut out = requests_lines(s);
    out.push_str(&format!(
        "throughput {:.1} output tok/s · {:.1} input tok/s · {:.1} total tok/s · {:.3} req/s\n",
        s.output_tok_s, s.input_tok_s, s.total_tok_s, s.req_s
    ));
    let tpe = s
        .tokens_per_event
        .map_or("-".to_string(), |v| format!("{v:.2}"));
    out.push_str(&format!(
        "tokens     {} in · {} out · {} tokens per output event",
        s.tokens.input, s.tokens.output, tpe
    ));
    if let Some(gap) = s.tokens.prompt_gap_mean {
        out.push_str(&format!(
            " · server counts {gap:+.1} prompt tokens per request"
        ));
    }
    if let Some(c) = s.tokens.cached {
        out.push_str(&format!(" · {c} cached"));
    }
    out.push('\n');
    if s.tokens.source_usage < s.succeeded {
        out.push_str(&format!(
            "           output tokens from server usage {}, client tokenizer {}, event count {}\n",
            s.tokens.source_usage, s.tokens.source_tokenizer, s.tokens.source_events
        ));
    }
    if let Some(t) = &s.tools {
        out.push_str(&crate::metrics::tools::table_line(t, s.succeeded));
    }
    out.push_str(&phase_line(s));
    if let Some(u) = &s.per_user_tok_s {
        let p = |q| {
            u.percentile(q)
                .map_or("-".to_string(), |v| format!("{v:.1}"))
        };
        out.push_str(&format!(
            "per user   {} output tok/s p50 (p10 {}, p90 {}) over {} requests: output tokens / (E2E − TTFT)\n",
            p(50.0),
            p(10.0),
            p(90.0),
            u.count
        ));
    }
    out.push_str(&format!(
        "concurrency max {} in flight (mean {:.2}) · max {} waiting for a first token\n",
        s.concurrency.max_in_flight, s.concurrency.mean_in_flight, s.concurrency.max_queued
    ));
    out
}

/// Reasoning and answer tokens, when some request reasoned; and the requests that
/// never answered, which TTFA and answer TPOT leave out.
fn phase_line(s: &Summary) -> String {
    let Some(p) = &s.phases else {
        return String::new();
    };
    let mut out = format!(
        "phases     {} of {} requests reasoned · {} reasoning + {} answer tokens ({:.1} + {:.1} per request)",
        p.reasoned,
        s.succeeded,
        p.reasoning_tokens,
        p.answer_tokens,
        p.reasoning_tokens_mean,
        p.answer_tokens_mean
    );
    if p.without_answer > 0 {
        out.push_str(&format!(" · {} never answered (no TTFA)", p.without_answer));
    }
    out.push('\n');
    out
}

/// Goodput under the SLO, the validity warnings and the failures by kind.
fn verdicts(s: &Summary) -> String {
    let mut out = String::new();
    if let Some(g) = &s.goodput
        && s.embeddings.is_some()
    {
        out.push_str(&format!(
            "goodput    {:.3} req/s · {} of {} sent requests ({:.1}%) meet the SLO ({})\n",
            g.req_s,
            g.met,
            s.total,
            g.request_share * 100.0,
            g.slo
        ));
    } else if let Some(g) = &s.goodput {
        out.push_str(&format!(
            // The two shares have different bases (the metrics spec's): say which.
            "goodput    {:.3} req/s · {:.1} output tok/s · {} of {} sent requests ({:.1}%) meet the SLO, with {:.1}% of the output tokens of the {} that succeeded ({})\n",
            g.req_s,
            g.tok_s,
            g.met,
            s.total,
            g.request_share * 100.0,
            g.token_share * 100.0,
            s.succeeded,
            g.slo
        ));
    }
    if let Some(p) = &s.profile {
        out.push_str(&format!("profile    {}\n", printable(&p.line())));
    }
    for f in &s.validity {
        // Messages may quote the server (a model id, an error).
        out.push_str(&format!("WARNING    {}\n", printable(&f.message)));
    }
    for (kind, n) in &s.failures.counts {
        out.push_str(&format!("failed     {n} × {}", kind.as_str()));
        if let Some(first) = s.failures.examples.get(kind).and_then(|e| e.first()) {
            out.push_str(&format!(": {}", printable(first)));
        }
        out.push('\n');
    }
    out
}

/// The server's metrics in a few lines: derived values, then each series (gauges: mean
/// and max over the run; counters: increase and rate).
fn server_lines(m: &ServerMetrics) -> String {
    source_lines("server", m)
}

/// A metrics source's lines, each led by `who` (`server`, or a source's name).
fn source_lines(who: &str, m: &ServerMetrics) -> String {
    let who = format!("{who:<10}");
    let mut out = String::new();
    for (k, v) in m.derived.iter() {
        let Some(v) = *v else { continue };
        let shown = if k.starts_with("prefix_cache_hit_rate") {
            format!("{:.1}%", v * 100.0)
        } else {
            format!("{v:.2}")
        };
        out.push_str(&format!("{who} {} = {shown}\n", printable(k)));
    }
    let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
    for (k, v) in &m.series {
        match v {
            Series::Gauge(g) => {
                let st = g.stats.stats.as_ref();
                out.push_str(&format!(
                    "{who} {}: mean {:.3}, max {:.3}\n",
                    printable(k),
                    or_nan(st.map(|s| s.mean)),
                    or_nan(st.map(|s| s.max))
                ))
            }
            Series::Counter(c) => {
                let d = or_nan(c.delta);
                let d = if d.fract() == 0.0 {
                    format!("{d:.0}")
                } else {
                    format!("{d:.4}")
                };
                out.push_str(&format!(
                    "{who} {}: +{d} ({:.1}/s)\n",
                    printable(k),
                    or_nan(c.rate)
                ))
            }
        }
    }
    // A series this engine version never had is noted once per session, not per run.
    let names: Vec<String> = m
        .missing
        .iter()
        .filter(|n| !only_in_some_versions(n))
        // Quoted as JSON strings, as they were always shown.
        .map(|n| serde_json::Value::from(n.as_str()).to_string())
        .collect();
    if !names.is_empty() {
        out.push_str(&format!("{who} not exposed: {}\n", names.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{RunData, summarize};
    use crate::record::{FailureKind, RequestRecord};

    #[test]
    fn table_shows_stats_throughput_and_failures() {
        let mut d = RunData::default();
        let ok = RequestRecord::ok_for_test("x", 0, vec![12_345, 30_000, 40_000], 50_000, 10, 3);
        d.push(&ok);
        let mut bad = ok.clone();
        bad.failure = Some(FailureKind::Timeout);
        bad.error = Some("no complete response within the 1 s timeout".into());
        d.push(&bad);
        let text = render("concurrency 4", &summarize(&d, &[99.9]));
        assert!(text.contains("concurrency 4"));
        assert!(text.contains("TTFT") && text.contains("12.35"), "{text}");
        assert!(text.contains("p99.9"));
        assert!(text.contains("1 ok / 2 sent (1 failed)"));
        assert!(text.contains("1 × timeout: no complete response"));
    }

    #[test]
    fn a_stopped_run_is_incomplete_only_when_requests_were_lost() {
        use crate::report::document::{RunMode, RunParams};
        let ok = RequestRecord::ok_for_test("c", 0, vec![10, 20], 30, 4, 2);
        let mut cut = ok.clone();
        cut.failure = Some(FailureKind::Cancelled);
        cut.error = Some("cancelled after SIGINT".into());
        let saved = |recs: &[&RequestRecord], planned, stopped: Option<&str>| {
            let mut d = RunData::default();
            recs.iter().for_each(|r| d.push(r));
            SavedRun::of_session(
                "c".into(),
                RunMode::Concurrency,
                RunParams::default(),
                (String::new(), 0.0),
                summarize(&d, &[]),
                planned,
                stopped.map(String::from),
            )
        };
        // Stopped after its last request ended: nothing was lost.
        let whole = saved(&[&ok, &ok], 2, Some("interrupted by SIGINT"));
        assert_eq!(whole.complete, Some(true));
        assert_eq!(whole.incomplete_reason, None);
        assert_eq!(render_saved(&whole), render("c", &whole.summary));
        // Stopped with requests unsent and one cancelled.
        let run = saved(&[&ok, &cut], 10, Some("interrupted by SIGINT"));
        assert_eq!(
            (run.complete, run.requests_planned, run.requests_sent),
            (Some(false), Some(10), Some(2))
        );
        let text = render_saved(&run);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("── c ──"));
        assert_eq!(
            lines.next(),
            Some(
                "INCOMPLETE: interrupted by SIGINT after 2 of 10 requests sent (1 cancelled at the end of the grace period)"
            )
        );
        assert!(text.contains("1 ok / 2 sent (1 failed)"), "{text}");
        assert!(text.contains("1 × cancelled"), "{text}");
        // Fewer sent than planned without a stop (a trace that ran out): complete.
        assert_eq!(saved(&[&ok], 3, None).complete, Some(true));
    }

    #[test]
    fn series_some_engine_versions_lack_are_not_called_missing_per_run() {
        let mut s = summarize(&RunData::default(), &[]);
        s.server_metrics = Some(ServerMetrics {
            missing: vec!["llamacpp:kv_cache_usage_ratio".into()],
            ..ServerMetrics::default()
        });
        let text = render("batch 4", &s);
        assert!(!text.contains("not exposed"), "{text}");
        s.server_metrics
            .as_mut()
            .unwrap()
            .missing
            .push("my_metric".into());
        let text = render("batch 4", &s);
        assert!(text.contains("not exposed: \"my_metric\"\n"), "{text}");
    }

    #[test]
    fn goodput_says_what_each_share_is_of() {
        use crate::metrics::slo::Slo;
        let mut d = RunData::default();
        // Two succeed (3 and 1 output tokens), one of them within the SLO; one fails.
        let fast = RequestRecord::ok_for_test("x", 0, vec![1_000, 2_000, 3_000], 3_000, 10, 3);
        let slow = RequestRecord::ok_for_test("x", 0, vec![900_000], 900_000, 10, 1);
        let mut bad = fast.clone();
        bad.failure = Some(FailureKind::Timeout);
        for r in [&fast, &slow, &bad] {
            d.push(r);
        }
        let slo = Slo::parse_inline("ttft_ms=500").unwrap();
        let s = summarize(&d, &[]).with_goodput(&d, Some(&slo));
        let text = render("rate 1", &s);
        assert!(
            text.contains("1 of 3 sent requests (33.3%)")
                && text.contains("75.0% of the output tokens of the 2 that succeeded"),
            "{text}"
        );
    }
}
