//! The configurations run one after another, and their index `OUT/study.json`: each
//! configuration's label, the command that started its server (credentials masked), how
//! it went, its server log and the result directories under `OUT/<label>/`. The index is
//! rewritten after every configuration, so what finished is never lost.

use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::launch::{ServerProcess, StartFailure};
use super::{Config, ServerError, ServerSpec};
use crate::error::Error;
use crate::shutdown::{Phase, Shutdown, Signals};

/// The index's file name in the study's output directory.
pub const STUDY_INDEX: &str = "study.json";

/// `OUT/study.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StudySetIndex {
    /// The layout's version (1).
    pub schema_version: u32,
    /// The server command template as given (credential flags' values masked).
    pub command: Vec<String>,
    /// Every configuration, in the order run (or to be run).
    pub configs: Vec<ConfigEntry>,
}

/// One configuration in the index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigEntry {
    /// Its label (`parallel=4`), also its directory under the study's output and the
    /// `config` metadata of its results.
    pub label: String,
    /// The flags it added to the command.
    pub flags: Vec<String>,
    /// The command that started the server (credential flags' values masked).
    pub argv: Vec<String>,
    /// The endpoint its loads benchmarked.
    pub endpoint: Option<String>,
    pub outcome: ConfigOutcome,
    /// Why it did not run to the end (the server's error and log tail, the load's error).
    pub reason: Option<String>,
    /// Seconds from start until the readiness URL answered 2xx.
    pub ready_after_s: Option<f64>,
    /// The server's stdout and stderr, relative to the study's output directory.
    pub log: String,
    /// Result directories (holding results.json) under `<label>/`, relative to the
    /// study's output directory.
    pub results: Vec<String>,
}

/// How a configuration went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigOutcome {
    /// The server was ready and every load ran.
    Ran,
    /// The server did not start, exited, or was not ready in time: no load ran.
    ServerFailed,
    /// The server was ready but a load failed (what finished is kept).
    LoadsFailed,
    /// A signal stopped the study during this configuration.
    Interrupted,
    /// Not reached (the study was stopped before).
    NotRun,
}

/// What the caller's loads get for one configuration.
#[derive(Clone, Debug)]
pub struct ConfigRun {
    /// Position in the study (0 = the baseline).
    pub index: usize,
    pub label: String,
    /// The started server's base URL, for `--endpoint`.
    pub endpoint: String,
    /// `OUT/<label>/`: put each load's `--output-dir` under it.
    pub out_dir: PathBuf,
}

impl ConfigRun {
    /// Flags every load of this configuration adds: its label as results metadata.
    pub fn extra_load_args(&self) -> Vec<String> {
        vec!["--metadata".into(), format!("config={}", self.label)]
    }
}

/// Run every configuration of `spec`: start its server, wait until ready, call `each`,
/// stop the server; a server that fails is recorded and the next configuration runs.
/// Ctrl-C or SIGTERM stops the server and the study (the index says which ran).
pub fn run_configurations(
    spec: &ServerSpec,
    out: &Path,
    each: impl FnMut(&ConfigRun) -> Result<(), Error>,
) -> Result<StudySetIndex, ServerError> {
    let signals = Signals::install().map_err(|e| ServerError::Output {
        path: out.display().to_string(),
        why: format!("cannot watch for Ctrl-C: {e}"),
    })?;
    let shutdown = signals.shutdown();
    // A first signal never ends the process here: the loop stops the server itself.
    shutdown.enter(Phase::Between);
    run_configurations_with(spec, out, &shutdown, each)
}

/// `run_configurations` with a given `Shutdown` (tests trigger it themselves).
pub fn run_configurations_with(
    spec: &ServerSpec,
    out: &Path,
    shutdown: &Shutdown,
    mut each: impl FnMut(&ConfigRun) -> Result<(), Error>,
) -> Result<StudySetIndex, ServerError> {
    let configs = spec.check()?;
    std::fs::create_dir_all(out).map_err(|e| out_err(out, e))?;
    let template = masked(&shlex::split(&spec.command).unwrap_or_default());
    let mut index = StudySetIndex {
        schema_version: 1,
        command: template,
        configs: configs
            .iter()
            .map(|c| ConfigEntry {
                label: c.label.clone(),
                flags: masked(&c.args),
                argv: Vec::new(),
                endpoint: None,
                outcome: ConfigOutcome::NotRun,
                reason: None,
                ready_after_s: None,
                log: format!("{}/server.log", c.label),
                results: Vec::new(),
            })
            .collect(),
    };
    write_index(out, &index)?;
    for (i, config) in configs.iter().enumerate() {
        if shutdown.requested().is_some() {
            break;
        }
        let entry = one(spec, out, i, config, shutdown, &mut each)?;
        let stop = entry.outcome == ConfigOutcome::Interrupted;
        index.configs[i] = entry;
        write_index(out, &index)?;
        if stop {
            break;
        }
    }
    Ok(index)
}

/// One configuration, start to stop.
fn one(
    spec: &ServerSpec,
    out: &Path,
    i: usize,
    config: &Config,
    shutdown: &Shutdown,
    each: &mut impl FnMut(&ConfigRun) -> Result<(), Error>,
) -> Result<ConfigEntry, ServerError> {
    let port = free_port().map_err(|e| out_err(out, e))?;
    let argv = spec.argv(config, port)?;
    let (ready_url, endpoint) = spec.urls(port)?;
    let dir = out.join(&config.label);
    std::fs::create_dir_all(&dir).map_err(|e| out_err(&dir, e))?;
    let log = dir.join("server.log");
    let mut entry = ConfigEntry {
        label: config.label.clone(),
        flags: masked(&config.args),
        argv: masked(&argv),
        endpoint: Some(endpoint.clone()),
        outcome: ConfigOutcome::ServerFailed,
        reason: None,
        ready_after_s: None,
        log: format!("{}/server.log", config.label),
        results: Vec::new(),
    };
    errln!("── server {} ──\n{}", config.label, entry.argv.join(" "));
    // A server may print its own arguments and environment (vLLM logs its non-default
    // args): the secrets given to it are masked in what its log tail adds to a reason.
    let mask = secrets_mask(&argv, spec);
    let mut server = match ready_server(spec, &argv, port, &log, &ready_url, shutdown) {
        Ok((server, t)) => {
            entry.ready_after_s = Some((t.as_secs_f64() * 1000.0).round() / 1000.0);
            server
        }
        Err(f) => {
            (entry.outcome, entry.reason) = match f {
                StartFailure::Interrupted => (
                    ConfigOutcome::Interrupted,
                    Some("stopped by a signal while the server started".into()),
                ),
                StartFailure::Spawn(m) | StartFailure::Exited(m) | StartFailure::NotReady(m) => {
                    let m = mask.mask(&m).into_owned();
                    errln!("server {} failed: {m}", config.label);
                    (ConfigOutcome::ServerFailed, Some(m))
                }
            };
            return Ok(entry);
        }
    };
    errln!(
        "server {} ready after {:.1} s at {endpoint}",
        config.label,
        entry.ready_after_s.unwrap_or_default()
    );
    let run = ConfigRun {
        index: i,
        label: config.label.clone(),
        endpoint,
        out_dir: dir.clone(),
    };
    let result = each(&run);
    let exited = server.exited();
    server.stop();
    entry.results = result_dirs(out, &dir);
    (entry.outcome, entry.reason) = match result {
        Ok(()) => (ConfigOutcome::Ran, None),
        Err(e @ Error::Interrupted { .. }) => (ConfigOutcome::Interrupted, Some(e.to_string())),
        Err(e) => (
            ConfigOutcome::LoadsFailed,
            Some(mask.mask(&e.to_string()).into_owned()),
        ),
    };
    if let Some(status) = exited {
        let note = format!(
            "the server exited ({status}) during the loads; see {}",
            entry.log
        );
        entry.reason = Some(match entry.reason.take() {
            Some(r) => format!("{r}; {note}"),
            None => note,
        });
    }
    Ok(entry)
}

/// The server started and ready (how long it took), or why not (it is stopped then).
fn ready_server(
    spec: &ServerSpec,
    argv: &[String],
    port: u16,
    log: &Path,
    ready_url: &str,
    shutdown: &Shutdown,
) -> Result<(ServerProcess, Duration), StartFailure> {
    let env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), super::substitute(v, port)))
        .collect();
    let stop_timeout = Duration::from_secs_f64(spec.stop_timeout_s);
    let mut server = ServerProcess::start(argv, &env, log, stop_timeout)?;
    let ready_timeout = Duration::from_secs_f64(spec.ready_timeout_s);
    // On failure `server` is dropped here, which stops it.
    let t = server.wait_ready(ready_url, ready_timeout, shutdown)?;
    Ok((server, t))
}

/// A free loopback port (released at once: the server binds it a moment later).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Directories under `dir` (itself and two levels down) holding results.json, relative
/// to `out`, sorted.
fn result_dirs(out: &Path, dir: &Path) -> Vec<String> {
    let found = crate::report::study_set::result_dirs_within(dir, 0..=2);
    let mut rel: Vec<String> = found
        .iter()
        .filter_map(|p| p.strip_prefix(out).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    rel.sort();
    rel
}

fn write_index(out: &Path, index: &StudySetIndex) -> Result<(), ServerError> {
    let path = out.join(STUDY_INDEX);
    let text = serde_json::to_string_pretty(index).map_err(|e| out_err(&path, e))?;
    // Written whole then renamed: a reader never sees half an index.
    let tmp = out.join(".study.json.tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| out_err(&path, e))
}

fn out_err(path: &Path, e: impl std::fmt::Display) -> ServerError {
    ServerError::Output {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

/// A flag name that names a credential (`--api-key`, `--hf-token`, `--password`):
/// its value is masked wherever the command is saved or printed. Narrower than the
/// header rule, so `--max-num-batched-tokens 8192` still shows.
pub(crate) fn credential_flag(word: &str) -> bool {
    let name = word.trim_start_matches('-').to_ascii_lowercase();
    let last = name.rsplit(['-', '_']).next().unwrap_or_default();
    matches!(
        last,
        "key"
            | "token"
            | "secret"
            | "password"
            | "credential"
            | "credentials"
            | "auth"
            | "authorization"
    ) || name.contains("apikey")
}

/// `argv` with the values of credential flags replaced by `***`.
/// A mask of the secrets a server is given: the values of its credential flags, and
/// its environment's values under credential-like names.
fn secrets_mask(argv: &[String], spec: &ServerSpec) -> crate::client::redact::KeyMask {
    let shown = masked(argv);
    let mut secrets: Vec<&str> = Vec::new();
    for (word, shown) in argv.iter().zip(&shown) {
        if word != shown {
            secrets.push(word.split_once('=').map_or(word.as_str(), |(_, v)| v));
        }
    }
    for (name, value) in &spec.env {
        if credential_flag(name) {
            secrets.push(value);
        }
    }
    crate::client::redact::KeyMask::all(&secrets)
}

pub(crate) fn masked(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut mask_next = false;
    for w in argv {
        if mask_next {
            out.push("***".into());
            mask_next = false;
            continue;
        }
        match w.split_once('=') {
            Some((flag, _)) if w.starts_with('-') && credential_flag(flag) => {
                out.push(format!("{flag}=***"))
            }
            _ if w.starts_with('-') && credential_flag(w) => {
                out.push(w.clone());
                mask_next = true;
            }
            _ => out.push(w.clone()),
        }
    }
    out
}
