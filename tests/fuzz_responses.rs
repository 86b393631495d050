//! Property-based checks of the Responses API event parser (src/client/responses.rs), as
//! tests/fuzz_parsers.rs checks the chat one: the fast scanner must read every
//! well-formed event as the serde reference does, in any member order; any input gives
//! an answer or an error, never a panic, and text grows only with output.
//!
//! ```text
//! cargo test --release --test fuzz_responses      (PROPTEST_CASES=N for a longer run)
//! ```

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{Map, Value, json};

use servescope::client::responses::{parse_event, parse_event_reference};

fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// Any JSON value, small.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const TYPES: &[&str] = &[
    "response.output_text.delta",
    "response.refusal.delta",
    "response.reasoning_text.delta",
    "response.reasoning_summary_text.delta",
    "response.function_call_arguments.delta",
    "response.mcp_call_arguments.delta",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
    "response.created",
    "response.output_text.done",
    "response.output_item.added",
];

fn usage() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (
            prop::option::of(any::<u32>()),
            prop::option::of(any::<i64>()),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
        )
            .prop_map(|(i, o, cached, reasoning)| json!({
                "input_tokens": i,
                "output_tokens": o,
                "input_tokens_details": {"cached_tokens": cached},
                "output_tokens_details": {"reasoning_tokens": reasoning},
            })),
        arb_json(),
    ]
}

/// Events shaped as servers send them, with arbitrary values mixed in.
fn event() -> impl Strategy<Value = Value> {
    let ty = prop_oneof![
        6 => prop::sample::select(TYPES).prop_map(|t| json!(t)),
        1 => arb_json(),
    ];
    let text = prop_oneof![
        1 => Just(Value::Null),
        1 => Just(json!("")),
        5 => ".{0,10}".prop_map(Value::String),
        1 => arb_json(),
    ];
    let response = (
        prop::option::weighted(0.7, usage()),
        prop::option::weighted(0.3, arb_json()),
        prop::option::weighted(0.5, arb_json()),
    )
        .prop_map(|(usage, error, output)| {
            let mut m = Map::new();
            m.insert("id".into(), json!("resp_1"));
            for (k, v) in [("output", output), ("usage", usage), ("error", error)] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        });
    let shaped = (
        prop::option::weighted(0.95, ty),
        prop::option::weighted(0.7, text),
        prop::option::weighted(0.3, prop_oneof![4 => response, 1 => arb_json()]),
        prop::option::weighted(0.1, arb_json()),
        prop::option::weighted(0.1, arb_json()),
        0usize..6,
    )
        .prop_map(|(ty, delta, response, error, message, rot)| {
            let mut entries = vec![("sequence_number".to_string(), json!(3))];
            for (k, v) in [
                ("type", ty),
                ("delta", delta),
                ("response", response),
                ("error", error),
                ("message", message),
            ] {
                if let Some(v) = v {
                    entries.push((k.into(), v));
                }
            }
            // `type` first (OpenAI), last (vLLM) or anywhere.
            let n = entries.len();
            entries.rotate_left(rot % n);
            Value::Object(entries.into_iter().collect())
        });
    prop_oneof![4 => shaped, 1 => arb_json()]
}

fn agree(data: &str) -> Result<(), TestCaseError> {
    let (mut fast, mut slow) = (String::new(), String::new());
    match (
        parse_event(data.as_bytes(), &mut fast),
        parse_event_reference(data, &mut slow),
    ) {
        (Ok(g), Ok(w)) => {
            prop_assert_eq!(g, w, "{}", data);
            prop_assert_eq!(fast, slow, "{}", data);
        }
        (Err(_), Err(_)) => {}
        (g, w) => prop_assert!(false, "scanner {:?}, serde_json {:?}: {}", g, w, data),
    }
    Ok(())
}

/// What holds for any input: text only grows, and only with output; errors carry none.
fn invariants(data: &[u8]) -> Result<(), TestCaseError> {
    let mut text = String::from("before|");
    let result = parse_event(data, &mut text);
    prop_assert!(text.starts_with("before|"));
    match result {
        Ok(info) => {
            prop_assert_eq!(info.kinds.any(), text.len() > "before|".len(), "{:?}", info);
            if info.error.is_some() {
                prop_assert!(!info.kinds.any() && !info.finished);
            }
        }
        Err(_) => prop_assert_eq!(text.as_str(), "before|"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn responses_scanner_agrees_with_serde(v in event(), pretty in any::<bool>()) {
        let data = if pretty {
            serde_json::to_string_pretty(&v).unwrap()
        } else {
            serde_json::to_string(&v).unwrap()
        };
        agree(&data)?;
        invariants(data.as_bytes())?;
        for cut in [data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
            if let Some(part) = data.get(..cut) {
                agree(part)?;
                invariants(part.as_bytes())?;
            }
        }
    }

    #[test]
    fn responses_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
        invariants(&data)?;
    }
}
