use super::*;
use crate::client::openai::{Api, build_body};
use crate::workload::EncodeBody;

fn opts(extra: &str) -> BodyOptions {
    BodyOptions {
        tools: Default::default(),
        api: Api::Embeddings,
        model: "e5".into(),
        ignore_eos: true,
        extra: serde_json::from_str(extra).unwrap(),
        batch_inputs: 3,
    }
}

#[test]
fn a_body_holds_the_model_the_inputs_and_the_extra_body() {
    let o = opts(r#"{"dimensions": 8, "encoding_format": "float"}"#);
    let batch = o.batch().expect("embeddings batch their prompts");
    assert_eq!(batch.inputs(), 3);
    let parts = [
        batch.input(Prompt::Text("a \"quoted\" one")),
        batch.input(Prompt::TokenIds(&[1, 2])),
        batch.input(Prompt::Messages(&serde_json::json!([
            {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}
        ]))),
    ];
    let body: Value = serde_json::from_slice(&batch.join(&parts)).unwrap();
    assert_eq!(
        body,
        json!({"model": "e5", "input": ["a \"quoted\" one", [1, 2], "x\ny"],
               "dimensions": 8, "encoding_format": "float"})
    );
    // Nothing of a generation request.
    for key in [
        "stream",
        "max_tokens",
        "temperature",
        "ignore_eos",
        "messages",
    ] {
        assert!(body.get(key).is_none(), "{key} in {body}");
    }
}

#[test]
fn the_extra_body_overrides_model_and_input() {
    let o = opts(r#"{"input": "fixed", "model": "other"}"#);
    let body: Value = serde_json::from_slice(&o.join(&[Bytes::from("\"a\"")])).unwrap();
    assert_eq!(body, json!({"model": "other", "input": "fixed"}));
}

#[test]
fn build_body_sends_one_input() {
    let body: Value =
        serde_json::from_slice(&build_body(&opts("{}"), Prompt::Text("Hello"), 4)).unwrap();
    assert_eq!(body, json!({"model": "e5", "input": ["Hello"]}));
}

#[test]
fn an_answer_is_counted_not_built() {
    let body =
        br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2e-3]},
        {"object":"embedding","index":1,"embedding":"AAAAAA=="}],"model":"e5",
        "usage":{"prompt_tokens":17,"total_tokens":17}}"#;
    let a = read_answer(body, 2).unwrap();
    assert_eq!(a.items, 2);
    assert_eq!(a.usage.unwrap().prompt_tokens, Some(17));
    assert_eq!(a.usage.unwrap().completion_tokens, None);
    // No usage at all is fine: the client's count stands.
    let a = read_answer(br#"{"data":[{"embedding":[1]}]}"#, 1).unwrap();
    assert_eq!(a.usage, None);
}

#[test]
fn wrong_answers_are_failures_with_reasons() {
    let cases: [(&[u8], FailureKind, &str); 7] = [
        (
            br#"{"data":[{"embedding":[1]}]}"#,
            FailureKind::InvalidResponse,
            "1 embeddings in \"data\" for 2 inputs",
        ),
        (
            br#"{"data":[]}"#,
            FailureKind::InvalidResponse,
            "0 embeddings",
        ),
        (
            br#"{"object":"list"}"#,
            FailureKind::InvalidResponse,
            "no \"data\" list",
        ),
        (
            br#"{"data":{"a":1}}"#,
            FailureKind::InvalidResponse,
            "not an embeddings response",
        ),
        (
            b"<html>busy</html>",
            FailureKind::InvalidResponse,
            "<html>busy",
        ),
        (
            br#"{"error":{"message":"input too long","code":400}}"#,
            FailureKind::ErrorEvent,
            "input too long",
        ),
        (
            br#"{"object":"error","message":"model not loaded"}"#,
            FailureKind::ErrorEvent,
            "model not loaded",
        ),
    ];
    for (body, kind, needle) in cases {
        let (k, msg) = read_answer(body, 2).unwrap_err();
        assert_eq!(k, kind, "{msg}");
        assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    }
}
