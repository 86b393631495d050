//! A trace given by URL: downloaded once into a cache directory, then read from there
//! without the network. A download goes to `NAME.part` first and is renamed only once
//! whole (its size as the server announced it, its SHA-256 when `--sha256` gave one),
//! so a cut download resumes with an HTTP Range request and a cached file is never half.
//! The resume is conditional (`If-Range` with the validator saved when the part began),
//! so a file changed on the server is downloaded again rather than spliced; and a lock
//! file beside the cached copy keeps two processes from writing the same part.

use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};

use crate::error::Error;
use crate::shutdown::Shutdown;

/// `trace URL`: where it comes from and where it is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceUrl {
    pub url: String,
    /// `--cache-dir`, or the default under `$XDG_CACHE_HOME` or `~/.cache`.
    pub cache_dir: PathBuf,
    /// `--sha256`, lower-case hex.
    pub sha256: Option<String>,
}

impl TraceUrl {
    /// The cached copy: the URL's last path segment (readable), after a hash of the
    /// whole URL (so two URLs ending alike do not collide).
    pub fn cached(&self) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, self.url.as_bytes());
        let tag = hex(&digest.as_ref()[..8]);
        let tail = self
            .url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or("");
        let tail: String = tail
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(80)
            .collect();
        let tail = if tail.trim_matches('.').is_empty() {
            "trace".to_string()
        } else {
            tail
        };
        self.cache_dir.join(format!("{tag}-{tail}"))
    }

    fn part(&self) -> PathBuf {
        self.beside(".part")
    }

    /// The part's validator (strong ETag or Last-Modified) and announced size.
    fn validator(&self) -> PathBuf {
        self.beside(".part.validator")
    }

    fn lock(&self) -> PathBuf {
        self.beside(".lock")
    }

    fn beside(&self, suffix: &str) -> PathBuf {
        let mut p = self.cached().into_os_string();
        p.push(suffix);
        PathBuf::from(p)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The local copy of the trace: the cached one when present (and matching `--sha256`),
/// else downloaded now. A signal abandons the download (its part is kept).
pub fn fetch(t: &TraceUrl, shutdown: &Shutdown) -> Result<PathBuf, Error> {
    let path = t.cached();
    // Without a checksum to verify, a cached copy needs no lock (nor a writable cache).
    if t.sha256.is_none() && path.is_file() {
        return Ok(path);
    }
    fs::create_dir_all(&t.cache_dir).map_err(|e| {
        Error::Input(format!(
            "--cache-dir {}: cannot create it: {e}",
            t.cache_dir.display()
        ))
    })?;
    // Held until the download is renamed into place: another process fetching the same
    // URL (another shard on this host) waits here, then finds the cached copy.
    let lock = t.lock();
    let lock_err =
        |e: std::io::Error| Error::Output(format!("{}: cannot lock it: {e}", lock.display()));
    let guard = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(lock_err)?;
    guard.lock().map_err(lock_err)?;
    if path.is_file() {
        let Some(want) = &t.sha256 else {
            return Ok(path);
        };
        if &sha256_file(&path)? == want {
            return Ok(path);
        }
        remove(&path)?;
        errln!(
            "trace {}: the cached copy {} does not match --sha256; removed it, downloading again",
            t.url,
            path.display()
        );
    }
    crate::client::init_tls();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Server(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(shutdown.unless_stopped(download(t)))??;
    drop(guard);
    Ok(path)
}

/// How a response continues the part on disk.
enum Start {
    /// From byte 0 (no part, or the server ignored the Range request).
    Whole(Option<u64>),
    /// From the part's end; the total size from Content-Range.
    Resume(u64, Option<u64>),
    /// The part does not fit what the server has: start over.
    Restart,
}

async fn download(t: &TraceUrl) -> Result<(), Error> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        // A server that stops sending mid-file must not hang the command.
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Server(format!("cannot build the HTTP client: {e}")))?;
    let part = t.part();
    // Twice at most: a part the server cannot continue is dropped once.
    for _ in 0..2 {
        let mut have = fs::metadata(&part).map_or(0, |m| m.len());
        let saved = saved_validator(t);
        if have > 0 && saved.is_none() {
            // Nothing tells whether the server's file is still the one the part began
            // with: appending to it could splice two versions.
            remove(&part)?;
            have = 0;
        }
        let mut req = http.get(&t.url);
        if let (true, Some((validator, _))) = (have > 0, &saved) {
            req = req
                .header(RANGE, format!("bytes={have}-"))
                .header(IF_RANGE, validator.as_str());
        }
        let resp = req.send().await.map_err(|e| offline(t, &e))?;
        let expected = saved.and_then(|(_, size)| size);
        let start = match resp.status() {
            StatusCode::PARTIAL_CONTENT if have > 0 => match content_range(&resp) {
                Some((from, total))
                    if from == have && (expected.is_none() || total == expected) =>
                {
                    Start::Resume(have, total)
                }
                _ => Start::Restart,
            },
            StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => Start::Restart,
            s if s.is_success() => {
                if have > 0 {
                    errln!(
                        "trace {}: the server ignored the request to resume at byte {have}; downloading from the start",
                        t.url
                    );
                }
                Start::Whole(resp.content_length())
            }
            s => {
                return Err(Error::Input(format!(
                    "trace {}: the server answered HTTP {s}; no cached copy at {}",
                    t.url,
                    t.cached().display()
                )));
            }
        };
        match start {
            Start::Restart => {
                remove(&part)?;
                remove(&t.validator())?;
            }
            Start::Whole(total) => return receive(t, resp, 0, total).await,
            Start::Resume(from, total) => return receive(t, resp, from, total).await,
        }
    }
    Err(Error::Input(format!(
        "trace {}: the server cannot resume the download kept in {}",
        t.url,
        part.display()
    )))
}

fn offline(t: &TraceUrl, e: &reqwest::Error) -> Error {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    Error::Input(format!(
        "trace {}: cannot download it ({msg}) and there is no cached copy at {}",
        t.url,
        t.cached().display()
    ))
}

/// What identifies this version of the file for `If-Range`: a strong ETag (a weak one
/// cannot be used there), else Last-Modified.
fn validator_of(resp: &reqwest::Response) -> Option<String> {
    let h = resp.headers();
    let etag = h.get(ETAG).and_then(|v| v.to_str().ok());
    etag.filter(|e| !e.starts_with("W/"))
        .or_else(|| h.get(LAST_MODIFIED).and_then(|v| v.to_str().ok()))
        .map(str::to_string)
}

/// The part's saved validator and, when the server announced it, the whole file's size.
fn saved_validator(t: &TraceUrl) -> Option<(String, Option<u64>)> {
    let text = fs::read_to_string(t.validator()).ok()?;
    let mut lines = text.lines();
    let validator = lines.next().filter(|v| !v.is_empty())?.to_string();
    Some((validator, lines.next().and_then(|n| n.parse().ok())))
}

/// `Content-Range: bytes FROM-TO/TOTAL` (TOTAL may be `*`).
fn content_range(resp: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let from = range.split_once('-')?.0.trim().parse().ok()?;
    Some((from, total.trim().parse().ok()))
}

/// Writes the body to the part file from byte `from`, checks it, renames it into place.
async fn receive(
    t: &TraceUrl,
    mut resp: reqwest::Response,
    from: u64,
    total: Option<u64>,
) -> Result<(), Error> {
    let part = t.part();
    let io = |e: std::io::Error| Error::Output(format!("{}: {e}", part.display()));
    let mut file = if from == 0 {
        // The validator file describes the part, so it is replaced first.
        let validator = t.validator();
        match validator_of(&resp) {
            Some(v) => {
                let size = total.map_or(String::new(), |n| n.to_string());
                fs::write(&validator, format!("{v}\n{size}\n"))
                    .map_err(|e| Error::Output(format!("{}: {e}", validator.display())))?;
            }
            None => remove(&validator)?,
        }
        File::create(&part).map_err(io)?
    } else {
        OpenOptions::new().append(true).open(&part).map_err(io)?
    };
    let bar = progress(total, from);
    let mut done = from;
    let cut = |done: u64, why: String| {
        let of = total.map_or(String::new(), |n| format!(" of {n}"));
        Error::Input(format!(
            "trace {}: the download was cut after {done}{of} bytes ({why}); the part is kept in {} and resumes on the next run",
            t.url,
            part.display()
        ))
    };
    loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => {
                file.write_all(&bytes).map_err(io)?;
                done += bytes.len() as u64;
                bar.set_position(done);
            }
            Ok(None) => break,
            Err(e) => {
                bar.abandon();
                file.flush().map_err(io)?;
                return Err(cut(done, e.to_string()));
            }
        }
    }
    bar.finish_and_clear();
    file.sync_all().map_err(io)?;
    drop(file);
    if let Some(n) = total
        && done != n
    {
        return Err(cut(done, format!("the server announced {n}")));
    }
    if let Some(want) = &t.sha256 {
        let got = sha256_file(&part)?;
        if &got != want {
            remove(&part)?;
            remove(&t.validator())?;
            return Err(Error::Input(format!(
                "trace {}: the download's SHA-256 is {got}, but --sha256 expects {want}; the download was removed",
                t.url
            )));
        }
    }
    let dest = t.cached();
    fs::rename(&part, &dest).map_err(io)?;
    remove(&t.validator())?;
    errln!(
        "trace {}: downloaded {done} bytes into {}",
        t.url,
        dest.display()
    );
    Ok(())
}

/// A byte bar on stderr, drawn only on a terminal.
fn progress(total: Option<u64>, at: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(total, target);
    let template = if total.is_some() {
        "download {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "download {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_position(at);
    bar
}

fn sha256_file(path: &Path) -> Result<String, Error> {
    let io = |e: std::io::Error| Error::Input(format!("{}: cannot read it: {e}", path.display()));
    let mut file = File::open(path).map_err(io)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex(ctx.finish().as_ref()))
}

fn remove(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Output(format!(
            "{}: cannot remove it: {e}",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_keep_the_file_name_and_tell_urls_apart() {
        let t = |url: &str| TraceUrl {
            url: url.into(),
            cache_dir: PathBuf::from("/c"),
            sha256: None,
        };
        let a = t("https://h/a/trace.csv?x=1").cached();
        let b = t("https://h/b/trace.csv").cached();
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.ends_with("-trace.csv") && name.len() == 16 + 1 + 9,
            "{name}"
        );
        assert_ne!(a, b);
        assert_eq!(a.parent().unwrap(), Path::new("/c"));
        let odd = t("https://h/../").cached();
        assert!(odd.to_str().unwrap().ends_with("-trace"), "{odd:?}");
        assert!(
            t("https://h/x")
                .part()
                .to_str()
                .unwrap()
                .ends_with("-x.part")
        );
    }
}
