//! `servebench report DIR`: recompute every summary from requests.jsonl, with other
//! percentiles if asked, without re-running anything.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{Map, Value};

use super::results::{SavedRun, document, write_results_json, write_summary_csv};
use super::table::render;
use crate::error::Error;
use crate::metrics::slo::Slo;
use crate::metrics::{RunData, summarize};
use crate::record::RequestRecord;

/// The runs of a result directory, recomputed from its records, in file order.
pub fn reanalyze(
    dir: &Path,
    percentiles: &[f64],
    slo: Option<&Slo>,
) -> Result<(Map<String, Value>, Vec<SavedRun>), Error> {
    let path = dir.join("requests.jsonl");
    let file = std::fs::File::open(&path).map_err(|e| {
        Error::Input(format!(
            "{}: {e} (expected a directory written with --output-dir)",
            path.display()
        ))
    })?;
    // Metadata (mode, params, start times) comes from results.json when it is there.
    let results: Option<Value> = match std::fs::read_to_string(dir.join("results.json")) {
        Ok(text) => Some(serde_json::from_str(&text).map_err(|e| {
            Error::Input(format!(
                "{}: not valid JSON: {e}",
                dir.join("results.json").display()
            ))
        })?),
        Err(_) => None,
    };
    let mut order: Vec<String> = Vec::new();
    let mut data: Vec<RunData> = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::Input(format!("{}:{}: {e}", path.display(), i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = RequestRecord::parse_json_line(&line)
            .map_err(|e| Error::Input(format!("{}:{}: {e}", path.display(), i + 1)))?;
        let idx = match order.iter().position(|l| **l == *rec.run) {
            Some(i) => i,
            None => {
                order.push(rec.run.to_string());
                data.push(RunData::default());
                order.len() - 1
            }
        };
        data[idx].push(&rec);
    }
    if order.is_empty() {
        return Err(Error::Input(format!("{}: no records", path.display())));
    }
    let saved_runs: Vec<Value> = results
        .as_ref()
        .and_then(|r| r["runs"].as_array().cloned())
        .unwrap_or_default();
    let mut header = match results {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    header.remove("runs");
    let runs = order
        .into_iter()
        .zip(data)
        .map(|(label, d)| {
            let meta = saved_runs.iter().find(|r| r["label"] == label.as_str());
            let field = |k: &str| meta.and_then(|m| m.get(k)).cloned();
            SavedRun {
                summary: {
                    let mut s = summarize(&d, percentiles).with_goodput(&d, slo);
                    // Server metrics cannot be recomputed from the records: keep them.
                    s.server_metrics = meta
                        .and_then(|m| m["summary"].get("server_metrics"))
                        .cloned();
                    s
                },
                mode: field("mode")
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                params: match field("params") {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                },
                started: field("started")
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                started_unix: field("started_unix")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0),
                label,
            }
        })
        .collect();
    Ok((header, runs))
}

/// Print every run's table; with `rewrite`, also rewrite results.json and summary.csv.
pub fn report(
    dir: &Path,
    percentiles: &[f64],
    rewrite: bool,
    slo: Option<&Slo>,
) -> Result<Vec<SavedRun>, Error> {
    let (header, runs) = reanalyze(dir, percentiles, slo)?;
    for run in &runs {
        println!("{}", render(&run.label, &run.summary));
    }
    if rewrite {
        write_results_json(dir, &document(&header, &runs))
            .and_then(|_| write_summary_csv(dir, &runs))
            .map_err(|e| {
                Error::Output(format!("cannot rewrite results in {}: {e}", dir.display()))
            })?;
    }
    Ok(runs)
}
