//! LongBench JSON Lines subsets to prompts.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::job::{LongbenchFormat, LongbenchJob};
use super::{ConvertError, ConvertReport, finish, lines, read, without_line};
use crate::workload::dataset::{describe, describe_opt};

/// Entries without an `_id` are duplicates when these many leading characters of both
/// `context` and `input` agree (the dual-round tool's converter rule).
const DEDUP_PREFIX_CHARS: usize = 100;

const LONGBENCH_SHAPE: &str = "one LongBench entry per line";

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

    pub(super) fn apply(self, context: &str, input: &str) -> String {
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

/// Converts LongBench subsets, deduplicating across all inputs.
pub fn longbench(args: &LongbenchJob) -> Result<ConvertReport, ConvertError> {
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
