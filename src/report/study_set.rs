//! A study's result set read back: the configurations of `OUT/study.json` (or, without
//! one, result directories under a directory whose results carry `metadata.config`),
//! each with its result directories. `compare` lines them up against the first
//! configuration (`study_compare`); `report --html` draws them on one page, each
//! configuration a series of the load curves and its runs columns of the summary.

use std::path::{Path, PathBuf};

use super::document::ResultsDoc;
use super::reanalyze::{Loaded, Reanalysis, load};
use crate::error::Error;
use crate::study::servers::{STUDY_INDEX, StudySetIndex};

/// One configuration's results.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigResults {
    pub label: String,
    /// (the directory relative to the configuration's own, "" for itself; the path).
    pub dirs: Vec<(String, PathBuf)>,
}

/// The configurations of a study that have results, in study order (the first is the
/// baseline).
#[derive(Clone, Debug, PartialEq)]
pub struct StudySet {
    pub root: PathBuf,
    pub configs: Vec<ConfigResults>,
}

/// The study under `dir`, when it is one: it holds study.json, or no results.json of
/// its own but result directories (up to three levels down) whose results.json carries
/// `metadata.config`.
pub fn find(dir: &Path) -> Result<Option<StudySet>, Error> {
    let index = dir.join(STUDY_INDEX);
    if index.is_file() {
        return from_index(dir, &index).map(Some);
    }
    if !dir.is_dir() || dir.join("results.json").is_file() {
        return Ok(None);
    }
    let mut configs: Vec<ConfigResults> = Vec::new();
    for path in result_dirs(dir) {
        let Ok(doc) = ResultsDoc::read(&path.join("results.json")) else {
            continue;
        };
        let Some(label) = doc.metadata.as_ref().and_then(|m| m.get("config")).cloned() else {
            continue;
        };
        let rel = path.strip_prefix(dir).unwrap_or(&path);
        // The configuration's own directory is the first level under the study's.
        let within: PathBuf = rel.components().skip(1).collect();
        let entry = (within.to_string_lossy().into_owned(), path.clone());
        match configs.iter_mut().find(|c| c.label == label) {
            Some(c) => c.dirs.push(entry),
            None => configs.push(ConfigResults {
                label,
                dirs: vec![entry],
            }),
        }
    }
    Ok((!configs.is_empty()).then(|| StudySet {
        root: dir.to_path_buf(),
        configs,
    }))
}

fn from_index(dir: &Path, index: &Path) -> Result<StudySet, Error> {
    let text = std::fs::read_to_string(index)
        .map_err(|e| Error::Input(format!("{}: {e}", index.display())))?;
    let idx: StudySetIndex = serde_json::from_str(&text).map_err(|e| {
        Error::Input(format!(
            "{}: line {}: {e} (expected the study index servescope writes)",
            index.display(),
            e.line()
        ))
    })?;
    let configs: Vec<ConfigResults> = idx
        .configs
        .iter()
        .filter(|c| !c.results.is_empty())
        .map(|c| ConfigResults {
            label: c.label.clone(),
            dirs: c
                .results
                .iter()
                .map(|r| {
                    let within = Path::new(r).strip_prefix(&c.label).unwrap_or(Path::new(r));
                    (within.to_string_lossy().into_owned(), dir.join(r))
                })
                .collect(),
        })
        .collect();
    if configs.is_empty() {
        return Err(Error::Input(format!(
            "{}: no configuration has results (see each one's outcome and reason there)",
            index.display()
        )));
    }
    Ok(StudySet {
        root: dir.to_path_buf(),
        configs,
    })
}

/// Directories holding results.json under `dir` (one to three levels down), sorted.
fn result_dirs(dir: &Path) -> Vec<PathBuf> {
    result_dirs_within(dir, 1..=3)
}

/// Directories holding results.json at `depths` below `dir` (0 is `dir` itself),
/// sorted; the study launcher lists a configuration's results with it too.
pub(crate) fn result_dirs_within(
    dir: &Path,
    depths: std::ops::RangeInclusive<usize>,
) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = todo.pop() {
        if depths.contains(&depth) && d.join("results.json").is_file() {
            found.push(d.clone());
        }
        if depth < *depths.end()
            && let Ok(rd) = std::fs::read_dir(&d)
        {
            todo.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .map(|p| (p, depth + 1)),
            );
        }
    }
    found.sort();
    found
}

/// How a run of a configuration is named on the combined page: `CONFIG · [DIR ·] RUN`.
pub fn run_name(config: &str, within: &str, run: &str) -> String {
    match within.is_empty() {
        true => format!("{config} · {run}"),
        false => format!("{config} · {within} · {run}"),
    }
}

/// Every configuration's runs as one set: each run renamed `run_name`, drawn on its
/// configuration's curve. The header is the baseline's, without its `config` label.
pub fn load_all(set: &StudySet, how: Reanalysis) -> Result<Loaded, Error> {
    let mut header: Option<ResultsDoc> = None;
    let mut runs = Vec::new();
    for c in &set.configs {
        for (within, dir) in &c.dirs {
            let loaded = load(dir, how)?;
            header.get_or_insert(loaded.header);
            for mut r in loaded.runs {
                r.saved.label = run_name(&c.label, within, &r.saved.label);
                r.series = Some(c.label.clone());
                runs.push(r);
            }
        }
    }
    let mut header = header.unwrap_or_default();
    if let Some(m) = header.metadata.as_mut() {
        m.0.retain(|(k, _)| k != "config");
        if m.is_empty() {
            header.metadata = None;
        }
    }
    Ok(Loaded { header, runs })
}
