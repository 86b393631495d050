use super::*;
use crate::record::{FailureKind, RequestRecord, TokenSource};

fn rec(started: u64, events: &[u64], ended: u64, out: u32) -> RequestRecord {
    RequestRecord::ok_for_test("t", started, events.to_vec(), ended, 10, out)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Worked out by hand (times in ms), over a 2 s run:
/// A: TTFT 100, TPOT (300−100)/4 = 50, E2E 400, 5 tokens → 12.5 tok/s.
/// B: TTFT 600, TPOT 20, E2E 700, 3 tokens.
/// C: TTFT 50, TPOT (250−50)/2 = 100, E2E 300, 3 tokens.
/// D: one token, TTFT 200, no TPOT, E2E 250 → 4 tok/s.
/// E: failed (HTTP 500) after 10 ms.
fn example() -> RunData {
    let mut d = RunData::default();
    d.push(&rec(0, &[100_000, 200_000, 300_000], 400_000, 5));
    d.push(&rec(0, &[600_000, 640_000], 700_000, 3));
    d.push(&rec(0, &[50_000, 250_000], 300_000, 3));
    d.push(&rec(1_000_000, &[1_200_000], 1_250_000, 1));
    let mut e = rec(1_990_000, &[], 2_000_000, 0);
    e.failure = Some(FailureKind::HttpStatus);
    e.output_tokens_source = TokenSource::Events;
    d.push(&e);
    d
}

fn met(slo: &Slo) -> Vec<bool> {
    example().samples().iter().map(|s| slo.meets(s)).collect()
}

fn slo(text: &str) -> Slo {
    Slo::parse_inline(text).unwrap()
}

#[test]
fn each_bound_on_hand_computed_requests() {
    // Bounds are inclusive: A's TPOT is exactly 50.
    assert_eq!(met(&slo("ttft_ms=500")), [true, false, true, true, false]);
    assert_eq!(met(&slo("tpot_ms=50")), [true, true, false, true, false]);
    assert_eq!(met(&slo("tpot_ms=49.9")), [false, true, false, true, false]);
    assert_eq!(met(&slo("e2e_ms=300")), [false, false, true, true, false]);
    // A 12.5, B 3/0.7 = 4.29, C 10, D 4 tok/s.
    assert_eq!(
        met(&slo("min_output_tok_s=10")),
        [true, false, true, false, false]
    );
    assert_eq!(
        met(&slo("min_output_tok_s=4")),
        [true, true, true, true, false]
    );
    assert_eq!(
        met(&slo("ttft_ms=500,tpot_ms=60")),
        [true, false, false, true, false]
    );
}

#[test]
fn goodput_hand_computed() {
    let s = slo("ttft_ms=500, tpot_ms=60");
    let g = goodput(&example(), &s, 2.0);
    // A (5 tokens) and D (1 token) meet it; 12 output tokens in all; 5 requests sent.
    assert_eq!(g.met, 2);
    assert!(close(g.req_s, 1.0));
    assert!(close(g.tok_s, 3.0));
    assert!(close(g.request_share, 0.4));
    assert!(close(g.token_share, 0.5));
    assert_eq!(
        g.to_json(),
        json!({
            "req_s": 1.0, "tok_s": 3.0, "request_share": 0.4, "token_share": 0.5, "met": 2,
            "slo": {"ttft_ms": 500.0, "tpot_ms": 60.0, "e2e_ms": null, "min_output_tok_s": null}
        })
    );
}

#[test]
fn goodput_of_nothing_is_zero_not_nan() {
    let g = goodput(&RunData::default(), &slo("ttft_ms=1"), 0.0);
    assert_eq!((g.met, g.req_s, g.tok_s), (0, 0.0, 0.0));
    assert_eq!((g.request_share, g.token_share), (0.0, 0.0));
}

#[test]
fn ttft_bound_fails_a_success_without_output_events() {
    let mut d = RunData::default();
    d.push(&rec(0, &[], 10_000, 0));
    let s = &d.samples()[0];
    assert!(!slo("ttft_ms=1000").meets(s));
    assert!(slo("e2e_ms=1000").meets(s));
    assert!(!slo("min_output_tok_s=1").meets(s));
}

#[test]
fn inline_forms_and_aliases() {
    assert_eq!(
        slo(" itl_ms = 40 ,latency_ms=2e3,min_output_tok_s=0.5,"),
        Slo {
            ttft_ms: None,
            tpot_ms: Some(40.0),
            e2e_ms: Some(2000.0),
            min_output_tok_s: Some(0.5),
            ttfa_ms: None,
        }
    );
    assert_eq!(
        Slo::parse_arg("ttft_ms=500,tpot_ms=50")
            .unwrap()
            .to_string(),
        "TTFT ≤ 500 ms, TPOT ≤ 50 ms"
    );
}

fn inline_err(s: &str) -> String {
    Slo::parse_arg(s).unwrap_err().to_string()
}

#[test]
fn inline_errors() {
    assert_eq!(
        inline_err("ttft=5"),
        "--slo \"ttft=5\": unknown SLO key \"ttft\" (accepted: ttft_ms, tpot_ms (or itl_ms), e2e_ms (or latency_ms), min_output_tok_s, ttfa_ms)"
    );
    assert_eq!(
        inline_err("ttft_ms=500,tpot_ms"),
        "--slo \"tpot_ms\": expected key=value pairs separated by commas, like ttft_ms=500,tpot_ms=50"
    );
    assert_eq!(
        inline_err("ttft_ms=500ms"),
        "--slo \"ttft_ms=500ms\": \"ttft_ms\" must be a positive number, found \"500ms\""
    );
    for bad in ["0", "-3", "inf", "NaN"] {
        let msg = inline_err(&format!("e2e_ms={bad}"));
        assert!(
            msg.contains("\"e2e_ms\" must be a positive number"),
            "{msg}"
        );
    }
    assert_eq!(
        inline_err("tpot_ms=50,itl_ms=40"),
        "--slo \"itl_ms=40\": \"itl_ms\" repeats \"tpot_ms\" (at --slo \"tpot_ms=50\"); give each once (itl_ms is tpot_ms, latency_ms is e2e_ms)"
    );
    assert_eq!(
        inline_err("=,"),
        "--slo \"=\": unknown SLO key \"\" (accepted: ttft_ms, tpot_ms (or itl_ms), e2e_ms (or latency_ms), min_output_tok_s, ttfa_ms)"
    );
    assert!(inline_err("a=1=").contains("unknown SLO key \"a\""));
    assert_eq!(
        Slo::parse_inline(" , ").unwrap_err().to_string(),
        "--slo \" , \": no SLO bound set (expected at least one of ttft_ms, tpot_ms (or itl_ms), e2e_ms (or latency_ms), min_output_tok_s, ttfa_ms)"
    );
}

fn yaml(text: &str) -> Result<Slo, String> {
    Slo::parse_yaml("s.yaml", text).map_err(|e| e.to_string())
}

#[test]
fn yaml_section_top_level_and_flow_style() {
    let want = Slo {
        ttft_ms: Some(500.0),
        tpot_ms: Some(50.0),
        e2e_ms: Some(10000.0),
        min_output_tok_s: Some(20.0),
        ttfa_ms: None,
    };
    let block = "# service levels\nslo:\n  ttft_ms: 500\n  tpot_ms: 50.0\n  e2e_ms: 1e4\n  min_output_tok_s: 20\n";
    assert_eq!(yaml(block).unwrap(), want);
    assert_eq!(
        yaml("slo: {ttft_ms: 500, itl_ms: 50, latency_ms: 10000, min_output_tok_s: 20}").unwrap(),
        want
    );
    // Other sections of a seed config file beside `slo:` are not ours to judge.
    assert_eq!(
        yaml("model: m\nconcurrency: [1, 2]\nslo:\n  ttft_ms: 500\n").unwrap(),
        slo("ttft_ms=500")
    );
    assert_eq!(
        yaml("ttft_ms: 500\ne2e_ms: ~\n").unwrap(),
        slo("ttft_ms=500")
    );
}

#[test]
fn yaml_errors_name_file_and_line() {
    let cases = [
        (
            "slo:\n  ttft_ms: 500\n  tbt_ms: 5\n",
            "s.yaml:3: unknown SLO key \"tbt_ms\" (accepted: ttft_ms, tpot_ms (or itl_ms), e2e_ms (or latency_ms), min_output_tok_s, ttfa_ms)",
        ),
        (
            "ttft_ms: 500\nmodel: m\n",
            "s.yaml:2: unknown SLO key \"model\" (accepted: ttft_ms, tpot_ms (or itl_ms), e2e_ms (or latency_ms), min_output_tok_s, ttfa_ms)",
        ),
        (
            "slo:\n  ttft_ms: fast\n",
            "s.yaml:2: \"ttft_ms\" must be a positive number, found the string \"fast\"",
        ),
        (
            "slo:\n  ttft_ms: \"500\"\n",
            "s.yaml:2: \"ttft_ms\" must be a positive number, found the string \"500\"",
        ),
        (
            "slo:\n  e2e_ms: -1\n",
            "s.yaml:2: \"e2e_ms\" must be a positive number, found -1",
        ),
        (
            "slo:\n  e2e_ms: .inf\n",
            "s.yaml:2: \"e2e_ms\" must be a positive number, found inf",
        ),
        (
            "slo:\n  e2e_ms: [1]\n",
            "s.yaml:2: \"e2e_ms\" must be a positive number, found a list",
        ),
        (
            "slo:\n  tpot_ms: 50\n\n  itl_ms: 40\n",
            "s.yaml:4: \"itl_ms\" repeats \"tpot_ms\" (at s.yaml:2); give each once (itl_ms is tpot_ms, latency_ms is e2e_ms)",
        ),
        (
            "x: 1\nslo: 5\n",
            "s.yaml:2: expected a mapping of SLO bounds such as `slo: {ttft_ms: 500, tpot_ms: 50}`, found 5",
        ),
        (
            "- ttft_ms: 5\n",
            "s.yaml: expected a mapping of SLO bounds such as `slo: {ttft_ms: 500, tpot_ms: 50}`, found a list",
        ),
        (
            "",
            "s.yaml: expected a mapping of SLO bounds such as `slo: {ttft_ms: 500, tpot_ms: 50}`, found nothing (null)",
        ),
        (
            "slo: {}\n",
            "s.yaml: no SLO bound set (expected at least one of ttft_ms, tpot_ms (or itl_ms), e2e_ms (or latency_ms), min_output_tok_s, ttfa_ms)",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(yaml(text).unwrap_err(), want, "{text:?}");
    }
    // Broken YAML: the parser's message, located.
    let msg = yaml("slo:\n  ttft_ms: [500\n").unwrap_err();
    assert!(msg.starts_with("s.yaml:2:"), "{msg}");
    assert!(msg.contains(": not valid YAML: "), "{msg}");
    assert!(!msg.contains('\n') && !msg.contains("at line"), "{msg}");
    assert_eq!(
        yaml("slo:\n  ttft_ms: 1\n  ttft_ms: 2\n").unwrap_err(),
        "s.yaml:3: \"ttft_ms\" repeats \"ttft_ms\" (at s.yaml:2); give each once (itl_ms is tpot_ms, latency_ms is e2e_ms)"
    );
    assert_eq!(
        yaml("slo:\n  ttft_ms: 1\nslo: {e2e_ms: 2}\n").unwrap_err(),
        "s.yaml:3: \"slo\" repeats \"slo\" (at s.yaml:1); give each once (itl_ms is tpot_ms, latency_ms is e2e_ms)"
    );
}

#[test]
fn parse_arg_reads_files_and_names_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("slo.yaml");
    std::fs::write(&p, "slo:\n  ttft_ms: 250\n").unwrap();
    assert_eq!(
        Slo::parse_arg(p.to_str().unwrap()).unwrap(),
        slo("ttft_ms=250")
    );
    // A file whose name holds '=' is still a file.
    let q = dir.path().join("ttft_ms=1.yaml");
    std::fs::write(&q, "e2e_ms: 9\n").unwrap();
    assert_eq!(
        Slo::parse_arg(q.to_str().unwrap()).unwrap(),
        slo("e2e_ms=9")
    );
    let missing = dir.path().join("none.yaml");
    let msg = Slo::parse_arg(missing.to_str().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(&format!(
            "--slo {}: cannot read the SLO file: ",
            missing.display()
        )),
        "{msg}"
    );
    assert!(msg.ends_with("like ttft_ms=500,tpot_ms=50)"), "{msg}");
}
