//! `servescope convert`: public datasets to servescope's dataset format, JSON Lines of
//! `{"text": ...}` or `{"messages": [...]}` that `workload::dataset` reads back, per the
//! workloads spec.
//!
//! Converting is where bad entries are dropped (and counted): reading a dataset for a run
//! treats them as errors, so a run never quietly sends fewer requests than the file has.

use std::collections::HashSet;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::de::{Deserializer as _, SeqAccess, Visitor};
use serde_json::{Map, Value, json};

use crate::workload::dataset::{Role, describe, describe_opt, sharegpt_turn};

/// How many skip reasons a report keeps (the rest are only counted).
const SKIP_EXAMPLES: usize = 5;
/// Entries without an `_id` are duplicates when these many leading characters of both
/// `context` and `input` agree (the dual-round tool's converter rule).
const DEDUP_PREFIX_CHARS: usize = 100;

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    #[command(subcommand)]
    pub kind: ConvertKind,
}

#[derive(clap::Subcommand, Debug)]
pub enum ConvertKind {
    /// LongBench JSON Lines subsets (fields input, context, _id, dataset, ...) to prompts
    Longbench(LongbenchArgs),
    /// A ShareGPT JSON list ({"id", "conversations": [{"from", "value"}]}) to prompts
    Sharegpt(SharegptArgs),
}

#[derive(clap::Args, Debug)]
pub struct LongbenchArgs {
    /// LongBench JSON Lines files, e.g. data/hotpotqa.jsonl (one subset each, or mixed)
    #[arg(required = true, value_name = "IN")]
    pub inputs: Vec<PathBuf>,
    /// Where to write the prompts (JSON Lines)
    #[arg(short, long, value_name = "OUT.jsonl")]
    pub output: PathBuf,
    /// How an entry becomes a prompt; auto picks per subset (QA: context_question,
    /// summarisation: context_only, few-shot, synthetic and code: concatenate)
    #[arg(long, value_enum, default_value_t = LongbenchFormat::Auto)]
    pub format: LongbenchFormat,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(clap::Args, Debug)]
pub struct SharegptArgs {
    /// A ShareGPT JSON file (a list of conversations; JSON Lines also read)
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write the prompts (JSON Lines)
    #[arg(short, long, value_name = "OUT.jsonl")]
    pub output: PathBuf,
    /// Write each conversation as chat messages up to its last user turn, instead of
    /// its first user turn as text
    #[arg(long)]
    pub multi_turn: bool,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleArgs {
    /// Keep N entries chosen at random with --seed, in file order [default: all]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub num_samples: Option<u64>,
    /// Seed for choosing --num-samples entries: the same seed keeps the same entries
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// How a LongBench entry becomes a prompt.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum LongbenchFormat {
    /// Per subset, as the dual-round tool's converter chose
    Auto,
    /// `{context}\n\n问题: {input}`
    ContextQuestion,
    /// `{context}`
    ContextOnly,
    /// `{input}`
    QuestionOnly,
    /// `{context}\n{input}`
    Concatenate,
}

impl LongbenchFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LongbenchFormat::Auto => "auto",
            LongbenchFormat::ContextQuestion => "context_question",
            LongbenchFormat::ContextOnly => "context_only",
            LongbenchFormat::QuestionOnly => "question_only",
            LongbenchFormat::Concatenate => "concatenate",
        }
    }

    /// The format `auto` picks for a subset. LongBench-E's subsets carry an `_e` suffix
    /// and are the same tasks.
    pub fn for_subset(subset: &str) -> LongbenchFormat {
        let name = subset.to_ascii_lowercase();
        let name = name.strip_suffix("_e").unwrap_or(&name);
        match name {
            "gov_report" | "qmsum" | "multi_news" | "vcsum" => LongbenchFormat::ContextOnly,
            "trec"
            | "triviaqa"
            | "samsum"
            | "lsht"
            | "passage_count"
            | "passage_retrieval_en"
            | "passage_retrieval_zh"
            | "lcc"
            | "repobench-p" => LongbenchFormat::Concatenate,
            // QA subsets, and anything unknown.
            _ => LongbenchFormat::ContextQuestion,
        }
    }

    fn apply(self, context: &str, input: &str) -> String {
        match self {
            // `auto` is resolved per entry before this is called.
            LongbenchFormat::ContextQuestion | LongbenchFormat::Auto => {
                format!("{context}\n\n问题: {input}")
            }
            LongbenchFormat::ContextOnly => context.to_string(),
            LongbenchFormat::QuestionOnly => input.to_string(),
            LongbenchFormat::Concatenate => format!("{context}\n{input}"),
        }
    }
}

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

const LONGBENCH_SHAPE: &str = "one LongBench entry per line";
const SHAREGPT_SHAPE: &str =
    "a JSON list of {\"id\", \"conversations\": [{\"from\", \"value\"}]} objects, or one per line";

pub fn run(args: ConvertArgs) -> Result<ConvertReport, ConvertError> {
    match args.kind {
        ConvertKind::Longbench(a) => longbench(&a),
        ConvertKind::Sharegpt(a) => sharegpt(&a),
    }
}

/// Converts LongBench subsets, deduplicating across all inputs.
pub fn longbench(args: &LongbenchArgs) -> Result<ConvertReport, ConvertError> {
    let mut report = ConvertReport {
        output: args.output.clone(),
        ..ConvertReport::default()
    };
    let mut seen: HashSet<DedupKey> = HashSet::new();
    let mut prompts: Vec<String> = Vec::new();
    for path in &args.inputs {
        let file = path.display().to_string();
        let bytes = read(path)?;
        // Without a `dataset` field, the file is named after its subset (hotpotqa.jsonl).
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut any = false;
        for (i, line) in lines(&bytes) {
            any = true;
            let location = format!("{file}:{}", i + 1);
            let entry = LongbenchEntry::parse(&location, line)?;
            report.read += 1;
            if !seen.insert(entry.dedup_key()) {
                report.duplicates += 1;
                continue;
            }
            let subset = entry.dataset.as_deref().unwrap_or(&stem);
            let format = match args.format {
                LongbenchFormat::Auto => LongbenchFormat::for_subset(subset),
                f => f,
            };
            let text = format.apply(&entry.context, &entry.input);
            if text.trim().is_empty() {
                report.skip(
                    &location,
                    &format!(
                        "empty prompt as {} (the fields it uses are empty)",
                        format.as_str()
                    ),
                );
                continue;
            }
            match report
                .subsets
                .iter_mut()
                .find(|(s, f, _)| s == subset && *f == format)
            {
                Some(row) => row.2 += 1,
                None => report.subsets.push((subset.to_string(), format, 1)),
            }
            prompts.push(json!({ "text": text }).to_string());
        }
        if !any {
            return Err(ConvertError::Empty {
                file,
                expected: LONGBENCH_SHAPE,
            });
        }
    }
    finish(report, prompts, args.sample)
}

/// The fields of one LongBench line that matter here.
struct LongbenchEntry {
    id: Option<String>,
    dataset: Option<String>,
    context: String,
    input: String,
}

#[derive(PartialEq, Eq, Hash)]
enum DedupKey {
    Id(String),
    Prefix(String, String),
}

impl LongbenchEntry {
    fn parse(location: &str, line: &[u8]) -> Result<LongbenchEntry, ConvertError> {
        let value: Value = serde_json::from_slice(line).map_err(|e| ConvertError::Syntax {
            location: location.to_string(),
            expected: LONGBENCH_SHAPE,
            detail: without_line(&e),
        })?;
        let Value::Object(mut map) = value else {
            return Err(ConvertError::NotObject {
                location: location.to_string(),
                found: describe(&value),
            });
        };
        let context = required_str(location, &mut map, "context")?;
        let input = required_str(location, &mut map, "input")?;
        Ok(LongbenchEntry {
            // Both are optional; null is absent, as exporters write every column.
            id: optional_str(location, &mut map, "_id")?,
            dataset: optional_str(location, &mut map, "dataset")?,
            context,
            input,
        })
    }

    fn dedup_key(&self) -> DedupKey {
        match &self.id {
            Some(id) => DedupKey::Id(id.clone()),
            None => {
                let head = |s: &str| s.chars().take(DEDUP_PREFIX_CHARS).collect::<String>();
                DedupKey::Prefix(head(&self.context), head(&self.input))
            }
        }
    }
}

fn required_str(
    location: &str,
    map: &mut Map<String, Value>,
    field: &'static str,
) -> Result<String, ConvertError> {
    match map.remove(field) {
        Some(Value::String(s)) => Ok(s),
        other => Err(ConvertError::Field {
            location: location.to_string(),
            field,
            problem: format!("must be a string, found {}", describe_opt(other.as_ref())),
        }),
    }
}

fn optional_str(
    location: &str,
    map: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ConvertError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(other) => Err(ConvertError::Field {
            location: location.to_string(),
            field,
            problem: format!(
                "must be a non-empty string when present, found {}",
                describe(&other)
            ),
        }),
    }
}

/// Converts ShareGPT conversations; entries with no usable human turn are skipped.
pub fn sharegpt(args: &SharegptArgs) -> Result<ConvertReport, ConvertError> {
    let mut report = ConvertReport {
        output: args.output.clone(),
        ..ConvertReport::default()
    };
    let file = args.input.display().to_string();
    let bytes = read(&args.input)?;
    let mut prompts = Vec::new();
    let mut take = |location: String, value: Value, report: &mut ConvertReport| {
        report.read += 1;
        match sharegpt_prompt(value, args.multi_turn) {
            Ok(line) => prompts.push(line),
            Err(reason) => report.skip(&location, &reason),
        }
    };
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        // Streamed entry by entry: ShareGPT files run to hundreds of MB.
        let mut n = 0usize;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let res = (&mut de)
            .deserialize_seq(EachEntry(&mut |value: Value| {
                n += 1;
                take(format!("{file}: entry {n}"), value, &mut report);
            }))
            .and_then(|()| de.end());
        if let Err(e) = res {
            return Err(ConvertError::Syntax {
                location: format!("{file}:{}:{}", e.line(), e.column()),
                expected: SHAREGPT_SHAPE,
                detail: without_position(&e),
            });
        }
    } else {
        for (i, line) in lines(&bytes) {
            let location = format!("{file}:{}", i + 1);
            let value = serde_json::from_slice(line).map_err(|e| ConvertError::Syntax {
                location: location.clone(),
                expected: SHAREGPT_SHAPE,
                detail: without_line(&e),
            })?;
            take(location, value, &mut report);
        }
    }
    if report.read == 0 {
        return Err(ConvertError::Empty {
            file,
            expected: SHAREGPT_SHAPE,
        });
    }
    finish(report, prompts, args.sample)
}

/// Calls a function on each element of a JSON list.
struct EachEntry<'f>(&'f mut dyn FnMut(Value));

impl<'de> Visitor<'de> for EachEntry<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(SHAREGPT_SHAPE)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            (self.0)(value);
        }
        Ok(())
    }
}

/// One output line for a ShareGPT entry, or why it is skipped.
///
/// Every turn is checked in both modes, so the same entries survive either way. In
/// multi-turn mode, answers before the first question are dropped (ShareGPT's split
/// conversations often start with one), and a conversation whose turns then do not
/// alternate user/assistant is skipped: strict chat templates reject it, and the
/// failure would be counted against the server.
fn sharegpt_prompt(value: Value, multi_turn: bool) -> Result<String, String> {
    let Value::Object(mut map) = value else {
        return Err(format!("not an object but {}", describe(&value)));
    };
    let turns = match map.remove("conversations") {
        Some(Value::Array(t)) if !t.is_empty() => t,
        other => {
            return Err(format!(
                "\"conversations\" must be a non-empty list, found {}",
                describe_opt(other.as_ref())
            ));
        }
    };
    let mut parsed = Vec::with_capacity(turns.len());
    for (i, turn) in turns.into_iter().enumerate() {
        let n = i + 1;
        let Value::Object(mut turn) = turn else {
            return Err(format!("turn {n} is {}", describe(&turn)));
        };
        let (role, text) = sharegpt_turn(n, &mut turn)?;
        parsed.push((n, role, text));
    }
    let Some(first_user) = parsed.iter().position(|t| t.1 == Role::User) else {
        return Err("no human turn".into());
    };
    if !multi_turn {
        let (n, _, text) = parsed.swap_remove(first_user);
        if text.trim().is_empty() {
            return Err(format!("turn {n}: the first human turn is empty"));
        }
        return Ok(json!({ "text": text }).to_string());
    }
    // Keep system turns before the first question; drop answers before it.
    let mut kept: Vec<(usize, Role, String)> = Vec::with_capacity(parsed.len());
    for (i, t) in parsed.into_iter().enumerate() {
        if i >= first_user || t.1 == Role::System {
            kept.push(t);
        }
    }
    // Turns after the last question are the answer the model is to give.
    let Some(last_user) = kept.iter().rposition(|t| t.1 == Role::User) else {
        return Err("no human turn".into());
    };
    kept.truncate(last_user + 1);
    if kept[last_user].2.trim().is_empty() {
        return Err(format!(
            "turn {}: the last human turn is empty",
            kept[last_user].0
        ));
    }
    let mut expect = Role::User;
    for (n, role, _) in kept.iter().filter(|t| t.1 != Role::System) {
        if *role != expect {
            return Err(format!(
                "turn {n}: two {} turns in a row (roles must alternate)",
                role.openai()
            ));
        }
        expect = if expect == Role::User {
            Role::Assistant
        } else {
            Role::User
        };
    }
    let messages: Vec<Value> = kept
        .into_iter()
        .map(|(_, role, text)| json!({ "role": role.openai(), "content": text }))
        .collect();
    Ok(json!({ "messages": messages }).to_string())
}

/// Applies --num-samples and writes the lines.
fn finish(
    mut report: ConvertReport,
    mut lines: Vec<String>,
    sample: SampleArgs,
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
fn choose(lines: Vec<String>, n: usize, seed: u64) -> Vec<String> {
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
fn write_lines(path: &Path, lines: &[String]) -> Result<(), ConvertError> {
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

fn read(path: &Path) -> Result<Vec<u8>, ConvertError> {
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
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
}

/// serde's message with "at line 1 column C" shortened to "at column C": the location
/// already names the line.
fn without_line(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(head) => format!("{head} at column {}", e.column()),
        None => msg,
    }
}

/// serde's message without its position, which the location already gives.
fn without_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(head) => head.to_string(),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::dataset::{Conversation, PromptContent, read_dataset};
    use clap::Parser;

    struct Files(tempfile::TempDir);

    impl Files {
        fn new() -> Self {
            Files(tempfile::tempdir().unwrap())
        }
        fn write(&self, name: &str, body: &str) -> PathBuf {
            let p = self.0.path().join(name);
            std::fs::write(&p, body).unwrap();
            p
        }
        fn path(&self, name: &str) -> PathBuf {
            self.0.path().join(name)
        }
        /// Error text with the temp directory removed.
        fn clean(&self, msg: String) -> String {
            msg.replace(&format!("{}/", self.0.path().display()), "")
        }
    }

    /// The parser as the CLI would build it, so flag names are tested too.
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        kind: ConvertKind,
    }

    fn args(files: &Files, argv: &[&str]) -> ConvertArgs {
        let argv: Vec<String> = std::iter::once("convert".to_string())
            .chain(argv.iter().map(|a| {
                // Bare file names live in the temp directory.
                if a.ends_with(".jsonl") || a.ends_with(".json") {
                    files.path(a).display().to_string()
                } else {
                    a.to_string()
                }
            }))
            .collect();
        ConvertArgs {
            kind: Cli::try_parse_from(argv).unwrap().kind,
        }
    }

    fn convert(files: &Files, argv: &[&str]) -> Result<ConvertReport, String> {
        run(args(files, argv)).map_err(|e| files.clean(e.to_string()))
    }

    /// The written file, read back as a run would.
    fn texts(files: &Files, out: &str) -> Vec<String> {
        read_dataset(&files.path(out), Conversation::FirstTurn)
            .unwrap()
            .into_iter()
            .map(|e| match e.content {
                PromptContent::Text(t) => t,
                PromptContent::Messages(m) => panic!("expected text, got {m}"),
            })
            .collect()
    }

    fn lb(id: Option<&str>, dataset: Option<&str>, context: &str, input: &str) -> String {
        let mut v = json!({
            "input": input, "context": context, "answers": ["a"], "length": 3,
            "language": "en", "all_classes": null,
        });
        if let Some(id) = id {
            v["_id"] = json!(id);
        }
        if let Some(d) = dataset {
            v["dataset"] = json!(d);
        }
        v.to_string()
    }

    #[test]
    fn each_format_on_a_fixture() {
        let files = Files::new();
        let body = format!(
            "{}\n{}\n",
            lb(Some("1"), Some("hotpotqa"), "C1 \"q\"\tü", "Q1"),
            lb(Some("2"), Some("hotpotqa"), "C2", "Q2"),
        );
        files.write("hotpotqa.jsonl", &body);
        let want: [(&str, [&str; 2]); 4] = [
            (
                "context_question",
                ["C1 \"q\"\tü\n\n问题: Q1", "C2\n\n问题: Q2"],
            ),
            ("context_only", ["C1 \"q\"\tü", "C2"]),
            ("question_only", ["Q1", "Q2"]),
            ("concatenate", ["C1 \"q\"\tü\nQ1", "C2\nQ2"]),
        ];
        for (format, texts_want) in want {
            let r = convert(
                &files,
                &[
                    "longbench",
                    "hotpotqa.jsonl",
                    "-o",
                    "out.jsonl",
                    "--format",
                    format,
                ],
            )
            .unwrap();
            assert_eq!((r.read, r.written, r.duplicates, r.skipped), (2, 2, 0, 0));
            assert_eq!(texts(&files, "out.jsonl"), texts_want, "{format}");
        }
        // UTF-8 as is, escapes where JSON needs them; no temp file left behind.
        let raw = std::fs::read_to_string(files.path("out.jsonl")).unwrap();
        assert_eq!(raw.lines().next().unwrap(), r#"{"text":"C1 \"q\"\tü\nQ1"}"#);
        assert!(!files.path("out.jsonl.part").exists());
    }

    #[test]
    fn auto_picks_per_subset_from_field_or_file_name() {
        let cases = [
            ("narrativeqa", LongbenchFormat::ContextQuestion),
            ("multifieldqa_zh", LongbenchFormat::ContextQuestion),
            ("2wikimqa", LongbenchFormat::ContextQuestion),
            ("dureader", LongbenchFormat::ContextQuestion),
            ("gov_report", LongbenchFormat::ContextOnly),
            ("vcsum", LongbenchFormat::ContextOnly),
            ("multi_news_e", LongbenchFormat::ContextOnly),
            ("trec", LongbenchFormat::Concatenate),
            ("lsht", LongbenchFormat::Concatenate),
            ("passage_retrieval_zh", LongbenchFormat::Concatenate),
            ("passage_count", LongbenchFormat::Concatenate),
            ("lcc", LongbenchFormat::Concatenate),
            ("repobench-p_e", LongbenchFormat::Concatenate),
            ("something_new", LongbenchFormat::ContextQuestion),
        ];
        for (subset, want) in cases {
            assert_eq!(LongbenchFormat::for_subset(subset), want, "{subset}");
        }

        let files = Files::new();
        // The `dataset` field wins over the file name; without it, the file name counts.
        files.write(
            "mixed.jsonl",
            &format!(
                "{}\n{}\n",
                lb(Some("a"), Some("gov_report"), "report", ""),
                lb(Some("b"), Some("qasper"), "paper", "why?"),
            ),
        );
        files.write(
            "trec.jsonl",
            &lb(Some("c"), None, "examples", "Question: x"),
        );
        let r = convert(
            &files,
            &["longbench", "mixed.jsonl", "trec.jsonl", "-o", "out.jsonl"],
        )
        .unwrap();
        assert_eq!(
            texts(&files, "out.jsonl"),
            ["report", "paper\n\n问题: why?", "examples\nQuestion: x"]
        );
        assert_eq!(
            r.subsets,
            [
                ("gov_report".to_string(), LongbenchFormat::ContextOnly, 1),
                ("qasper".to_string(), LongbenchFormat::ContextQuestion, 1),
                ("trec".to_string(), LongbenchFormat::Concatenate, 1),
            ]
        );
        let shown = files.clean(r.to_string());
        assert_eq!(
            shown,
            "read 3 entries: 0 duplicates, 0 skipped; wrote 3 to out.jsonl\n  gov_report: 1 as context_only\n  qasper: 1 as context_question\n  trec: 1 as concatenate"
        );
    }

    #[test]
    fn dedup_by_id_else_by_leading_characters() {
        let files = Files::new();
        let long_a = format!("{}A", "x".repeat(100));
        let long_b = format!("{}B", "x".repeat(100));
        let lines = [
            lb(Some("1"), Some("qasper"), "c", "q"),
            // Same id, other text: a duplicate.
            lb(Some("1"), Some("qasper"), "other", "q2"),
            // Same text, other id: kept.
            lb(Some("2"), Some("qasper"), "c", "q"),
            // No id: the first 100 characters of context and input decide.
            lb(None, Some("qasper"), &long_a, "q"),
            lb(None, Some("qasper"), &long_b, "q"),
            lb(None, Some("qasper"), &long_a, "q!"),
            lb(None, Some("qasper"), "ü".repeat(100).as_str(), "q"),
            lb(None, Some("qasper"), &format!("{}é", "ü".repeat(100)), "q"),
        ];
        files.write("a.jsonl", &lines.join("\n"));
        // Across files too.
        files.write("b.jsonl", &lb(Some("2"), Some("qasper"), "z", "z"));
        let r = convert(
            &files,
            &["longbench", "a.jsonl", "b.jsonl", "-o", "o.jsonl"],
        )
        .unwrap();
        assert_eq!((r.read, r.duplicates, r.written), (9, 4, 5));
        let got = texts(&files, "o.jsonl");
        assert_eq!(got[0], "c\n\n问题: q");
        assert_eq!(got[1], "c\n\n问题: q");
        assert!(got[2].starts_with(&long_a) && got[2].ends_with("问题: q"));
        assert!(got[3].ends_with("问题: q!"));
        assert!(got[4].starts_with('ü'));
    }

    #[test]
    fn num_samples_is_seeded_and_keeps_file_order() {
        let files = Files::new();
        let body: Vec<String> = (0..50)
            .map(|i| lb(Some(&i.to_string()), Some("qasper"), &format!("c{i}"), "q"))
            .collect();
        files.write("in.jsonl", &body.join("\n"));
        let pick = |seed: &str, out: &str| {
            let argv = [
                "longbench",
                "in.jsonl",
                "-o",
                out,
                "--format",
                "context_only",
                "--num-samples",
                "10",
                "--seed",
                seed,
            ];
            let r = convert(&files, &argv).unwrap();
            assert_eq!((r.usable, r.written), (50, 10));
            texts(&files, out)
        };
        let a = pick("7", "a.jsonl");
        assert_eq!(a, pick("7", "b.jsonl"));
        assert_ne!(a, pick("8", "c.jsonl"));
        let index = |t: &String| t[1..].parse::<u32>().unwrap();
        assert!(a.windows(2).all(|w| index(&w[0]) < index(&w[1])), "{a:?}");
        // More than there are: all of them.
        let r = convert(
            &files,
            &[
                "longbench",
                "in.jsonl",
                "-o",
                "d.jsonl",
                "--num-samples",
                "99",
            ],
        )
        .unwrap();
        assert_eq!(r.written, 50);
        assert!(
            Cli::try_parse_from(["c", "longbench", "x", "-o", "y", "--num-samples", "0"]).is_err()
        );
    }

    #[test]
    fn empty_prompts_are_skipped_and_counted() {
        let files = Files::new();
        files.write(
            "gov_report.jsonl",
            &format!(
                "{}\n{}\n",
                lb(Some("1"), None, "report", ""),
                lb(Some("2"), None, "report 2", "  ")
            ),
        );
        let r = convert(
            &files,
            &[
                "longbench",
                "gov_report.jsonl",
                "-o",
                "o.jsonl",
                "--format",
                "context_only",
            ],
        )
        .unwrap();
        assert_eq!((r.written, r.skipped), (2, 0));
        let msg = convert(
            &files,
            &[
                "longbench",
                "gov_report.jsonl",
                "-o",
                "o.jsonl",
                "--format",
                "question_only",
            ],
        )
        .unwrap_err();
        assert_eq!(
            msg,
            "nothing to write to o.jsonl: all 2 entries read were duplicates (0) or skipped (2); first: gov_report.jsonl:1: empty prompt as question_only (the fields it uses are empty)"
        );
    }

    #[test]
    fn longbench_errors_name_file_and_line() {
        let files = Files::new();
        let ok = lb(Some("1"), None, "c", "q");
        let cases = [
            (
                format!("{ok}\n\n{{\"context\": \"c\"\n"),
                "in.jsonl:3: not valid JSON (expected one LongBench entry per line): EOF while parsing an object at column 15",
            ),
            (
                format!("{ok}\n[1]\n"),
                "in.jsonl:2: expected a JSON object (a LongBench entry), found a list",
            ),
            (
                "{\"input\": \"q\"}".to_string(),
                "in.jsonl:1: \"context\" must be a string, found none (expected a LongBench entry with \"context\" and \"input\" strings)",
            ),
            (
                "{\"input\": 3, \"context\": \"c\"}".to_string(),
                "in.jsonl:1: \"input\" must be a string, found 3 (expected a LongBench entry with \"context\" and \"input\" strings)",
            ),
            (
                "{\"input\": \"q\", \"context\": \"c\", \"_id\": 7}".to_string(),
                "in.jsonl:1: \"_id\" must be a non-empty string when present, found 7 (expected a LongBench entry with \"context\" and \"input\" strings)",
            ),
            (
                " \n\n".to_string(),
                "in.jsonl: no entries (expected one LongBench entry per line)",
            ),
        ];
        for (body, want) in cases {
            files.write("in.jsonl", &body);
            let got = convert(&files, &["longbench", "in.jsonl", "-o", "o.jsonl"]).unwrap_err();
            assert_eq!(got, want, "{body}");
        }
        let got = convert(&files, &["longbench", "missing.jsonl", "-o", "o.jsonl"]).unwrap_err();
        assert!(got.starts_with("cannot read missing.jsonl: "), "{got}");
        // Nothing is written when an input is bad.
        assert!(!files.path("o.jsonl").exists());
    }

    const SHAREGPT: &str = r#"[
  {"id": "a", "conversations": [
    {"from": "human", "value": "q1"}, {"from": "gpt", "value": "a1"},
    {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a2"}]},
  {"id": "b", "conversations": [
    {"from": "gpt", "value": "orphan answer"},
    {"from": "human", "value": "q3"}, {"from": "gpt", "value": "a3"}]},
  {"id": "c", "conversations": []},
  {"id": "d", "conversations": [{"from": "gpt", "value": "only answers"}]},
  {"id": "e", "conversations": [{"from": "human", "value": " "}, {"from": "gpt", "value": "x"}]},
  {"id": "f", "conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "x"}]},
  {"id": "g"},
  {"id": "h", "conversations": [
    {"from": "system", "value": "sys"}, {"from": "human", "value": "q4"},
    {"from": "human", "value": "q5"}]},
  {"id": "i", "conversations": [
    {"from": "system", "value": "sys"}, {"from": "user", "value": "q6"},
    {"from": "chatgpt", "value": "a6"}, {"from": "human", "value": "q7"}]}
]"#;

    #[test]
    fn sharegpt_first_turn() {
        let files = Files::new();
        files.write("sg.json", SHAREGPT);
        let r = convert(&files, &["sharegpt", "sg.json", "-o", "o.jsonl"]).unwrap();
        assert_eq!((r.read, r.written, r.skipped, r.duplicates), (9, 4, 5, 0));
        assert_eq!(texts(&files, "o.jsonl"), ["q1", "q3", "q4", "q6"]);
        assert_eq!(
            files.clean(r.skip_examples.join("\n")),
            [
                "sg.json: entry 3: \"conversations\" must be a non-empty list, found an empty list",
                "sg.json: entry 4: no human turn",
                "sg.json: entry 5: turn 1: the first human turn is empty",
                "sg.json: entry 6: turn 2: unknown speaker \"bot\" (expected human, user, gpt, assistant, chatgpt, bing, bard or system)",
                "sg.json: entry 7: \"conversations\" must be a non-empty list, found none",
            ]
            .join("\n")
        );
    }

    #[test]
    fn sharegpt_multi_turn_ends_each_history_with_a_question() {
        let files = Files::new();
        files.write("sg.json", SHAREGPT);
        let r = convert(
            &files,
            &["sharegpt", "sg.json", "-o", "o.jsonl", "--multi-turn"],
        )
        .unwrap();
        assert_eq!((r.read, r.written, r.skipped), (9, 3, 6));
        assert!(
            r.skip_examples.iter().all(|e| !e.contains("entry 8")),
            "only the first five are kept"
        );
        let got: Vec<Value> = read_dataset(&files.path("o.jsonl"), Conversation::FirstTurn)
            .unwrap()
            .into_iter()
            .map(|e| match e.content {
                PromptContent::Messages(m) => m,
                PromptContent::Text(t) => panic!("expected messages, got {t}"),
            })
            .collect();
        let m = |role: &str, content: &str| json!({"role": role, "content": content});
        assert_eq!(
            got,
            [
                json!([m("user", "q1"), m("assistant", "a1"), m("user", "q2")]),
                json!([m("user", "q3")]),
                json!([
                    m("system", "sys"),
                    m("user", "q6"),
                    m("assistant", "a6"),
                    m("user", "q7")
                ]),
            ]
        );
    }

    #[test]
    fn sharegpt_json_lines_sampling_and_errors() {
        let files = Files::new();
        let body: Vec<String> = (0..20)
            .map(|i| {
                json!({"id": i, "conversations": [{"from": "human", "value": format!("q{i}")}]})
                    .to_string()
            })
            .collect();
        files.write("sg.jsonl", &body.join("\n"));
        let argv = [
            "sharegpt",
            "sg.jsonl",
            "-o",
            "o.jsonl",
            "--num-samples",
            "5",
            "--seed",
            "3",
        ];
        let r = convert(&files, &argv).unwrap();
        assert_eq!((r.read, r.usable, r.written), (20, 20, 5));
        let first = texts(&files, "o.jsonl");
        convert(&files, &argv).unwrap();
        assert_eq!(texts(&files, "o.jsonl"), first);

        let cases = [
            (
                "sg.json",
                "[\n  {\"conversations\": []},\n  {oops}\n]",
                "sg.json:3:4: not valid JSON (expected a JSON list of {\"id\", \"conversations\": [{\"from\", \"value\"}]} objects, or one per line): key must be a string",
            ),
            (
                "sg.json",
                "{\"id\": 1}\n{\"id\": 2",
                "sg.json:2: not valid JSON (expected a JSON list of {\"id\", \"conversations\": [{\"from\", \"value\"}]} objects, or one per line): EOF while parsing an object at column 8",
            ),
            (
                "sg.json",
                "[]",
                "sg.json: no entries (expected a JSON list of {\"id\", \"conversations\": [{\"from\", \"value\"}]} objects, or one per line)",
            ),
            (
                "sg.json",
                "[1, {\"id\": 2}]",
                "nothing to write to o.jsonl: all 2 entries read were duplicates (0) or skipped (2); first: sg.json: entry 1: not an object but 1",
            ),
        ];
        for (name, body, want) in cases {
            files.write(name, body);
            let got = convert(&files, &["sharegpt", name, "-o", "o.jsonl"]).unwrap_err();
            assert_eq!(got, want, "{body}");
        }
    }
}
