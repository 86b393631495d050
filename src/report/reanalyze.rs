//! `servescope report DIR`: recompute every summary from requests.jsonl, with other
//! percentiles if asked, without re-running anything. The loader here is shared by the
//! HTML report and `merge`, so every page and merged file shows the numbers `report`
//! prints.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::document::{ReadError, ResultsDoc};
use super::repeats::{repeat_levels, to_docs};
use super::results::{SavedRun, write_results_json, write_summary_csv};
use super::table::render_saved_in;
use crate::error::Error;
use crate::metrics::run_checks::FROM_RECORDS;
use crate::metrics::slo::Slo;
use crate::metrics::steady::RunShape;
use crate::metrics::{RunData, Summary, summarize};
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
    /// `--slice-s` in µs; without it, each run is sliced as it was saved (if it was).
    pub slice_us: Option<u64>,
}

/// One run of a result directory: its saved metadata with a recomputed summary, and
/// the compact per-request facts it was computed from (for charts).
#[derive(Clone, Debug)]
pub struct LoadedRun {
    pub saved: SavedRun,
    pub data: RunData,
    /// The curve it is drawn on in the load curves when not its mode's (a study's
    /// configuration).
    pub series: Option<String>,
}

/// A result directory: results.json's header (its `runs` left empty) and every run.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub header: ResultsDoc,
    pub runs: Vec<LoadedRun>,
}

/// Read `path` (requests.jsonl) record by record; errors name the file and line. A last
/// line cut short (no newline, not a record: the writer died mid-line) is dropped with a
/// warning; a bad line anywhere else is an error.
pub fn for_each_record(
    path: &Path,
    f: impl FnMut(RequestRecord) -> Result<(), Error>,
) -> Result<(), Error> {
    if let Some(warning) = read_each_record(path, f)? {
        errln!("warning: {warning}");
    }
    Ok(())
}

/// `for_each_record`, returning the warning about a dropped torn last line.
fn read_each_record(
    path: &Path,
    mut f: impl FnMut(RequestRecord) -> Result<(), Error>,
) -> Result<Option<String>, Error> {
    let file = std::fs::File::open(path).map_err(|e| {
        Error::Input(format!(
            "{}: {e} (expected a directory written with --output-dir)",
            path.display()
        ))
    })?;
    let mut reader = BufReader::new(file);
    let mut bytes = Vec::new();
    for number in 1.. {
        bytes.clear();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| Error::Input(format!("{}:{number}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        let torn = bytes.last() != Some(&b'\n');
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|e| format!("not UTF-8: {e}"))
            .and_then(|line| match line.trim() {
                "" => Ok(None),
                line => RequestRecord::parse_json_line(line).map(Some),
            });
        match parsed {
            Ok(Some(rec)) => f(rec)?,
            Ok(None) => {}
            // Only the last line can lack its newline.
            Err(e) if torn => {
                return Ok(Some(format!(
                    "{}:{number}: the last line is cut short, as when the process writing it ends mid-line ({e}); dropped",
                    path.display()
                )));
            }
            Err(e) => return Err(Error::Input(format!("{}:{number}: {e}", path.display()))),
        }
    }
    Ok(None)
}

/// DIR/results.json parsed, or `None` when there is none (or it cannot be read).
pub fn read_results_json(dir: &Path) -> Result<Option<ResultsDoc>, Error> {
    let path = dir.join("results.json");
    match ResultsDoc::read(&path) {
        Ok(doc) => Ok(Some(doc)),
        Err(ReadError::Io(_)) => Ok(None),
        Err(e) => Err(e.at(&path)),
    }
}

/// The SLO a saved summary's goodput was computed under.
pub fn saved_slo(summary: &Summary) -> Option<Slo> {
    let slo = summary.goodput.as_ref()?.slo.clone();
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
    let has_results = results.is_some();
    let mut header = results.unwrap_or_default();
    let saved_runs = std::mem::take(&mut header.runs);
    let runs = order
        .into_iter()
        .zip(data)
        .map(|(label, d)| {
            let meta = saved_runs.iter().find(|r| r.label == label);
            let own_slo = match how.slo {
                None if how.saved_slo => meta.and_then(|m| saved_slo(&m.summary)),
                _ => None,
            };
            let slo = how.slo.or(own_slo.as_ref());
            let params = meta.map(|m| m.params.clone()).unwrap_or_default();
            let mode = meta.map(|m| m.mode.clone()).unwrap_or_default();
            // The steady state and slices from the saved mode and params, as the live
            // run computed them.
            let saved_slices = meta.and_then(|m| m.summary.slices.as_ref());
            let shape = RunShape {
                pacing: params.pacing(&mode),
                slice_us: how.slice_us.or(saved_slices.map(|s| s.slice_us())),
            };
            let mut summary = summarize(&d, how.percentiles)
                .with_goodput(&d, slo)
                .with_shape(&d, &shape);
            // Server metrics cannot be recomputed from the records: keep them.
            summary.server_metrics = meta.and_then(|m| m.summary.server_metrics.clone());
            summary.spec_decode = meta.and_then(|m| m.summary.spec_decode.clone());
            if let Some(m) = meta {
                summary.metric_sources = m.summary.metric_sources.clone();
                // Per output token as the records count them now.
                summary.energy = crate::metrics::server::energy::of_summary(&summary);
                // Nor can what the live process saw of itself (its CPU, its limits) and the
                // flags raised from it; those the records give again are said once.
                summary.client = m.summary.client.clone();
                summary.profile = m.summary.profile.clone();
                let live = m.summary.validity.iter();
                for f in live.filter(|f| !FROM_RECORDS.contains(&f.check.as_str())) {
                    crate::metrics::validity::raise(&mut summary.validity, f.clone());
                }
            }
            let mut saved = SavedRun {
                mode,
                params,
                started: meta.map(|m| m.started.clone()).unwrap_or_default(),
                started_unix: meta.map_or(0.0, |m| m.started_unix),
                complete: meta.and_then(|m| m.complete),
                incomplete_reason: meta.and_then(|m| m.incomplete_reason.clone()),
                requests_planned: meta.and_then(|m| m.requests_planned),
                requests_sent: meta.and_then(|m| m.requests_sent),
                label,
                summary,
            };
            // results.json is rewritten as each run ends: records of a run it does not
            // list are those of a run the process never finished.
            if has_results && meta.is_none() {
                saved.complete = Some(false);
                saved.incomplete_reason = Some(
                    "the process ended before the run did (the run is not in results.json)".into(),
                );
                saved.requests_sent = Some(d.len() as u64);
            }
            LoadedRun {
                saved,
                data: d,
                series: None,
            }
        })
        .collect();
    Ok(Loaded { header, runs })
}

/// The runs of a result directory, recomputed from its records, in file order.
pub fn reanalyze(
    dir: &Path,
    percentiles: &[f64],
    slo: Option<&Slo>,
) -> Result<(ResultsDoc, Vec<SavedRun>), Error> {
    reanalyze_with(
        dir,
        Reanalysis {
            percentiles,
            slo,
            ..Reanalysis::default()
        },
    )
}

/// `reanalyze`, as `how` says (`saved_slo` aside: `report` uses the SLO given).
pub fn reanalyze_with(dir: &Path, how: Reanalysis) -> Result<(ResultsDoc, Vec<SavedRun>), Error> {
    let loaded = load(
        dir,
        Reanalysis {
            saved_slo: false,
            ..how
        },
    )?;
    let runs = loaded.runs.into_iter().map(|r| r.saved).collect();
    Ok((loaded.header, runs))
}

/// Print every run's table; with `rewrite`, also rewrite results.json and summary.csv.
/// A capacity directory given `--slo` or `attainment` also gets its probes judged again
/// (and, with `rewrite`, its `capacity` object updated).
pub fn report(
    dir: &Path,
    how: Reanalysis,
    rewrite: bool,
    attainment: Option<f64>,
) -> Result<Vec<SavedRun>, Error> {
    // --attainment alone judges the probes under the SLO they ran with.
    let loaded = load(
        dir,
        Reanalysis {
            saved_slo: attainment.is_some() && how.slo.is_none(),
            ..how
        },
    )?;
    let mut doc = loaded.header;
    let runs: Vec<SavedRun> = loaded.runs.into_iter().map(|r| r.saved).collect();
    let capacity = rejudged_capacity(dir, &doc, &runs, how.slo, attainment)?;
    for run in &runs {
        outln!("{}", render_saved_in(run, doc.metadata.as_ref()));
    }
    for note in header_notes(&doc) {
        errln!("{note}");
    }
    if let Some(c) = &capacity {
        out!("{}", crate::capacity::reanalysis::render(c));
    }
    // Recomputed from the runs just summarised, not read from the saved `repeats`.
    let levels = repeat_levels(&runs);
    for level in &levels {
        outln!("{}", level.render());
    }
    if rewrite {
        doc.runs = runs.clone();
        if capacity.is_some() {
            doc.capacity = capacity;
        }
        doc.interactivity = super::pareto::of_runs(&doc.runs, doc.gpus);
        doc.repeats = to_docs(&levels);
        write_results_json(dir, &doc)
            .and_then(|_| write_summary_csv(dir, &runs))
            .map_err(|e| {
                Error::Output(format!("cannot rewrite results in {}: {e}", dir.display()))
            })?;
    }
    Ok(runs)
}

/// The capacity search judged again, when asked (`slo` or `attainment`) and there is one.
fn rejudged_capacity(
    dir: &Path,
    doc: &ResultsDoc,
    runs: &[SavedRun],
    slo: Option<&Slo>,
    attainment: Option<f64>,
) -> Result<Option<crate::report::document::CapacityDoc>, Error> {
    let Some(old) = &doc.capacity else {
        return match attainment {
            Some(_) => Err(Error::Input(format!(
                "--attainment: {} holds no capacity search (its results.json has no capacity object)",
                dir.display()
            ))),
            None => Ok(None),
        };
    };
    if slo.is_none() && attainment.is_none() {
        return Ok(None);
    }
    let slo_text = slo.map_or_else(|| old.slo.clone(), |s| s.to_string());
    let target = attainment.unwrap_or(old.attainment_target);
    Ok(Some(crate::capacity::reanalysis::rejudge(
        old, runs, slo_text, target,
    )))
}

/// What a saved session warned about, said again when it is reported: output counted
/// with a tokenizer nobody chose, dataset prompts cut.
pub fn header_notes(doc: &ResultsDoc) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = &doc.output_tokens_counted_with {
        out.push(c.warning.clone());
    }
    if let Some(t) = &doc.truncated_prompts {
        out.push(format!(
            "--max-input-length {}: {} of {} dataset prompts were cut to {} tokens",
            t.max_input_length, t.truncated, t.prompts, t.max_input_length
        ));
    }
    out
}

#[cfg(test)]
#[path = "tests_reanalyze.rs"]
mod tests;
