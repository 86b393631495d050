//! Speculative decoding end to end: the client, with `--metrics spec-decode`, against
//! the engine simulator drafting K = 3 tokens accepted with P = 0.6 each
//! (`sim --spec-tokens 3 --acceptance 0.6`), measures what theory says, sees several
//! tokens per event and a lower TPOT than without speculation; compare and the HTML
//! report follow.

use std::path::Path;

use serde_json::Value;
use servescope::metrics::Summary;
use servescope::sim::{SimConfig, SimServer, SpecDecoding};
use servescope::{Outcome, run_args};

fn sim(spec: Option<SpecDecoding>) -> SimServer {
    let cfg = SimConfig {
        spec,
        ..SimConfig::default()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn run(args: &[&str]) -> Outcome {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    run_args(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// 16 requests of 128 output tokens at once, the server's metrics every 50 ms.
fn batch(server: &SimServer, dir: &Path) -> Summary {
    let Outcome::Session(out) = run(&[
        "batch",
        "--endpoint",
        &server.url(),
        "--batch-sizes",
        "16",
        "--input-len",
        "64",
        "--output-len",
        "128",
        "--metrics",
        "spec-decode",
        "--metrics-interval",
        "0.05",
        "--output-dir",
        s(dir),
        "--quiet",
    ]) else {
        panic!("not a session")
    };
    out.runs[0].1.clone()
}

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn acceptance_rate_and_length_match_theory_and_tpot_falls() {
    let (k, p) = (3, 0.6);
    let spec_server = sim(Some(SpecDecoding {
        tokens: k,
        acceptance: p,
    }));
    let plain_server = sim(None);
    let (spec_dir, plain_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let spec = batch(&spec_server, spec_dir.path());
    let plain = batch(&plain_server, plain_dir.path());

    // Accepted one by one until the first rejection: E[accepted] = P + P² + P³.
    let expected: f64 = (1..=k).map(|i| p.powi(i as i32)).sum();
    let sd = spec.spec_decode.as_ref().expect("spec-decode figures");
    let rate = sd.acceptance_rate.unwrap();
    let length = sd.mean_accepted_length.unwrap();
    // About 950 drafts: the standard error of the mean accepted count is ~0.04.
    assert!((rate - expected / 3.0).abs() < 0.05, "rate {rate}, {sd:?}");
    assert!((length - (1.0 + expected)).abs() < 0.15, "length {length}");
    let drafts = sd.drafts.unwrap();
    assert!(
        (sd.accepted_tokens.unwrap() / drafts - (length - 1.0)).abs() < 1e-9
            && sd.draft_tokens == Some(3.0 * drafts),
        "{sd:?}"
    );
    // Every output token after each request's first came from a verified draft.
    let out = spec.tokens.output as f64;
    assert!(
        drafts >= (out - 16.0) / (1.0 + k as f64),
        "{drafts} drafts for {out} tokens"
    );
    assert_eq!(sd.per_position.len(), 3);
    assert!(sd.per_position.windows(2).all(|w| w[0] >= w[1]), "{sd:?}");
    // Sampled at every interval, for the chart.
    assert!(
        sd.over_time.iter().filter(|(_, r)| r.is_some()).count() >= 2,
        "{:?}",
        sd.over_time
    );

    // Several tokens per event; the same steps give them, so TPOT falls.
    let per_event = spec.tokens_per_event.unwrap();
    assert!(per_event > 1.8, "{per_event} tokens per event");
    assert!((plain.tokens_per_event.unwrap() - 1.0).abs() < 1e-9);
    let (tpot, plain_tpot) = (
        spec.tpot_ms.as_ref().unwrap().mean,
        plain.tpot_ms.as_ref().unwrap().mean,
    );
    assert!(tpot < 0.7 * plain_tpot, "TPOT {tpot} ms vs {plain_tpot} ms");
    // A server without speculative decoding has no figures, not zeros.
    assert_eq!(plain.spec_decode, None);

    // Saved, and shown in the table.
    let saved = &results(spec_dir.path())["runs"][0]["summary"]["spec_decode"];
    assert_eq!(saved["acceptance_rate"].as_f64(), Some(rate));
    let table = servescope::report::table::render("b16", &spec);
    assert!(table.contains("spec decode acceptance rate"), "{table}");

    // The HTML report charts the rate over time.
    let page = spec_dir.path().join("report.html");
    run(&["report", s(spec_dir.path()), "--html", s(&page)]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"spec-decode-acceptance\""), "no chart");
    // A run without the figures has no such section.
    let plain_page = plain_dir.path().join("report.html");
    run(&["report", s(plain_dir.path()), "--html", s(&plain_page)]);
    assert!(
        !std::fs::read_to_string(&plain_page)
            .unwrap()
            .contains("spec-decode-acceptance")
    );
}

#[test]
fn compare_counts_a_higher_acceptance_as_better() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (dir, acceptance) in dirs.iter().zip([0.3, 0.8]) {
        let server = sim(Some(SpecDecoding {
            tokens: 3,
            acceptance,
        }));
        batch(&server, dir.path());
    }
    let Outcome::Compared(c) = run(&["compare", s(dirs[0].path()), s(dirs[1].path())]) else {
        panic!("not a comparison")
    };
    let rows = &c.runs[0].rows;
    for key in [
        "spec_decode.acceptance_rate",
        "spec_decode.mean_accepted_length",
    ] {
        let row = rows.iter().find(|r| r.metric.key == key).expect(key);
        assert!(row.b.unwrap() > row.a.unwrap(), "{key}: {row:?}");
        assert_eq!(row.verdict.as_str(), "better", "{key}");
    }
}
