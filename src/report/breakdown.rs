//! Latency by turn index, per-session totals and latency by model (`metrics::by_turn`,
//! `metrics::by_model`) as the terminal shows them, under the run's main figures, and
//! as turns.csv and models.csv (one row per run and turn / model). Nothing is shown or
//! written for a run whose records carry no session, turn or model.

use std::path::Path;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use super::document::SavedRun;
use super::results::write_atomically;
use crate::console::printable;
use crate::metrics::Summary;
use crate::metrics::by_model::ModelRow;
use crate::metrics::by_turn::{SessionTotals, TurnRow};

/// Above this many turn indexes the terminal shows the first ones and says where the
/// rest are.
const MAX_TURN_ROWS: usize = 24;

fn cell(v: Option<f64>) -> String {
    v.map_or_else(
        || "-".to_string(),
        |v| {
            if v.abs() >= 1000.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        },
    )
}

fn table(header: &[&str], rows: Vec<Vec<String>>) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    for i in 1..header.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// The terminal's section: empty for a run without tags.
pub fn table_section(s: &Summary) -> String {
    let mut out = String::new();
    if let Some(rows) = &s.by_turn {
        out.push_str(&turn_table(rows));
    }
    if let Some(x) = &s.sessions {
        out.push_str(&session_line(x));
    }
    if let Some(rows) = &s.by_model {
        out.push_str(&model_table(rows));
    }
    out
}

fn turn_table(rows: &[TurnRow]) -> String {
    let cached = rows.iter().any(|r| r.cached_tokens_mean.is_some());
    let mut header = vec![
        "turn",
        "sent",
        "ok",
        "TTFT mean",
        "p50",
        "p90",
        "p99",
        "TPOT p50",
        "E2E p50",
        "p99",
        "in tok",
    ];
    if cached {
        header.push("cached tok");
    }
    let shown = if rows.len() > MAX_TURN_ROWS {
        &rows[..MAX_TURN_ROWS - 1]
    } else {
        rows
    };
    let body = shown
        .iter()
        .map(|r| {
            let mut row = vec![
                r.turn.to_string(),
                r.requests.to_string(),
                r.succeeded.to_string(),
                cell(r.ttft_ms_mean),
                cell(r.ttft_ms_p50),
                cell(r.ttft_ms_p90),
                cell(r.ttft_ms_p99),
                cell(r.tpot_ms_p50),
                cell(r.e2e_ms_p50),
                cell(r.e2e_ms_p99),
                r.input_tokens_mean
                    .map_or("-".into(), |v| format!("{v:.1}")),
            ];
            if cached {
                row.push(
                    r.cached_tokens_mean
                        .map_or("-".into(), |v| format!("{v:.1}")),
                );
            }
            row
        })
        .collect();
    let mut out = format!(
        "by turn    latency (ms) and mean tokens per request by turn index (from 0)\n{}\n",
        table(&header, body)
    );
    if shown.len() < rows.len() {
        out.push_str(&format!(
            "           {} more turns (to turn {}): results.json by_turn, turns.csv\n",
            rows.len() - shown.len(),
            rows.last().map_or(0, |r| r.turn)
        ));
    }
    out
}

fn session_line(x: &SessionTotals) -> String {
    let s = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.3}", v / 1000.0));
    format!(
        "sessions   {} ({} completed: every turn ok) · {:.2} turns each · duration p50 {} s, p99 {} s (think time included) · {:.1} in + {:.1} out tokens per session\n",
        x.count,
        x.completed,
        x.turns_mean,
        s(x.duration_ms_p50),
        s(x.duration_ms_p99),
        x.input_tokens_mean,
        x.output_tokens_mean
    )
}

fn model_table(rows: &[ModelRow]) -> String {
    let header = [
        "model",
        "sent",
        "ok",
        "TTFT p50",
        "p99",
        "TPOT p50",
        "p99",
        "E2E p50",
        "p99",
        "output tok/s",
    ];
    let body = rows
        .iter()
        .map(|r| {
            vec![
                // A name from the user or the server: its controls shown, not obeyed.
                printable(&r.model).into_owned(),
                r.requests.to_string(),
                r.succeeded.to_string(),
                cell(r.ttft_ms_p50),
                cell(r.ttft_ms_p99),
                cell(r.tpot_ms_p50),
                cell(r.tpot_ms_p99),
                cell(r.e2e_ms_p50),
                cell(r.e2e_ms_p99),
                format!("{:.1}", r.output_tok_s),
            ]
        })
        .collect();
    format!(
        "by model   latency (ms) by the model each request was sent to\n{}\n",
        table(&header, body)
    )
}

/// The header of turns.csv.
pub const TURNS_CSV_HEADER: [&str; 13] = [
    "run",
    "turn",
    "requests",
    "succeeded",
    "ttft_ms.mean",
    "ttft_ms.p50",
    "ttft_ms.p90",
    "ttft_ms.p99",
    "tpot_ms.p50",
    "e2e_ms.p50",
    "e2e_ms.p99",
    "input_tokens.mean",
    "cached_tokens.mean",
];

/// The header of models.csv.
pub const MODELS_CSV_HEADER: [&str; 11] = [
    "run",
    "model",
    "requests",
    "succeeded",
    "ttft_ms.p50",
    "ttft_ms.p99",
    "tpot_ms.p50",
    "tpot_ms.p99",
    "e2e_ms.p50",
    "e2e_ms.p99",
    "output_tok_s",
];

fn csv_num(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.3}"))
}

fn turn_csv_row(label: &str, r: &TurnRow) -> Vec<String> {
    vec![
        label.to_string(),
        r.turn.to_string(),
        r.requests.to_string(),
        r.succeeded.to_string(),
        csv_num(r.ttft_ms_mean),
        csv_num(r.ttft_ms_p50),
        csv_num(r.ttft_ms_p90),
        csv_num(r.ttft_ms_p99),
        csv_num(r.tpot_ms_p50),
        csv_num(r.e2e_ms_p50),
        csv_num(r.e2e_ms_p99),
        csv_num(r.input_tokens_mean),
        csv_num(r.cached_tokens_mean),
    ]
}

fn model_csv_row(label: &str, r: &ModelRow) -> Vec<String> {
    vec![
        label.to_string(),
        r.model.clone(),
        r.requests.to_string(),
        r.succeeded.to_string(),
        csv_num(r.ttft_ms_p50),
        csv_num(r.ttft_ms_p99),
        csv_num(r.tpot_ms_p50),
        csv_num(r.tpot_ms_p99),
        csv_num(r.e2e_ms_p50),
        csv_num(r.e2e_ms_p99),
        format!("{:.3}", r.output_tok_s),
    ]
}

/// turns.csv and models.csv, each only when some run has its rows (per-session totals
/// are rows of summary.csv: `sessions.count`, ...).
pub fn write_csvs(dir: &Path, runs: &[SavedRun]) -> std::io::Result<()> {
    let turns: Vec<Vec<String>> = runs
        .iter()
        .flat_map(|r| {
            let rows = r.summary.by_turn.as_deref().unwrap_or_default();
            rows.iter().map(|x| turn_csv_row(&r.label, x))
        })
        .collect();
    write_csv(&dir.join("turns.csv"), &TURNS_CSV_HEADER, &turns)?;
    let models: Vec<Vec<String>> = runs
        .iter()
        .flat_map(|r| {
            let rows = r.summary.by_model.as_deref().unwrap_or_default();
            rows.iter().map(|x| model_csv_row(&r.label, x))
        })
        .collect();
    write_csv(&dir.join("models.csv"), &MODELS_CSV_HEADER, &models)
}

fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(std::io::Error::other)?;
    for r in rows {
        w.write_record(r).map_err(std::io::Error::other)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomically(path, &bytes)
}

#[cfg(test)]
#[path = "tests_breakdown.rs"]
mod tests;
