//! A study file's values as argv tokens, the inline SLO, and load names.

use serde_saphyr::Spanned;

use super::{LoadSpec, Reader, Setting, join};
use crate::study::StudyError;
use crate::study::flags::{Flag, Takes};
use crate::yaml::{self, Node};

impl Reader {
    /// A YAML value as the flag's argv tokens; `null` leaves the flag out.
    pub(super) fn tokens(
        &self,
        flag: &Flag,
        key: &Spanned<String>,
        value: Spanned<Node>,
        path: &str,
    ) -> Result<Vec<String>, StudyError> {
        let dash = |v: String| format!("--{}={v}", flag.long);
        let wrong = |expected: &str, found: &Node| {
            self.at(
                key,
                path,
                format!("expected {expected}, found {}", found.describe()),
            )
        };
        let one = "one value (a number or a string)";
        Ok(match (flag.takes, value.value) {
            (_, Node::Null) => Vec::new(),
            (Takes::Switch, Node::Bool(true)) => vec![format!("--{}", flag.long)],
            (Takes::Switch, Node::Bool(false)) => Vec::new(),
            (Takes::Switch, other) => return Err(wrong("true or false", &other)),
            (Takes::Positional, n) => {
                vec![n.scalar_text().ok_or_else(|| wrong("a file name", &n))?]
            }
            (Takes::One, n) => vec![dash(n.scalar_text().ok_or_else(|| wrong(one, &n))?)],
            (Takes::List, Node::Seq(items)) => {
                if items.is_empty() {
                    return Err(self.at(
                        key,
                        path,
                        "expected at least one value, found an empty list".into(),
                    ));
                }
                let mut texts = Vec::with_capacity(items.len());
                for item in items {
                    texts.push(
                        item.value
                            .scalar_text()
                            .ok_or_else(|| wrong("a list of numbers or strings", &item.value))?,
                    );
                }
                vec![dash(texts.join(","))]
            }
            (Takes::Repeat, Node::Seq(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(dash(
                        item.value
                            .scalar_text()
                            .ok_or_else(|| wrong("a list of strings", &item.value))?,
                    ));
                }
                out
            }
            // Headers as `Name: value`, named sources as `name=value`.
            (Takes::Repeat, Node::Map(entries)) => {
                let sep = if flag.long == "header" { ": " } else { "=" };
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let v = v
                        .value
                        .scalar_text()
                        .ok_or_else(|| wrong("a mapping of names to values", &v.value))?;
                    out.push(dash(format!("{}{sep}{v}", k.value)));
                }
                out
            }
            (Takes::List | Takes::Repeat, n) => {
                vec![dash(
                    n.scalar_text()
                        .ok_or_else(|| wrong("a value or a list of values", &n))?,
                )]
            }
        })
    }

    /// `slo:` bounds inline (each checked here, so a bad one names its line), or the
    /// path of an SLO file.
    pub(super) fn slo(
        &self,
        key: &Spanned<String>,
        value: Spanned<Node>,
    ) -> Result<Option<Setting>, StudyError> {
        let location = yaml::at(&self.file, key);
        let text = match value.value {
            Node::Str(path) => path,
            Node::Map(entries) => {
                self.no_repeats(&entries, "slo")?;
                let mut items = Vec::new();
                for (k, v) in entries {
                    let path = join("slo", &k.value);
                    let item = match v.value {
                        Node::Null => continue,
                        Node::Num(n) => format!("{}={n}", k.value),
                        other => {
                            return Err(self.at(
                                &k,
                                &path,
                                format!("expected a number, found {}", other.describe()),
                            ));
                        }
                    };
                    if let Err(e) = crate::metrics::slo::Slo::parse_inline(&item) {
                        // The inline form's own prefix names a flag the file did not use.
                        let m = e.to_string();
                        let m = m.strip_prefix(&format!("--slo {item:?}: ")).unwrap_or(&m);
                        return Err(self.at(&k, &path, m.to_string()));
                    }
                    items.push(item);
                }
                if items.is_empty() {
                    return Ok(None);
                }
                items.join(",")
            }
            Node::Null => return Ok(None),
            other => {
                let found = other.describe();
                return Err(self.at(key, "slo", format!("expected bounds such as {{ttft_ms: 500, tpot_ms: 50}} or an SLO file's path, found {found}")));
            }
        };
        Ok(Some(Setting {
            long: "slo".into(),
            path: "slo".into(),
            location,
            tokens: vec![format!("--slo={text}")],
        }))
    }
}

/// A load's name is a directory name under the study's output directory.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match ok {
        true => Ok(()),
        false => Err(format!(
            "\"{name}\" cannot name a directory: use letters, digits, '-', '_' and '.'"
        )),
    }
}

/// Unnamed loads are named by their mode, numbered when the mode repeats
/// (`concurrency-1`, `concurrency-2`), skipping names already taken.
pub(super) fn name_by_mode(loads: &mut [LoadSpec]) {
    let taken: Vec<String> = loads.iter().map(|l| l.name.clone()).collect();
    for i in 0..loads.len() {
        if !loads[i].name.is_empty() {
            continue;
        }
        let mode = loads[i].mode.clone();
        let same = loads.iter().filter(|l| l.mode == mode).count();
        if same == 1 && !taken.contains(&mode) {
            loads[i].name = mode;
            continue;
        }
        let mut n = loads[..i].iter().filter(|l| l.mode == mode).count() + 1;
        loop {
            let name = format!("{mode}-{n}");
            if !loads.iter().any(|l| l.name == name) && !taken.contains(&name) {
                loads[i].name = name;
                break;
            }
            n += 1;
        }
    }
}
