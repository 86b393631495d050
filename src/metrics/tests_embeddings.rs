//! An embeddings run's summary, worked out by hand.

use crate::metrics::catalogue::known;
use crate::metrics::{RunData, summarize};
use crate::record::{FailureKind, RequestRecord, TokenSource};

/// Times in ms: A starts 0, answered 100 (4 inputs, 40 tokens; the server counts 44);
/// B starts 50, answered 250 (4 inputs, 40 tokens); C starts 100, fails with HTTP 500
/// at 300.
fn example() -> RunData {
    let rec = |started: u64, ended: u64| RequestRecord {
        inputs: Some(4),
        output_tokens_source: TokenSource::Events,
        ..RequestRecord::ok_for_test("e", started * 1000, vec![], ended * 1000, 40, 0)
    };
    let mut d = RunData::default();
    d.push(&RequestRecord {
        prompt_tokens: Some(44),
        ..rec(0, 100)
    });
    d.push(&rec(50, 250));
    d.push(&RequestRecord {
        failure: Some(FailureKind::HttpStatus),
        error: Some("HTTP 500".into()),
        ..rec(100, 300)
    });
    d
}

#[test]
fn inputs_per_second_over_the_run_and_no_output_figures() {
    let s = summarize(&example(), &[]);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(close(s.duration_s, 0.3));
    let e = s.embeddings.as_ref().expect("an embeddings run");
    assert_eq!(e.inputs, 8, "the two successful requests' inputs");
    assert!(close(e.inputs_s, 8.0 / 0.3), "{e:?}");
    assert!(close(e.inputs_per_request, 4.0));
    assert!(close(s.req_s, 2.0 / 0.3));
    assert!(close(s.input_tok_s, 80.0 / 0.3));
    let e2e = s.e2e_ms.as_ref().unwrap();
    assert!(close(e2e.mean, 150.0) && e2e.count == 2, "{e2e:?}");
    assert!(s.ttft_ms.is_none() && s.tpot_ms.is_none() && s.itl_ms.is_none());
    assert_eq!(s.tokens.prompt_gap_mean, Some(4.0));
    // The catalogue: inputs/s and input tok/s, and no output throughput at all.
    assert!(close(
        known("embeddings.inputs_s").value(&s).unwrap(),
        8.0 / 0.3
    ));
    assert!(close(
        known("throughput.input_tok_s").value(&s).unwrap(),
        80.0 / 0.3
    ));
    assert_eq!(known("throughput.output_tok_s").value(&s), None);
    assert_eq!(known("ttft_ms.p50").value(&s), None);
    // Saved and read back, as `report` and `compare` do.
    let back: crate::metrics::Summary = serde_json::from_value(s.to_json()).unwrap();
    assert_eq!(back.embeddings, s.embeddings);
    assert_eq!(s.to_json()["embeddings"]["inputs"], 8);
}

#[test]
fn a_generation_run_has_no_embeddings_figures() {
    let mut d = RunData::default();
    d.push(&RequestRecord::ok_for_test("g", 0, vec![10, 20], 30, 5, 2));
    let s = summarize(&d, &[]);
    assert!(s.embeddings.is_none());
    assert!(s.to_json().get("embeddings").is_none(), "absent, not null");
    assert_eq!(known("embeddings.inputs_s").value(&s), None);
    assert!(known("throughput.output_tok_s").value(&s).is_some());
}
