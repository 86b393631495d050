//! `--metrics` and `--metrics-url`, each repeatable: the engine's own metrics (plain
//! values, as before) and other named sources (`--metrics-url dcgm=URL`, `--metrics
//! dcgm=NAMES`), checked before any server is reached.

use std::time::Duration;

use super::load::LoadArgs;
use crate::error::Error;
use crate::metrics::server::{ENGINE, parse_names, preset};
use crate::settings::{MetricSourceSettings, MetricsSettings};

/// The engine's names when only its URL is given.
const ENGINE_DEFAULT: &str = "vllm,sglang,llamacpp";

/// `NAME=rest` when `NAME` is a source name, else `None` (a plain value: a URL, whose
/// `=` can only come after its `://`, or metric names, which never hold one).
fn named(value: &str) -> Option<(&str, &str)> {
    let (name, rest) = value.split_once('=')?;
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    ok.then_some((name, rest))
}

/// The settings of every source, or `None` when neither flag was given. The engine is
/// scraped when a plain `--metrics` or `--metrics-url` (or `engine=...`) is given.
pub(super) fn metrics(a: &LoadArgs) -> Result<Option<MetricsSettings>, Error> {
    let mut engine_url: Option<String> = None;
    let mut sources: Vec<MetricSourceSettings> = Vec::new();
    for v in &a.metrics_url {
        match named(v) {
            None | Some((ENGINE, _)) => {
                let url = named(v).map_or(v.as_str(), |(_, u)| u);
                if engine_url.replace(url.to_string()).is_some() {
                    return Err(Error::Input(format!(
                        "--metrics-url {v}: the server's own metrics URL is given twice (name other sources: --metrics-url NAME=URL)"
                    )));
                }
            }
            Some((name, url)) => {
                check_url(name, url)?;
                if sources.iter().any(|s| s.name == name) {
                    return Err(Error::Input(format!(
                        "--metrics-url {v}: the source {name:?} is given twice"
                    )));
                }
                sources.push(MetricSourceSettings {
                    name: name.to_string(),
                    url: url.to_string(),
                    names: String::new(),
                });
            }
        }
    }
    let mut engine_names: Vec<&str> = Vec::new();
    for v in &a.metrics {
        match named(v) {
            None | Some((ENGINE, _)) => engine_names.push(named(v).map_or(v.as_str(), |(_, n)| n)),
            Some((name, names)) => {
                let Some(s) = sources.iter_mut().find(|s| s.name == name) else {
                    return Err(Error::Input(format!(
                        "--metrics {v}: there is no source {name:?} (give it with --metrics-url {name}=URL)"
                    )));
                };
                if !s.names.is_empty() {
                    s.names.push(',');
                }
                s.names.push_str(names);
            }
        }
    }
    for s in &mut sources {
        if s.names.is_empty() {
            if preset(&s.name).is_none() {
                return Err(Error::Input(format!(
                    "--metrics-url {}={}: which metrics? Give them with --metrics {}=NAMES (a source named like a preset, e.g. dcgm or node, gets that preset)",
                    s.name, s.url, s.name
                )));
            }
            s.names = s.name.clone();
        }
        parse_names(&s.names).map_err(|e| {
            Error::Input(e.replacen("--metrics:", &format!("--metrics {}=...:", s.name), 1))
        })?;
    }
    let engine = !engine_names.is_empty() || engine_url.is_some();
    if !engine_names.is_empty() {
        parse_names(&engine_names.join(",")).map_err(Error::Input)?;
    }
    if !engine && sources.is_empty() {
        return Ok(None);
    }
    Ok(Some(MetricsSettings {
        names: if engine_names.is_empty() {
            ENGINE_DEFAULT.into()
        } else {
            engine_names.join(",")
        },
        url: engine_url,
        interval: Duration::from_secs_f64(a.metrics_interval),
        engine,
        sources,
    }))
}

/// A named source's URL: the flag's own message when it is not one.
fn check_url(name: &str, url: &str) -> Result<(), Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        Error::Input(format!(
            "--metrics-url {name}={url}: not a URL ({e}); expected NAME=http://HOST:PORT/metrics"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Input(format!(
            "--metrics-url {name}={url}: expected an http:// or https:// URL"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests_metric_sources.rs"]
mod tests;
