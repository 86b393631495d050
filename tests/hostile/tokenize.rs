//! `--tokenizer server` against every engine's tokenize shape (scripted: llama.cpp,
//! SGLang, TGI; the simulator speaks vLLM's), against servers that answer none or
//! answer nonsense, and the warning when output is counted with the built-in default.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use servescope::workload::Tokenizer;
use servescope::{Error, Outcome, run_args};

use crate::server::{Reply, Request, chat_stream, json as reply_json, models, serve};

fn tok() -> Tokenizer {
    Tokenizer::builtin()
}

fn body(r: &Request) -> Value {
    serde_json::from_str(&r.body).unwrap_or(Value::Null)
}

fn ok(v: Value) -> Reply {
    reply_json(200, &v.to_string())
}

fn not_found() -> Reply {
    reply_json(404, r#"{"detail":"Not Found"}"#)
}

/// A chat stream of `n` deltas without usage (llama.cpp's Python server, some gateways).
fn chat_without_usage(n: usize) -> Reply {
    let mut events: Vec<String> = (0..n)
        .map(|_| {
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" alpha\"}}]}\n\n".into()
        })
        .collect();
    events.push("data: [DONE]\n\n".into());
    Reply::Stream {
        events,
        gap: Duration::from_millis(1),
    }
}

/// llama.cpp: `/tokenize {"content"}` → `{"tokens"}`, `/detokenize {"tokens"}` →
/// `{"content"}`; a vLLM-shaped body is refused as llama.cpp refuses it.
fn llama_cpp(r: &Request) -> Option<Reply> {
    let b = body(r);
    Some(match r.path.as_str() {
        "/tokenize" => match b["content"].as_str() {
            Some(t) => ok(json!({"tokens": tok().encode(t)})),
            None => reply_json(
                500,
                r#"{"error":{"code":500,"message":"\"content\" must be provided"}}"#,
            ),
        },
        "/detokenize" => {
            let ids: Vec<u32> = serde_json::from_value(b["tokens"].clone()).ok()?;
            ok(json!({"content": tok().decode(&ids)}))
        }
        _ => return None,
    })
}

/// SGLang: `/v1/tokenize` takes a list of prompts; `/tokenize` is its alias, and its
/// detokenize answers `{"text"}` (not vLLM's `{"prompt"}`).
fn sglang(r: &Request, calls: &AtomicUsize) -> Option<Reply> {
    let b = body(r);
    Some(match r.path.as_str() {
        "/tokenize" | "/v1/tokenize" => {
            calls.fetch_add(1, Ordering::SeqCst);
            match &b["prompt"] {
                Value::String(t) => ok(json!({"tokens": tok().encode(t), "count": 1})),
                Value::Array(list) => {
                    let ids: Vec<Vec<u32>> = list
                        .iter()
                        .map(|t| tok().encode(t.as_str().unwrap_or_default()))
                        .collect();
                    ok(
                        json!({"tokens": ids, "count": ids.iter().map(Vec::len).collect::<Vec<_>>()}),
                    )
                }
                _ => reply_json(400, r#"{"error":"prompt"}"#),
            }
        }
        "/detokenize" | "/v1/detokenize" => match &b["tokens"] {
            Value::Array(l) if l.first().is_some_and(Value::is_array) => {
                let texts: Vec<String> = l
                    .iter()
                    .map(|ids| {
                        tok().decode(&serde_json::from_value::<Vec<u32>>(ids.clone()).unwrap())
                    })
                    .collect();
                ok(json!({"text": texts}))
            }
            v => {
                let ids: Vec<u32> = serde_json::from_value(v.clone()).ok()?;
                ok(json!({"text": tok().decode(&ids)}))
            }
        },
        _ => return None,
    })
}

/// TGI: `/tokenize {"inputs"}` → one object per token with its byte span, a BOS first
/// (an empty span); no `/detokenize`.
fn tgi(r: &Request) -> Option<Reply> {
    let b = body(r);
    if r.path != "/tokenize" {
        return None;
    }
    let Some(text) = b["inputs"].as_str() else {
        return Some(reply_json(422, r#"{"error":"missing field `inputs`"}"#));
    };
    let mut out = vec![json!({"id": 1, "text": "<s>", "start": 0, "stop": 0})];
    let mut at = 0;
    for id in tok().encode(text) {
        let piece = tok().decode(&[id]);
        out.push(json!({"id": id, "text": piece, "start": at, "stop": at + piece.len()}));
        at += piece.len();
    }
    Some(ok(Value::Array(out)))
}

fn endpoint(
    shape: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
) -> crate::server::Scripted {
    serve(move |r| {
        if r.path == "/v1/models" {
            return models("\"m\"");
        }
        if r.path.ends_with("/completions") {
            return chat_stream(4, Duration::from_millis(1));
        }
        shape(r).unwrap_or_else(not_found)
    })
}

/// A batch of 3 requests of exactly `input_len` tokens; the saved results.json.
fn run(url: &str, extra: &[&str]) -> Result<Value, Error> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("out");
    let d = d.to_str().unwrap();
    let mut argv = vec![
        "servescope",
        "batch",
        "--batch-sizes",
        "3",
        "--endpoint",
        url,
        "--input-len",
        "64",
        "--output-len",
        "4",
        "--tokenizer",
        "server",
        "--quiet",
        "--output-dir",
        d,
    ];
    argv.extend_from_slice(extra);
    match run_args(argv)? {
        Outcome::Session(_) => {}
        other => panic!("{other:?}"),
    }
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/results.json")).unwrap(),
    )
    .unwrap();
    for r in crate::common::records(&dir.path().join("out")) {
        assert_eq!(r["input_tokens"], 64, "{r}");
    }
    Ok(doc)
}

#[test]
fn llama_cpp_shape_is_detected_and_builds_exact_prompts() {
    let srv = endpoint(llama_cpp);
    let doc = run(&srv.url(), &[]).unwrap();
    let name = doc["tokenizer"].as_str().unwrap();
    assert!(
        name.contains("llama.cpp") && name.contains("/tokenize"),
        "{name}"
    );
    // Random ids go through /detokenize and back.
    run(&srv.url(), &["--synthetic-prompts", "random-ids"]).unwrap();
}

#[test]
fn sglang_shape_is_detected_and_batched() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let srv = endpoint(move |r| sglang(r, &c));
    let doc = run(&srv.url(), &[]).unwrap();
    assert!(
        doc["tokenizer"].as_str().unwrap().contains("SGLang"),
        "{doc}"
    );
    // 8,192 candidate words in groups of 32, 64 groups per request (+ probes and the
    // self-test): a handful of requests, not one per word or group.
    let n = calls.load(Ordering::SeqCst);
    assert!(n <= 12, "{n} tokenize requests");
}

#[test]
fn tgi_shape_works_without_detokenize() {
    let srv = endpoint(tgi);
    let doc = run(&srv.url(), &[]).unwrap();
    assert!(doc["tokenizer"].as_str().unwrap().contains("TGI"), "{doc}");
    // Random ids need a detokenize route TGI lacks: said clearly, exit 2.
    let err = run(&srv.url(), &["--synthetic-prompts", "random-ids"]).unwrap_err();
    assert!(err.to_string().contains("no /detokenize"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn a_server_with_no_tokenize_route_is_a_clear_error() {
    let srv = endpoint(|_| None);
    let err = run(&srv.url(), &[]).unwrap_err();
    let msg = err.to_string();
    for tried in [
        "vLLM",
        "SGLang",
        "llama.cpp",
        "TGI",
        "/tokenize",
        "/v1/tokenize",
        "HTTP 404",
    ] {
        assert!(msg.contains(tried), "{tried} missing from: {msg}");
    }
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn malformed_tokenize_answers_are_named() {
    for answer in [r#"{"tokens": "abc"}"#, "not json", r#"{"tokens": [-1]}"#] {
        let srv = endpoint(move |r| r.path.contains("tokenize").then(|| reply_json(200, answer)));
        let err = run(&srv.url(), &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("HTTP 200 but"), "{answer}: {msg}");
    }
}

#[test]
fn output_without_usage_is_counted_by_the_server_after_the_run() {
    let srv = serve(|r| match r.path.as_str() {
        "/v1/models" => models("\"m\""),
        "/v1/chat/completions" => chat_without_usage(5),
        _ => llama_cpp(r).unwrap_or_else(not_found),
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string() + "/out";
    crate::common::session(&[
        "batch",
        "--batch-sizes",
        "2",
        "--endpoint",
        &srv.url(),
        "--input-len",
        "16",
        "--output-len",
        "5",
        "--tokenizer",
        "server",
        "--quiet",
        "--output-dir",
        &d,
    ]);
    for r in crate::common::records(std::path::Path::new(&d)) {
        assert_eq!(r["output_tokens_source"], "tokenizer", "{r}");
        assert_eq!(r["output_tokens"], 5, "{r}");
    }
    let doc = std::fs::read_to_string(format!("{d}/results.json")).unwrap();
    assert!(
        !doc.contains("output_tokens_counted_with"),
        "the user chose the tokenizer"
    );
}

/// No usage, no --tokenizer: the warning, in results.json and `report`, naming
/// `--tokenizer server` only when the endpoint can tokenize.
#[test]
fn output_counted_with_the_default_is_warned_about() {
    for can_tokenize in [true, false] {
        let srv = serve(move |r| match r.path.as_str() {
            "/v1/models" => models("\"m\""),
            "/v1/chat/completions" => chat_without_usage(3),
            _ if can_tokenize => llama_cpp(r).unwrap_or_else(not_found),
            _ => not_found(),
        });
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string() + "/out";
        crate::common::session(&[
            "concurrency",
            "--concurrency",
            "1",
            "--num-requests",
            "2",
            "--endpoint",
            &srv.url(),
            "--input-len",
            "16",
            "--output-len",
            "3",
            "--quiet",
            "--output-dir",
            &d,
        ]);
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{d}/results.json")).unwrap())
                .unwrap();
        let w = &doc["output_tokens_counted_with"];
        assert_eq!(w["tokenizer"], "builtin:cl100k", "{doc}");
        assert_eq!(w["server_can_tokenize"], can_tokenize);
        assert_eq!(w["runs"].as_array().unwrap().len(), 1);
        let text = w["warning"].as_str().unwrap();
        assert!(text.contains("--tokenizer PATH|ORG/NAME"), "{text}");
        assert_eq!(text.contains("--tokenizer server"), can_tokenize, "{text}");
        // The saved run reads back with it.
        let Ok(Outcome::Report(_)) = run_args(["servescope", "report", &d]) else {
            panic!("report failed")
        };
    }
}

#[test]
fn the_simulator_answers_vllm_shaped_tokenize_routes() {
    // No --endpoint: the built-in simulator, whose /tokenize is vLLM's shape.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string() + "/out";
    crate::common::session(&[
        "batch",
        "--batch-sizes",
        "4",
        "--input-len",
        "300",
        "--output-len",
        "4",
        "--synthetic-prompts",
        "random-ids",
        "--tokenizer",
        "server",
        "--quiet",
        "--output-dir",
        &d,
    ]);
    let doc = std::fs::read_to_string(format!("{d}/results.json")).unwrap();
    assert!(doc.contains("server (vLLM /tokenize"), "{doc}");
    for r in crate::common::records(std::path::Path::new(&d)) {
        assert_eq!(r["input_tokens"], 300, "{r}");
        assert_eq!(
            r["prompt_tokens"], 300,
            "the server counts what was built: {r}"
        );
    }
}

#[test]
fn dataset_prompts_are_cut_to_max_input_length() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.jsonl");
    let long = " alpha".repeat(200);
    let lines = [
        json!({"prompt": long}),
        json!({"prompt": " alpha beta"}),
        json!({"messages": [
            {"role": "system", "content": " be brief"},
            {"role": "user", "content": long},
            {"role": "assistant", "content": long},
            {"role": "user", "content": " alpha".repeat(20)},
        ]}),
    ];
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&data, text.join("\n")).unwrap();
    let d = dir.path().to_str().unwrap().to_string() + "/out";
    crate::common::session(&[
        "concurrency",
        "--concurrency",
        "1",
        "--num-requests",
        "3",
        "--dataset",
        data.to_str().unwrap(),
        "--max-input-length",
        "50",
        "--tokenizer",
        "server",
        "--output-len",
        "2",
        "--quiet",
        "--output-dir",
        &d,
    ]);
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{d}/results.json")).unwrap())
            .unwrap();
    assert_eq!(
        doc["truncated_prompts"],
        json!({"max_input_length": 50, "truncated": 2, "prompts": 3})
    );
    let mut inputs: Vec<u64> = crate::common::records(std::path::Path::new(&d))
        .iter()
        .map(|r| r["input_tokens"].as_u64().unwrap())
        .collect();
    inputs.sort();
    // The chat entry kept its system prompt (2 tokens) and last question (20).
    assert_eq!(inputs, [2, 22, 50]);
}

#[test]
fn max_input_length_without_a_dataset_is_refused() {
    let err = run_args([
        "servescope",
        "batch",
        "--batch-sizes",
        "1",
        "--max-input-length",
        "10",
        "--quiet",
    ])
    .unwrap_err();
    assert!(err.to_string().contains("--max-input-length"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

/// `--tokenizer ORG/NAME` in a child process whose `HF_HUB_CACHE` holds the model's
/// snapshot: the cached tokenizer.json counts (one token for a word cl100k splits in
/// several); a model not in the cache is an error naming where it looked and how to
/// get it.
#[test]
fn org_name_is_found_in_the_local_hugging_face_cache() {
    let hub = tempfile::tempdir().unwrap();
    let snap = hub.path().join("models--acme--tiny/snapshots/abc123");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(hub.path().join("models--acme--tiny/refs")).unwrap();
    std::fs::write(hub.path().join("models--acme--tiny/refs/main"), "abc123").unwrap();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "zxqvbnmlk": 1}, "unk_token": "[UNK]"}
    });
    std::fs::write(snap.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let data = hub.path().join("d.jsonl");
    std::fs::write(&data, "{\"prompt\": \"zxqvbnmlk\"}\n").unwrap();
    let out = hub.path().join("out");
    let run = |model: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_servescope"))
            .args([
                "batch",
                "--batch-sizes",
                "1",
                "--output-len",
                "2",
                "--quiet",
            ])
            .args(["--dataset", data.to_str().unwrap(), "--tokenizer", model])
            .args(["--output-dir", out.join(model).to_str().unwrap()])
            .env("HF_HUB_CACHE", hub.path())
            .env_remove("HF_HOME")
            .output()
            .unwrap()
    };
    let ok = run("acme/tiny");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let recs = crate::common::records(&out.join("acme/tiny"));
    assert_eq!(
        recs[0]["input_tokens"], 1,
        "counted with the cached tokenizer"
    );
    let missing = run("acme/absent");
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("models--acme--absent"), "{err}");
    assert!(
        err.contains("huggingface-cli download acme/absent tokenizer.json"),
        "{err}"
    );
}

/// A gateway serving the engine under a prefix: `/llama/v1/...` for the API, so its
/// tokenize route is `/llama/tokenize`, never the gateway's root.
#[test]
fn a_prefixed_endpoint_is_tokenized_under_its_prefix() {
    let srv = serve(|r| {
        if r.path == "/llama/v1/models" {
            return models("\"m\"");
        }
        if r.path == "/llama/v1/chat/completions" {
            return chat_stream(4, Duration::from_millis(1));
        }
        match r.path.strip_prefix("/llama") {
            Some(rest) => llama_cpp(&Request {
                path: rest.to_string(),
                ..r.clone()
            })
            .unwrap_or_else(not_found),
            None => not_found(),
        }
    });
    let doc = run(&format!("{}/llama/v1", srv.url()), &[]).unwrap();
    let name = doc["tokenizer"].as_str().unwrap();
    assert!(
        name.contains("llama.cpp") && name.contains("/llama/"),
        "{name}"
    );
}
