//! `trace URL`: the URL, its cache directory and checksum, checked before any download.

use std::path::{Path, PathBuf};

use super::load::TraceArgs;
use crate::error::Error;
use crate::workload::download::TraceUrl;

/// The URL a trace was given as (`None`: a file); `--cache-dir` and `--sha256` only
/// with one.
pub(super) fn trace_url(a: &TraceArgs) -> Result<Option<TraceUrl>, Error> {
    let text = a.file.to_str().unwrap_or("");
    let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        for (given, flag) in [
            (a.cache_dir.is_some(), "--cache-dir"),
            (a.sha256.is_some(), "--sha256"),
        ] {
            if given {
                return Err(Error::Input(format!(
                    "{flag} applies to a trace given as an http(s):// URL; {} is a file",
                    a.file.display()
                )));
            }
        }
        return Ok(None);
    }
    let url = reqwest::Url::parse(text)
        .ok()
        .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()))
        .ok_or_else(|| {
            Error::Input(format!(
                "trace {text}: not a valid URL; expected e.g. https://host/path/trace.csv"
            ))
        })?;
    let sha256 = match &a.sha256 {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(h) => {
            return Err(Error::Input(format!(
                "--sha256 {h:?}: expected 64 hexadecimal digits (the file's SHA-256)"
            )));
        }
        None => None,
    };
    let cache_dir = match &a.cache_dir {
        Some(d) => d.clone(),
        None => default_cache_dir(
            std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
            std::env::var_os("HOME").map(PathBuf::from),
        )?,
    };
    Ok(Some(TraceUrl {
        url: url.to_string(),
        cache_dir,
        sha256,
    }))
}

/// `$XDG_CACHE_HOME/servescope/traces` (an absolute path, as the XDG spec asks), else
/// `~/.cache/servescope/traces`.
fn default_cache_dir(xdg: Option<PathBuf>, home: Option<PathBuf>) -> Result<PathBuf, Error> {
    let base = match (xdg, home) {
        (Some(x), _) if x.is_absolute() => x,
        (_, Some(h)) if h.as_os_str() != "" => h.join(".cache"),
        _ => {
            return Err(Error::Input(
                "trace URL: no cache directory (XDG_CACHE_HOME and HOME are unset); give --cache-dir DIR".into(),
            ));
        }
    };
    Ok(base.join(Path::new("servescope/traces")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_follows_xdg_then_home() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            default_cache_dir(p("/x"), p("/h")).unwrap(),
            PathBuf::from("/x/servescope/traces")
        );
        // A relative XDG_CACHE_HOME is ignored, as the spec says.
        assert_eq!(
            default_cache_dir(p("rel"), p("/h")).unwrap(),
            PathBuf::from("/h/.cache/servescope/traces")
        );
        let e = default_cache_dir(None, None).unwrap_err().to_string();
        assert!(e.contains("--cache-dir"), "{e}");
    }
}
