//! Flag errors that name their flag once, in words a reader expects (issue 13, point 8).

use clap::Parser;

use super::Cli;
use crate::settings::Settings;

fn error(args: &[&str]) -> String {
    let argv = std::iter::once("servescope").chain(args.iter().copied());
    match Cli::try_parse_from(argv) {
        Err(e) => e.to_string(),
        Ok(cli) => Settings::from_cli(cli).unwrap_err().to_string(),
    }
}

#[test]
fn negative_counts_are_value_errors_naming_the_flag() {
    for (args, flag) in [
        (&["concurrency", "--concurrency", "-1"][..], "--concurrency"),
        (
            &["concurrency", "--concurrency", "4,-1"][..],
            "--concurrency",
        ),
        (&["batch", "--batch-sizes", "-1"][..], "--batch-sizes"),
        (
            &["throughput", "--num-requests", "-1"][..],
            "--num-requests",
        ),
        (
            &["rate", "--rates", "1", "--max-concurrency", "-2"][..],
            "--max-concurrency",
        ),
        (&["dual-round", "--concurrency", "-3"][..], "--concurrency"),
        (&["trace", "t.jsonl", "--limit", "0"][..], "--limit"),
        (&["trace", "t.jsonl", "--limit", "-3"][..], "--limit"),
    ] {
        let e = error(args);
        assert!(
            e.contains(flag) && e.contains("expected a positive integer"),
            "{args:?}: {e}"
        );
        assert!(!e.contains("unexpected argument"), "{args:?}: {e}");
    }
    let e = error(&["throughput", "--retries", "-1"]);
    assert!(e.contains("--retries") && e.contains("≥ 0"), "{e}");
    let e = error(&["rate", "--rates", "-1"]);
    assert!(e.contains("--rates") && e.contains("> 0"), "{e}");
}

#[test]
fn the_slo_flag_is_named_once() {
    let e = error(&["throughput", "--slo", "ttft=5"]);
    assert_eq!(e.matches("--slo").count(), 1, "{e}");
    assert!(e.contains("unknown SLO key \"ttft\""), "{e}");
}

#[test]
fn a_misspelt_metrics_preset_is_a_flag_error() {
    let e = error(&["throughput", "--metrics", "vlm"]);
    assert!(
        e.starts_with("--metrics: \"vlm\" is not a preset; did you mean `vllm`?"),
        "{e}"
    );
}

#[test]
fn a_rate_slower_than_the_run_is_a_flag_error() {
    let e = error(&["rate", "--rates", "10,0.001", "--duration", "5"]);
    assert!(
        e.starts_with("--rates 0.001: requests would come every 1000 s"),
        "{e}"
    );
    assert!(e.contains("--duration 5 s"), "{e}");
    let e = error(&["rate", "--rates", "1e-300", "--num-requests", "2"]);
    assert!(
        e.starts_with("--rates 1.000e-300: 2 requests would take"),
        "{e}"
    );
}

#[test]
fn an_html_path_that_cannot_be_written_is_a_flag_error() {
    let dir = std::env::temp_dir();
    let missing = dir.join("servescope-no-such-dir").join("r.html");
    let missing = missing.to_str().unwrap();
    let here = dir.to_str().unwrap();
    for args in [
        &["throughput", "--output-dir", "o", "--html", missing][..],
        &["throughput", "--output-dir", "o", "--html", here][..],
        &["report", "o", "--html", missing][..],
        &["merge", "a", "b", "--output", "o", "--html", here][..],
    ] {
        let e = error(args);
        assert!(e.starts_with("--html "), "{args:?}: {e}");
    }
    // An HTML path in the output directory the command itself creates is fine.
    let made = dir.join("servescope-made-by-the-run");
    let made_html = made.join("r.html");
    let (made, made_html) = (made.to_str().unwrap(), made_html.to_str().unwrap());
    for args in [
        &[
            "servescope",
            "throughput",
            "--output-dir",
            made,
            "--html",
            made_html,
        ][..],
        &[
            "servescope",
            "merge",
            "a",
            "b",
            "--output",
            made,
            "--html",
            made_html,
        ][..],
    ] {
        let cli = Cli::try_parse_from(args).unwrap();
        assert!(Settings::from_cli(cli).is_ok(), "{args:?}");
    }
}

#[test]
fn percentiles_are_sorted_once_each() {
    let argv = ["servescope", "throughput", "--percentiles", "99,50,90,50"];
    let Settings::Load(l) = Settings::from_cli(Cli::try_parse_from(argv).unwrap()).unwrap() else {
        panic!("not a load command");
    };
    assert_eq!(l.session.output.percentiles, [50.0, 90.0, 99.0]);
}
