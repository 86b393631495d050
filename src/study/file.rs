//! Reading a study file: its sections checked key by key against the load flags
//! (`keys.rs`), each value turned into the flag's argv tokens now, so a wrong key or
//! type is reported with its line before anything runs.

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use super::StudyError;
use super::flags::MODES;
use super::keys::{self, Key, Section};
use super::servers::{Config, ServerSpec};
use crate::yaml::{self, Node};

/// A flag the file sets: where, and the argv tokens it gives (`--long=VALUE`, or the
/// bare value of a positional argument).
#[derive(Clone, Debug)]
pub struct Setting {
    pub long: String,
    /// The key's path in the file, e.g. `loads[1].concurrency`.
    pub path: String,
    /// "FILE:LINE:COLUMN" of the key.
    pub location: String,
    pub tokens: Vec<String>,
}

/// One entry of `loads`.
#[derive(Debug)]
pub struct LoadSpec {
    pub name: String,
    pub mode: String,
    pub location: String,
    /// Its own keys; each replaces a shared setting of the same flag.
    pub settings: Vec<Setting>,
}

/// A value with the place it was written.
#[derive(Debug)]
pub struct Located<T> {
    pub value: T,
    pub location: String,
}

/// A study file, read and checked.
#[derive(Debug)]
pub struct StudyFile {
    pub file: String,
    /// target, workload, slo, metrics and output: given to every load.
    pub shared: Vec<Setting>,
    /// The name of the environment variable holding the API key.
    pub api_key_env: Option<Located<String>>,
    pub output_dir: Option<Located<PathBuf>>,
    /// Write each load's HTML report beside its results.
    pub html: bool,
    pub loads: Vec<LoadSpec>,
    /// The server to start once per configuration (`server:`), with the place of its key.
    pub server: Option<Located<ServerSpec>>,
    /// Its configurations, checked and labelled when the file was read.
    pub server_configs: Vec<Config>,
}

/// The `server:` section, read with serde into its typed spec (the other sections are
/// read key by key above).
#[derive(serde::Deserialize)]
struct ServerSection {
    #[serde(default)]
    server: Option<ServerSpec>,
}

type Entries = Vec<(Spanned<String>, Spanned<Node>)>;

const TOP: [&str; 8] = [
    "description",
    "target",
    "workload",
    "loads",
    "slo",
    "metrics",
    "output",
    "server",
];

/// Read and check a study file.
pub fn read(path: &Path) -> Result<StudyFile, StudyError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| StudyError::Read {
        file: file.clone(),
        error,
    })?;
    let top = yaml::parse(&file, &text).map_err(|e| StudyError::Yaml {
        location: e.location,
        message: e.message,
    })?;
    let r = Reader { file: file.clone() };
    let top = match top {
        Node::Map(entries) => entries,
        other => {
            return Err(r.whole(format!(
                "expected a mapping of sections ({}), found {}",
                TOP.join(", "),
                other.describe()
            )));
        }
    };
    r.no_repeats(&top, "")?;
    let mut study = StudyFile {
        file,
        shared: Vec::new(),
        api_key_env: None,
        output_dir: None,
        html: false,
        loads: Vec::new(),
        server: None,
        server_configs: Vec::new(),
    };
    let mut loads = None;
    let mut server = None;
    for (key, value) in top {
        match key.value.as_str() {
            "description" => {
                r.string(&key, value, "description")?;
            }
            "target" => r.target(&key, value, &mut study)?,
            "workload" => {
                let keys = keys::section(Section::Workload);
                let entries = r.mapping(&key, value, "workload")?;
                r.section(entries, &keys, "workload", &mut study.shared)?;
            }
            "metrics" => {
                let keys = keys::section(Section::Metrics);
                let entries = r.mapping(&key, value, "metrics")?;
                r.section(entries, &keys, "metrics", &mut study.shared)?;
            }
            "output" => r.output(&key, value, &mut study)?,
            "slo" => study.shared.extend(r.slo(&key, value)?),
            "loads" => loads = Some((key, value)),
            "server" => server = Some(yaml::at(&r.file, &key)),
            other => {
                let hint = keys::suggestion(other, TOP);
                return Err(r.at(&key, other, format!("unknown section{hint}")));
            }
        }
    }
    let example = "(e.g. `loads: [{mode: concurrency, concurrency: [1, 4]}]`)";
    let Some((key, value)) = loads else {
        return Err(r.whole(format!("no `loads`: a study runs at least one {example}")));
    };
    study.loads = r.loads(&key, value)?;
    if let Some(location) = server {
        r.server(&text, location, &mut study)?;
    }
    if study.loads.is_empty() {
        return Err(r.at(
            &key,
            "loads",
            format!("empty: a study runs at least one {example}"),
        ));
    }
    Ok(study)
}

/// The value conversions and load names, in a file of their own.
#[path = "file_values.rs"]
mod values;
use values::{check_name, name_by_mode};

struct Reader {
    file: String,
}

impl Reader {
    /// The `server:` section as its typed spec, its configurations checked now.
    fn server(
        &self,
        text: &str,
        location: String,
        study: &mut StudyFile,
    ) -> Result<(), StudyError> {
        // The whole file parsed already, so a failure here is the section's shape.
        let section: ServerSection =
            yaml::from_str(&self.file, text).map_err(|e| StudyError::Key {
                location: e.location,
                path: "server".into(),
                message: e.message,
            })?;
        let Some(spec) = section.server else {
            return Ok(());
        };
        study.server_configs = spec.check().map_err(|e| StudyError::File {
            file: location.clone(),
            message: e.to_string(),
        })?;
        study.server = Some(Located {
            value: spec,
            location,
        });
        Ok(())
    }

    pub(super) fn at<T>(&self, node: &Spanned<T>, path: &str, message: String) -> StudyError {
        StudyError::Key {
            location: yaml::at(&self.file, node),
            path: path.to_string(),
            message,
        }
    }

    fn at_loc(&self, location: &str, path: &str, message: String) -> StudyError {
        StudyError::Key {
            location: location.to_string(),
            path: path.to_string(),
            message,
        }
    }

    fn whole(&self, message: String) -> StudyError {
        StudyError::File {
            file: self.file.clone(),
            message,
        }
    }

    fn mapping(
        &self,
        key: &Spanned<String>,
        value: Spanned<Node>,
        path: &str,
    ) -> Result<Entries, StudyError> {
        let entries = match value.value {
            Node::Map(entries) => entries,
            Node::Null => Vec::new(),
            other => {
                let found = other.describe();
                return Err(self.at(
                    key,
                    path,
                    format!("expected a mapping of keys, found {found}"),
                ));
            }
        };
        self.no_repeats(&entries, path)?;
        Ok(entries)
    }

    /// A key given twice (or as both `input_len` and `input-len`) names both lines.
    pub(super) fn no_repeats(&self, entries: &Entries, path: &str) -> Result<(), StudyError> {
        for (i, (key, _)) in entries.iter().enumerate() {
            let norm = key.value.replace('_', "-");
            if let Some((first, _)) = entries[..i]
                .iter()
                .find(|(k, _)| k.value.replace('_', "-") == norm)
            {
                let at = yaml::at(&self.file, first);
                return Err(self.at(
                    key,
                    &join(path, &key.value),
                    format!("given twice (first at {at})"),
                ));
            }
        }
        Ok(())
    }

    fn string(
        &self,
        key: &Spanned<String>,
        value: Spanned<Node>,
        path: &str,
    ) -> Result<String, StudyError> {
        match value.value {
            Node::Str(s) => Ok(s),
            other => Err(self.at(
                key,
                path,
                format!("expected a string, found {}", other.describe()),
            )),
        }
    }

    fn boolean(
        &self,
        key: &Spanned<String>,
        value: Spanned<Node>,
        path: &str,
    ) -> Result<bool, StudyError> {
        match value.value {
            Node::Bool(b) => Ok(b),
            other => Err(self.at(
                key,
                path,
                format!("expected true or false, found {}", other.describe()),
            )),
        }
    }

    /// Keys that are flags, each turned into its tokens.
    fn section(
        &self,
        entries: Entries,
        keys: &[Key],
        prefix: &str,
        out: &mut Vec<Setting>,
    ) -> Result<(), StudyError> {
        for (key, value) in entries {
            let path = join(prefix, &key.value);
            refuse_api_key(self, &key, &path)?;
            let Some(k) = keys::find(keys, &key.value) else {
                let hint = keys::suggestion(&key.value, keys.iter().map(|k| k.name.as_str()));
                let home = keys::home_of(&key.value).map_or_else(String::new, |h| format!("; {h}"));
                return Err(self.at(&key, &path, format!("unknown key{hint}{home}")));
            };
            let tokens = self.tokens(&k.flag, &key, value, &path)?;
            out.push(Setting {
                long: k.flag.long.clone(),
                path,
                location: yaml::at(&self.file, &key),
                tokens,
            });
        }
        Ok(())
    }

    fn target(
        &self,
        key: &Spanned<String>,
        value: Spanned<Node>,
        study: &mut StudyFile,
    ) -> Result<(), StudyError> {
        let mut rest = Vec::new();
        for (k, v) in self.mapping(key, value, "target")? {
            let path = join("target", &k.value);
            match k.value.replace('_', "-").as_str() {
                "api-key-env" => {
                    let location = yaml::at(&self.file, &k);
                    let name = self.string(&k, v, &path)?;
                    study.api_key_env = Some(Located {
                        value: name,
                        location,
                    });
                }
                "sim" => {
                    let entries = self.mapping(&k, v, &path)?;
                    self.section(
                        entries,
                        &keys::section(Section::Sim),
                        &path,
                        &mut study.shared,
                    )?;
                }
                _ => rest.push((k, v)),
            }
        }
        self.section(
            rest,
            &keys::section(Section::Target),
            "target",
            &mut study.shared,
        )
    }

    fn output(
        &self,
        key: &Spanned<String>,
        value: Spanned<Node>,
        study: &mut StudyFile,
    ) -> Result<(), StudyError> {
        let mut rest = Vec::new();
        for (k, v) in self.mapping(key, value, "output")? {
            let path = join("output", &k.value);
            match k.value.as_str() {
                "dir" => {
                    let location = yaml::at(&self.file, &k);
                    let dir = self.string(&k, v, &path)?;
                    study.output_dir = Some(Located {
                        value: PathBuf::from(dir),
                        location,
                    });
                }
                "html" => study.html = self.boolean(&k, v, &path)?,
                _ => rest.push((k, v)),
            }
        }
        self.section(
            rest,
            &keys::section(Section::Output),
            "output",
            &mut study.shared,
        )
    }

    fn loads(
        &self,
        key: &Spanned<String>,
        value: Spanned<Node>,
    ) -> Result<Vec<LoadSpec>, StudyError> {
        let items = match value.value {
            Node::Seq(items) => items,
            Node::Null => Vec::new(),
            other => {
                let found = other.describe();
                return Err(self.at(
                    key,
                    "loads",
                    format!("expected a list of loads, found {found}"),
                ));
            }
        };
        let mut loads: Vec<LoadSpec> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let load = self.load(i, item)?;
            if let Some(first) = loads
                .iter()
                .find(|l| !l.name.is_empty() && l.name == load.name)
            {
                return Err(StudyError::Key {
                    location: load.location,
                    path: format!("loads[{i}].name"),
                    message: format!(
                        "\"{}\" is also the name of the load at {}; each load's results go in a directory of its name",
                        load.name, first.location
                    ),
                });
            }
            loads.push(load);
        }
        name_by_mode(&mut loads);
        Ok(loads)
    }

    fn load(&self, i: usize, item: Spanned<Node>) -> Result<LoadSpec, StudyError> {
        let path = format!("loads[{i}]");
        let location = yaml::at(&self.file, &item);
        let entries = match item.value {
            Node::Map(entries) => entries,
            other => {
                return Err(self.at_loc(
                    &location,
                    &path,
                    format!(
                        "expected a mapping with a `mode`, found {}",
                        other.describe()
                    ),
                ));
            }
        };
        self.no_repeats(&entries, &path)?;
        let (mut mode, mut name, mut rest) = (None, None, Vec::new());
        for (k, v) in entries {
            match k.value.as_str() {
                "mode" => mode = Some((self.string(&k, v, &join(&path, "mode"))?, k)),
                "name" => name = Some((self.string(&k, v, &join(&path, "name"))?, k)),
                _ => rest.push((k, v)),
            }
        }
        let Some((mode, mode_key)) = mode else {
            return Err(self.at_loc(
                &location,
                &path,
                format!("no `mode` (one of {})", MODES.join(", ")),
            ));
        };
        let Some(keys) = keys::load(&mode) else {
            let hint = keys::suggestion(&mode, MODES);
            return Err(self.at(
                &mode_key,
                &join(&path, "mode"),
                format!(
                    "unknown mode \"{mode}\"{hint} (one of {})",
                    MODES.join(", ")
                ),
            ));
        };
        if let Some((name, k)) = &name {
            check_name(name).map_err(|m| self.at(k, &join(&path, "name"), m))?;
        }
        let mut settings = Vec::new();
        self.section(rest, &keys, &path, &mut settings)?;
        Ok(LoadSpec {
            name: name.map_or_else(String::new, |(n, _)| n),
            mode,
            location,
            settings,
        })
    }
}

/// `api_key:` anywhere: a secret does not belong in a file that is committed and shared.
fn refuse_api_key(r: &Reader, key: &Spanned<String>, path: &str) -> Result<(), StudyError> {
    match key.value.replace('_', "-").as_str() {
        "api-key" => Err(r.at(key, path, "an API key is not written into a study file: put it in an environment variable and name that variable with target.api_key_env (e.g. api_key_env: OPENAI_API_KEY)".into())),
        _ => Ok(()),
    }
}

pub(super) fn join(prefix: &str, key: &str) -> String {
    match prefix {
        "" => key.to_string(),
        p => format!("{p}.{key}"),
    }
}
