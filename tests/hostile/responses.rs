//! `--api responses` against scripted servers: failures as the Responses API words
//! them (`response.failed`, `error` events), streams cut or ending without a terminal
//! event, reasoning summaries and function-call arguments, a capped `response.incomplete`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::common::{records, session};
use crate::server::{Reply, Request, models, serve};

/// One event as a server sends it: with its `event:` line or, as some do, without.
fn event(json: &str, named: bool) -> String {
    let v: Value = serde_json::from_str(json).unwrap();
    match v["type"].as_str() {
        Some(ty) if named => format!("event: {ty}\ndata: {json}\n\n"),
        _ => format!("data: {json}\n\n"),
    }
}

const CREATED: &str = r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[],"usage":null}}"#;

fn delta(ty: &str, text: &str) -> String {
    format!(r#"{{"type":"{ty}","item_id":"it_1","output_index":0,"delta":"{text}"}}"#)
}

fn completed(ty: &str, output: u32, reasoning: u32) -> String {
    format!(
        r#"{{"type":"{ty}","response":{{"id":"resp_1","status":"completed","usage":{{"input_tokens":9,"input_tokens_details":{{"cached_tokens":3}},"output_tokens":{output},"output_tokens_details":{{"reasoning_tokens":{reasoning}}},"total_tokens":{}}}}}}}"#,
        9 + output
    )
}

/// A good stream of `n` answer deltas, then `response.completed`.
fn good(n: u32) -> Vec<String> {
    let mut events = vec![event(CREATED, true)];
    for i in 0..n {
        events.push(event(
            &delta("response.output_text.delta", &format!(" w{i}")),
            true,
        ));
    }
    events.push(event(&completed("response.completed", n, 0), true));
    events
}

/// A server whose every odd POST gets `bad` and the others (the connection test first)
/// a good stream; it remembers the request bodies.
fn alternating(
    bad: impl Fn() -> Reply + Send + Sync + 'static,
) -> (crate::server::Scripted, Arc<std::sync::Mutex<Vec<Request>>>) {
    let n = AtomicUsize::new(0);
    let seen: Arc<std::sync::Mutex<Vec<Request>>> = Arc::default();
    let kept = seen.clone();
    let srv = serve(move |req| {
        if req.path.ends_with("/models") {
            return models("\"m\"");
        }
        kept.lock().unwrap().push(req.clone());
        if n.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            bad()
        } else {
            Reply::Stream {
                events: good(3),
                gap: Duration::from_millis(1),
            }
        }
    });
    (srv, seen)
}

/// Two requests at concurrency 1 (the first gets the bad answer); their records.
fn run(url: &str, dir: &Path) -> Vec<Value> {
    session(&[
        "concurrency",
        "--endpoint",
        url,
        "--api",
        "responses",
        "--concurrency",
        "1",
        "--num-requests",
        "2",
        "--input-len",
        "8",
        "--output-len",
        "3",
        "--quiet",
        "--output-dir",
        dir.to_str().unwrap(),
    ]);
    let mut recs = records(dir);
    recs.sort_by_key(|r| r["id"].as_u64());
    recs
}

fn stream(events: Vec<String>) -> Reply {
    Reply::Stream {
        events,
        gap: Duration::from_millis(1),
    }
}

#[test]
fn failures_cut_streams_and_streams_without_an_end_fail_with_the_reason() {
    let failed = r#"{"type":"response.failed","sequence_number":3,"response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"the model crashed"}}}"#;
    let error = r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null,"sequence_number":2}"#;
    fn with_deltas(last: Option<&str>, named: bool) -> Vec<String> {
        let mut e = vec![event(CREATED, named)];
        e.push(event(&delta("response.output_text.delta", " a"), named));
        e.extend(last.map(|l| event(l, named)));
        e
    }
    type Answer = Box<dyn Fn() -> Reply + Send + Sync>;
    // (case, the bad answer, the record's status, what its error says)
    let cases: Vec<(&str, Answer, &str, &str)> = vec![
        (
            "response.failed",
            Box::new(move || stream(with_deltas(Some(failed), true))),
            "error_event",
            "the model crashed",
        ),
        (
            "error event",
            Box::new(move || stream(with_deltas(Some(error), false))),
            "error_event",
            "slow down",
        ),
        (
            "no terminal event",
            Box::new(move || stream(with_deltas(None, true))),
            "stream_cut",
            "no response.completed",
        ),
        (
            "cut mid-event",
            Box::new(|| {
                let mut e = with_deltas(None, false);
                e.push("data: {\"type\":\"response.output_text.del".into());
                stream(e)
            }),
            "stream_cut",
            "in the middle of an event",
        ),
        (
            "[DONE] only",
            Box::new(move || {
                let mut e = with_deltas(None, true);
                e.push("data: [DONE]\n\n".into());
                stream(e)
            }),
            "ok",
            "",
        ),
    ];
    for (name, bad, status, needle) in cases {
        let (srv, _) = alternating(bad);
        let dir = tempfile::tempdir().unwrap();
        let recs = run(&srv.url(), dir.path());
        assert_eq!(recs.len(), 2, "{name}");
        let r = &recs[0];
        assert_eq!(r["status"], status, "{name}: {r}");
        let err = r["error"].as_str().unwrap_or("");
        assert!(err.contains(needle), "{name}: {err}");
        if status != "ok" {
            assert_eq!(r["events"].as_array().unwrap().len(), 1, "{name}: {r}");
        }
        assert_eq!(recs[1]["status"], "ok", "{name}: {}", recs[1]);
        assert_eq!(recs[1]["output_tokens"], 3, "{name}");
    }
}

#[test]
fn reasoning_summaries_tool_arguments_and_an_incomplete_end_are_recorded() {
    let (srv, seen) = alternating(|| {
        let mut e = vec![event(CREATED, false)];
        for t in ["**Plan", "ning**"] {
            e.push(event(
                &delta("response.reasoning_summary_text.delta", t),
                false,
            ));
        }
        e.push(event(r#"{"type":"response.output_item.added","output_index":1,"item":{"type":"function_call","id":"fc_1","call_id":"c","name":"f","arguments":""}}"#, false));
        for t in ["{\\\"x\\\"", ":1}"] {
            e.push(event(
                &delta("response.function_call_arguments.delta", t),
                false,
            ));
        }
        for t in [" the", " end"] {
            e.push(event(&delta("response.output_text.delta", t), false));
        }
        e.push(event(&completed("response.incomplete", 20, 14), false));
        stream(e)
    });
    let dir = tempfile::tempdir().unwrap();
    let recs = run(&srv.url(), dir.path());
    let r = &recs[0];
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["events"].as_array().unwrap().len(), 6);
    assert_eq!(
        (
            &r["reasoning_events"],
            &r["tool_events"],
            &r["answer_events"]
        ),
        (&Value::from(2), &Value::from(2), &Value::from(2)),
        "{r}"
    );
    assert_eq!(r["reasoning_tokens"], 14, "the server's count: {r}");
    let at = |k: &str| r[k].as_f64().unwrap();
    assert!(at("first_reasoning_at") <= at("first_tool_at"), "{r}");
    assert!(at("first_tool_at") <= at("first_answer_at"), "{r}");
    assert_eq!(r["first_token_at"], r["first_reasoning_at"]);
    assert_eq!(
        (&r["output_tokens"], &r["output_tokens_source"]),
        (&Value::from(20), &Value::from("usage"))
    );
    assert_eq!(
        (&r["prompt_tokens"], &r["cached_tokens"]),
        (&Value::from(9), &Value::from(3))
    );
    // A plain answer records no phases.
    assert!(recs[1].get("answer_events").is_none(), "{}", recs[1]);
    // What was sent: the Responses body.
    let body: Value = serde_json::from_str(&seen.lock().unwrap()[1].body).unwrap();
    assert!(
        body["input"].is_string() && body["max_output_tokens"] == 3,
        "{body}"
    );
    assert_eq!(
        (&body["stream"], &body["store"]),
        (&Value::from(true), &Value::from(false))
    );
    assert!(seen.lock().unwrap()[1].path.ends_with("/v1/responses"));
}

#[test]
fn token_id_prompts_are_refused_for_the_responses_api() {
    let argv = [
        "servescope",
        "throughput",
        "--api",
        "responses",
        "--prompt-token-ids",
        "--num-requests",
        "1",
        "--quiet",
    ];
    let err = servescope::run_args(argv).map(|_| ()).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("--prompt-token-ids"), "{err}");
}
