//! `--model a,b --model-weights`: requests split between models (or LoRA adapters) as
//! weighted, the same for every shard; a name the server does not serve is refused
//! before any run. `-H`: headers reach every request to the server; credential-like
//! ones never show in any output, even when the server echoes them.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use servescope::sim::{LoraModule, SimConfig, SimServer};

use crate::server::{Request, chat_stream, json, models, serve};
use crate::terminal::servescope;

/// Each record's id and model.
fn picks(dir: &std::path::Path) -> HashMap<u64, String> {
    crate::common::records(dir)
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "ok", "{r}");
            let model = r["model"]
                .as_str()
                .expect("a mixed request names its model");
            (r["id"].as_u64().unwrap(), model.to_string())
        })
        .collect()
}

fn mixed_run(out: &std::path::Path, extra: &[&str]) {
    let mut args = vec![
        "concurrency",
        "--model",
        "base,sql-lora",
        "--model-weights",
        "0.7,0.3",
        "--concurrency",
        "16",
        "--num-requests",
        "400",
        "--input-len",
        "8",
        "--output-len",
        "1",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let ran = servescope(&args, &[]);
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
}

#[test]
fn the_built_in_simulator_serves_a_weighted_mix_and_shards_agree() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    mixed_run(&whole, &[]);
    let all = picks(&whole);
    assert_eq!(all.len(), 400);
    let base = all.values().filter(|m| *m == "base").count() as f64 / 400.0;
    assert!((base - 0.7).abs() < 0.08, "base got {base} of the requests");
    // Each shard sends its part of the same workload, to the same models.
    for i in 0..2 {
        let part = dir.path().join(format!("shard{i}"));
        mixed_run(&part, &["--shard", &format!("{i}/2")]);
        let got = picks(&part);
        assert_eq!(got.len(), 200);
        for (id, model) in got {
            assert_eq!(all[&id], model, "request {id} of shard {i}/2");
        }
    }
}

fn lora_sim(cost_ms: f64) -> SimServer {
    let cfg = SimConfig {
        model: "base".into(),
        lora_modules: vec![LoraModule {
            name: "sql-lora".into(),
            path: Some("/loras/sql".into()),
            cost_ms,
        }],
        engine: None,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

#[test]
fn a_name_the_server_does_not_serve_is_refused_before_any_run() {
    let sim = lora_sim(0.0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ran = servescope(
        &[
            "concurrency",
            "--endpoint",
            &sim.url(),
            "--model",
            "base,sql-lora,nope-lora",
            "--output-dir",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(ran.code, Some(2), "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr
            .contains(r#"--model: "nope-lora" is not served by"#)
            && ran.stderr.contains(r#"which lists "base", "sql-lora""#),
        "{}",
        ran.stderr
    );
    assert!(!out.join("requests.jsonl").exists(), "nothing was sent");
    // The simulator itself answers an unknown model as vLLM does.
    let body = r#"{"model":"nope-lora","messages":[{"role":"user","content":"hi"}]}"#;
    let hostport = sim.url().trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&hostport).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    let json = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["error"]["type"], "NotFoundError", "{v}");
    assert_eq!(
        v["error"]["message"],
        "The model `nope-lora` does not exist."
    );
}

#[test]
fn an_adapters_cost_shows_in_its_requests_ttft() {
    let sim = lora_sim(40.0);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ran = servescope(
        &[
            "concurrency",
            "--endpoint",
            &sim.url(),
            "--model",
            "base,sql-lora",
            "--concurrency",
            "4",
            "--num-requests",
            "24",
            "--input-len",
            "8",
            "--output-len",
            "2",
            "--output-dir",
            out.to_str().unwrap(),
            "--quiet",
        ],
        &[],
    );
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    let mut ttft: HashMap<String, Vec<f64>> = HashMap::new();
    for r in crate::common::records(&out) {
        let t = r["first_token_at"].as_f64().unwrap() - r["started_at"].as_f64().unwrap();
        ttft.entry(r["model"].as_str().unwrap().into())
            .or_default()
            .push(t);
    }
    let min = |m: &str| ttft[m].iter().copied().fold(f64::MAX, f64::min);
    let max = |m: &str| ttft[m].iter().copied().fold(0.0, f64::max);
    // Every adapter request waits its 40 ms; a base one only the 15 ms timetable.
    assert!(min("sql-lora") >= 0.040, "{ttft:?}");
    assert!(max("base") < min("sql-lora"), "{ttft:?}");
}

#[test]
fn bad_mixes_and_headers_are_flag_errors() {
    for (args, needle) in [
        (
            &["batch", "--model", "a,b", "--model-weights", "1"][..],
            "--model-weights has 1 weights for 2 models",
        ),
        (
            &["batch", "--model", "a,b", "--model-weights", "1,x"],
            "--model-weights 1,x: \"x\" is not a number",
        ),
        (
            &["batch", "--model", "a,,b"],
            "--model \"a,,b\": name 2 is empty",
        ),
        (&["batch", "--model", "a,a"], "--model names \"a\" twice"),
        (
            &["batch", "-H", "X-Bad Name: 1"],
            "-H/--header \"X-Bad Name: 1\": ' ' is not allowed",
        ),
        (
            &["batch", "-H", "Host: elsewhere"],
            "servescope sets Host itself",
        ),
        (
            &["batch", "-H", "X-Api-Key: sekrit123\r\nX-Evil: 1"],
            "-H/--header \"X-Api-Key: ***\": the value holds a line break",
        ),
        (
            &["batch", "-H", "Authorization: Bearer x", "--api-key", "k"],
            "both set the Authorization header",
        ),
    ] {
        let ran = servescope(args, &[]);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(needle), "{args:?}: {}", ran.stderr);
        assert!(!ran.stderr.contains("sekrit123"), "{}", ran.stderr);
    }
}

const SECRET: &str = "sekrit123";

#[test]
fn headers_reach_every_request_and_a_credential_never_shows() {
    let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
    let log = seen.clone();
    let srv = serve(move |r: &Request| {
        log.lock().unwrap().push(r.clone());
        let key = r.header("x-api-key").unwrap_or_default().to_string();
        match r.path.as_str() {
            "/v1/models" => models("\"m\""),
            "/metrics" => json(401, &format!(r#"{{"message":"metrics: key {key}"}}"#)),
            // The connection test passes; every benchmark request echoes the key.
            _ if r.body.contains("\"Hello\"") => chat_stream(2, Duration::from_millis(1)),
            _ => json(
                401,
                &format!(r#"{{"error":{{"message":"bad key {key}"}}}}"#),
            ),
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
            "-H",
            &format!("X-Api-Key: {SECRET}"),
            "--header=X-Route: canary",
            "--concurrency",
            "2",
            "--num-requests",
            "6",
            "--input-len",
            "8",
            "--output-len",
            "2",
            "--metrics",
            "vllm",
            "--output-dir",
            out.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.stdout, ran.stderr);
    let seen = seen.lock().unwrap();
    for path in ["/v1/models", "/v1/chat/completions", "/metrics"] {
        let of_path: Vec<&Request> = seen.iter().filter(|r| r.path == path).collect();
        assert!(!of_path.is_empty(), "no request to {path}");
        for r in of_path {
            assert_eq!(r.header("x-api-key"), Some(SECRET), "{path}");
            assert_eq!(r.header("x-route"), Some("canary"), "{path}");
        }
    }
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let results = read("results.json");
    for (what, text) in [
        ("stdout", ran.stdout.as_str()),
        ("stderr", ran.stderr.as_str()),
        ("requests.jsonl", &read("requests.jsonl")),
        ("results.json", &results),
        ("summary.csv", &read("summary.csv")),
        ("the HTML report", &std::fs::read_to_string(&html).unwrap()),
    ] {
        assert!(!text.contains(SECRET), "{what} shows the key:\n{text}");
    }
    // The echoes were recorded, masked; the saved command keeps the other header.
    let errors: Vec<String> = crate::common::records(&out)
        .iter()
        .filter_map(|r| r["error"].as_str().map(String::from))
        .collect();
    assert_eq!(errors.len(), 6);
    assert!(
        errors.iter().all(|e| e == "HTTP 401: bad key ***"),
        "{errors:?}"
    );
    assert!(ran.stderr.contains("metrics: key ***"), "{}", ran.stderr);
    assert!(results.contains("\"X-Api-Key: ***\""), "{results}");
    assert!(
        results.contains("\"--header=X-Route: canary\""),
        "{results}"
    );
}
