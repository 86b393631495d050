//! Each load of a study as the argv of its load subcommand: the file's shared settings,
//! the load's own (replacing shared ones of the same flag), its output directory, the
//! server configuration's flags, and last the flags typed after the study file
//! (replacing the file's). Each flag keeps its origin for error messages.

use std::path::{Path, PathBuf};

use super::StudyError;
use super::file::{LoadSpec, StudyFile};
use super::flags::{self, Takes};

/// Where a generated flag came from.
#[derive(Clone, Debug)]
pub struct Origin {
    pub long: String,
    /// The study key (`loads[1].concurrency`), or the flag as typed after the file.
    pub path: String,
    /// "FILE:LINE:COLUMN"; `None` for a flag typed after the study file.
    pub location: Option<String>,
}

/// A flag typed after the study file.
#[derive(Clone, Debug)]
pub struct Override {
    pub long: String,
    pub tokens: Vec<String>,
    /// The load modes that take it.
    pub modes: Vec<&'static str>,
}

/// The flags typed after the study file; `--output-dir` replaces `output.dir`.
#[derive(Debug, Default)]
pub struct Overrides {
    pub flags: Vec<Override>,
    pub output_dir: Option<PathBuf>,
}

impl Overrides {
    pub fn has(&self, long: &str) -> bool {
        self.flags.iter().any(|o| o.long == long)
    }
}

/// Read the flags typed after the study file, each checked to be a load flag.
pub fn parse_overrides(typed: &[String]) -> Result<Overrides, StudyError> {
    let mut out = Overrides::default();
    let mut it = typed.iter();
    let mut position = 0;
    while let Some(t) = it.next() {
        position += 1;
        if !t.starts_with('-') || t == "-" || t == "--" {
            // Not echoed: a stray value may be a header or key meant for a flag.
            return Err(StudyError::Flags(format!(
                "word {position} after the study file is not a flag: expected load flags such as --num-requests 10"
            )));
        }
        let (name, inline) = match t.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            // A short flag with its value attached, as clap takes it (`-HName: value`).
            _ if !t.starts_with("--") && t.len() > 2 && t.is_char_boundary(2) => {
                (&t[..2], Some(t[2..].to_string()))
            }
            _ => (t.as_str(), None),
        };
        let Some((flag, modes)) = flags::find_typed(name) else {
            return Err(StudyError::Flags(format!(
                "{name} after the study file: not a flag of any load mode (`servescope concurrency --help` lists them)"
            )));
        };
        let value = match (flag.takes, inline) {
            (Takes::Switch, v) => v,
            (_, Some(v)) => Some(v),
            (_, None) => Some(it.next().cloned().ok_or_else(|| {
                StudyError::Flags(format!("{name} after the study file: needs a value"))
            })?),
        };
        match flag.long.as_str() {
            "output-dir" => out.output_dir = value.map(PathBuf::from),
            "html" => {
                return Err(StudyError::Flags(
                    "--html after the study file: a study writes one report per load; set `output: {html: true}` (each load's report.html beside its results)".into(),
                ));
            }
            long => out.flags.push(Override {
                long: long.to_string(),
                tokens: vec![match value {
                    Some(v) => format!("--{long}={v}"),
                    None => format!("--{long}"),
                }],
                modes,
            }),
        }
    }
    Ok(out)
}

/// One load's argv, ready for the load subcommand's parser.
#[derive(Debug)]
pub struct LoadArgv {
    pub argv: Vec<String>,
    pub origins: Vec<Origin>,
}

/// What a server configuration adds to every load it runs (see `super::Configuration`).
pub struct Extra<'a> {
    pub label: &'a str,
    /// Each a whole `--long=value` (or a bare `--switch`).
    pub flags: &'a [String],
}

/// Flags a trace replay takes but the workload section does not give it.
const TRACE_OWN: [&str; 2] = ["input-len", "output-len"];

/// The argv of `load`, writing its results to `dir`.
pub fn load_argv(
    study: &StudyFile,
    load: &LoadSpec,
    overrides: &Overrides,
    dir: &Path,
    extra: Option<Extra>,
) -> LoadArgv {
    let mut flags: Vec<(Origin, Vec<String>)> = Vec::new();
    let mut set = |origin: Origin, tokens: Vec<String>| {
        flags.retain(|(o, _)| o.long != origin.long);
        flags.push((origin, tokens));
    };
    // A trace's lengths are its own: the workload section's (meant for synthetic
    // prompts) would replace them unasked, so they reach a load replaying a trace only
    // when the load itself gives them (or they are typed after the file).
    // (`trace: null` on a dual-round load gives it no trace.)
    let replays_trace = load.mode == "trace"
        || load
            .settings
            .iter()
            .any(|s| s.long == "trace" && !s.tokens.is_empty());
    let shared = study
        .shared
        .iter()
        .filter(|s| !(replays_trace && TRACE_OWN.contains(&s.long.as_str())));
    for s in shared.chain(&load.settings) {
        let origin = Origin {
            long: s.long.clone(),
            path: s.path.clone(),
            location: Some(s.location.clone()),
        };
        set(origin, s.tokens.clone());
    }
    let at = |long: &str, path: &str| Origin {
        long: long.into(),
        path: path.into(),
        location: None,
    };
    set(
        at("output-dir", "output.dir"),
        vec![format!("--output-dir={}", dir.display())],
    );
    if study.html {
        let page = dir.join("report.html");
        set(
            at("html", "output.html"),
            vec![format!("--html={}", page.display())],
        );
    }
    // A configuration's metadata label is added to the file's own `metadata` (a list
    // flag), not in place of it.
    let mut labels = Vec::new();
    if let Some(extra) = extra {
        for token in extra.flags {
            let long = token.trim_start_matches('-');
            let long = long.split_once('=').map_or(long, |(l, _)| l);
            let origin = Origin {
                long: long.to_string(),
                path: format!("server configuration {}", extra.label),
                location: None,
            };
            if long == "metadata" {
                labels.push((origin, vec![token.clone()]));
            } else {
                set(origin, vec![token.clone()]);
            }
        }
    }
    for o in overrides
        .flags
        .iter()
        .filter(|o| o.modes.contains(&load.mode.as_str()))
    {
        let origin = Origin {
            long: o.long.clone(),
            path: format!("--{}", o.long),
            location: None,
        };
        set(origin, o.tokens.clone());
    }
    flags.extend(labels);
    // A positional argument (trace's file) goes first, before any flag.
    flags.sort_by_key(|(o, _)| o.long != "file");
    let mut argv = vec!["servescope".to_string(), load.mode.clone()];
    let mut origins = Vec::with_capacity(flags.len());
    for (origin, tokens) in flags {
        argv.extend(tokens);
        origins.push(origin);
    }
    LoadArgv { argv, origins }
}
