//! `capacity`'s flags: each bad value is an input error naming its flag (exit 2).

use clap::Parser;

use crate::cli::Cli;
use crate::error::Error;
use crate::settings::{CapacityBy, LoadMode, Settings};

fn settings(args: &[&str]) -> Result<Settings, Error> {
    let argv = [&["servescope", "capacity"][..], args].concat();
    let cli = Cli::try_parse_from(argv).map_err(|e| Error::Input(e.to_string()))?;
    Settings::from_cli(cli)
}

fn error(args: &[&str]) -> String {
    match settings(args) {
        Err(Error::Input(m)) => m,
        other => panic!("{args:?}: expected an input error, got {other:?}"),
    }
}

#[test]
fn defaults_are_concurrency_1_to_1024_at_99_percent() {
    let Ok(Settings::Load(l)) = settings(&["--slo", "ttft_ms=500"]) else {
        panic!()
    };
    let LoadMode::Capacity(c) = &l.mode else {
        panic!()
    };
    assert_eq!(c.by, CapacityBy::Concurrency);
    assert_eq!(
        (c.min, c.max, c.resolution, c.confirm),
        (1.0, 1024.0, 0.05, 0)
    );
    assert_eq!((c.attainment, c.num_requests), (0.99, 256));

    let Ok(Settings::Load(l)) = settings(&["--slo", "e2e_ms=9", "--by", "rate", "--max", "32"])
    else {
        panic!()
    };
    let LoadMode::Capacity(c) = &l.mode else {
        panic!()
    };
    assert_eq!(
        (c.by, c.min, c.max, c.burstiness),
        (CapacityBy::Rate, 0.5, 32.0, 1.0)
    );
}

#[test]
fn bad_flags_are_named() {
    assert!(error(&[]).contains("capacity needs --slo"));
    let slo = ["--slo", "ttft_ms=500"];
    let with = |more: &[&str]| error(&[&slo[..], more].concat());
    assert!(with(&["--attainment", "0"]).contains("--attainment 0"));
    assert!(with(&["--attainment", "1.5"]).contains("--attainment"));
    assert!(with(&["--resolution", "1"]).contains("--resolution 1"));
    assert!(with(&["--min", "1.5"]).contains("--min 1.5: expected a whole"));
    assert!(with(&["--min", "8", "--max", "4"]).contains("--min 8 is above --max 4"));
    assert!(with(&["--burstiness", "2"]).contains("--burstiness applies to --by rate only"));
    assert!(with(&["--by", "rate"]).contains("--by rate needs --max"));
    assert!(with(&["--by", "load"]).contains("--by"));
    assert!(with(&["--shard", "0/2"]).contains("--shard does not apply"));
    let m = with(&[
        "--by",
        "rate",
        "--max",
        "8",
        "--min",
        "0.1",
        "--duration",
        "1",
    ]);
    assert!(m.starts_with("--min 0.1:"), "{m}");
}
