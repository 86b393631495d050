//! A study's `server:` section: a server command template and the configurations to
//! start it with, one after another. For each configuration the tool picks a free
//! loopback port, starts the command (`launch`), waits for its readiness URL, hands the
//! endpoint to the caller's loads, stops the server, and records the outcome in
//! `OUT/study.json` (`index`).
//!
//! The shape follows vLLM's `bench sweep serve` (`--serve-params`: a list of flag sets,
//! keys without the dashes, `true` → `--flag`, `false` → `--no-flag`) and adds a
//! `matrix` of every combination, as SGLang's auto-benchmark search space lists each
//! flag's candidates.

mod index;
mod launch;
#[cfg(test)]
#[path = "servers/tests_spec.rs"]
mod tests_spec;

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use index::{ConfigEntry, ConfigOutcome, ConfigRun, STUDY_INDEX, StudySetIndex};
pub use index::{run_configurations, run_configurations_with};
pub use launch::{ServerProcess, StartFailure};

/// SIGKILL to a server's process group (a process ending on a signal).
pub fn kill_group(pgid: i32) {
    launch::signal_group(pgid, libc::SIGKILL);
}

/// The `server:` section of a study file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// The command that starts the server, split into words like a shell would (quotes
    /// group, no pipes or variables; run without a shell). `{port}` is replaced by a
    /// free loopback port chosen for each configuration; the word `{config}` by the
    /// configuration's flags (appended at the end when the command has no `{config}`).
    /// E.g. "llama-server -m model.gguf --host 127.0.0.1 --port {port} {config}".
    pub command: String,
    /// Polled (GET) until it answers 2xx; then the server is ready. `{port}` as in
    /// `command`. Plain http only (a server started here listens on loopback).
    #[serde(default = "default_ready_url")]
    pub ready_url: String,
    /// The base URL the loads benchmark; `{port}` as in `command`. Default: the origin
    /// of `ready_url` (scheme, host and port).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Seconds to wait for `ready_url` before the configuration is recorded as failed
    /// (model loading can take minutes).
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_s: f64,
    /// Seconds between SIGTERM to the server's process group and SIGKILL.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout_s: f64,
    /// Environment variables set for the server (added to servescope's own
    /// environment); `{port}` as in `command`. Values are never saved.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Flag sets, one configuration each, e.g. [{parallel: 1}, {parallel: 4}]. Keys
    /// are flag names without the leading `--` (a key that starts with `-` is used as
    /// written, e.g. `-np`); `_` becomes `-`. `true` gives `--flag`, `false` gives
    /// `--no-flag`; numbers and text give `--flag VALUE`.
    #[serde(default)]
    pub configs: Option<Vec<BTreeMap<String, FlagValue>>>,
    /// Every combination of these flags' values, e.g. {max-num-seqs: [64, 128, 256]};
    /// with `configs` as well, every config with every combination.
    #[serde(default)]
    pub matrix: Option<BTreeMap<String, Vec<FlagValue>>>,
}

fn default_ready_url() -> String {
    "http://127.0.0.1:{port}/health".into()
}
fn default_ready_timeout() -> f64 {
    600.0
}
fn default_stop_timeout() -> f64 {
    30.0
}

/// A flag's value in a configuration.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a flag's value: true, false, a number or a string (one value; a list of values goes in `matrix`)"
)]
pub enum FlagValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl fmt::Display for FlagValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagValue::Bool(b) => write!(f, "{b}"),
            FlagValue::Int(n) => write!(f, "{n}"),
            FlagValue::Float(x) => write!(f, "{x}"),
            FlagValue::Text(s) => f.write_str(s),
        }
    }
}

/// One configuration: its flags in key order, its label and the words they give.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `parallel=4`, `max-num-seqs=128,swap-space=4`: flag names and values joined with
    /// `,`, characters unsafe in a directory name replaced by `_`; `default` for none.
    pub label: String,
    /// The words put at `{config}`.
    pub args: Vec<String>,
}

/// A `server:` section that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("server.{key}: {why}")]
    Spec { key: &'static str, why: String },
    #[error("cannot write {path}: {why}")]
    Output { path: String, why: String },
}

fn spec_err(key: &'static str, why: impl Into<String>) -> ServerError {
    ServerError::Spec {
        key,
        why: why.into(),
    }
}

impl ServerSpec {
    /// The configurations in order: `configs` (or one empty set), each with every
    /// combination of `matrix`. Labels must differ.
    pub fn configs(&self) -> Result<Vec<Config>, ServerError> {
        let base: Vec<Vec<(String, FlagValue)>> = match &self.configs {
            Some(list) if list.is_empty() => {
                return Err(spec_err(
                    "configs",
                    "the list is empty (give at least one flag set, or leave it out)",
                ));
            }
            Some(list) => list
                .iter()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .collect(),
            None => vec![Vec::new()],
        };
        let mut sets = base;
        for (key, values) in self.matrix.iter().flatten() {
            if values.is_empty() {
                return Err(spec_err(
                    "matrix",
                    format!("{key}: no values (expected a list such as [64, 128])"),
                ));
            }
            sets = sets
                .iter()
                .flat_map(|set| {
                    values.iter().map(move |v| {
                        let mut s = set.clone();
                        s.push((key.clone(), v.clone()));
                        s
                    })
                })
                .collect();
        }
        let mut out: Vec<Config> = Vec::with_capacity(sets.len());
        for set in sets {
            let config = config_of(&set)?;
            if out.iter().any(|c| c.label == config.label) {
                return Err(spec_err(
                    "configs",
                    format!(
                        "two configurations have the label {:?}: each must differ",
                        config.label
                    ),
                ));
            }
            out.push(config);
        }
        Ok(out)
    }

    /// Every check that needs no process: timeouts, placeholders, URLs, configurations.
    pub fn check(&self) -> Result<Vec<Config>, ServerError> {
        for (key, v) in [
            ("ready_timeout_s", self.ready_timeout_s),
            ("stop_timeout_s", self.stop_timeout_s),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 1e7) {
                return Err(spec_err(key, format!("{v}: expected seconds > 0")));
            }
        }
        let words = self.template()?;
        let probe = substitute(&self.ready_url, 1);
        origin(&probe)
            .map_err(|why| spec_err("ready_url", format!("{:?}: {why}", self.ready_url)))?;
        if let Some(e) = &self.endpoint {
            let e = substitute(e, 1);
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(spec_err(
                    "endpoint",
                    format!("{e:?}: expected an http:// or https:// URL"),
                ));
            }
        }
        let configs = self.configs()?;
        // A readiness URL on the picked port while the command listens elsewhere would
        // wait the whole timeout, or find another server on a fixed port ready.
        let urls_port = self.ready_url.contains("{port}")
            || self.endpoint.as_ref().is_some_and(|e| e.contains("{port}"));
        if urls_port && !words.iter().any(|w| w.contains("{port}")) {
            return Err(spec_err(
                "command",
                "no {port} in the command while ready_url or endpoint use it: pass {port} to the server's port flag",
            ));
        }
        Ok(configs)
    }

    /// The command's words, `{config}` as its own word at most once.
    fn template(&self) -> Result<Vec<String>, ServerError> {
        let words = shlex::split(&self.command).ok_or_else(|| {
            spec_err(
                "command",
                "unbalanced quotes (the command is split like a shell would, without running one)",
            )
        })?;
        if words.is_empty() {
            return Err(spec_err(
                "command",
                "empty (expected the server's command line)",
            ));
        }
        if words[0].is_empty() || words[0].contains("{config}") {
            return Err(spec_err(
                "command",
                "its first word is the program to run (expected e.g. \"vllm serve MODEL --port {port} {config}\")",
            ));
        }
        let whole = words.iter().filter(|w| *w == "{config}").count();
        let inside = words
            .iter()
            .any(|w| w != "{config}" && w.contains("{config}"));
        if whole > 1 || inside {
            return Err(spec_err(
                "command",
                "{config} must be a word of its own, at most once (it stands for several flags)",
            ));
        }
        Ok(words)
    }

    /// The argv that starts `config` on `port`.
    pub fn argv(&self, config: &Config, port: u16) -> Result<Vec<String>, ServerError> {
        let words = self.template()?;
        let mut argv = Vec::with_capacity(words.len() + config.args.len());
        for w in &words {
            match w.as_str() {
                "{config}" => argv.extend(config.args.iter().cloned()),
                _ => argv.push(substitute(w, port)),
            }
        }
        if !words.iter().any(|w| w == "{config}") {
            argv.extend(config.args.iter().cloned());
        }
        Ok(argv)
    }

    /// The readiness URL and the endpoint on `port`.
    pub fn urls(&self, port: u16) -> Result<(String, String), ServerError> {
        let ready = substitute(&self.ready_url, port);
        let endpoint = match &self.endpoint {
            Some(e) => substitute(e, port),
            None => origin(&ready).map_err(|why| spec_err("ready_url", why))?,
        };
        Ok((ready, endpoint))
    }
}

/// `{port}` replaced.
pub(crate) fn substitute(text: &str, port: u16) -> String {
    text.replace("{port}", &port.to_string())
}

/// `http://host:port` of an http URL.
fn origin(url: &str) -> Result<String, String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err("expected an http:// URL (the server is started on this machine)".into());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    Ok(format!("http://{host}"))
}

/// A flag set's label and words.
fn config_of(set: &[(String, FlagValue)]) -> Result<Config, ServerError> {
    let mut args = Vec::new();
    let mut parts = Vec::new();
    for (key, value) in set {
        let name = key.trim_start_matches('-');
        if index::credential_flag(key) {
            return Err(spec_err(
                "configs",
                format!(
                    "{key}: a credential does not belong in a configuration (it would be saved in labels and results); put it in server.env"
                ),
            ));
        }
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '=') {
            return Err(spec_err(
                "configs",
                format!("{key:?}: expected a flag name such as max-num-seqs"),
            ));
        }
        let flag = match key.starts_with('-') {
            true => key.clone(),
            false => format!("--{}", key.replace('_', "-")),
        };
        match value {
            FlagValue::Bool(true) => args.push(flag),
            FlagValue::Bool(false) if !key.starts_with('-') => {
                args.push(format!("--no-{}", key.replace('_', "-")))
            }
            FlagValue::Bool(false) => {
                return Err(spec_err(
                    "configs",
                    format!(
                        "{key}: false has no form for a flag written with its dashes (leave it out)"
                    ),
                ));
            }
            v => {
                args.push(flag);
                args.push(v.to_string());
            }
        }
        parts.push(format!("{name}={value}"));
    }
    let label = match parts.is_empty() {
        true => "default".to_string(),
        false => dir_safe(&parts.join(",")),
    };
    Ok(Config { label, args })
}

/// Characters other than letters, digits and `._-=,+` become `_` (a directory name).
fn dir_safe(s: &str) -> String {
    s.chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || "._-=,+".contains(c) {
                true => c,
                false => '_',
            },
        )
        .collect()
}
