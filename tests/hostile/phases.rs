//! Reasoning streams a real server may send: reasoning that never reaches an answer,
//! reasoning counted in usage but never streamed, reasoning and answer interleaved, a
//! reasoning count larger than the whole output. TTFA, reasoning time and the token
//! split must follow their definitions, never panic, never invent an answer.

use std::time::Duration;

use servescope::metrics::Summary;

use crate::server::{Reply, models, serve};

/// Between two events. The bounds below allow half of each interval for the client's
/// late reading of its first event on a busy machine (seen in CI: 3 ms gaps read as 2.3).
const GAP_MS: u64 = 10;

/// One chat delta event: `field` (content, reasoning_content, reasoning) = `text`.
fn delta(field: &str, text: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"{field}\":\"{text}\"}}}}]}}\n\n")
}

/// A stream of `deltas` GAP_MS apart, then a finish event with `usage` and `[DONE]`.
fn stream(deltas: &[(&str, &str)], usage: &str) -> Reply {
    let mut events: Vec<String> = deltas.iter().map(|(f, t)| delta(f, t)).collect();
    events.push(format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"length\"}}],\"usage\":{usage}}}\n\n"
    ));
    events.push("data: [DONE]\n\n".into());
    Reply::Stream {
        events,
        gap: Duration::from_millis(GAP_MS),
    }
}

/// A batch of 2 requests against a server answering every completion with `answer`.
fn run(answer: impl Fn() -> Reply + Send + Sync + 'static, extra: &[&str]) -> Summary {
    let srv = serve(move |r| match r.path.as_str() {
        "/v1/models" => models("\"thinker\""),
        _ => answer(),
    });
    let url = srv.url();
    let mut args = vec![
        "batch",
        "--batch-sizes",
        "2",
        "--endpoint",
        &url,
        "--input-len",
        "8",
        "--output-len",
        "16",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let mut out = crate::common::session(&args);
    out.runs.remove(0).1
}

#[test]
fn reasoning_without_an_answer_has_no_ttfa() {
    let think = [("reasoning_content", "a"); 5];
    let s = run(
        move || stream(&think, r#"{"prompt_tokens":8,"completion_tokens":5}"#),
        &["--slo", "ttfa_ms=60000,ttft_ms=60000"],
    );
    assert_eq!(s.succeeded, 2, "{s:?}");
    let p = s.phases.as_ref().expect("it reasoned");
    assert_eq!((p.reasoned, p.without_answer), (2, 2));
    // No usage count: one reasoning token per reasoning event.
    assert_eq!((p.reasoning_tokens, p.answer_tokens), (10, 0));
    assert!(p.ttfa_ms.is_none() && p.answer_tpot_ms.is_none());
    // Reasoning time runs to the last reasoning event: 4 gaps (not 0: the first event).
    let gaps = 4.0 * GAP_MS as f64;
    assert!(p.reasoning_ms.as_ref().unwrap().min >= gaps / 2.0, "{p:?}");
    assert!(s.ttft_ms.is_some(), "TTFT is the first reasoning event");
    assert_eq!(
        s.goodput.as_ref().unwrap().met,
        0,
        "no answer, no TTFA bound met"
    );
    let text = servescope::report::table::render("b", &s);
    assert!(text.contains("2 never answered (no TTFA)"), "{text}");
}

#[test]
fn reasoning_counted_in_usage_but_not_streamed() {
    let answer = [("content", "w"); 4];
    let s = run(
        move || {
            stream(
                &answer,
                r#"{"prompt_tokens":8,"completion_tokens":20,"completion_tokens_details":{"reasoning_tokens":16}}"#,
            )
        },
        &[],
    );
    let p = s.phases.as_ref().expect("the server counted reasoning");
    assert_eq!((p.reasoned, p.without_answer), (2, 0));
    assert_eq!((p.reasoning_tokens, p.answer_tokens), (32, 8));
    assert!(p.reasoning_ms.is_none(), "no reasoning event to time");
    // The answer is the first output: TTFA is TTFT.
    assert_eq!(
        p.ttfa_ms.as_ref().unwrap().mean,
        s.ttft_ms.as_ref().unwrap().mean
    );
    assert!(p.answer_tpot_ms.is_some());
}

#[test]
fn interleaved_reasoning_and_answer() {
    let mixed = [
        ("reasoning", "r"),
        ("reasoning", "r"),
        ("content", "a"),
        ("reasoning_content", "r"),
        ("content", "a"),
    ];
    let s = run(
        move || stream(&mixed, r#"{"prompt_tokens":8,"completion_tokens":5}"#),
        &[],
    );
    let p = s.phases.as_ref().unwrap();
    assert_eq!((p.reasoning_tokens, p.answer_tokens), (6, 4));
    let ttft = s.ttft_ms.as_ref().unwrap();
    let ttfa = p.ttfa_ms.as_ref().unwrap();
    // The answer starts at the third event, two gaps after the first.
    let two_gaps = 2.0 * GAP_MS as f64;
    assert!(
        ttfa.min >= ttft.min + two_gaps / 2.0,
        "{ttfa:?} vs {ttft:?}"
    );
    // Reasoning time ends at the first answer, not the last reasoning event.
    let r = p.reasoning_ms.as_ref().unwrap();
    assert!(r.min >= two_gaps / 2.0, "{r:?}");
    assert_eq!(r.count, 2);
}

#[test]
fn a_reasoning_count_beyond_the_whole_output_saturates() {
    let answer = [("content", "w"); 3];
    let s = run(
        move || {
            stream(
                &answer,
                r#"{"completion_tokens":3,"completion_tokens_details":{"reasoning_tokens":50}}"#,
            )
        },
        &[],
    );
    let p = s.phases.as_ref().unwrap();
    assert_eq!((p.reasoning_tokens, p.answer_tokens), (100, 0));
    assert!(p.answer_tpot_ms.is_none());
    assert!(p.ttfa_ms.is_some(), "the answer text still arrived");
}
