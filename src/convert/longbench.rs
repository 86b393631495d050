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

    /// The format `auto` picks for a known subset (see [`Subset`]).
    pub fn for_subset(subset: &str) -> Option<LongbenchFormat> {
        Subset::find(subset).map(|s| s.format)
    }

    /// `language`: the question's label in `context_question` (English or Chinese).
    pub(super) fn apply(self, context: &str, input: &str, language: Language) -> String {
        match self {
            // `auto` is resolved per entry before this is called.
            LongbenchFormat::ContextQuestion | LongbenchFormat::Auto => match language {
                Language::English => format!("{context}\n\nQuestion: {input}"),
                Language::Chinese => format!("{context}\n\n问题: {input}"),
            },
            LongbenchFormat::ContextOnly => context.to_string(),
            LongbenchFormat::QuestionOnly => input.to_string(),
            LongbenchFormat::Concatenate => format!("{context}\n{input}"),
        }
    }
}

/// The language of a subset's texts, for the question label of `context_question`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    English,
    Chinese,
}

/// A LongBench subset: its name, the format `auto` gives it, its language, and whether
/// LongBench-E has it (as `NAME_e`, the same task).
pub struct Subset {
    pub name: &'static str,
    pub format: LongbenchFormat,
    pub language: Language,
    pub in_e: bool,
}

impl Subset {
    /// Every subset of LongBench (v1) and LongBench-E, as its files and `dataset`
    /// fields name them.
    pub const ALL: [Subset; 21] = {
        use Language::{Chinese as ZH, English as EN};
        use LongbenchFormat::{Concatenate as CAT, ContextOnly as CTX, ContextQuestion as CQ};
        const fn s(
            name: &'static str,
            format: LongbenchFormat,
            language: Language,
            in_e: bool,
        ) -> Subset {
            Subset {
                name,
                format,
                language,
                in_e,
            }
        }
        [
            s("narrativeqa", CQ, EN, false),
            s("qasper", CQ, EN, true),
            s("multifieldqa_en", CQ, EN, true),
            s("multifieldqa_zh", CQ, ZH, false),
            s("hotpotqa", CQ, EN, true),
            s("2wikimqa", CQ, EN, true),
            s("musique", CQ, EN, false),
            s("dureader", CQ, ZH, false),
            s("gov_report", CTX, EN, true),
            s("qmsum", CTX, EN, false),
            s("multi_news", CTX, EN, true),
            s("vcsum", CTX, ZH, false),
            s("trec", CAT, EN, true),
            s("triviaqa", CAT, EN, true),
            s("samsum", CAT, EN, true),
            s("lsht", CAT, ZH, false),
            s("passage_count", CAT, EN, true),
            s("passage_retrieval_en", CAT, EN, true),
            s("passage_retrieval_zh", CAT, ZH, false),
            s("lcc", CAT, EN, true),
            s("repobench-p", CAT, EN, true),
        ]
    };

    /// The subset `name` names (any case; `_e` for LongBench-E's).
    pub fn find(name: &str) -> Option<&'static Subset> {
        let name = name.to_ascii_lowercase();
        Self::ALL
            .iter()
            .find(|s| name == s.name || (s.in_e && name.strip_suffix("_e") == Some(s.name)))
    }

    /// The accepted names, for an error message.
    pub fn accepted() -> String {
        let all: Vec<&str> = Self::ALL.iter().map(|s| s.name).collect();
        let e: Vec<&str> = Self::ALL
            .iter()
            .filter(|s| s.in_e)
            .map(|s| s.name)
            .collect();
        format!(
            "{}; LongBench-E: {} with the suffix _e",
            all.join(", "),
            e.join(", ")
        )
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
            let (format, language) = entry.form(&location, subset, args.format)?;
            let text = format.apply(&entry.context, &entry.input, language);
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
    /// "en" or "zh" in LongBench's files.
    language: Option<String>,
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
            language: optional_str(location, &mut map, "language")?,
            context,
            input,
        })
    }

    /// How the entry of `subset` becomes a prompt: `auto` needs a known subset; a
    /// subset not in the table (with a --format given) is in the entry's `language`, as
    /// LongBench entries say, else English.
    fn form(
        &self,
        location: &str,
        subset: &str,
        format: LongbenchFormat,
    ) -> Result<(LongbenchFormat, Language), ConvertError> {
        let known = Subset::find(subset);
        let format = match (format, known) {
            (LongbenchFormat::Auto, Some(k)) => k.format,
            (LongbenchFormat::Auto, None) => {
                return Err(ConvertError::UnknownSubset {
                    location: location.to_string(),
                    subset: subset.to_string(),
                    named_by: if self.dataset.is_some() {
                        "its \"dataset\" field"
                    } else {
                        "the file name"
                    },
                    accepted: Subset::accepted(),
                });
            }
            (f, _) => f,
        };
        let language = match known {
            Some(k) => k.language,
            None if self.language.as_deref() == Some("zh") => Language::Chinese,
            None => Language::English,
        };
        Ok((format, language))
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
