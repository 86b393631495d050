//! Where each load flag lives in a study file: the section and the key. Every key of
//! `target`, `workload`, `metrics`, `output` and `loads` is a load flag (its long name,
//! or a shorter one inside its section); the study reader and the schema both read
//! this table, so neither can drift from the flags.

use super::flags::{self, Flag};

/// A study file's sections whose keys are load flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Target,
    /// `target.sim`: the built-in simulator's `--sim-*` flags.
    Sim,
    Workload,
    Metrics,
    Output,
}

impl Section {
    pub fn name(self) -> &'static str {
        match self {
            Section::Target => "target",
            Section::Sim => "target.sim",
            Section::Workload => "workload",
            Section::Metrics => "metrics",
            Section::Output => "output",
        }
    }
}

/// A YAML key and the flag it gives.
#[derive(Clone, Debug)]
pub struct Key {
    pub name: String,
    pub flag: Flag,
}

/// Flags a study sets another way: `api-key` (only `target.api_key_env`), `slo` (its
/// own section), `output-dir` and `html` (`output.dir`, `output.html`: one per load).
const NOT_KEYS: [&str; 4] = ["api-key", "slo", "output-dir", "html"];

const TARGET: [&str; 8] = [
    "endpoint",
    "model",
    "model-weights",
    "header",
    "api",
    "tokenizer",
    "insecure",
    "gpus",
];
const OUTPUT: [&str; 5] = ["overwrite", "append", "percentiles", "slice-s", "quiet"];

/// The section of a shared flag and its key there; `None` for a flag set another way.
fn place(long: &str) -> Option<(Section, String)> {
    if NOT_KEYS.contains(&long) {
        return None;
    }
    Some(match long {
        "header" => (Section::Target, "headers".into()),
        l if TARGET.contains(&l) => (Section::Target, l.into()),
        l if l.starts_with("sim-") => (Section::Sim, l["sim-".len()..].into()),
        "metrics" => (Section::Metrics, "names".into()),
        "metrics-url" => (Section::Metrics, "urls".into()),
        "metrics-interval" => (Section::Metrics, "interval".into()),
        l if OUTPUT.contains(&l) => (Section::Output, l.into()),
        l => (Section::Workload, l.into()),
    })
}

/// The keys of a section, in the flags' order.
pub fn section(s: Section) -> Vec<Key> {
    flags::shared()
        .into_iter()
        .filter_map(|flag| {
            let (at, name) = place(&flag.long)?;
            (at == s).then_some(Key { name, flag })
        })
        .collect()
}

/// The keys a load of `mode` takes: its own flags, then the workload's (which it may
/// override for itself); `None` for an unknown mode.
pub fn load(mode: &str) -> Option<Vec<Key>> {
    let own = flags::own(mode)?;
    let mut keys: Vec<Key> = own
        .into_iter()
        .map(|flag| Key {
            name: flag.long.clone(),
            flag,
        })
        .collect();
    keys.extend(section(Section::Workload));
    Some(keys)
}

/// A key as written (`input_len` or `input-len`) against a list: underscores and
/// hyphens are the same.
pub fn find<'k>(keys: &'k [Key], written: &str) -> Option<&'k Key> {
    let want = written.replace('_', "-");
    keys.iter().find(|k| k.name == want)
}

/// " (did you mean \"x\"?)" when a known key is close to the one written.
pub fn suggestion<'a>(written: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    let want = written.replace('_', "-");
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&want, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or_else(String::new, |(_, k)| format!(" (did you mean \"{k}\"?)"))
}

/// Which section or modes a key written in the wrong place belongs to, for the error.
pub fn home_of(written: &str) -> Option<String> {
    let want = written.replace('_', "-");
    if let Some((s, name)) = flags::shared()
        .iter()
        .find(|f| f.long == want)
        .and_then(|f| place(&f.long))
    {
        return Some(format!("it is {}.{name}", s.name()));
    }
    let modes: Vec<&str> = flags::MODES
        .into_iter()
        .filter(|m| flags::own(m).is_some_and(|f| f.iter().any(|f| f.long == want)))
        .collect();
    (!modes.is_empty()).then(|| format!("it is a key of loads of mode {}", modes.join(", ")))
}
