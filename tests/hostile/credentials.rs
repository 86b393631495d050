//! The API key never shows: a server that echoes the Authorization header back in its
//! errors (as sent, decoded as Latin-1, percent-encoded, JSON-escaped, cut to a part)
//! finds none of it in stdout, stderr, requests.jsonl, results.json, summary.csv or the
//! HTML report. A key that cannot go in a header is a flag error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::server::{Reply, Request, chat_stream, json, models, serve};
use crate::terminal::servescope;

/// Non-ASCII, so each encoding of it differs from the others.
const KEY: &str = "sk-tëst-ключ-0123456789abcdefXYZ";

/// The header as the server got it: its UTF-8 bytes, one Latin-1 char each.
fn latin1(s: &str) -> String {
    s.bytes().map(char::from).collect()
}

fn percent(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02x}")).collect()
}

fn json_u(s: &str) -> String {
    s.encode_utf16().map(|u| format!("\\u{u:04X}")).collect()
}

/// What the key may never be seen as.
fn forbidden() -> Vec<String> {
    let mut v = vec![
        KEY.to_string(),
        latin1(KEY),
        percent(KEY),
        percent(KEY).to_uppercase(),
        json_u(KEY),
        json_u(&latin1(KEY)),
    ];
    // Any 8 consecutive characters of it, as sent or as Latin-1.
    let chars: Vec<char> = KEY.chars().collect();
    for w in chars.windows(8) {
        let part: String = w.iter().collect();
        v.push(latin1(&part));
        v.push(part);
    }
    v
}

/// The echo for the `n`th failing request: a 401 with the key in one of its forms.
fn echo(n: usize, header: &str) -> Reply {
    // The test server reads headers as Latin-1: `header` is the key's bytes as chars.
    let raw = String::from_utf8(header.chars().map(|c| c as u8).collect()).unwrap();
    let key = raw.trim_start_matches("Bearer ");
    let chars: Vec<char> = key.chars().collect();
    let tail: String = chars[chars.len() - 12..].iter().collect();
    let head: String = chars[..10].iter().collect();
    match n % 7 {
        0 => json(
            401,
            &format!(r#"{{"error":{{"message":"bad key {raw}"}}}}"#),
        ),
        1 => json(
            401,
            &format!(r#"{{"error":"key {} rejected"}}"#, latin1(key)),
        ),
        2 => Reply::Full(
            401,
            "text/plain",
            format!("denied: /auth?key={}", percent(key)).into_bytes(),
        ),
        3 => Reply::Full(
            401,
            "text/plain",
            format!(r#"denied {{"key": "{}"}}"#, json_u(key)).into_bytes(),
        ),
        4 => json(401, &format!(r#"{{"detail":"unknown key ...{tail}"}}"#)),
        5 => json(401, &format!(r#"{{"message":"key {head}... unknown"}}"#)),
        _ => Reply::Stream {
            events: vec![format!(
                "data: {{\"error\":{{\"message\":\"stream for {raw}\"}}}}\n\n"
            )],
            gap: Duration::ZERO,
        },
    }
}

#[test]
fn a_key_echoed_in_any_form_is_masked_in_every_output() {
    let seen = AtomicUsize::new(0);
    let srv = serve(move |r: &Request| {
        let auth = r.header("authorization").unwrap_or_default().to_string();
        assert_eq!(auth, latin1(&format!("Bearer {KEY}")), "the key as sent");
        match r.path.as_str() {
            "/v1/models" => models("\"m\""),
            "/metrics" => json(401, &format!(r#"{{"message":"metrics: {auth}"}}"#)),
            _ => match seen.fetch_add(1, Ordering::SeqCst) {
                0 => chat_stream(2, Duration::from_millis(1)),
                n => echo(n, &auth),
            },
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let html = dir.path().join("r.html");
    let ran = servescope(
        &[
            "concurrency",
            "--endpoint",
            &srv.url(),
            "--concurrency",
            "2",
            "--num-requests",
            "14",
            "--input-len",
            "8",
            "--output-len",
            "4",
            "--timeout",
            "20",
            "--metrics",
            "vllm",
            &format!("--api-key={KEY}"),
            "--output-dir",
            out.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.stdout, ran.stderr);
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let outputs = [
        ("stdout", ran.stdout.clone()),
        ("stderr", ran.stderr.clone()),
        ("requests.jsonl", read("requests.jsonl")),
        ("results.json", read("results.json")),
        ("summary.csv", read("summary.csv")),
        ("the HTML report", std::fs::read_to_string(&html).unwrap()),
    ];
    for (what, text) in &outputs {
        for f in forbidden() {
            assert!(!text.contains(&f), "{what} shows {f:?}:\n{text}");
        }
    }
    // Every form was echoed and recorded, masked.
    let errors: Vec<String> = crate::common::records(&out)
        .iter()
        .filter_map(|r| r["error"].as_str().map(String::from))
        .collect();
    assert_eq!(errors.len(), 14, "{errors:?}");
    for expected in [
        "HTTP 401: bad key Bearer ***",
        "HTTP 401: key *** rejected",
        "HTTP 401: denied: /auth?key=***",
        "HTTP 401: denied {\"key\": \"***\"}",
        "HTTP 401: unknown key ...***",
        "HTTP 401: key ***... unknown",
        "stream for Bearer ***",
    ] {
        assert!(
            errors.iter().any(|e| e == expected),
            "{expected}: {errors:?}"
        );
    }
    // The scrape's 401 was warned about, masked.
    assert!(ran.stderr.contains("metrics: Bearer ***"), "{}", ran.stderr);
    // The saved command line keeps the flag, not its value.
    assert!(
        outputs[3].1.contains("\"--api-key=***\""),
        "{}",
        outputs[3].1
    );
}

#[test]
fn a_key_with_a_line_break_is_a_flag_error() {
    for (args, env) in [
        (vec!["batch", "--api-key", "sk-abc\r\nX-Evil: 1"], vec![]),
        (vec!["batch"], vec![("OPENAI_API_KEY", "sk-abc\n")]),
    ] {
        let ran = servescope(&args, &env);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.starts_with("error: --api-key"),
            "{args:?}: {}",
            ran.stderr
        );
        assert!(!ran.stderr.contains("sk-abc"), "{}", ran.stderr);
    }
}
