//! Speculative-decoding figures (`spec.rs`), computed by hand from made-up scrapes.

use super::collect::Collector;
use super::presets::parse_names;
use super::spec::SPEC_DECODE;
use super::*;
use crate::metrics::catalogue;
use crate::metrics::prometheus;

fn collect(pages: &[(f64, String)]) -> ServerMetrics {
    let names = SPEC_DECODE.iter().map(|s| s.to_string()).collect();
    let mut c = Collector::new(names);
    for (at, text) in pages {
        c.add(*at, &prometheus::parse(text).unwrap());
    }
    c.finish(None).unwrap()
}

/// vLLM's three counters for engines 0 and 1: (drafts, draft tokens, accepted) each.
fn vllm_page(e0: [u64; 3], e1: [u64; 3]) -> String {
    let mut out = String::new();
    let names = [
        "vllm:spec_decode_num_drafts",
        "vllm:spec_decode_num_draft_tokens",
        "vllm:spec_decode_num_accepted_tokens",
    ];
    for (i, name) in names.iter().enumerate() {
        out += &format!("# TYPE {name} counter\n");
        out += &format!("{name}_total{{engine=\"0\",model_name=\"m\"}} {}\n", e0[i]);
        out += &format!("{name}_total{{engine=\"1\",model_name=\"m\"}} {}\n", e1[i]);
    }
    out
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn vllm_counters_give_rate_and_length_summed_over_engines_across_a_restart() {
    let m = collect(&[
        (0.0, vllm_page([100, 300, 150], [10, 30, 0])),
        (1.0, vllm_page([110, 330, 162], [20, 60, 15])),
        // Engine 0 restarted: its counters start again from 0.
        (2.0, vllm_page([5, 15, 9], [20, 60, 15])),
    ]);
    let sd = spec_decode(&m).expect("figures");
    // Δ: engine 0 drafts 10 + 5, draft tokens 30 + 15, accepted 12 + 9; engine 1 10, 30, 15.
    assert!(close(sd.drafts, 25.0) && close(sd.draft_tokens, 75.0));
    assert!(close(sd.accepted_tokens, 36.0));
    assert!(close(sd.acceptance_rate, 36.0 / 75.0), "{sd:?}");
    assert!(close(sd.mean_accepted_length, 1.0 + 36.0 / 25.0), "{sd:?}");
    assert!(sd.from.contains("summed over 2 label sets"), "{}", sd.from);
    // Per interval: (12 + 15) / (30 + 30), then 9 / 15.
    assert_eq!(sd.over_time, [(1.0, Some(0.45)), (2.0, Some(0.6))]);
    // SGLang's names are not missing from a vLLM server.
    assert_eq!(m.missing, ["vllm:spec_decode_num_accepted_tokens_per_pos"]);
}

#[test]
fn a_run_without_drafts_has_no_figure_not_zero() {
    let page = vllm_page([7, 21, 9], [0, 0, 0]);
    let m = collect(&[(0.0, page.clone()), (1.0, page)]);
    let sd = spec_decode(&m).expect("the counters are there");
    assert_eq!(sd.acceptance_rate, None);
    assert_eq!(sd.mean_accepted_length, None);
    assert!(close(sd.drafts, 0.0));
    assert_eq!(sd.over_time, [(1.0, None)]);
    let mut s = crate::metrics::summarize(&Default::default(), &[]);
    s.spec_decode = Some(sd);
    for key in [
        "spec_decode.acceptance_rate",
        "spec_decode.mean_accepted_length",
    ] {
        assert_eq!(catalogue::known(key).value(&s), None, "{key}");
    }
    let json = s.to_json();
    assert!(
        json["spec_decode"].get("acceptance_rate").is_none(),
        "{json}"
    );
    assert!(crate::report::spec_decode::table_line(&s).contains("no drafts during the run"));
}

#[test]
fn acceptance_by_draft_position() {
    let page = |drafts: u64, p0: u64, p1: u64| {
        format!(
            "{}# TYPE vllm:spec_decode_num_accepted_tokens_per_pos counter\n\
             vllm:spec_decode_num_accepted_tokens_per_pos_total{{model_name=\"m\",position=\"1\"}} {p1}\n\
             vllm:spec_decode_num_accepted_tokens_per_pos_total{{model_name=\"m\",position=\"0\"}} {p0}\n",
            vllm_page([drafts, 2 * drafts, p0 + p1], [0, 0, 0])
        )
    };
    let m = collect(&[(0.0, page(0, 0, 0)), (0.5, page(10, 8, 4))]);
    let sd = spec_decode(&m).unwrap();
    assert_eq!(sd.per_position, [0.8, 0.4]);
    assert!(close(sd.acceptance_rate, 12.0 / 20.0));
    assert!(m.missing.is_empty(), "{:?}", m.missing);
}

#[test]
fn sglang_gauges_are_averaged_over_the_run() {
    let page = |len: f64, rate: f64| {
        format!(
            "# TYPE sglang:spec_accept_length gauge\nsglang:spec_accept_length{{model_name=\"m\"}} {len}\n\
             # TYPE sglang:spec_accept_rate gauge\nsglang:spec_accept_rate{{model_name=\"m\"}} {rate}\n"
        )
    };
    // The scrape before the run shows the window before it: left out.
    let m = collect(&[
        (0.0, page(9.0, 0.9)),
        (1.0, page(2.0, 0.4)),
        (2.0, page(3.0, 0.6)),
    ]);
    let sd = spec_decode(&m).unwrap();
    assert!(close(sd.mean_accepted_length, 2.5), "{sd:?}");
    assert!(close(sd.acceptance_rate, 0.5), "{sd:?}");
    assert_eq!(sd.drafts, None);
    assert!(
        sd.from.contains("mean of sglang:spec_accept_length"),
        "{}",
        sd.from
    );
    assert_eq!(sd.over_time, [(1.0, Some(0.4)), (2.0, Some(0.6))]);
    // vLLM's names are not missing from an SGLang server.
    assert!(m.missing.is_empty(), "{:?}", m.missing);

    // An idle SGLang reports a length of 0 before any draft: no figure.
    let m = collect(&[(0.0, page(0.0, 0.0)), (1.0, page(0.0, 0.0))]);
    let sd = spec_decode(&m).unwrap();
    assert_eq!((sd.acceptance_rate, sd.mean_accepted_length), (None, None));
}

#[test]
fn a_server_without_spec_decoding_has_no_figures() {
    let page = "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 1\n".to_string();
    let m = collect(&[(0.0, page.clone()), (1.0, page)]);
    assert_eq!(spec_decode(&m), None);
    assert_eq!(m.missing.len(), SPEC_DECODE.len());
}

#[test]
fn the_preset() {
    assert_eq!(parse_names("spec-decode").unwrap().len(), SPEC_DECODE.len());
    let both = parse_names("vllm,spec-decode").unwrap();
    assert!(both.contains(&"vllm:spec_decode_num_drafts".to_string()));
    assert!(both.contains(&"vllm:num_requests_running".to_string()));
    let e = parse_names("spec_decode").unwrap_err();
    assert!(e.contains("did you mean `spec-decode`"), "{e}");
}

#[test]
fn saved_and_read_back() {
    let m = collect(&[
        (0.0, vllm_page([0, 0, 0], [0, 0, 0])),
        (1.0, vllm_page([4, 12, 6], [0, 0, 0])),
    ]);
    let mut s = crate::metrics::summarize(&Default::default(), &[]);
    s.spec_decode = spec_decode(&m);
    let back: crate::metrics::Summary = serde_json::from_value(s.to_json()).unwrap();
    assert_eq!(back.spec_decode, s.spec_decode);
    let rate = catalogue::known("spec_decode.acceptance_rate");
    assert_eq!(rate.value(&back), Some(0.5));
    assert_eq!(rate.better, catalogue::Better::Higher);
    let len = catalogue::known("spec_decode.mean_accepted_length");
    assert_eq!(len.value(&back), Some(2.5));
    let line = crate::report::spec_decode::table_line(&back);
    assert!(
        line.contains("acceptance rate 50.0%") && line.contains("2.50 tokens"),
        "{line}"
    );
    // An older file has none.
    let mut old = s.to_json();
    old.as_object_mut().unwrap().remove("spec_decode");
    let back: crate::metrics::Summary = serde_json::from_value(old).unwrap();
    assert_eq!(back.spec_decode, None);
}
