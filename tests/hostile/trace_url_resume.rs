//! Resuming only what is still the same file (If-Range with the validator saved beside
//! the part), and two processes fetching one URL at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{body, cache_dir, cached, cut, etag, ranged, ranged_total, run, serve_at};
use crate::server::{Reply, Request, serve};

/// The same length as `body()`, other bytes: the file as changed on the server.
fn changed() -> Vec<u8> {
    let old = body();
    let new = String::from_utf8(old.clone())
        .unwrap()
        .replace(",3\n", ",4\n");
    assert_eq!(new.len(), old.len());
    new.into_bytes()
}

#[test]
fn a_file_changed_since_the_part_began_is_downloaded_whole_again() {
    let (_dir, cache) = cache_dir();
    let old = body();
    let server = serve(cut(old.clone(), 100));
    let url = format!("{}/t.csv", server.url());
    assert_eq!(run(&url, &cache, &[]).code, Some(2));
    drop(server);
    let new = changed();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let serve_new = ranged(new.clone(), Arc::default());
    let server = serve_at(&url, move |req: &Request| {
        let if_range = req.header("if-range").map(str::to_string);
        seen.lock()
            .unwrap()
            .push((req.header("range").map(str::to_string), if_range));
        serve_new(req)
    });
    let r = run(&url, &cache, &[]);
    assert_eq!((r.code, r.requests), (Some(0), 5), "{}", r.stderr);
    assert_eq!(
        *asked.lock().unwrap(),
        [(Some("bytes=100-".to_string()), Some(etag(&old)))]
    );
    let files = cached(&cache);
    assert_eq!((files.len(), &files[0].1), (1, &new), "spliced: {files:?}");
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        2,
        "the file and its lock"
    );
    drop(server);
}

#[test]
fn a_part_without_a_validator_is_downloaded_from_the_start() {
    let (_dir, cache) = cache_dir();
    let full = body();
    let server = serve(cut(full.clone(), 100));
    let url = format!("{}/t.csv", server.url());
    assert_eq!(run(&url, &cache, &[]).code, Some(2));
    drop(server);
    // A part with nothing telling which version of the file it holds.
    let mut validators = 0;
    for e in std::fs::read_dir(&cache).unwrap() {
        let path = e.unwrap().path();
        if path.to_string_lossy().ends_with(".part.validator") {
            std::fs::remove_file(path).unwrap();
            validators += 1;
        }
    }
    assert_eq!(validators, 1);
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let server = serve_at(&url, ranged(full.clone(), ranges.clone()));
    let r = run(&url, &cache, &[]);
    assert_eq!((r.code, r.requests), (Some(0), 5), "{}", r.stderr);
    assert_eq!(
        *ranges.lock().unwrap(),
        [None],
        "no Range without a validator"
    );
    let files = cached(&cache);
    assert_eq!((files.len(), &files[0].1), (1, &full), "{files:?}");
    drop(server);
}

#[test]
fn a_partial_answer_for_another_size_restarts_the_download() {
    let (_dir, cache) = cache_dir();
    let full = body();
    let server = serve(cut(full.clone(), 100));
    let url = format!("{}/t.csv", server.url());
    assert_eq!(run(&url, &cache, &[]).code, Some(2));
    drop(server);
    // Same ETag, but its Content-Range claims a total other than the one first announced.
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let wrong = Some(full.len() + 7);
    let server = serve_at(&url, ranged_total(full.clone(), ranges.clone(), wrong));
    let r = run(&url, &cache, &[]);
    assert_eq!((r.code, r.requests), (Some(0), 5), "{}", r.stderr);
    assert_eq!(
        *ranges.lock().unwrap(),
        [Some("bytes=100-".to_string()), None]
    );
    let files = cached(&cache);
    assert_eq!((files.len(), &files[0].1), (1, &full), "{files:?}");
    drop(server);
}

#[test]
fn two_processes_fetching_one_url_share_one_download() {
    let (_dir, cache) = cache_dir();
    let full = body();
    // A slow file: five pieces 150 ms apart, so both downloads would overlap.
    let pieces: Vec<String> = String::from_utf8(full.clone())
        .unwrap()
        .split_inclusive('\n')
        .map(str::to_string)
        .collect();
    let asked = Arc::new(Mutex::new(0));
    let count = asked.clone();
    let server = serve(move |_: &Request| {
        *count.lock().unwrap() += 1;
        Reply::Stream {
            events: pieces.clone(),
            gap: Duration::from_millis(150),
        }
    });
    let url = format!("{}/t.csv", server.url());
    let both: Vec<_> = (0..2)
        .map(|i| {
            let (url, cache) = (url.clone(), cache.clone());
            let shard = format!("{i}/2");
            std::thread::spawn(move || run(&url, &cache, &["--shard", &shard]))
        })
        .collect();
    let ran: Vec<_> = both.into_iter().map(|h| h.join().unwrap()).collect();
    for r in &ran {
        assert_eq!(r.code, Some(0), "{}", r.stderr);
    }
    assert_eq!(ran[0].requests + ran[1].requests, 5);
    assert_eq!(
        *asked.lock().unwrap(),
        1,
        "the second found the cached copy"
    );
    let files = cached(&cache);
    assert_eq!((files.len(), &files[0].1), (1, &full), "{files:?}");
}
