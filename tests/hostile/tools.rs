//! Tool calls as servers stream them, beyond the simulator's tidy shape: several calls
//! in parallel in one stream, arguments split at odd places (inside escapes, empty
//! pieces), a call after some content. Every request must carry the run's tools.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::{Reply, models, serve};

fn event(delta: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
    )
}

fn args(index: u32, piece: &str) -> String {
    event(json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
}

fn header(index: u32, name: &str) -> String {
    event(
        json!({"tool_calls": [{"index": index, "id": format!("call_{index}"), "type": "function",
        "function": {"name": name, "arguments": ""}}]}),
    )
}

fn tail(completion: u32) -> Vec<String> {
    vec![
        format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 8, "completion_tokens": completion}})
        ),
        "data: [DONE]\n\n".into(),
    ]
}

/// Two calls interleaved, arguments split inside a unicode escape and around an empty
/// piece; then content before a call in the second kind of answer.
fn streams(body: &str) -> Vec<String> {
    let mut ev = Vec::new();
    if body.contains("\"content\":\"after\"") {
        ev.push(event(
            json!({"role": "assistant", "content": "Let me look."}),
        ));
        ev.push(event(json!({"content": " One moment."})));
        ev.push(header(0, "lookup"));
        ev.push(args(0, "{\"q\":"));
        ev.push(args(0, "\"x\"}"));
        ev.extend(tail(5));
    } else {
        ev.push(header(0, "get_weather"));
        ev.push(header(1, "search"));
        ev.push(args(0, "{\"city\":\"Z\\u00"));
        ev.push(args(1, ""));
        ev.push(args(1, "{\"q\""));
        ev.push(args(0, "fc\"}"));
        // Both calls' pieces in one event: one event, carrying tool output.
        ev.push(event(json!({"tool_calls": [
            {"index": 1, "function": {"arguments": ":\"rain"}},
            {"index": 0, "function": {"arguments": ""}}
        ]})));
        ev.push(args(1, "\"}"));
        ev.extend(tail(9));
    }
    ev
}

#[test]
fn parallel_calls_odd_splits_and_a_call_after_content_are_timed() {
    let dir = tempfile::tempdir().unwrap();
    let tools = dir.path().join("tools.json");
    let list = json!([
        {"type": "function", "function": {"name": "get_weather"}},
        {"type": "function", "function": {"name": "search"}},
        {"type": "function", "function": {"name": "lookup"}}
    ]);
    std::fs::write(&tools, list.to_string()).unwrap();
    let data = dir.path().join("d.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"parallel\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"after\"}]}\n",
    )
    .unwrap();
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = bodies.clone();
    let srv = serve(move |r| match r.path.as_str() {
        "/v1/models" => models("\"scripted\""),
        _ => {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            seen.lock().unwrap().push(body);
            Reply::Stream {
                events: streams(&r.body.replace(' ', "")),
                gap: Duration::from_millis(3),
            }
        }
    });
    let out = dir.path().join("out");
    crate::common::session(&[
        "batch",
        "--batch-sizes",
        "4",
        "--endpoint",
        &srv.url(),
        "--dataset",
        data.to_str().unwrap(),
        "--tools",
        tools.to_str().unwrap(),
        "--tool-choice",
        "auto",
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    for b in bodies.lock().unwrap().iter() {
        assert_eq!(b["tools"], list, "every request carries the tools");
        assert_eq!(b["tool_choice"], "auto");
    }
    let recs = crate::common::records(&out);
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{r}");
        let first_tool = r["first_tool_at"].as_f64().unwrap();
        if r["id"].as_u64().unwrap() % 2 == 0 {
            // Five events carried non-empty arguments (the empty pieces are not output).
            assert_eq!(r["tool_events"], 5, "{r}");
            assert_eq!(r["answer_events"], 0, "{r}");
            assert_eq!(first_tool, r["first_token_at"].as_f64().unwrap());
        } else {
            assert_eq!(
                (r["tool_events"].as_u64(), r["answer_events"].as_u64()),
                (Some(2), Some(2)),
                "{r}"
            );
            assert!(first_tool > r["first_answer_at"].as_f64().unwrap(), "{r}");
            assert_eq!(r["first_answer_at"], r["first_token_at"]);
        }
    }
    let s = servescope::report::document::ResultsDoc::read(&out.join("results.json")).unwrap();
    let t = s.runs[0].summary.tools.clone().unwrap();
    assert_eq!((t.requests, t.share, t.argument_tokens_total), (4, 1.0, 14));
}
