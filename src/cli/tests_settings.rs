//! `Settings::from_cli`: defaults filled in, and flag checks made before any file is
//! read or any server is reached.

use clap::Parser;

use super::Cli;
use crate::settings::{LoadMode, LoadSettings, Prompts, ResetBetween, Settings};
use crate::workload::synthetic::LengthSpec;

fn settings(args: &[&str]) -> Result<Settings, String> {
    let argv = std::iter::once("servescope").chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    Settings::from_cli(cli).map_err(|e| e.to_string())
}

fn load(args: &[&str]) -> LoadSettings {
    match settings(args).unwrap() {
        Settings::Load(l) => *l,
        other => panic!("not a load command: {other:?}"),
    }
}

#[test]
fn each_mode_fills_in_its_own_defaults() {
    let b = load(&["batch"]);
    assert!(matches!(b.mode, LoadMode::Batch { ref sizes } if sizes == &[64]));
    assert!(matches!(
        b.session.workload.prompts,
        Prompts::Synthetic {
            input_len: LengthSpec::Range { lo: 1, hi: 8192 },
            ..
        }
    ));
    assert_eq!(
        b.session.workload.output_len,
        LengthSpec::Range { lo: 16, hi: 1024 }
    );
    let c = load(&["concurrency", "--concurrency", "2"]);
    assert!(matches!(
        c.mode,
        LoadMode::Concurrency {
            num_requests: 256,
            ..
        }
    ));
    assert_eq!(c.session.workload.output_len, LengthSpec::Fixed(256));
    assert_eq!(c.session.output.percentiles, [50.0, 90.0, 99.0]);
    assert_eq!(c.session.target.timeout.unwrap().as_secs(), 600);
    let d = load(&["dual-round", "--reset-cache-url", "http://x/reset"]);
    let LoadMode::DualRound(d) = d.mode else {
        panic!("not dual-round");
    };
    assert_eq!(
        d.reset_cache,
        Some(("http://x/reset".to_string(), ResetBetween::Levels))
    );
}

#[test]
fn trace_conflicts_are_found_before_the_trace_is_read() {
    // The file does not exist: the flags alone are enough to refuse.
    let err = settings(&["trace", "/nonexistent.jsonl", "--num-requests", "5"]).unwrap_err();
    assert!(
        err.starts_with("--num-requests (use --limit) does not apply to trace replay"),
        "{err}"
    );
    let err = settings(&[
        "trace",
        "/nonexistent.jsonl",
        "--sessions",
        "--prompt-token-ids",
    ])
    .unwrap_err();
    assert!(
        err.contains("cannot be combined with --prompt-token-ids"),
        "{err}"
    );
    let err = settings(&[
        "dual-round",
        "--trace",
        "/nonexistent.jsonl",
        "--num-requests",
        "3",
    ])
    .unwrap_err();
    assert!(err.contains("(use --limit)"), "{err}");
}

#[test]
fn every_command_names_the_flag_it_refuses() {
    for (args, flag) in [
        (&["batch", "--num-requests", "3"][..], "--num-requests"),
        (
            &["concurrency", "--concurrency", "2,2"],
            "--concurrency: 2 is given twice",
        ),
        (
            &["rate", "--rates", "inf", "--duration", "3"],
            "--rates inf",
        ),
        (&["batch", "--extra-body", "[1]"], "--extra-body"),
        (&["batch", "--slo", "nonsense=1"], "--slo"),
        (&["report", "dir", "--percentiles", "x"], "--percentiles"),
        (
            &["merge", "a", "b", "-o", "c", "--percentiles", "x"],
            "--percentiles",
        ),
        (&["sim", "--ideal", "--max-num-seqs", "4"], "--max-num-seqs"),
        (&["batch", "--api-key", "sk-abc\r\n"], "--api-key"),
        (&["batch", "--api-key=sk\nX-Injected: 1"], "--api-key"),
        (&["batch", "--api-key", "sk\u{1b}[2J"], "--api-key"),
    ] {
        let err = settings(args).unwrap_err();
        assert!(err.starts_with(flag), "{args:?}: {err}");
    }
}

#[test]
fn a_key_with_a_control_character_is_refused_without_echoing_it() {
    let err = settings(&["batch", "--api-key", "sk-secret\r\n"]).unwrap_err();
    assert!(err.contains("U+000D at character 10"), "{err}");
    assert!(!err.contains("sk-secret"), "{err}");
    let ok = load(&["batch", "--api-key", "sk-ключ-\u{e9}"]);
    assert_eq!(ok.session.target.api_key.as_deref(), Some("sk-ключ-é"));
}

/// The dual-round tool's flag names work unchanged; sampling flags reach every body.
#[test]
fn dual_round_tool_aliases_and_sampling_flags() {
    let l = load(&[
        "concurrency",
        "--num-samples",
        "7",
        "--max-output-tokens",
        "12",
        "--slo-file",
        "ttft_ms=500",
        "--prometheus-url",
        "http://127.0.0.1:9/metrics",
        "--prometheus-metrics",
        "vllm",
        "--temperature",
        "0.7",
        "--top-p",
        "0.9",
    ]);
    assert!(matches!(
        l.mode,
        LoadMode::Concurrency {
            num_requests: 7,
            ..
        }
    ));
    let s = &l.session;
    assert_eq!(s.workload.output_len, LengthSpec::Fixed(12));
    assert!(s.output.slo.is_some());
    let m = s.target.metrics.as_ref().unwrap();
    assert_eq!(m.url.as_deref(), Some("http://127.0.0.1:9/metrics"));
    assert_eq!(m.names, "vllm");
    assert_eq!(s.workload.extra_body["temperature"], 0.7);
    assert_eq!(s.workload.extra_body["top_p"], 0.9);
    for (args, flag) in [
        (&["concurrency", "--temperature", "-1"][..], "--temperature"),
        (&["concurrency", "--top-p", "0"], "--top-p"),
        (&["concurrency", "--top-p", "1.5"], "--top-p"),
        (
            &[
                "concurrency",
                "--temperature",
                "1",
                "--extra-body",
                "{\"temperature\":0}",
            ],
            "--temperature and --extra-body",
        ),
    ] {
        let e = settings(args).unwrap_err();
        assert!(e.contains(flag), "{args:?}: {e}");
    }
}

#[test]
fn a_traces_lengths_and_sharing_are_replaced_by_the_prompt_flags() {
    use crate::workload::trace_reshape::{Reshape, TracePrompts};
    let t = load(&[
        "trace",
        "/nonexistent.jsonl",
        "--input-len",
        "100:200",
        "--output-len",
        "8",
        "--prompts",
        "unique",
    ]);
    let LoadMode::Trace(t) = t.mode else {
        panic!("not trace");
    };
    let want = Reshape {
        input_len: Some(LengthSpec::Range { lo: 100, hi: 200 }),
        output_len: Some(LengthSpec::Fixed(8)),
        prompts: Some(TracePrompts::Unique),
    };
    assert_eq!(t.reshape, want);
    let LoadMode::Trace(t) = load(&["trace", "/nonexistent.jsonl"]).mode else {
        panic!("not trace");
    };
    assert!(t.reshape.is_none(), "the trace as it is: {:?}", t.reshape);
    let d = load(&[
        "dual-round",
        "--trace",
        "/x.jsonl",
        "--input-len",
        "100:200",
        "--output-len",
        "8",
        "--prompts",
        "unique",
    ]);
    let LoadMode::DualRound(d) = d.mode else {
        panic!("not dual-round");
    };
    assert_eq!(d.reshape, want);
    // Without --trace the lengths are the synthetic prompts' own.
    let d = load(&["dual-round", "--input-len", "100"]);
    let LoadMode::DualRound(d) = d.mode else {
        panic!("not dual-round");
    };
    assert!(d.reshape.is_none());
    let err = settings(&["dual-round", "--prompts", "unique"]).unwrap_err();
    assert!(err.contains("--trace"), "{err}");
}
