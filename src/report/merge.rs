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

use serde_json::{Map, Value, json};

use super::reanalyze::{for_each_record, read_results_json, saved_slo};
use super::results::{SavedRun, document, write_results_json, write_summary_csv};
use super::rounds::round_comparisons;
use super::table::render;
use crate::error::Error;
use crate::metrics::slo::Slo;
use crate::metrics::{RunData, summarize};
use crate::record::RequestRecord;
use crate::shard::Shard;

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
}

/// One run of one input directory, from its results.json.
#[derive(Clone, Debug)]
struct InputRun {
    label: String,
    mode: String,
    params: Map<String, Value>,
    started_unix: f64,
    summary: Value,
}

#[derive(Debug)]
struct Input {
    dir: PathBuf,
    header: Map<String, Value>,
    runs: Vec<InputRun>,
    /// `--shard` it ran with, if any.
    shard: Option<Shard>,
}

fn read_input(dir: &Path) -> Result<Input, Error> {
    let file = dir.join("results.json");
    let doc = read_results_json(dir)?.ok_or_else(|| {
        Error::Input(format!(
            "{}: missing (expected a result directory written with --output-dir)",
            file.display()
        ))
    })?;
    let bad = |what: String| Error::Input(format!("{}: {what}", file.display()));
    let list = doc["runs"]
        .as_array()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("no runs (expected a \"runs\" list)".into()))?;
    let mut runs = Vec::new();
    for r in list {
        let label = r["label"]
            .as_str()
            .ok_or_else(|| bad("a run without a label".into()))?
            .to_string();
        // The per-run wall-clock start; older files may have only the RFC 3339 text.
        let started_unix = match r["started_unix"].as_f64().filter(|t| *t > 0.0) {
            Some(t) => t,
            None => r["started"]
                .as_str()
                .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
                .ok_or_else(|| {
                    bad(format!(
                        "run {label:?} has no wall-clock start (started_unix or started), so it cannot be lined up"
                    ))
                })?,
        };
        runs.push(InputRun {
            mode: r["mode"].as_str().unwrap_or_default().to_string(),
            params: r["params"].as_object().cloned().unwrap_or_default(),
            summary: r["summary"].clone(),
            started_unix,
            label,
        });
    }
    let mut header = match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    header.remove("runs");
    let shard = match header.get("shard") {
        None | Some(Value::Null) => None,
        Some(v) => Some(Shard::from_json(v).ok_or_else(|| {
            bad(format!(
                "\"shard\": {v} is not {{\"index\": I, \"count\": N}} with I < N"
            ))
        })?),
    };
    Ok(Input {
        dir: dir.to_path_buf(),
        header,
        runs,
        shard,
    })
}

/// Shards must be all of the inputs, of one N, each once; returns N (None: no
/// shards). A missing shard, or a different seed or run settings, is only a warning.
fn check_shards(inputs: &[Input]) -> Result<Option<u32>, Error> {
    let Some(first) = inputs.iter().find(|i| i.shard.is_some()) else {
        return Ok(None);
    };
    let n = first.shard.map_or(1, |s| s.count);
    for (k, i) in inputs.iter().enumerate() {
        let Some(s) = i.shard else {
            return Err(Error::Input(format!(
                "{} ran without --shard, but {} is shard {}; merge the shards of one workload, or only unsharded directories",
                i.dir.display(),
                first.dir.display(),
                first.shard.map(|s| s.to_string()).unwrap_or_default()
            )));
        };
        if s.count != n {
            return Err(Error::Input(format!(
                "{} is shard {s} but {} is of {n} shards; merge the shards of one split",
                i.dir.display(),
                first.dir.display()
            )));
        }
        if let Some(d) = inputs[..k].iter().find(|d| d.shard == Some(s)) {
            return Err(Error::Input(format!(
                "{} and {} are both shard {s}; its requests would count twice",
                d.dir.display(),
                i.dir.display()
            )));
        }
    }
    let missing: Vec<String> = (0..n)
        .filter(|&index| {
            !inputs
                .iter()
                .any(|i| i.shard.is_some_and(|s| s.index == index))
        })
        .map(|index| format!("{index}/{n}"))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "warning: shard {} missing; the merged runs lack their requests",
            missing.join(", ")
        );
    }
    // Same workload: the same seed and settings (a trace may sit at another path).
    let settings = |p: &Map<String, Value>| {
        let mut p = p.clone();
        p.remove("shard");
        p.remove("trace");
        p
    };
    for i in &inputs[1..] {
        if i.header.get("seed") != inputs[0].header.get("seed") {
            eprintln!(
                "warning: {} ran with seed {}, {} with {}: not the same workload's shards",
                i.dir.display(),
                i.header.get("seed").unwrap_or(&Value::Null),
                inputs[0].dir.display(),
                inputs[0].header.get("seed").unwrap_or(&Value::Null)
            );
        }
        for r in &i.runs {
            let f = inputs[0].runs.iter().find(|x| x.label == r.label);
            if f.is_some_and(|f| settings(&f.params) != settings(&r.params)) {
                eprintln!(
                    "warning: run {:?} has other settings in {} than in {}: not the same workload's shards",
                    r.label,
                    i.dir.display(),
                    inputs[0].dir.display()
                );
            }
        }
    }
    Ok(Some(n))
}

/// Every input must hold the runs of the first, with the same modes.
fn check_runs_match(inputs: &[Input]) -> Result<(), Error> {
    let first = &inputs[0];
    let labels = |i: &Input| i.runs.iter().map(|r| r.label.clone()).collect::<Vec<_>>();
    for other in &inputs[1..] {
        let missing: Vec<String> = labels(first)
            .into_iter()
            .filter(|l| !other.runs.iter().any(|r| r.label == *l))
            .collect();
        let extra: Vec<String> = labels(other)
            .into_iter()
            .filter(|l| !first.runs.iter().any(|r| r.label == *l))
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            return Err(Error::Input(format!(
                "{}: its runs differ from {}'s (missing: [{}]; not in {}: [{}]); merge directories of the same workload",
                other.dir.display(),
                first.dir.display(),
                missing.join(", "),
                first.dir.display(),
                extra.join(", ")
            )));
        }
        for r in &other.runs {
            let f = first
                .runs
                .iter()
                .find(|x| x.label == r.label)
                .expect("checked above");
            if f.mode != r.mode {
                return Err(Error::Input(format!(
                    "{}: run {:?} is a {} run, but a {} run in {}",
                    other.dir.display(),
                    r.label,
                    r.mode,
                    f.mode,
                    first.dir.display()
                )));
            }
        }
    }
    Ok(())
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
    check_output(opts.out, opts.dirs)?;
    let inputs: Vec<Input> = opts
        .dirs
        .iter()
        .map(|d| read_input(d))
        .collect::<Result<_, _>>()?;
    check_runs_match(&inputs)?;
    let shards = check_shards(&inputs)?;
    for i in &inputs[1..] {
        for key in ["model", "endpoint"] {
            if i.header.get(key) != inputs[0].header.get(key) {
                eprintln!(
                    "warning: {} {} differs from {}'s {}; merging anyway",
                    i.dir.display(),
                    key,
                    inputs[0].dir.display(),
                    inputs[0].header.get(key).unwrap_or(&Value::Null)
                );
            }
        }
    }
    let labels: Vec<String> = inputs[0].runs.iter().map(|r| r.label.clone()).collect();
    // records[run][input]: each input's records of each run.
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

    let mut out_records = String::new();
    let mut saved: Vec<SavedRun> = Vec::new();
    let mut offsets: Vec<Map<String, Value>> = vec![Map::new(); inputs.len()];
    let mut had_server_metrics = false;
    for (run, label) in labels.iter().enumerate() {
        let parts: Vec<&InputRun> = inputs
            .iter()
            .map(|i| i.runs.iter().find(|r| r.label == *label).expect("checked"))
            .collect();
        let t0 = parts
            .iter()
            .map(|r| r.started_unix)
            .fold(f64::INFINITY, f64::min);
        let mut merged: Vec<(usize, RequestRecord)> = Vec::new();
        for (k, recs) in std::mem::take(&mut records[run]).into_iter().enumerate() {
            let offset_s = parts[k].started_unix - t0;
            offsets[k].insert(label.clone(), json!((offset_s * 1e6).round() / 1e6));
            let offset = (offset_s * 1e6).round() as u64;
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
        let mut data = RunData::default();
        for r in &recs {
            data.push(r);
            r.write_json_line(&mut out_records);
        }
        let own_slo = saved_slo(&parts[0].summary);
        let summary =
            summarize(&data, opts.percentiles).with_goodput(&data, opts.slo.or(own_slo.as_ref()));
        had_server_metrics |= parts
            .iter()
            .any(|p| p.summary.get("server_metrics").is_some());
        let mut params = parts[0].params.clone();
        params.remove("shard");
        if params.contains_key("num_requests") {
            params.insert("num_requests".into(), json!(recs.len()));
        }
        params.insert("merged_processes".into(), json!(inputs.len()));
        saved.push(SavedRun {
            label: label.clone(),
            mode: parts[0].mode.clone(),
            params,
            started: humantime::format_rfc3339_micros(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t0.max(0.0)),
            )
            .to_string(),
            started_unix: t0,
            summary,
        });
    }

    let mut header = merged_header(&inputs, &offsets, opts.argv, &saved);
    if let Some(n) = shards {
        let mut merged: Vec<u32> = inputs
            .iter()
            .filter_map(|i| i.shard)
            .map(|s| s.index)
            .collect();
        merged.sort_unstable();
        header.insert("shards".into(), json!({"count": n, "merged": merged}));
    }
    std::fs::create_dir_all(opts.out)
        .map_err(|e| Error::Output(format!("-o {}: {e}", opts.out.display())))?;
    let write_err =
        |e: std::io::Error| Error::Output(format!("cannot write to {}: {e}", opts.out.display()));
    std::fs::write(opts.out.join("requests.jsonl"), out_records).map_err(write_err)?;
    write_results_json(opts.out, &document(&header, &saved)).map_err(write_err)?;
    write_summary_csv(opts.out, &saved).map_err(write_err)?;
    for run in &saved {
        println!("{}", render(&run.label, &run.summary));
    }
    if had_server_metrics {
        eprintln!(
            "note: server metrics are not merged (each process scraped the server on its own); see the input directories"
        );
    }
    eprintln!(
        "Merged {} directories into {}",
        inputs.len(),
        opts.out.display()
    );
    Ok(saved)
}

/// The first input's header, with the earliest start, the merge's own command, the
/// recomputed dual-round comparison, and where each part came from.
fn merged_header(
    inputs: &[Input],
    offsets: &[Map<String, Value>],
    argv: &[String],
    saved: &[SavedRun],
) -> Map<String, Value> {
    let mut header = inputs[0].header.clone();
    header.remove("dual_round");
    header.remove("shard");
    let earliest = inputs
        .iter()
        .filter_map(|i| i.header.get("started").and_then(|s| s.as_str()))
        .min_by_key(|s| humantime::parse_rfc3339_weak(s).ok());
    if let Some(s) = earliest {
        header.insert("started".into(), json!(s));
    }
    header.insert("command".into(), json!(argv));
    let sources: Vec<Value> = inputs
        .iter()
        .zip(offsets)
        .map(|(i, off)| {
            json!({
                "dir": i.dir.display().to_string(),
                "started": i.header.get("started"),
                "endpoint": i.header.get("endpoint"),
                "model": i.header.get("model"),
                "command": i.header.get("command"),
                "shard": i.header.get("shard"),
                "run_offsets_s": off,
            })
        })
        .collect();
    header.insert("merged_from".into(), Value::Array(sources));
    let list: Vec<(&str, &Map<String, Value>, &crate::metrics::Summary)> = saved
        .iter()
        .map(|r| (r.mode.as_str(), &r.params, &r.summary))
        .collect();
    let rounds: Vec<Value> = round_comparisons(&list)
        .iter()
        .map(|c| c.to_json())
        .collect();
    if !rounds.is_empty() {
        header.insert("dual_round".into(), Value::Array(rounds));
    }
    header
}

/// OUT must not be an input, nor hold results already (they would be overwritten); no
/// input may be given twice (its records would count twice).
fn check_output(out: &Path, dirs: &[PathBuf]) -> Result<(), Error> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    for (i, d) in dirs.iter().enumerate() {
        if let Some(c) = canon(d)
            && dirs[..i].iter().any(|e| canon(e).as_ref() == Some(&c))
        {
            return Err(Error::Input(format!(
                "{}: given twice; each directory's records would be counted twice",
                d.display()
            )));
        }
    }
    if let Some(o) = canon(out)
        && dirs.iter().any(|d| canon(d).as_ref() == Some(&o))
    {
        return Err(Error::Input(format!(
            "-o {}: is one of the directories being merged; choose a new directory",
            out.display()
        )));
    }
    for f in ["requests.jsonl", "results.json"] {
        if out.join(f).exists() {
            return Err(Error::Input(format!(
                "-o {}: already holds {f}; merge into a new or empty directory",
                out.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(run: &str, id: u64, started: u64, first: u64, ended: u64) -> RequestRecord {
        RequestRecord {
            id,
            scheduled_at: Some(started.saturating_sub(10)),
            ..RequestRecord::ok_for_test(run, started, vec![first, ended], ended, 4, 2)
        }
    }

    /// A result directory with one run `label` started at `t0` (UNIX s).
    fn write_dir(dir: &Path, label: &str, mode: &str, t0: f64, recs: &[RequestRecord]) {
        let mut text = String::new();
        recs.iter().for_each(|r| r.write_json_line(&mut text));
        std::fs::write(dir.join("requests.jsonl"), text).unwrap();
        let doc = json!({
            "tool": {"name": "servescope", "version": "0.1.0"},
            "started": "2026-11-22T10:00:00Z", "model": "m", "endpoint": "http://x",
            "runs": [{"label": label, "mode": mode, "params": {"rate": 5.0, "num_requests": recs.len()},
                      "started": "", "started_unix": t0, "summary": {}}]
        });
        std::fs::write(dir.join("results.json"), doc.to_string()).unwrap();
    }

    fn opts<'a>(dirs: &'a [PathBuf], out: &'a Path) -> MergeOptions<'a> {
        MergeOptions {
            dirs,
            out,
            percentiles: &[],
            slo: None,
            argv: &[],
        }
    }

    #[test]
    fn records_are_shifted_by_the_wall_clock_offset_and_renumbered() {
        let (a, b, out) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        // A started at t = 1000 s, B 0.5 s later; both numbered their requests 0, 1.
        write_dir(
            a.path(),
            "rate 5",
            "rate",
            1000.0,
            &[
                rec("rate 5", 0, 0, 100_000, 200_000),
                rec("rate 5", 1, 300_000, 350_000, 400_000),
            ],
        );
        write_dir(
            b.path(),
            "rate 5",
            "rate",
            1000.5,
            &[
                rec("rate 5", 0, 0, 50_000, 100_000),
                rec("rate 5", 1, 50_000, 150_000, 900_000),
            ],
        );
        let dirs = vec![b.path().to_path_buf(), a.path().to_path_buf()];
        let target = out.path().join("merged");
        let runs = merge(opts(&dirs, &target)).unwrap();
        let s = &runs[0].summary;
        assert_eq!(s.total, 4);
        assert_eq!(runs[0].started_unix, 1000.0, "the earliest start");
        // B's requests moved 0.5 s later: [0.5, 0.6) and [0.55, 1.4); A's [0, 0.2)
        // and [0.3, 0.4). Duration from the first schedule (A's request 0 at 0,
        // scheduled at 0 too) to the last end, 1.4 s.
        assert!((s.duration_s - 1.4).abs() < 1e-9, "{}", s.duration_s);
        assert_eq!(s.concurrency.max_in_flight, 2);
        let text = std::fs::read_to_string(target.join("requests.jsonl")).unwrap();
        let recs: Vec<RequestRecord> = text
            .lines()
            .map(|l| RequestRecord::parse_json_line(l).unwrap())
            .collect();
        let mut ids: Vec<u64> = recs.iter().map(|r| r.id).collect();
        ids.sort();
        assert_eq!(ids, [0, 1, 2, 3], "unique ids");
        let by_start: Vec<u64> = {
            let mut v: Vec<&RequestRecord> = recs.iter().collect();
            v.sort_by_key(|r| r.started_at);
            v.iter().map(|r| r.started_at).collect()
        };
        assert_eq!(by_start, [0, 300_000, 500_000, 550_000]);
        let b0 = recs.iter().find(|r| r.started_at == 500_000).unwrap();
        assert_eq!(
            (b0.events[0], b0.ended_at, b0.scheduled_at),
            (550_000, 600_000, Some(500_000))
        );
        assert_eq!(b0.id, 2, "ids by start time");
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(target.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(doc["runs"][0]["params"]["num_requests"], 4);
        assert_eq!(doc["merged_from"][0]["run_offsets_s"]["rate 5"], 0.5);
        assert!(target.join("summary.csv").exists());
        // The merged directory reads back like any other.
        let (_, again) = super::super::reanalyze::reanalyze(&target, &[], None).unwrap();
        assert_eq!(again[0].summary.total, 4);
        // And is not overwritten by a second merge.
        let e = merge(opts(&dirs, &target)).unwrap_err().to_string();
        assert!(e.contains("already holds"), "{e}");
    }

    #[test]
    fn mismatched_runs_and_missing_files_name_the_directory() {
        let (a, b, out) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        write_dir(
            a.path(),
            "rate 5",
            "rate",
            1.0,
            &[rec("rate 5", 0, 0, 1, 2)],
        );
        write_dir(
            b.path(),
            "rate 6",
            "rate",
            1.0,
            &[rec("rate 6", 0, 0, 1, 2)],
        );
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        let e = merge(opts(&dirs, &out.path().join("m"))).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&b.path().display().to_string()) && msg.contains("rate 6"),
            "{msg}"
        );
        assert_eq!(e.exit_code(), 2);

        write_dir(
            b.path(),
            "rate 5",
            "concurrency",
            1.0,
            &[rec("rate 5", 0, 0, 1, 2)],
        );
        let msg = merge(opts(&dirs, &out.path().join("m")))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("is a concurrency run, but a rate run"),
            "{msg}"
        );

        std::fs::remove_file(b.path().join("results.json")).unwrap();
        let msg = merge(opts(&dirs, &out.path().join("m")))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&b.path().join("results.json").display().to_string())
                && msg.contains("missing"),
            "{msg}"
        );

        write_dir(
            b.path(),
            "rate 5",
            "rate",
            1.0,
            &[rec("rate 5", 0, 0, 1, 2)],
        );
        std::fs::write(b.path().join("requests.jsonl"), "{\"run\": 1}\n").unwrap();
        let msg = merge(opts(&dirs, &out.path().join("m")))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("requests.jsonl:1"), "{msg}");
        assert!(!out.path().join("m").exists(), "nothing written on error");

        let msg = merge(opts(&dirs, a.path())).unwrap_err().to_string();
        assert!(msg.contains("one of the directories being merged"), "{msg}");

        let twice = vec![a.path().to_path_buf(), a.path().join(".")];
        let msg = merge(opts(&twice, &out.path().join("m")))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("given twice"), "{msg}");
    }
    /// Mark a directory written by `write_dir` as shard `shard` ("I/N"), with `seed`.
    fn make_shard(dir: &Path, shard: &str, seed: u64) {
        let path = dir.join("results.json");
        let mut doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let s: Shard = shard.parse().unwrap();
        doc["shard"] = s.to_json();
        doc["seed"] = json!(seed);
        doc["runs"][0]["params"]["shard"] = json!({"index": s.index, "count": s.count});
        std::fs::write(&path, doc.to_string()).unwrap();
    }

    #[test]
    fn shards_keep_their_workload_indexes() {
        let (a, b, out) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        // Shard 0/2 sent requests 0 and 2, shard 1/2 requests 1 and 3; both started at
        // the same instant (--start-at).
        let recs = |ids: [u64; 2]| {
            ids.map(|i| rec("rate 5", i, i * 100_000, i * 100_000 + 10, i * 100_000 + 50))
        };
        write_dir(a.path(), "rate 5", "rate", 1000.0, &recs([0, 2]));
        write_dir(b.path(), "rate 5", "rate", 1000.0, &recs([1, 3]));
        make_shard(a.path(), "0/2", 7);
        make_shard(b.path(), "1/2", 7);
        let dirs = vec![b.path().to_path_buf(), a.path().to_path_buf()];
        let target = out.path().join("merged");
        let runs = merge(opts(&dirs, &target)).unwrap();
        assert_eq!(runs[0].summary.total, 4);
        assert!(
            runs[0].params.get("shard").is_none(),
            "{:?}",
            runs[0].params
        );
        let text = std::fs::read_to_string(target.join("requests.jsonl")).unwrap();
        for line in text.lines() {
            let r = RequestRecord::parse_json_line(line).unwrap();
            assert_eq!(
                r.started_at,
                r.id * 100_000,
                "request {} kept its index",
                r.id
            );
        }
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(target.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(doc["shards"], json!({"count": 2, "merged": [0, 1]}));
        assert!(doc.get("shard").is_none());
        assert_eq!(doc["merged_from"][0]["shard"]["index"], 1);

        // The same shard twice, shards of another split, a shard with an unsharded run.
        let c = tempfile::tempdir().unwrap();
        write_dir(c.path(), "rate 5", "rate", 1000.0, &recs([0, 2]));
        make_shard(c.path(), "0/2", 7);
        let dirs = vec![a.path().to_path_buf(), c.path().to_path_buf()];
        let msg = merge(opts(&dirs, &out.path().join("m")))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("are both shard 0/2"), "{msg}");
        make_shard(c.path(), "1/3", 7);
        let msg = merge(opts(&dirs, &out.path().join("m")))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("is shard 1/3 but") && msg.contains("of 2 shards"),
            "{msg}"
        );
        write_dir(c.path(), "rate 5", "rate", 1000.0, &recs([1, 3]));
        let msg = merge(opts(&dirs, &out.path().join("m")))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("ran without --shard"), "{msg}");
        // Shards of another seed merge, with a warning.
        make_shard(c.path(), "1/2", 8);
        assert_eq!(
            merge(opts(&dirs, &out.path().join("m"))).unwrap()[0]
                .summary
                .total,
            4
        );
    }
}
