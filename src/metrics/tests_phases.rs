use super::PhaseFacts;
use crate::metrics::catalogue;
use crate::metrics::slo::Slo;
use crate::metrics::summary::Sample;
use crate::metrics::{RunData, Summary, summarize as summarize_run};
use crate::phases::{EventKinds, Phases};
use crate::record::RequestRecord;

/// A record whose events are `reasoning` then `answer` (µs), with the phases the client
/// would have recorded.
fn reasoning_record(
    started: u64,
    reasoning: &[u64],
    answer: &[u64],
    ended: u64,
    output_tokens: u32,
    usage_reasoning: Option<u32>,
) -> RequestRecord {
    let events: Vec<u64> = reasoning.iter().chain(answer).copied().collect();
    let mut r = RequestRecord::ok_for_test("r", started, events, ended, 10, output_tokens);
    let mut p = Phases::default();
    reasoning
        .iter()
        .for_each(|&t| p.mark(t, EventKinds::REASONING));
    answer.iter().for_each(|&t| p.mark(t, EventKinds::ANSWER));
    p.usage_reasoning_tokens = usage_reasoning;
    r.phases = Some(p);
    r
}

/// A: reasons 3 events then answers 4 (7 tokens). B: reasons, never answers. C: plain
/// answer. D: reasoning the server counted (10) but did not stream.
fn records() -> Vec<RequestRecord> {
    vec![
        reasoning_record(
            1_000,
            &[11_000, 21_000, 31_000],
            &[41_000, 51_000, 61_000, 71_000],
            80_000,
            7,
            None,
        ),
        reasoning_record(0, &[5_000, 15_000, 25_000], &[], 30_000, 3, Some(3)),
        RequestRecord::ok_for_test("r", 0, vec![2_000, 4_000, 6_000], 10_000, 10, 3),
        reasoning_record(0, &[], &[5_000, 6_000], 9_000, 12, Some(10)),
    ]
}

fn run(records: &[RequestRecord]) -> (RunData, Summary) {
    let mut d = RunData::default();
    records.iter().for_each(|r| d.push(r));
    let s = summarize_run(&d, &[]);
    (d, s)
}

#[test]
fn per_request_phase_figures_follow_the_definitions() {
    let (d, _) = run(&records());
    let s = d.samples();
    // A: TTFT 10 ms, TTFA 41 − 1 = 40 ms, reasoning 41 − 11 = 30 ms, 7 − 3 = 4 answer
    // tokens, answer TPOT (80 − 41) / 3 = 13 ms.
    assert_eq!(s[0].ttfa_ms(), Some(40.0));
    assert_eq!(s[0].reasoning_ms(), Some(30.0));
    assert_eq!(s[0].answer_tokens(), 4);
    assert_eq!(s[0].answer_tpot_ms(), Some(13.0));
    // B: no TTFA; reasoning until its last reasoning event, 25 − 5 = 20 ms.
    assert_eq!(s[1].ttfa_ms(), None);
    assert_eq!(s[1].reasoning_ms(), Some(20.0));
    assert_eq!((s[1].answer_tokens(), s[1].answer_tpot_ms()), (0, None));
    // C: the answer starts at the first event; answer TPOT (10 − 2) / 2 = 4 ms.
    assert_eq!(s[2].ttfa_ms(), Some(2.0));
    assert_eq!(s[2].reasoning_ms(), None);
    assert_eq!(s[2].answer_tpot_ms(), Some(4.0));
    assert!(!s[2].phase.reasoned);
    // D: the server's 10 reasoning tokens leave 2 answer tokens: (9 − 5) / 1 = 4 ms.
    assert!(s[3].phase.reasoned);
    assert_eq!(s[3].reasoning_ms(), None, "no reasoning event to time");
    assert_eq!(s[3].answer_tokens(), 2);
    assert_eq!(s[3].answer_tpot_ms(), Some(4.0));
}

#[test]
fn the_summary_counts_phases_over_successful_requests() {
    let (_, s) = run(&records());
    let p = s.phases.as_ref().expect("some requests reasoned");
    assert_eq!((p.reasoned, p.without_answer), (3, 1));
    let ttfa = p.ttfa_ms.as_ref().unwrap();
    assert_eq!((ttfa.count, ttfa.min, ttfa.max), (3, 2.0, 40.0));
    assert_eq!(ttfa.percentile(50.0), Some(5.0));
    let reasoning = p.reasoning_ms.as_ref().unwrap();
    assert_eq!((reasoning.count, reasoning.mean), (2, 25.0));
    assert_eq!(p.answer_tpot_ms.as_ref().unwrap().mean, 7.0);
    // 3 + 3 + 0 + 10 reasoning, 4 + 0 + 3 + 2 answer tokens, over 4 requests.
    assert_eq!((p.reasoning_tokens, p.answer_tokens), (16, 9));
    assert_eq!((p.reasoning_tokens_mean, p.answer_tokens_mean), (4.0, 2.25));
    // TTFT stays the first output of any kind.
    assert_eq!(s.ttft_ms.as_ref().unwrap().min, 2.0);
    assert_eq!(s.ttft_ms.as_ref().unwrap().max, 10.0);
    // A failed request that reasoned does not make a plain run a reasoning one.
    let mut failed = records()[0].clone();
    failed.failure = Some(crate::record::FailureKind::Timeout);
    let plain = RequestRecord::ok_for_test("r", 0, vec![1_000, 2_000], 3_000, 1, 2);
    assert!(run(&[plain, failed]).1.phases.is_none());
}

#[test]
fn results_json_carries_phases_only_when_some_request_reasoned() {
    let (_, s) = run(&records());
    let json = s.to_json();
    assert_eq!(json["ttfa_ms"]["p50"], 5.0);
    assert_eq!(json["reasoning_ms"]["count"], 2);
    assert_eq!(json["answer_tpot_ms"]["mean"], 7.0);
    assert_eq!(json["phases"]["requests_without_answer"], 1);
    assert_eq!(json["phases"]["reasoning_tokens"], 16);
    let back: Summary = serde_json::from_value(json).unwrap();
    assert_eq!(back.phases, s.phases);
    let (_, plain) = run(&records()[2..3]);
    let json = plain.to_json();
    for key in ["ttfa_ms", "reasoning_ms", "answer_tpot_ms", "phases"] {
        assert!(json.get(key).is_none(), "{key} in a plain run: {json}");
    }
    let back: Summary = serde_json::from_value(json).unwrap();
    assert_eq!(back.phases, None);
}

#[test]
fn the_catalogue_and_table_know_the_phases() {
    let (_, s) = run(&records());
    assert_eq!(catalogue::known("ttfa_ms.p50").value(&s), Some(5.0));
    let p99 = catalogue::known("reasoning_ms.p99").value(&s).unwrap();
    assert!((p99 - 29.9).abs() < 1e-9, "{p99}");
    assert_eq!(
        catalogue::known("phases.reasoning_tokens_mean").value(&s),
        Some(4.0)
    );
    let text = crate::report::table::render("r", &s);
    assert!(
        text.contains("TTFA") && text.contains("answer TPOT"),
        "{text}"
    );
    assert!(
        text.contains("3 of 4 requests reasoned · 16 reasoning + 9 answer tokens (4.0 + ")
            && text.contains(" per request) · 1 never answered (no TTFA)"),
        "{text}"
    );
    let (_, plain) = run(&records()[2..3]);
    assert_eq!(catalogue::known("ttfa_ms.p50").value(&plain), None);
    let text = crate::report::table::render("r", &plain);
    assert!(!text.contains("TTFA") && !text.contains("phases"), "{text}");
}

#[test]
fn a_ttfa_bound_needs_an_answer_in_time() {
    let (d, s) = run(&records());
    let slo = Slo::parse_inline("ttfa_ms=30").unwrap();
    assert_eq!(slo.to_string(), "TTFA ≤ 30 ms");
    let met: Vec<bool> = d.samples().iter().map(|x| slo.meets(x)).collect();
    // A answers at 40 ms, B never: both miss; C (2 ms) and D (5 ms) meet it.
    assert_eq!(met, [false, false, true, true]);
    let g = s.with_goodput(&d, Some(&slo)).goodput.unwrap();
    assert_eq!(g.met, 2);
    // Saved with its bound, and read back.
    let back: Summary =
        serde_json::from_value(run(&records()).1.with_goodput(&d, Some(&slo)).to_json()).unwrap();
    assert_eq!(back.goodput.unwrap().slo.ttfa_ms, Some(30.0));
    // A plain SLO saves no ttfa_ms key (older readers, golden files).
    let plain = Slo::parse_inline("ttft_ms=30").unwrap();
    let json = run(&records()).1.with_goodput(&d, Some(&plain)).to_json();
    assert!(json["goodput"]["slo"].get("ttfa_ms").is_none(), "{json}");
    assert!(
        Slo::parse_inline("ttfa_ms=0")
            .unwrap_err()
            .to_string()
            .contains("positive")
    );
}

#[test]
fn steady_latencies_carry_ttfa_only_when_some_request_reasoned() {
    use crate::metrics::slices::Latencies;
    let (d, _) = run(&records());
    let l = Latencies::of(d.samples().iter(), &[50.0]);
    let ttfa = l.ttfa_ms.expect("A, B and D reasoned");
    assert_eq!((ttfa.count, ttfa.percentile(50.0)), (3, Some(5.0)));
    let l = Latencies::of(d.samples()[2..3].iter(), &[50.0]);
    assert!(l.ttfa_ms.is_none(), "C alone is a plain run");
}

#[test]
fn phase_facts_stay_small() {
    // `report` keeps one Sample per record: a million records, 48 MB of phases (tool
    // calls included).
    assert_eq!(std::mem::size_of::<PhaseFacts>(), 48);
    assert!(std::mem::size_of::<Sample>() <= 192);
}
