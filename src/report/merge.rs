//! `servescope merge DIR... -o OUT`: one workload split across client processes or
//! machines, merged into one result directory. Runs are matched by label (every
//! directory must hold the same runs, of the same modes) and lined up by their
//! recorded wall-clock starts: each directory's records are shifted by its run's start
//! minus the earliest start of that run, and every summary is recomputed from the
//! merged records (never averaged). Lining up is as good as the machines' clocks agree
//! (NTP: typically within a millisecond or so).
//!
//! Shards (`--shard I/N`) keep their request ids, which are already the indexes in the
//! whole workload; a duplicate shard, shards of different N, or shards mixed with
//! unsharded directories are errors, a missing shard or a different seed or run
//! settings a warning. Other directories (independent processes) have their request
//! ids renumbered.

use std::path::{Path, PathBuf};

use super::document::{
    CountedWith, MergedFrom, ResultsDoc, RoundsDoc, RunParams, SCHEMA_VERSION, SavedRun, ShardsDoc,
    TruncatedPrompts,
};
use super::merge_inputs::{
    Input, check_output, check_runs_match, check_shards, read_input, warn_other_servers,
};
use super::reanalyze::{for_each_record, saved_slo};
use super::results::{write_results_json, write_summary_csv};
use super::rounds::round_comparisons;
use super::table::render_saved_in;
use crate::error::Error;
use crate::metrics::ordered_map::OrderedMap;
use crate::metrics::slo::Slo;
use crate::metrics::steady::RunShape;
use crate::metrics::{RunData, summarize};
use crate::record::RequestRecord;

/// What to merge and how.
#[derive(Clone, Copy, Debug)]
pub struct MergeOptions<'a> {
    pub dirs: &'a [PathBuf],
    pub out: &'a Path,
    pub percentiles: &'a [f64],
    /// Goodput under this SLO; without one, under the SLO the runs were saved with.
    pub slo: Option<&'a Slo>,
    /// The merge's own command line, saved as the merged results' `command`.
    pub argv: &'a [String],
    /// OUT may hold results already: they are replaced.
    pub overwrite: bool,
}

/// A record moved `offset` µs later on its run's clock.
fn shifted(mut r: RequestRecord, offset: u64) -> RequestRecord {
    r.scheduled_at = r.scheduled_at.map(|t| t + offset);
    r.started_at += offset;
    r.ended_at += offset;
    for e in &mut r.events {
        *e += offset;
    }
    r
}

/// Merge; returns the merged runs (their summaries recomputed).
pub fn merge(opts: MergeOptions) -> Result<Vec<SavedRun>, Error> {
    check_output(opts.out, opts.dirs, opts.overwrite)?;
    let inputs: Vec<Input> = opts
        .dirs
        .iter()
        .map(|d| read_input(d))
        .collect::<Result<_, _>>()?;
    check_runs_match(&inputs)?;
    let shards = check_shards(&inputs)?;
    warn_other_servers(&inputs);
    let labels: Vec<String> = inputs[0].doc.runs.iter().map(|r| r.label.clone()).collect();
    let mut records = read_records(&inputs, &labels)?;

    let mut out_records = String::new();
    let mut saved: Vec<SavedRun> = Vec::new();
    let mut offsets: Vec<OrderedMap<String, f64>> = vec![OrderedMap::default(); inputs.len()];
    let mut had_server_metrics = false;
    for (run, label) in labels.iter().enumerate() {
        let parts: Vec<&SavedRun> = inputs
            .iter()
            .map(|i| i.doc.run(label).expect("checked"))
            .collect();
        // Other sources and the GPUs' energy neither: each shard saw the same GPUs.
        had_server_metrics |= parts.iter().any(|p| {
            let s = &p.summary;
            s.server_metrics.is_some() || !s.metric_sources.is_empty() || s.energy.is_some()
        });
        let t0 = parts
            .iter()
            .map(|r| r.started_unix)
            .fold(f64::INFINITY, f64::min);
        for (k, p) in parts.iter().enumerate() {
            offsets[k].insert(label.clone(), ((p.started_unix - t0) * 1e6).round() / 1e6);
        }
        let recs = lined_up(label, &parts, std::mem::take(&mut records[run]), shards)?;
        let mut data = RunData::default();
        for r in &recs {
            data.push(r);
            r.write_json_line(&mut out_records);
        }
        saved.push(merged_run(
            &parts,
            t0,
            &data,
            // Measured requests: warm-up records are kept in the file but counted nowhere.
            data.len(),
            &opts,
            inputs.len(),
        ));
        // Only one process profiles a sharded run (the first shard): keep what it did.
        if let Some(run) = saved.last_mut() {
            run.summary.profile = parts.iter().find_map(|p| p.summary.profile.clone());
        }
    }

    let mut doc = merged_header(&inputs, offsets, opts.argv, &saved);
    if let Some(n) = shards {
        let mut merged: Vec<u32> = inputs
            .iter()
            .filter_map(|i| i.shard)
            .map(|s| s.index)
            .collect();
        merged.sort_unstable();
        doc.shards = Some(ShardsDoc { count: n, merged });
    }
    doc.runs = saved;
    // Of the merged runs, not of the first part's.
    doc.interactivity = super::pareto::of_runs(&doc.runs, doc.gpus);
    doc.repeats = super::repeats::to_docs(&super::repeats::repeat_levels(&doc.runs));
    write_merged(opts.out, &out_records, &doc)?;
    for run in &doc.runs {
        outln!("{}", render_saved_in(run, doc.metadata.as_ref()));
    }
    if had_server_metrics {
        errln!(
            "note: server metrics (and metrics sources, energy) are not merged (each process scraped the server on its own); see the input directories"
        );
    }
    errln!(
        "Merged {} directories into {}",
        inputs.len(),
        opts.out.display()
    );
    Ok(doc.runs)
}

/// records[run][input]: each input's records of each run.
fn read_records(
    inputs: &[Input],
    labels: &[String],
) -> Result<Vec<Vec<Vec<RequestRecord>>>, Error> {
    let mut records: Vec<Vec<Vec<RequestRecord>>> =
        vec![vec![Vec::new(); inputs.len()]; labels.len()];
    for (k, input) in inputs.iter().enumerate() {
        let path = input.dir.join("requests.jsonl");
        for_each_record(&path, |rec| {
            let run = labels.iter().position(|l| **l == *rec.run).ok_or_else(|| {
                Error::Input(format!(
                    "{}: records of run {:?}, which its results.json does not list",
                    path.display(),
                    &*rec.run
                ))
            })?;
            records[run][k].push(rec);
            Ok(())
        })?;
    }
    Ok(records)
}

/// One run's records of every input on one clock (each shifted by its part's start
/// after the earliest), with unique ids, in the order requests ended.
fn lined_up(
    label: &str,
    parts: &[&SavedRun],
    records: Vec<Vec<RequestRecord>>,
    shards: Option<u32>,
) -> Result<Vec<RequestRecord>, Error> {
    let t0 = parts
        .iter()
        .map(|r| r.started_unix)
        .fold(f64::INFINITY, f64::min);
    let mut merged: Vec<(usize, RequestRecord)> = Vec::new();
    for (k, recs) in records.into_iter().enumerate() {
        let offset = ((parts[k].started_unix - t0) * 1e6).round() as u64;
        merged.extend(recs.into_iter().map(|r| (k, shifted(r, offset))));
    }
    let mut recs: Vec<RequestRecord> = if shards.is_some() {
        // A shard's ids are indexes in the whole workload: kept, and unique.
        let mut recs: Vec<RequestRecord> = merged.into_iter().map(|(_, r)| r).collect();
        recs.sort_by_key(|r| r.id);
        if let Some(w) = recs.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(Error::Input(format!(
                "run {label:?}: request {} is in more than one shard; were these shards of one workload?",
                w[0].id
            )));
        }
        recs
    } else {
        // New ids by start time (ties: input order, then old id), unique in the run.
        merged.sort_by_key(|(k, r)| (r.started_at, *k, r.id));
        merged
            .into_iter()
            .enumerate()
            .map(|(id, (_, mut r))| {
                r.id = id as u64;
                r
            })
            .collect()
    };
    // Written in the order requests ended, as a live run appends them.
    recs.sort_by_key(|r| (r.ended_at, r.id));
    Ok(recs)
}

/// The merged run: the first part's mode and settings (no shard; the merged count),
/// started at the earliest part's start, its summary recomputed from `data`.
fn merged_run(
    parts: &[&SavedRun],
    t0: f64,
    data: &RunData,
    requests: usize,
    opts: &MergeOptions,
    processes: usize,
) -> SavedRun {
    let own_slo = saved_slo(&parts[0].summary);
    let mut params = RunParams {
        shard: None,
        merged_processes: Some(processes),
        ..parts[0].params.clone()
    };
    let shape = RunShape {
        pacing: params.pacing(&parts[0].mode),
        // Sliced as the parts were.
        slice_us: parts[0].summary.slices.as_ref().map(|s| s.slice_us()),
    };
    let mut summary = summarize(data, opts.percentiles)
        .with_goodput(data, opts.slo.or(own_slo.as_ref()))
        .with_shape(data, &shape);
    // What each process saw of itself (its CPU, its limits): one busy client is enough
    // to doubt the merged run. Its CPU figures stay with each part.
    let live = parts.iter().flat_map(|p| &p.summary.validity);
    for f in live.filter(|f| !crate::metrics::run_checks::FROM_RECORDS.contains(&f.check.as_str()))
    {
        crate::metrics::validity::raise(&mut summary.validity, f.clone());
    }
    if params.num_requests.is_some() {
        params.num_requests = Some(requests);
    }
    SavedRun {
        label: parts[0].label.clone(),
        mode: parts[0].mode.clone(),
        params,
        started: humantime::format_rfc3339_micros(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t0.max(0.0)),
        )
        .to_string(),
        started_unix: t0,
        complete: merged_complete(parts),
        incomplete_reason: merged_reason(parts),
        requests_planned: parts.iter().map(|p| p.requests_planned).sum(),
        requests_sent: parts
            .iter()
            .any(|p| p.requests_sent.is_some())
            .then_some(requests as u64),
        summary,
    }
}

/// Complete when every part is; unknown when no part says.
fn merged_complete(parts: &[&SavedRun]) -> Option<bool> {
    let said: Vec<bool> = parts.iter().filter_map(|p| p.complete).collect();
    (!said.is_empty()).then(|| said.iter().all(|&c| c))
}

/// The incomplete parts' reasons, each once.
fn merged_reason(parts: &[&SavedRun]) -> Option<String> {
    let mut reasons: Vec<&str> = Vec::new();
    for p in parts.iter().filter(|p| !p.is_complete()) {
        let why = p
            .incomplete_reason
            .as_deref()
            .unwrap_or("a part did not finish");
        if !reasons.contains(&why) {
            reasons.push(why);
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

fn write_merged(out: &Path, records: &str, doc: &ResultsDoc) -> Result<(), Error> {
    std::fs::create_dir_all(out)
        .map_err(|e| Error::Output(format!("-o {}: {e}", out.display())))?;
    let write_err =
        |e: std::io::Error| Error::Output(format!("cannot write to {}: {e}", out.display()));
    std::fs::write(out.join("requests.jsonl"), records).map_err(write_err)?;
    write_results_json(out, doc).map_err(write_err)?;
    write_summary_csv(out, &doc.runs).map_err(write_err)
}

/// The first input's header, with the earliest start, the merge's own command, the
/// recomputed dual-round comparison, and where each part came from.
fn merged_header(
    inputs: &[Input],
    offsets: Vec<OrderedMap<String, f64>>,
    argv: &[String],
    saved: &[SavedRun],
) -> ResultsDoc {
    let first = &inputs[0].doc;
    let earliest = inputs
        .iter()
        .filter_map(|i| i.doc.started.clone())
        .min_by_key(|s| humantime::parse_rfc3339_weak(s).ok());
    let merged_from = inputs
        .iter()
        .zip(offsets)
        .map(|(i, run_offsets_s)| MergedFrom {
            dir: i.dir.display().to_string(),
            started: i.doc.started.clone(),
            endpoint: i.doc.endpoint.clone(),
            model: i.doc.model.clone(),
            command: i.doc.command.clone(),
            shard: i.doc.shard,
            run_offsets_s,
        })
        .collect();
    let rounds: Vec<RoundsDoc> = round_comparisons(saved)
        .iter()
        .map(|c| c.to_doc())
        .collect();
    ResultsDoc {
        schema_version: Some(SCHEMA_VERSION),
        started: earliest.or_else(|| first.started.clone()),
        command: Some(argv.to_vec()),
        shard: None,
        merged_from: Some(merged_from),
        dual_round: (!rounds.is_empty()).then_some(rounds),
        shards: None,
        // Each part's own history; the merged directory is one new session.
        appended: None,
        output_tokens_counted_with: counted_with(inputs),
        truncated_prompts: truncated(inputs),
        runs: Vec::new(),
        ..first.clone()
    }
}

/// The default-tokenizer warning of any part, over the runs of every part that had it.
fn counted_with(inputs: &[Input]) -> Option<CountedWith> {
    let mut parts = inputs
        .iter()
        .filter_map(|i| i.doc.output_tokens_counted_with.as_ref());
    let mut merged = parts.next()?.clone();
    for c in parts {
        for run in &c.runs {
            if !merged.runs.contains(run) {
                merged.runs.push(run.clone());
            }
        }
        merged.server_can_tokenize |= c.server_can_tokenize;
    }
    Some(merged)
}

/// The prompts `--max-input-length` cut: every shard reads (and cuts) the whole dataset,
/// so the parts' counts are not added; the largest stands for all.
fn truncated(inputs: &[Input]) -> Option<TruncatedPrompts> {
    inputs
        .iter()
        .filter_map(|i| i.doc.truncated_prompts.clone())
        .reduce(|a, b| TruncatedPrompts {
            max_input_length: a.max_input_length.max(b.max_input_length),
            truncated: a.truncated.max(b.truncated),
            prompts: a.prompts.max(b.prompts),
        })
}

#[cfg(test)]
#[path = "tests_merge.rs"]
mod tests;
