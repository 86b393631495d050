//! `trace URL`: downloaded once into the cache, read from there with the server gone,
//! resumed after a cut (HTTP Range), restarted when the server ignores the range,
//! removed on a checksum mismatch, and a clear error with neither server nor cache.
//! A resume is conditional on the file being unchanged (If-Range), and two processes
//! fetching one URL at once share one download.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::child::command;
use crate::server::{Reply, Request, serve};

/// A small Azure trace: 5 requests 20 ms apart.
fn body() -> Vec<u8> {
    let mut s = String::from("TIMESTAMP,ContextTokens,GeneratedTokens\n");
    for i in 0..5 {
        s.push_str(&format!(
            "2023-11-16 18:15:46.{:02}00000,{},3\n",
            10 + 2 * i,
            20 + i
        ));
    }
    s.into_bytes()
}

fn sha256(bytes: &[u8]) -> String {
    // The test checks the crate's hashing against an independent one: sha256sum.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b");
    std::fs::write(&p, bytes).unwrap();
    let out = std::process::Command::new("sha256sum")
        .arg(&p)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

struct Ran {
    code: Option<i32>,
    stderr: String,
    requests: usize,
}

fn run(url: &str, cache: &Path, extra: &[&str]) -> Ran {
    let out = command(&[
        "trace",
        url,
        "--cache-dir",
        cache.to_str().unwrap(),
        "--quiet",
    ])
    .args(extra)
    .args(["--output-dir"])
    .arg(cache.parent().unwrap().join(format!("out-{}", rand_tag())))
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let requests = stdout
        .lines()
        .find_map(|l| l.strip_prefix("requests"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Ran {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        requests,
    }
}

fn rand_tag() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// Files in the cache directory, by name, without the lock and validator files.
fn cached(cache: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(cache)
        .map(|d| {
            d.map(|e| e.unwrap())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    !name.ends_with(".lock") && !name.ends_with(".validator")
                })
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().to_string(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The strong ETag a server gives `body` (FNV-1a: another body, another tag).
fn etag(body: &[u8]) -> String {
    let h = body.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    });
    format!("\"{h:016x}\"")
}

/// Serves `body` whole, or from the byte a `Range: bytes=N-` asks unless its If-Range
/// names another version (then whole, as RFC 9110 says); records each Range.
fn ranged(body: Vec<u8>, ranges: Arc<Mutex<Vec<Option<String>>>>) -> impl Fn(&Request) -> Reply {
    ranged_total(body, ranges, None)
}

/// As `ranged`, with the Content-Range total given (`None`: the body's length).
fn ranged_total(
    body: Vec<u8>,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
    total: Option<usize>,
) -> impl Fn(&Request) -> Reply {
    let tag = etag(&body);
    move |req| {
        let range = req.header("range").map(str::to_string);
        ranges.lock().unwrap().push(range.clone());
        let current = req.header("if-range").is_none_or(|v| v == tag);
        let from = range.as_deref().and_then(|r| {
            r.strip_prefix("bytes=")?
                .strip_suffix('-')?
                .parse::<usize>()
                .ok()
        });
        let n = body.len();
        match from {
            Some(from) if from < n && current => {
                let mut raw = format!(
                    "HTTP/1.1 206 Partial Content\r\netag: {tag}\r\ncontent-length: {}\r\ncontent-range: bytes {from}-{}/{}\r\nconnection: close\r\n\r\n",
                    n - from,
                    n - 1,
                    total.unwrap_or(n)
                )
                .into_bytes();
                raw.extend_from_slice(&body[from..]);
                Reply::Raw(raw)
            }
            _ => {
                let mut raw = format!(
                    "HTTP/1.1 200 OK\r\netag: {tag}\r\ncontent-length: {n}\r\nconnection: close\r\n\r\n"
                )
                .into_bytes();
                raw.extend_from_slice(&body);
                Reply::Raw(raw)
            }
        }
    }
}

/// Announces the whole body (with its ETag), sends its first `keep` bytes, closes.
fn cut(body: Vec<u8>, keep: usize) -> impl Fn(&Request) -> Reply {
    move |_| {
        let mut raw = format!(
            "HTTP/1.1 200 OK\r\netag: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            etag(&body),
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body[..keep]);
        Reply::Raw(raw)
    }
}

fn cache_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    (dir, cache)
}

#[test]
fn downloaded_once_then_read_from_the_cache_with_the_server_gone() {
    let (_dir, cache) = cache_dir();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let server = serve(ranged(body(), ranges.clone()));
    let url = format!("{}/data/AzureLLMInferenceTrace_conv.csv", server.url());
    let sum = sha256(&body());
    let r = run(&url, &cache, &["--sha256", &sum.to_uppercase()]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.requests, 5, "{}", r.stderr);
    let said = format!("downloaded {} bytes into", body().len());
    assert!(r.stderr.contains(&said), "{}", r.stderr);
    let files = cached(&cache);
    assert_eq!(files.len(), 1, "no part left: {files:?}");
    assert!(files[0].0.ends_with("-AzureLLMInferenceTrace_conv.csv"));
    assert_eq!(files[0].1, body());
    assert_eq!(*ranges.lock().unwrap(), [None]);
    drop(server);
    // Offline now: the cached copy (checked against --sha256 again) is enough.
    let r = run(&url, &cache, &["--sha256", &sum]);
    assert_eq!((r.code, r.requests), (Some(0), 5), "{}", r.stderr);
    assert!(!r.stderr.contains("downloaded"), "{}", r.stderr);
}

#[test]
fn a_cut_download_resumes_with_a_range_request() {
    let (_dir, cache) = cache_dir();
    let full = body();
    let server = serve(cut(full.clone(), 100));
    let url = format!("{}/t.csv", server.url());
    let r = run(&url, &cache, &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "the download was cut after 100 of {} bytes",
            full.len()
        )) && r.stderr.contains(".part and resumes on the next run"),
        "{}",
        r.stderr
    );
    let files = cached(&cache);
    assert_eq!(files.len(), 1);
    assert!(files[0].0.ends_with("-t.csv.part"), "{files:?}");
    assert_eq!(files[0].1, full[..100]);
    drop(server);

    // The same URL again (same port, so the same cache entry), now a server that
    // honours Range: only the rest is sent.
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let resumed = serve_at(&url, ranged(full.clone(), ranges.clone()));
    let r = run(&url, &cache, &["--sha256", &sha256(&full)]);
    assert_eq!((r.code, r.requests), (Some(0), 5), "{}", r.stderr);
    assert_eq!(*ranges.lock().unwrap(), [Some("bytes=100-".to_string())]);
    let files = cached(&cache);
    assert_eq!((files.len(), &files[0].1), (1, &full), "{files:?}");
    drop(resumed);
}

#[test]
fn a_server_that_ignores_range_restarts_the_download_cleanly() {
    let (_dir, cache) = cache_dir();
    let full = body();
    let server = serve(cut(full.clone(), 50));
    let url = format!("{}/t.csv", server.url());
    assert_eq!(run(&url, &cache, &[]).code, Some(2));
    drop(server);
    // Answers every request with the whole file (200), Range or not.
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let body = full.clone();
    let whole = serve_at(&url, move |req: &Request| {
        seen.lock()
            .unwrap()
            .push(req.header("range").map(str::to_string));
        Reply::Full(200, "text/csv", body.clone())
    });
    let r = run(&url, &cache, &[]);
    assert_eq!((r.code, r.requests), (Some(0), 5), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("ignored the request to resume at byte 50"),
        "{}",
        r.stderr
    );
    assert_eq!(*asked.lock().unwrap(), [Some("bytes=50-".to_string())]);
    let files = cached(&cache);
    assert_eq!(
        (files.len(), &files[0].1),
        (1, &full),
        "not appended: {files:?}"
    );
    drop(whole);
}

#[test]
fn a_checksum_mismatch_removes_the_download() {
    let (_dir, cache) = cache_dir();
    let server = serve(ranged(body(), Arc::default()));
    let url = format!("{}/t.csv", server.url());
    let wrong = "0".repeat(64);
    let r = run(&url, &cache, &["--sha256", &wrong]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "the download's SHA-256 is {}, but --sha256 expects {wrong}; the download was removed",
            sha256(&body())
        )),
        "{}",
        r.stderr
    );
    assert!(cached(&cache).is_empty(), "{:?}", cached(&cache));
}

#[test]
fn without_server_or_cache_the_error_names_the_url_and_the_cache() {
    let (_dir, cache) = cache_dir();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/gone.csv");
    let r = run(&url, &cache, &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("trace {url}: cannot download it ("))
            && r.stderr.contains(&format!(
                "and there is no cached copy at {}",
                cache.display()
            )),
        "{}",
        r.stderr
    );
    // An HTTP error is named too, and leaves nothing behind.
    let server = serve(|_| Reply::Full(404, "text/plain", b"no".to_vec()));
    let r = run(&format!("{}/x.csv", server.url()), &cache, &[]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(
        r.stderr.contains("the server answered HTTP 404"),
        "{}",
        r.stderr
    );
    assert!(cached(&cache).is_empty());
}

#[test]
fn the_default_cache_is_under_xdg_cache_home() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(ranged(body(), Arc::default()));
    let url = format!("{}/t.csv", server.url());
    let out = command(&["trace", &url, "--quiet", "--output-dir"])
        .arg(dir.path().join("out"))
        .env("XDG_CACHE_HOME", dir.path().join("xdg"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cached(&dir.path().join("xdg/servescope/traces")).len(), 1);
    // --cache-dir and --sha256 belong to URLs only.
    let out = command(&["trace", "local.csv", "--sha256", &"a".repeat(64)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--sha256 applies to a trace given as an http(s):// URL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = command(&["trace", &url, "--sha256", "abc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected 64 hexadecimal digits"));
}

/// A scripted server on the port of `url` (free again once its last server dropped),
/// so the URL, and so the cache entry, stay the same.
fn serve_at(
    url: &str,
    answer: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> crate::server::Scripted {
    let port: u16 = url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    crate::server::serve_on(port, answer)
}

#[path = "trace_url_resume.rs"]
mod resume;
