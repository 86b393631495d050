//! An `--output-dir` that already holds results: refused (before anything is started
//! or sent) unless `--overwrite` (they are replaced) or `--append` (this session's runs
//! are added to them, a label already there getting a suffix). A directory holds
//! results when it has results.json or requests.jsonl; summary.csv and the HTML are
//! regenerated from those, so they alone do not count.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::RunPlan;
use crate::error::Error;
use crate::recorder::{Recorder, TextCounting};
use crate::report::document::{Appended, ReadError, ResultsDoc, RunMode, ShardDoc};
use crate::settings::{Existing, SessionSettings};

const RESULT_FILES: [&str; 2] = ["results.json", "requests.jsonl"];

/// What the session starts from in its output directory.
pub enum Prior {
    /// No directory, or one without results: written fresh.
    Fresh,
    /// The results there are replaced.
    Overwrite,
    /// The results there (read and checked), which this session's runs extend.
    Append(Box<ResultsDoc>),
}

/// Whether the session may write to its `--output-dir` for runs of `mode`, and from
/// what.
pub fn check(s: &SessionSettings, mode: Option<&RunMode>) -> Result<Prior, Error> {
    let Some(dir) = &s.output.dir else {
        return Ok(Prior::Fresh);
    };
    let held: Vec<&str> = RESULT_FILES
        .into_iter()
        // An empty file holds nothing: a session stopped before its first run leaves one.
        .filter(|f| dir.join(f).metadata().is_ok_and(|m| m.len() > 0))
        .collect();
    if held.is_empty() {
        return Ok(Prior::Fresh);
    }
    match s.output.existing {
        Existing::Refuse => Err(Error::Input(format!(
            "--output-dir {}: already holds results ({}); pass --overwrite to replace them, --append to add this session's runs to them, or choose another directory",
            dir.display(),
            held.join(", ")
        ))),
        Existing::Overwrite => Ok(Prior::Overwrite),
        Existing::Append => {
            let file = dir.join("results.json");
            let doc = existing_doc(&file)?;
            check_appendable(&file, &doc, s, mode)?;
            Ok(Prior::Append(Box::new(doc)))
        }
    }
}

fn existing_doc(file: &Path) -> Result<ResultsDoc, Error> {
    if !file.exists() {
        return Err(Error::Input(format!(
            "--append: {} is missing, so the runs of requests.jsonl beside it are unknown (a session that ended before its first run did); pass --overwrite to replace them",
            file.display()
        )));
    }
    ResultsDoc::read(file).map_err(|e| match e {
        ReadError::Io(e) => Error::Input(format!("--append: {}: {e}", file.display())),
        ReadError::Invalid(m) => Error::Input(format!(
            "--append: {}: {m}; pass --overwrite to replace it",
            file.display()
        )),
    })
}

/// One mode and one shard per directory; dual-round levels are never appended to.
fn check_appendable(
    file: &Path,
    doc: &ResultsDoc,
    s: &SessionSettings,
    mode: Option<&RunMode>,
) -> Result<(), Error> {
    let Some(mode) = mode else {
        return Ok(());
    };
    if *mode == RunMode::DualRound {
        return Err(Error::Input(format!(
            "--append: dual-round rounds are compared by level, so a second session's rounds would mix with those in {}; choose another --output-dir",
            file.display()
        )));
    }
    if let Some(other) = doc.runs.iter().find(|r| r.mode != *mode) {
        return Err(Error::Input(format!(
            "--append: {} holds {} runs and this session's are {mode}; a directory holds runs of one mode, so choose another --output-dir",
            file.display(),
            other.mode
        )));
    }
    let ours = (!s.run.shard.is_whole()).then(|| ShardDoc::from(s.run.shard));
    if doc.shard != ours {
        let name = |d: Option<ShardDoc>| {
            d.map_or("without --shard".to_string(), |d| {
                format!("by shard {}/{}", d.index, d.count)
            })
        };
        return Err(Error::Input(format!(
            "--append: {} was written {} and this session runs {}; a directory holds one shard's records (join shards with `servescope merge`)",
            file.display(),
            name(doc.shard),
            name(ours)
        )));
    }
    Ok(())
}

/// The labels a session's runs have taken, with those of the directory it appends to:
/// a plan whose label is taken gets " #2", " #3", ...
#[derive(Default)]
pub struct Labels(HashSet<String>);

impl Labels {
    pub fn of(prior: &Prior) -> Self {
        match prior {
            Prior::Append(doc) => Labels(doc.runs.iter().map(|r| r.label.clone()).collect()),
            _ => Labels::default(),
        }
    }

    pub fn make_unique(&mut self, plan: &mut RunPlan) {
        let mut n = 2;
        let base = plan.label.clone();
        while self.0.contains(&plan.label) {
            plan.label = format!("{base} #{n}");
            n += 1;
        }
        self.0.insert(plan.label.clone());
    }
}

/// The recorder, writing requests.jsonl as the prior results require: created fresh,
/// or appended to (after dropping a torn last line). Called once the target answered,
/// so a failed connection leaves the old results as they were.
pub fn recorder(
    dir: Option<&Path>,
    prior: &Prior,
    counting: TextCounting,
) -> Result<Recorder, Error> {
    let jsonl: Option<PathBuf> = dir.map(|d| d.join("requests.jsonl"));
    let write_err = |e: std::io::Error| Error::Output(format!("cannot write requests.jsonl: {e}"));
    match (prior, dir, &jsonl) {
        (Prior::Append(_), Some(_), Some(path)) => {
            if let Some(bytes) = trim_torn_tail(path).map_err(write_err)? {
                errln!(
                    "warning: {}: dropped its last line, cut off after {bytes} bytes (a session stopped while writing it)",
                    path.display()
                );
            }
            Recorder::start_appending(path, counting).map_err(write_err)
        }
        (Prior::Overwrite, Some(d), _) => {
            // results.json and summary.csv are rewritten after the first run; until
            // then they must not describe the replaced runs (turns.csv and models.csv
            // are written only for runs with sessions or models: never stale).
            for f in ["results.json", "summary.csv", "turns.csv", "models.csv"] {
                match std::fs::remove_file(d.join(f)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(Error::Output(format!(
                            "--overwrite: cannot remove {}: {e}",
                            d.join(f).display()
                        )));
                    }
                    _ => {}
                }
            }
            Recorder::start(jsonl.as_deref(), counting).map_err(write_err)
        }
        _ => Recorder::start(jsonl.as_deref(), counting).map_err(write_err),
    }
}

/// results.json's header: this session's, or with `--append` the first session's, with
/// this one listed under `appended` (a differing server or model is warned about).
pub fn header(prior: Prior, fresh: ResultsDoc) -> ResultsDoc {
    let Prior::Append(doc) = prior else {
        return fresh;
    };
    let mut doc = *doc;
    let fields = [
        ("endpoint", &doc.endpoint, &fresh.endpoint),
        ("model", &doc.model, &fresh.model),
        ("api", &doc.api, &fresh.api),
        ("tokenizer", &doc.tokenizer, &fresh.tokenizer),
    ];
    for (name, old, new) in fields {
        if old.is_some() && old != new {
            errln!(
                "warning: --append: the results there are of {name} {}, this session's of {}; results.json keeps the first",
                old.as_deref().unwrap_or_default(),
                new.as_deref().unwrap_or("(none)")
            );
        }
    }
    if doc.gpus.is_some() && fresh.gpus.is_some() && doc.gpus != fresh.gpus {
        errln!(
            "warning: --append: the results there were labelled --gpus {}, this session's --gpus {}; results.json keeps the first",
            doc.gpus.unwrap_or_default(),
            fresh.gpus.unwrap_or_default()
        );
    }
    doc.gpus = doc.gpus.or(fresh.gpus);
    if doc.metadata.is_some() && fresh.metadata.is_some() && doc.metadata != fresh.metadata {
        errln!(
            "warning: --append: the results there carry other --metadata labels than this session's; results.json keeps the first"
        );
    }
    doc.metadata = doc.metadata.take().or(fresh.metadata.clone());
    doc.schema_version = fresh.schema_version;
    doc.tool = fresh.tool;
    doc.appended.get_or_insert_with(Vec::new).push(Appended {
        started: fresh.started,
        command: fresh.command,
        runs: Vec::new(),
    });
    doc
}

/// Cuts a last line without its newline (a write torn by a crash) so appended records
/// start on a line of their own; returns how many bytes were dropped. Reads backwards
/// from the end, so a large file costs one chunk.
fn trim_torn_tail(path: &Path) -> std::io::Result<Option<u64>> {
    let mut f = match File::options().read(true).write(true).open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        r => r?,
    };
    let len = f.metadata()?.len();
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = len;
    let mut keep = 0;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            keep = start + i as u64 + 1;
            break;
        }
        end = start;
    }
    if keep == len {
        return Ok(None);
    }
    f.set_len(keep)?;
    Ok(Some(len - keep))
}

#[cfg(test)]
#[path = "tests_outdir.rs"]
mod tests;
