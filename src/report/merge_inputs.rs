//! The inputs of `servescope merge` and their checks: each directory's results.json
//! read, shards and runs that must agree, and an output that replaces nothing unasked.

use std::path::{Path, PathBuf};

use super::document::{ResultsDoc, RunParams};
use super::reanalyze::read_results_json;
use crate::console::printable;
use crate::error::Error;
use crate::shard::Shard;

#[derive(Debug)]
pub(super) struct Input {
    pub(super) dir: PathBuf,
    /// Its results.json; every run's `started_unix` set (from `started` if need be).
    pub(super) doc: ResultsDoc,
    /// `--shard` it ran with, if any.
    pub(super) shard: Option<Shard>,
}

pub(super) fn read_input(dir: &Path) -> Result<Input, Error> {
    let file = dir.join("results.json");
    let mut doc = read_results_json(dir)?.ok_or_else(|| {
        Error::Input(format!(
            "{}: missing (expected a result directory written with --output-dir)",
            file.display()
        ))
    })?;
    let bad = |what: String| Error::Input(format!("{}: {what}", file.display()));
    if doc.runs.is_empty() {
        return Err(bad("no runs (expected a \"runs\" list)".into()));
    }
    for r in &mut doc.runs {
        // The per-run wall-clock start; older files may have only the RFC 3339 text.
        if r.started_unix > 0.0 {
            continue;
        }
        r.started_unix = humantime::parse_rfc3339_weak(&r.started)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
            .ok_or_else(|| {
                bad(format!(
                    "run {:?} has no wall-clock start (started_unix or started), so it cannot be lined up",
                    r.label
                ))
            })?;
    }
    let shard = match doc.shard {
        None => None,
        Some(s) => Some(s.shard().ok_or_else(|| {
            bad(format!(
                "\"shard\": {} is not {{\"index\": I, \"count\": N}} with I < N",
                serde_json::to_string(&s).unwrap_or_default()
            ))
        })?),
    };
    Ok(Input {
        dir: dir.to_path_buf(),
        doc,
        shard,
    })
}

/// A header field as the warnings show it: JSON (quoted text, or null).
/// As JSON, with what JSON leaves raw (C1 controls, bidi overrides) escaped too.
fn shown<T: serde::Serialize>(v: &T) -> String {
    printable(&serde_json::to_string(v).unwrap_or_default()).into_owned()
}

/// Shards must be all of the inputs, of one N, each once; returns N (None: no
/// shards). A missing shard, or a different seed or run settings, is only a warning.
pub(super) fn check_shards(inputs: &[Input]) -> Result<Option<u32>, Error> {
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
        errln!(
            "warning: shard {} missing; the merged runs lack their requests",
            missing.join(", ")
        );
    }
    // Same workload: the same seed and settings (a trace may sit at another path).
    let settings = |p: &RunParams| RunParams {
        shard: None,
        trace: None,
        ..p.clone()
    };
    let first = &inputs[0];
    for i in &inputs[1..] {
        if i.doc.seed != first.doc.seed {
            errln!(
                "warning: {} ran with seed {}, {} with {}: not the same workload's shards",
                i.dir.display(),
                shown(&i.doc.seed),
                first.dir.display(),
                shown(&first.doc.seed)
            );
        }
        for r in &i.doc.runs {
            let f = first.doc.run(&r.label);
            if f.is_some_and(|f| settings(&f.params) != settings(&r.params)) {
                errln!(
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
pub(super) fn check_runs_match(inputs: &[Input]) -> Result<(), Error> {
    let first = &inputs[0];
    let labels = |i: &Input| {
        i.doc
            .runs
            .iter()
            .map(|r| r.label.clone())
            .collect::<Vec<_>>()
    };
    for other in &inputs[1..] {
        let missing: Vec<String> = labels(first)
            .into_iter()
            .filter(|l| other.doc.run(l).is_none())
            .collect();
        let extra: Vec<String> = labels(other)
            .into_iter()
            .filter(|l| first.doc.run(l).is_none())
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
        for r in &other.doc.runs {
            let f = first.doc.run(&r.label).expect("checked above");
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

/// A model or endpoint other than the first input's is worth a warning, not an error.
pub(super) fn warn_other_servers(inputs: &[Input]) {
    for i in &inputs[1..] {
        let (a, b) = (&inputs[0].doc, &i.doc);
        for (key, first, this) in [
            ("model", &a.model, &b.model),
            ("endpoint", &a.endpoint, &b.endpoint),
        ] {
            if this != first {
                errln!(
                    "warning: {} {} differs from {}'s {}; merging anyway",
                    i.dir.display(),
                    key,
                    inputs[0].dir.display(),
                    shown(first)
                );
            }
        }
    }
}

/// OUT must not be an input, nor hold results already unless `overwrite`; no input may
/// be given twice (its records would count twice).
pub(super) fn check_output(out: &Path, dirs: &[PathBuf], overwrite: bool) -> Result<(), Error> {
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
    if overwrite {
        return Ok(());
    }
    for f in ["requests.jsonl", "results.json"] {
        if out.join(f).exists() {
            return Err(Error::Input(format!(
                "-o {}: already holds {f}; merge into a new or empty directory, or pass --overwrite to replace it",
                out.display()
            )));
        }
    }
    Ok(())
}
