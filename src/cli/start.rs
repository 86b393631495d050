//! `--warmup`, `--warmup-s`, `--ramp-up` and `--ramp-up-s` against the load mode: each
//! is refused, naming the flag, where it would mean nothing.

use crate::error::Error;
use crate::settings::{CapacityBy, LoadMode, StartSettings};

/// The mode's name in messages, and why a flag does not apply to it.
fn refusal(mode: &LoadMode) -> Option<(&'static str, &'static str)> {
    match mode {
        LoadMode::Trace(_) => Some((
            "trace replay",
            "the trace's timestamps say when every request goes; extra requests, or a \
             reshaped start, would change the load being replayed",
        )),
        LoadMode::DualRound(_) => Some((
            "dual-round",
            "its first round is the cold round the later ones are compared with; a warm-up \
             would warm the cache it measures",
        )),
        _ => None,
    }
}

pub(super) fn check(mode: &LoadMode, s: &StartSettings) -> Result<(), Error> {
    let given = [
        (s.warmup.is_some(), "--warmup"),
        (s.warmup_s.is_some(), "--warmup-s"),
        (s.ramp_up.is_some(), "--ramp-up"),
        (s.ramp_up_s.is_some(), "--ramp-up-s"),
    ];
    let first = given.iter().find(|(g, _)| *g).map(|(_, f)| *f);
    if let (Some(flag), Some((name, why))) = (first, refusal(mode)) {
        return Err(Error::Input(format!(
            "{flag} does not apply to {name}: {why}"
        )));
    }
    let bad = |m: String| Err(Error::Input(m));
    match mode {
        LoadMode::Batch { .. } | LoadMode::Throughput { .. } => {
            let name = match mode {
                LoadMode::Batch { .. } => "batch",
                _ => "throughput",
            };
            let all_at_once = "it sends every request at once";
            if s.warmup_s.is_some() {
                return bad(format!(
                    "--warmup-s does not apply to {name}: {all_at_once}, so none is sent \
                     later than another; use --warmup N (a burst of N, finished before the \
                     measured one)"
                ));
            }
            if let Some(flag) = ramp_flag(s) {
                return bad(format!(
                    "{flag} does not apply to {name}: {all_at_once}; ramp-up is for \
                     concurrency (--ramp-up-s) and rate (--ramp-up with --ramp-up-s)"
                ));
            }
        }
        LoadMode::Concurrency { .. } => closed_loop(s)?,
        LoadMode::Capacity(c) if c.by == CapacityBy::Concurrency => closed_loop(s)?,
        LoadMode::Capacity(_) => ramp_pair(s)?,
        // Its rate runs ramp; its max-throughput run is a burst, which no time-based
        // warm-up fits.
        LoadMode::Sweep(_) => {
            ramp_pair(s)?;
            if s.warmup_s.is_some() {
                return bad(
                    "--warmup-s does not apply to sweep: its max-throughput run sends every \
                     request at once, so none is sent later than another; use --warmup N"
                        .into(),
                );
            }
        }
        LoadMode::Rate(r) => {
            ramp_pair(s)?;
            let infinite = r.rates.iter().any(|r| r.0.is_none());
            if infinite && let Some(flag) = ramp_flag(s) {
                return bad(format!(
                    "{flag} needs finite --rates: at inf every request goes at once"
                ));
            }
            if infinite && s.warmup_s.is_some() {
                return bad(
                    "--warmup-s needs finite --rates: at inf every request is due at once \
                     (use --warmup N)"
                        .into(),
                );
            }
        }
        LoadMode::Trace(_) | LoadMode::DualRound(_) => {}
    }
    Ok(())
}

/// A closed loop ramps by slots: `--ramp-up-s` alone.
fn closed_loop(s: &StartSettings) -> Result<(), Error> {
    if s.ramp_up.is_some() {
        return Err(Error::Input(
            "--ramp-up applies to rate runs only: a closed loop adds its slots \
             evenly over --ramp-up-s S (give that alone)"
                .into(),
        ));
    }
    Ok(())
}

/// A rate ramp needs both its shape and its length.
fn ramp_pair(s: &StartSettings) -> Result<(), Error> {
    match (s.ramp_up, s.ramp_up_s) {
        (Some(_), None) => Err(Error::Input(
            "--ramp-up needs --ramp-up-s S: the seconds the rate takes to reach its target".into(),
        )),
        (None, Some(_)) => Err(Error::Input(
            "--ramp-up-s on a rate run needs --ramp-up linear|exponential: how the rate \
             rises to its target"
                .into(),
        )),
        _ => Ok(()),
    }
}

fn ramp_flag(s: &StartSettings) -> Option<&'static str> {
    if s.ramp_up.is_some() {
        Some("--ramp-up")
    } else if s.ramp_up_s.is_some() {
        Some("--ramp-up-s")
    } else {
        None
    }
}
