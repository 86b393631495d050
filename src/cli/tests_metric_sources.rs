//! `--metrics-url NAME=URL` and `--metrics NAME=...`: sources, their names and the
//! errors naming the flag.

use clap::Parser;

use crate::cli::Cli;
use crate::settings::{MetricsSettings, Settings};

fn parse(args: &[&str]) -> Result<Option<MetricsSettings>, String> {
    let argv = ["servescope", "throughput"]
        .into_iter()
        .chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    match Settings::from_cli(cli).map_err(|e| e.to_string())? {
        Settings::Load(l) => Ok(l.session.target.metrics),
        _ => unreachable!("a load command"),
    }
}

#[test]
fn a_plain_url_is_the_engine_and_named_ones_are_sources() {
    assert!(parse(&[]).unwrap().is_none());
    let m = parse(&[
        "--metrics-url",
        "http://127.0.0.1:8000/metrics?x=1",
        "--metrics-url",
        "dcgm=http://gpu-node:9400/metrics",
        "--metrics-url",
        "host=http://gpu-node:9100/metrics",
        "--metrics",
        "host=node,node_load5",
        "--metrics",
        "vllm",
        "--metrics",
        "sglang",
    ])
    .unwrap()
    .unwrap();
    assert!(m.engine);
    // `?x=1` is part of the URL, not a source name.
    assert_eq!(m.url.as_deref(), Some("http://127.0.0.1:8000/metrics?x=1"));
    assert_eq!(m.names, "vllm,sglang");
    let sources: Vec<_> = m
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.url.as_str(), s.names.as_str()))
        .collect();
    assert_eq!(
        sources,
        [
            ("dcgm", "http://gpu-node:9400/metrics", "dcgm"),
            ("host", "http://gpu-node:9100/metrics", "node,node_load5"),
        ]
    );
}

#[test]
fn only_named_sources_leave_the_engine_unscraped() {
    let m = parse(&["--metrics-url", "dcgm=http://h:9400/metrics"])
        .unwrap()
        .unwrap();
    assert!(!m.engine);
    assert_eq!(m.sources.len(), 1);
    // `engine=URL` is the server's own, by name.
    let m = parse(&["--metrics-url", "engine=http://h:8000/metrics"])
        .unwrap()
        .unwrap();
    assert!(m.engine && m.sources.is_empty());
    assert_eq!(m.url.as_deref(), Some("http://h:8000/metrics"));
    assert_eq!(m.names, "vllm,sglang,llamacpp");
}

#[test]
fn bad_sources_are_flag_errors() {
    for (args, expected) in [
        (
            &["--metrics-url", "dcgm=gpu-node:9400"][..],
            "--metrics-url dcgm=gpu-node:9400: expected an http:// or https:// URL",
        ),
        (
            &["--metrics-url", "dcgm=not a url"],
            "--metrics-url dcgm=not a url: not a URL",
        ),
        (
            &["--metrics-url", "gpu=http://h:1/metrics"],
            "--metrics-url gpu=http://h:1/metrics: which metrics? Give them with --metrics gpu=NAMES",
        ),
        (
            &[
                "--metrics-url",
                "dcgm=http://a/m",
                "--metrics-url",
                "dcgm=http://b/m",
            ],
            "--metrics-url dcgm=http://b/m: the source \"dcgm\" is given twice",
        ),
        (
            &["--metrics-url", "http://a/m", "--metrics-url", "http://b/m"],
            "--metrics-url http://b/m: the server's own metrics URL is given twice",
        ),
        (
            &["--metrics", "gpu=dcgm"],
            "--metrics gpu=dcgm: there is no source \"gpu\" (give it with --metrics-url gpu=URL)",
        ),
        (
            &["--metrics-url", "gpu=http://h:1/m", "--metrics", "gpu=dcg"],
            "--metrics gpu=...: \"dcg\" is not a preset; did you mean `dcgm`?",
        ),
    ] {
        let e = parse(args).unwrap_err();
        assert!(e.starts_with(expected), "{args:?}: {e}");
    }
}

#[test]
fn short_presets_are_not_guessed_from_other_words() {
    // `load` is two edits from `node`: a metric name, not a slip.
    let m = parse(&["--metrics", "load"]).unwrap().unwrap();
    assert_eq!(m.names, "load");
    let e = parse(&["--metrics", "nodes"]).unwrap_err();
    assert!(e.contains("did you mean `node`?"), "{e}");
}
