//! `servescope convert`: public datasets to servescope's dataset format, JSON Lines of
//! `{"text": ...}` or `{"messages": [...]}` that `workload::dataset` reads back, per the
//! workloads spec.
//!
//! Converting is where bad entries are dropped (and counted): reading a dataset for a run
//! treats them as errors, so a run never quietly sends fewer requests than the file has.

mod job;
mod longbench;
mod sharegpt;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;

/// How many skip reasons a report keeps (the rest are only counted).
pub(super) const SKIP_EXAMPLES: usize = 5;

pub use job::{ConvertJob, LongbenchFormat, LongbenchJob, Sample, SharegptJob};
pub use longbench::longbench;
pub use sharegpt::sharegpt;

/// What a conversion did, for the caller to print.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvertReport {
    pub output: PathBuf,
    /// Entries read from the inputs.
    pub read: u64,
    /// Entries dropped as repeats of an earlier one (LongBench only).
    pub duplicates: u64,
    /// Entries with nothing usable to prompt with.
    pub skipped: u64,
    /// The first few skips, as "LOCATION: reason".
    pub skip_examples: Vec<String>,
    /// Usable entries before --num-samples chose among them.
    pub usable: u64,
    pub written: u64,
    /// LongBench: per subset, in order of first appearance: (subset, format, entries).
    pub subsets: Vec<(String, LongbenchFormat, u64)>,
}

impl fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "read {} entries: {} duplicates, {} skipped; wrote {}",
            self.read, self.duplicates, self.skipped, self.written
        )?;
        if self.written < self.usable {
            write!(f, " (sampled from {} usable)", self.usable)?;
        }
        write!(f, " to {}", self.output.display())?;
        for (subset, format, n) in &self.subsets {
            write!(f, "\n  {subset}: {n} as {}", format.as_str())?;
        }
        if !self.skip_examples.is_empty() {
            write!(f, "\n  skipped, e.g.:")?;
            for ex in &self.skip_examples {
                write!(f, "\n    {ex}")?;
            }
        }
        Ok(())
    }
}

impl ConvertReport {
    fn skip(&mut self, location: &str, reason: &str) {
        self.skipped += 1;
        if self.skip_examples.len() < SKIP_EXAMPLES {
            self.skip_examples.push(format!("{location}: {reason}"));
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("cannot read {file}: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{location}: not valid JSON (expected {expected}): {detail}")]
    Syntax {
        location: String,
        expected: &'static str,
        detail: String,
    },
    #[error("{location}: expected a JSON object (a LongBench entry), found {found}")]
    NotObject { location: String, found: String },
    #[error(
        "{location}: \"{field}\" {problem} (expected a LongBench entry with \"context\" and \"input\" strings)"
    )]
    Field {
        location: String,
        field: &'static str,
        problem: String,
    },
    #[error(
        "{location}: unknown LongBench subset {subset:?} (from {named_by}), so --format auto cannot pick a format; expected one of {accepted}, or give --format"
    )]
    UnknownSubset {
        location: String,
        subset: String,
        named_by: &'static str,
        accepted: String,
    },
    #[error("{file}: no entries (expected {expected})")]
    Empty {
        file: String,
        expected: &'static str,
    },
    #[error(
        "nothing to write to {output}: all {read} entries read were duplicates ({duplicates}) or skipped ({skipped}){first}"
    )]
    NothingUsable {
        output: String,
        read: u64,
        duplicates: u64,
        skipped: u64,
        /// "; first: LOCATION: reason", when any was skipped.
        first: String,
    },
    #[error("cannot write {file}: {error}")]
    Write { file: String, error: std::io::Error },
}

pub fn run(job: ConvertJob) -> Result<ConvertReport, ConvertError> {
    match job {
        ConvertJob::Longbench(a) => longbench(&a),
        ConvertJob::Sharegpt(a) => sharegpt(&a),
    }
}

/// Applies --num-samples and writes the lines.
pub(super) fn finish(
    mut report: ConvertReport,
    mut lines: Vec<String>,
    sample: Sample,
) -> Result<ConvertReport, ConvertError> {
    report.usable = lines.len() as u64;
    if lines.is_empty() {
        return Err(ConvertError::NothingUsable {
            output: report.output.display().to_string(),
            read: report.read,
            duplicates: report.duplicates,
            skipped: report.skipped,
            first: report
                .skip_examples
                .first()
                .map(|e| format!("; first: {e}"))
                .unwrap_or_default(),
        });
    }
    if let Some(n) = sample.num_samples
        && n < lines.len() as u64
    {
        lines = choose(lines, n as usize, sample.seed);
    }
    write_lines(&report.output, &lines)?;
    report.written = lines.len() as u64;
    Ok(report)
}

/// `n` (< len) of `lines` chosen with `seed`, kept in file order so the output can be
/// compared with its input.
pub(super) fn choose(lines: Vec<String>, n: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keep = vec![false; lines.len()];
    for i in rand::seq::index::sample(&mut rng, lines.len(), n) {
        keep[i] = true;
    }
    lines
        .into_iter()
        .zip(keep)
        .filter_map(|(l, k)| k.then_some(l))
        .collect()
}

/// Writes beside the target and renames, so a failed conversion never leaves a
/// half-written dataset that a later run would take as whole.
pub(super) fn write_lines(path: &Path, lines: &[String]) -> Result<(), ConvertError> {
    let file = path.display().to_string();
    let err = |error| ConvertError::Write {
        file: file.clone(),
        error,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".part");
    let tmp = PathBuf::from(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for line in lines {
            w.write_all(line.as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>, ConvertError> {
    let mut bytes = std::fs::read(path).map_err(|error| ConvertError::Read {
        file: path.display().to_string(),
        error,
    })?;
    // Editors on Windows add a UTF-8 byte-order mark, which serde_json rejects.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    Ok(bytes)
}

/// Non-blank lines with their 0-based index.
pub(super) fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
}

/// serde's message with "at line 1 column C" shortened to "at column C": the location
/// already names the line.
pub(super) fn without_line(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(head) => format!("{head} at column {}", e.column()),
        None => msg,
    }
}

/// serde's message without its position, which the location already gives.
pub(super) fn without_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(head) => head.to_string(),
        None => msg,
    }
}
