//! The profile flags and `--reset-cache-url`'s words, checked before any server is
//! reached.

use clap::Parser;

use crate::cli::Cli;
use crate::settings::{LoadMode, ProfileSettings, Settings};

fn settings(args: &[&str]) -> Result<Settings, String> {
    let argv = std::iter::once("servescope").chain(args.iter().copied());
    let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
    Settings::from_cli(cli).map_err(|e| e.to_string())
}

fn profile(args: &[&str]) -> Option<ProfileSettings> {
    let mut a = vec!["concurrency"];
    a.extend_from_slice(args);
    match settings(&a).unwrap() {
        Settings::Load(l) => l.session.target.profile,
        other => panic!("{other:?}"),
    }
}

#[test]
fn profile_flags_turn_profiling_on() {
    assert!(profile(&[]).is_none());
    let p = profile(&["--profile"]).unwrap();
    assert_eq!((p.start, p.stop, p.requests), (None, None, None));
    let p = profile(&["--profile-requests", "8"]).unwrap();
    assert_eq!(p.requests, Some(8), "a window implies --profile");
    let p = profile(&[
        "--profile-url-start",
        "/prof/start",
        "--profile-url-stop",
        "http://h:1/stop",
    ])
    .unwrap();
    assert_eq!(p.start.as_deref(), Some("/prof/start"));
    assert_eq!(p.stop.as_deref(), Some("http://h:1/stop"));
}

#[test]
fn bad_profile_flags_are_refused_by_name() {
    let err = |a: &[&str]| {
        let mut v = vec!["concurrency"];
        v.extend_from_slice(a);
        settings(&v).unwrap_err()
    };
    let e = err(&[
        "--profile-url-start",
        "ftp://h/x",
        "--profile-url-stop",
        "/s",
    ]);
    assert!(
        e.contains("--profile-url-start ftp://h/x") && e.contains("http"),
        "{e}"
    );
    let e = err(&["--profile-url-start", "start", "--profile-url-stop", "/s"]);
    assert!(e.contains("--profile-url-start start: not a URL"), "{e}");
    let e = err(&["--profile-url-start", "/a"]);
    assert!(
        e.contains("--profile-url-stop"),
        "the pair goes together: {e}"
    );
    let e = err(&["--profile-requests", "0"]);
    assert!(e.contains("--profile-requests"), "{e}");
}

#[test]
fn reset_cache_url_takes_a_preset_a_path_or_a_url() {
    for given in ["vllm", "sglang", "llamacpp", "/flush", "http://x/reset"] {
        let s = settings(&["dual-round", "--reset-cache-url", given]).unwrap();
        let Settings::Load(l) = s else { panic!() };
        let LoadMode::DualRound(d) = l.mode else {
            panic!("not dual-round")
        };
        assert_eq!(d.reset_cache.unwrap().0, given);
    }
    let e = settings(&["dual-round", "--reset-cache-url", "llama"]).unwrap_err();
    assert!(
        e.contains("--reset-cache-url llama") && e.contains("vllm, sglang, llamacpp"),
        "{e}"
    );
}

#[test]
fn credentials_in_a_route_are_refused_without_being_echoed() {
    for flag in ["--profile-url-start", "--profile-url-stop"] {
        let other = if flag.ends_with("start") {
            "--profile-url-stop"
        } else {
            "--profile-url-start"
        };
        let err = settings(&[
            "concurrency",
            flag,
            "http://admin:PASSWD@h:1/x",
            other,
            "/y",
        ])
        .unwrap_err();
        assert!(err.contains(flag) && err.contains("credentials"), "{err}");
        assert!(!err.contains("PASSWD"), "{err}");
    }
    let err = settings(&["dual-round", "--reset-cache-url", "http://u:PASSWD@h/f"]).unwrap_err();
    assert!(
        err.contains("--reset-cache-url") && !err.contains("PASSWD"),
        "{err}"
    );
}

#[test]
fn the_simulators_profile_delay_and_slots_are_checked_from_flags_and_files() {
    use crate::cli::sim::SimModelArgs;
    let e = SimModelArgs {
        profile_delay_ms: Some(1e300),
        ..SimModelArgs::default()
    }
    .into_config()
    .unwrap_err();
    assert!(
        e.contains("--profile-delay-ms") && e.contains("an hour"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    std::fs::write(&path, r#"{"slots": 0}"#).unwrap();
    let e = SimModelArgs {
        config: Some(path),
        ..SimModelArgs::default()
    }
    .into_config()
    .unwrap_err();
    assert!(e.contains("\"slots\" in") && e.contains("1 to 1024"), "{e}");
}
