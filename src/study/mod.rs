//! `servescope run STUDY.yaml`: a whole study from one file. Each load of the file
//! becomes the argv of its load subcommand (`argv.rs`), parsed by the same clap
//! definitions and checked by the same `Settings::from_cli` as on the command line, so
//! every check and default is the command line's; errors are told back in the file's
//! keys and lines (`errors.rs`). Loads run one after another, each saved as an ordinary
//! result directory `OUT/<load>/` that report, compare and merge read.

pub mod argv;
mod errors;
pub mod file;
pub mod flags;
pub mod keys;
pub mod schema;
pub mod servers;

use std::path::{Path, PathBuf};

use clap::Parser;

pub use errors::StudyError;

use crate::Error;
use crate::cli::Cli;
use crate::session::SessionOutcome;
use crate::settings::{LoadSettings, Settings, StudySettings};
use argv::{Extra, LoadArgv, Overrides};
use file::{LoadSpec, StudyFile};

/// What a study did: each load's session, in order.
#[derive(Debug)]
pub struct StudyOutcome {
    pub dir: PathBuf,
    pub loads: Vec<LoadOutcome>,
}

#[derive(Debug)]
pub struct LoadOutcome {
    /// The load's name, prefixed by its server configuration's label when it has one.
    pub name: String,
    pub mode: String,
    pub dir: PathBuf,
    pub session: SessionOutcome,
}

/// A server configuration the loads run under: a label (its results go under
/// `OUT/<label>/`) and the flags it adds to every load (`--endpoint`, a metadata
/// label). Until a study can start servers (its `server:` section, `servers.rs`), a
/// study has one configuration: the target as the file gives it, with no label.
#[derive(Debug, Default)]
pub struct Configuration {
    pub label: Option<String>,
    pub flags: Vec<String>,
}

/// A load checked and ready to run.
struct Prepared {
    name: String,
    mode: String,
    dir: PathBuf,
    argv: Vec<String>,
    settings: LoadSettings,
}

/// Read, check and run a study.
pub fn run(s: StudySettings) -> Result<StudyOutcome, Error> {
    let study = file::read(&s.file)?;
    let overrides = argv::parse_overrides(&s.overrides)?;
    check_overrides_apply(&study, &overrides)?;
    let dir = match (&overrides.output_dir, &study.output_dir) {
        (Some(d), _) => d.clone(),
        (None, Some(d)) => d.value.clone(),
        (None, None) => {
            return Err(StudyError::File {
                file: study.file.clone(),
                message: "no output directory: give `output: {dir: DIR}` in the study or --output-dir DIR after it".into(),
            }
            .into());
        }
    };
    let key = api_key(&study, &overrides)?;
    let done = match &study.server {
        None => run_loads(&study, &overrides, &dir, key.as_deref())?,
        Some(server) => run_servers(&study, &server.value, &overrides, &dir, key.as_deref())?,
    };
    print_summary(&study.file, &dir, &done);
    Ok(StudyOutcome { dir, loads: done })
}

/// The loads against the file's target. Every load is checked before the first one
/// runs, so a mistake in the last load does not cost the runs before it.
fn run_loads(
    study: &StudyFile,
    overrides: &Overrides,
    dir: &Path,
    key: Option<&str>,
) -> Result<Vec<LoadOutcome>, Error> {
    let c = Configuration::default();
    let plan: Vec<Prepared> = study
        .loads
        .iter()
        .map(|l| prepare(study, l, overrides, dir, &c, key))
        .collect::<Result<_, _>>()?;
    let mut done = Vec::new();
    for p in plan {
        done.push(run_one(study, p)?);
    }
    Ok(done)
}

fn run_one(study: &StudyFile, p: Prepared) -> Result<LoadOutcome, Error> {
    errln!("── study {}: load {} ({}) ──", study.file, p.name, p.mode);
    let session = crate::commands::run(p.settings, &p.argv)?;
    Ok(LoadOutcome {
        name: p.name,
        mode: p.mode,
        dir: p.dir,
        session,
    })
}

/// The loads once per server configuration: its server started on a free port and
/// waited for, every load run against it under `OUT/<label>/`, the server stopped
/// (`servers::run_configurations`, which records each configuration in study.json; a
/// configuration whose server or loads fail is recorded and the next one runs).
fn run_servers(
    study: &StudyFile,
    server: &servers::ServerSpec,
    overrides: &Overrides,
    dir: &Path,
    key: Option<&str>,
) -> Result<Vec<LoadOutcome>, Error> {
    if overrides.has("endpoint") || study.shared.iter().any(|s| s.long == "endpoint") {
        return Err(StudyError::File {
            file: study.file.clone(),
            message: "`server:` starts the server the loads benchmark: leave out \
                      target.endpoint and --endpoint (the server's `endpoint` key sets \
                      its URL)"
                .into(),
        }
        .into());
    }
    // Every configuration's loads checked before any server starts (a model may take
    // minutes to load), with a stand-in endpoint: their flags, and that their output
    // directories may be written (results there need --overwrite or --append).
    for config in &study.server_configs {
        let check = configuration(&config.label, "http://127.0.0.1:9");
        for l in &study.loads {
            let p = prepare(study, l, overrides, dir, &check, key)?;
            crate::session::outdir::check(&p.settings.session, None)?;
        }
    }
    let mut done = Vec::new();
    // A load ended by a signal: which signal, and the runs it saved.
    let mut interrupted_by = None;
    let index = servers::run_configurations(server, dir, |run| {
        let c = configuration(&run.label, &run.endpoint);
        for l in &study.loads {
            let p = prepare(study, l, overrides, dir, &c, key)?;
            match run_one(study, p) {
                Ok(outcome) => done.push(outcome),
                Err(e) => {
                    if let Error::Interrupted { signal, runs } = e {
                        interrupted_by = Some((signal, runs));
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    })
    .map_err(|e| match e {
        servers::ServerError::Spec { .. } => Error::Input(format!("{}: {e}", study.file)),
        servers::ServerError::Output { .. } => Error::Output(e.to_string()),
    })?;
    for c in &index.configs {
        if let Some(reason) = &c.reason {
            errln!("WARNING: configuration {}: {reason}", c.label);
        }
    }
    use servers::ConfigOutcome;
    if index
        .configs
        .iter()
        .any(|c| c.outcome == ConfigOutcome::Interrupted)
    {
        print_summary(&study.file, dir, &done);
        // A signal while a server started reached the launcher, not a load: SIGINT's
        // status then (the launcher does not say which signal it was).
        let (signal, last) = interrupted_by.unwrap_or((2, 0));
        let runs = done.iter().map(|l| l.session.runs.len()).sum::<usize>() + last;
        return Err(Error::Interrupted { signal, runs });
    }
    // Every configuration was tried; one that did not run to the end fails the study
    // (exit 1) after the others ran, as a failed run fails a session.
    let failed: Vec<String> = index
        .configs
        .iter()
        .filter(|c| c.outcome != ConfigOutcome::Ran)
        .map(|c| {
            let outcome = serde_json::to_string(&c.outcome).unwrap_or_default();
            format!("{} ({})", c.label, outcome.trim_matches('"'))
        })
        .collect();
    if !failed.is_empty() {
        print_summary(&study.file, dir, &done);
        return Err(Error::Server(format!(
            "{} of {} server configurations did not run to the end: {}; {} says why, and keeps what finished",
            failed.len(),
            index.configs.len(),
            failed.join(", "),
            dir.join(servers::STUDY_INDEX).display()
        )));
    }
    Ok(done)
}

/// A server configuration's flags for every load: its endpoint and its label.
fn configuration(label: &str, endpoint: &str) -> Configuration {
    Configuration {
        label: Some(label.to_string()),
        flags: vec![
            format!("--endpoint={endpoint}"),
            format!("--metadata=config={label}"),
        ],
    }
}

/// One load's argv parsed and checked as its load subcommand would be.
fn prepare(
    study: &StudyFile,
    load: &LoadSpec,
    overrides: &Overrides,
    out: &Path,
    c: &Configuration,
    api_key: Option<&str>,
) -> Result<Prepared, Error> {
    let base = c
        .label
        .as_ref()
        .map_or_else(|| out.to_path_buf(), |l| out.join(l));
    let dir = base.join(&load.name);
    let extra = c.label.as_deref().map(|label| Extra {
        label,
        flags: &c.flags,
    });
    let LoadArgv { argv, origins } = argv::load_argv(study, load, overrides, &dir, extra);
    let mut cli =
        Cli::try_parse_from(&argv).map_err(|e| errors::from_clap(&e, &load.name, &origins))?;
    if let (Some(key), Some(args)) = (api_key, cli.command.load_args_mut()) {
        args.api_key = Some(key.to_string());
    }
    let settings = match Settings::from_cli(cli) {
        Ok(Settings::Load(s)) => *s,
        Ok(_) => {
            return Err(Error::Input(format!(
                "load \"{}\": mode {} is not a load subcommand",
                load.name, load.mode
            )));
        }
        Err(Error::Input(m)) => {
            return Err(StudyError::Load(errors::locate(&m, &load.name, &origins)).into());
        }
        Err(e) => return Err(e),
    };
    let name = match &c.label {
        Some(l) => format!("{l}/{}", load.name),
        None => load.name.clone(),
    };
    Ok(Prepared {
        name,
        mode: load.mode.clone(),
        dir,
        argv,
        settings,
    })
}

/// A flag typed after the study file that no load of it takes is a mistake, not a no-op.
fn check_overrides_apply(study: &StudyFile, o: &Overrides) -> Result<(), StudyError> {
    for f in &o.flags {
        if !study
            .loads
            .iter()
            .any(|l| f.modes.contains(&l.mode.as_str()))
        {
            let modes: Vec<&str> = study.loads.iter().map(|l| l.mode.as_str()).collect();
            return Err(StudyError::Flags(format!(
                "--{} after the study file: no load of {} takes it (its loads are {}; it is a flag of {})",
                f.long,
                study.file,
                modes.join(", "),
                f.modes.join(", ")
            )));
        }
    }
    Ok(())
}

/// The API key from the variable `target.api_key_env` names (a typed --api-key wins).
/// Neither the key nor anything that looks like one is ever printed.
fn api_key(study: &StudyFile, o: &Overrides) -> Result<Option<String>, StudyError> {
    let Some(env) = &study.api_key_env else {
        return Ok(None);
    };
    if o.has("api-key") {
        return Ok(None);
    }
    let fail = |message: String| StudyError::Key {
        location: env.location.clone(),
        path: "target.api_key_env".into(),
        message,
    };
    let name = &env.value;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        // Not echoed: a key pasted here by mistake must not reach a terminal or log.
        return Err(fail(
            "expected the NAME of an environment variable (letters, digits, '_'), not the key itself".into(),
        ));
    }
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(Some(v)),
        _ => Err(fail(format!(
            "the environment variable {name} is not set (or empty); set it to the API key"
        ))),
    }
}

fn print_summary(file: &str, dir: &Path, loads: &[LoadOutcome]) {
    outln!(
        "\nstudy {file}: {} load{} saved under {}",
        loads.len(),
        if loads.len() == 1 { "" } else { "s" },
        dir.display()
    );
    let width = loads.iter().map(|l| l.name.len()).max().unwrap_or(0);
    for l in loads {
        let runs = l.session.runs.len();
        outln!(
            "  {:width$}  {:12} {} run{}  {}",
            l.name,
            l.mode,
            runs,
            if runs == 1 { " " } else { "s" },
            l.dir.display()
        );
    }
}

#[cfg(test)]
#[path = "tests_study.rs"]
mod tests;
