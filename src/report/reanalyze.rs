//! `servescope report DIR`: recompute every summary from requests.jsonl, with other
//! percentiles if asked, without re-running anything. The loader here is shared by the
//! HTML report and `merge`, so every page and merged file shows the numbers `report`
//! prints.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::{Map, Value};

use super::results::{SavedRun, document, write_results_json, write_summary_csv};
use super::table::render;
use crate::error::Error;
use crate::metrics::slo::Slo;
use crate::metrics::{RunData, summarize};
use crate::record::RequestRecord;

/// How summaries are recomputed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reanalysis<'a> {
    /// Percentiles besides the default ones.
    pub percentiles: &'a [f64],
    /// Goodput under this SLO.
    pub slo: Option<&'a Slo>,
    /// Without `slo`: recompute goodput under the SLO each run was saved with.
    pub saved_slo: bool,
}

/// One run of a result directory: its saved metadata with a recomputed summary, and
/// the compact per-request facts it was computed from (for charts).
#[derive(Clone, Debug)]
pub struct LoadedRun {
    pub saved: SavedRun,
    pub data: RunData,
}

/// A result directory: results.json's header (without `runs`) and every run.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub header: Map<String, Value>,
    pub runs: Vec<LoadedRun>,
}

/// Read `path` (requests.jsonl) record by record; errors name the file and line.
pub fn for_each_record(
    path: &Path,
    mut f: impl FnMut(RequestRecord) -> Result<(), Error>,
) -> Result<(), Error> {
    let file = std::fs::File::open(path).map_err(|e| {
        Error::Input(format!(
            "{}: {e} (expected a directory written with --output-dir)",
            path.display()
        ))
    })?;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::Input(format!("{}:{}: {e}", path.display(), i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = RequestRecord::parse_json_line(&line)
            .map_err(|e| Error::Input(format!("{}:{}: {e}", path.display(), i + 1)))?;
        f(rec)?;
    }
    Ok(())
}

/// DIR/results.json parsed, or `None` when there is none.
pub fn read_results_json(dir: &Path) -> Result<Option<Value>, Error> {
    let path = dir.join("results.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Input(format!("{}: not valid JSON: {e}", path.display()))),
        Err(_) => Ok(None),
    }
}

/// The SLO a saved summary's goodput was computed under.
pub fn saved_slo(summary: &Value) -> Option<Slo> {
    let s = summary.get("goodput")?.get("slo")?;
    let slo = Slo {
        ttft_ms: s["ttft_ms"].as_f64(),
        tpot_ms: s["tpot_ms"].as_f64(),
        e2e_ms: s["e2e_ms"].as_f64(),
        min_output_tok_s: s["min_output_tok_s"].as_f64(),
    };
    (!slo.is_empty()).then_some(slo)
}

/// The runs of a result directory, recomputed from its records, in file order.
pub fn load(dir: &Path, how: Reanalysis) -> Result<Loaded, Error> {
    let path = dir.join("requests.jsonl");
    // Metadata (mode, params, start times) comes from results.json when it is there.
    let results = read_results_json(dir)?;
    let mut order: Vec<String> = Vec::new();
    let mut data: Vec<RunData> = Vec::new();
    for_each_record(&path, |rec| {
        let idx = match order.iter().position(|l| **l == *rec.run) {
            Some(i) => i,
            None => {
                order.push(rec.run.to_string());
                data.push(RunData::default());
                order.len() - 1
            }
        };
        data[idx].push(&rec);
        Ok(())
    })?;
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
            let own_slo = match how.slo {
                None if how.saved_slo => meta.and_then(|m| saved_slo(&m["summary"])),
                _ => None,
            };
            let slo = how.slo.or(own_slo.as_ref());
            let mut summary = summarize(&d, how.percentiles).with_goodput(&d, slo);
            // Server metrics cannot be recomputed from the records: keep them.
            summary.server_metrics = meta
                .and_then(|m| m["summary"].get("server_metrics"))
                .cloned();
            let saved = SavedRun {
                summary,
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
            };
            LoadedRun { saved, data: d }
        })
        .collect();
    Ok(Loaded { header, runs })
}

/// The runs of a result directory, recomputed from its records, in file order.
pub fn reanalyze(
    dir: &Path,
    percentiles: &[f64],
    slo: Option<&Slo>,
) -> Result<(Map<String, Value>, Vec<SavedRun>), Error> {
    let loaded = load(
        dir,
        Reanalysis {
            percentiles,
            slo,
            saved_slo: false,
        },
    )?;
    let runs = loaded.runs.into_iter().map(|r| r.saved).collect();
    Ok((loaded.header, runs))
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
