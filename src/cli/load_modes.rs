//! The load modes' own flags, checked and defaulted: each mode's levels and request
//! counts, and where its prompts come from with the defaults for unset lengths. Counts
//! and levels are at least 1 already: their value parsers (`values::positive_int`)
//! refuse 0 and negatives, naming the flag.

use super::load::{
    BatchArgs, CapacityArgs, ConcurrencyArgs, DualRoundArgs, LoadArgs, RateArgs, SweepArgs,
    ThroughputArgs, TraceArgs,
};
use crate::error::Error;
use crate::schedule::arrivals::Span;
use crate::settings::{
    CapacityBy, CapacitySettings, DualRoundSettings, LoadMode, RateSettings, ResetBetween,
    SweepSettings, TraceSettings,
};
use crate::workload::synthetic::LengthSpec;
use crate::workload::trace_reshape::{Reshape, TracePrompts};

/// Levels name their runs, and run labels must be unique within a result file.
fn check_levels<T: PartialEq + std::fmt::Display>(flag: &str, v: &[T]) -> Result<(), Error> {
    if let Some(d) = v
        .iter()
        .enumerate()
        .find_map(|(i, x)| v[..i].contains(x).then_some(x))
    {
        return Err(Error::Input(format!(
            "{flag}: {d} is given twice; list each level once"
        )));
    }
    Ok(())
}

/// Where a mode's prompts come from, before the shared flags are read.
pub(super) enum PromptMode {
    /// Synthetic prompts or `--dataset`, with the mode's defaults for unset lengths.
    Flags(Defaults),
    /// A trace gives every request's lengths; `sessions`: `--sessions`.
    Trace { sessions: bool },
}

/// Per-mode defaults for flags the user left out.
#[derive(Clone, Copy)]
pub(super) struct Defaults {
    pub(super) input_len: LengthSpec,
    pub(super) output_len: LengthSpec,
    /// Replay a multi-turn dataset entry as growing chat histories, one request per
    /// user turn (dual-round: each turn resends the history, so a prefix cache matters).
    pub(super) expand_turns: bool,
}

impl Defaults {
    fn fixed(input: u32, output: u32) -> PromptMode {
        PromptMode::Flags(Defaults {
            input_len: LengthSpec::Fixed(input),
            output_len: LengthSpec::Fixed(output),
            expand_turns: false,
        })
    }
}

pub(super) fn batch(a: &BatchArgs) -> Result<(LoadMode, PromptMode), Error> {
    check_levels("--batch-sizes", &a.batch_sizes)?;
    if a.load.num_requests.is_some() {
        return Err(Error::Input(
            "--num-requests does not apply to batch: each batch size is its request count".into(),
        ));
    }
    let mode = LoadMode::Batch {
        sizes: a.batch_sizes.clone(),
    };
    let d = Defaults {
        input_len: LengthSpec::Range { lo: 1, hi: 8192 },
        output_len: LengthSpec::Range { lo: 16, hi: 1024 },
        expand_turns: false,
    };
    Ok((mode, PromptMode::Flags(d)))
}

pub(super) fn throughput(a: &ThroughputArgs) -> Result<(LoadMode, PromptMode), Error> {
    let n = a.load.num_requests.unwrap_or(256);
    let d = Defaults {
        input_len: LengthSpec::Range { lo: 100, hi: 1024 },
        output_len: LengthSpec::Range { lo: 100, hi: 1024 },
        expand_turns: false,
    };
    Ok((
        LoadMode::Throughput { num_requests: n },
        PromptMode::Flags(d),
    ))
}

pub(super) fn concurrency(a: &ConcurrencyArgs) -> Result<(LoadMode, PromptMode), Error> {
    check_levels("--concurrency", &a.concurrency)?;
    let n = a.load.num_requests.unwrap_or(256);
    let mode = LoadMode::Concurrency {
        levels: a.concurrency.clone(),
        num_requests: n,
    };
    Ok((mode, Defaults::fixed(1024, 256)))
}

/// How many arrivals, or for how long, an open-loop run draws: `--num-requests` and/or
/// `--duration`, 256 requests when neither is given (as the other modes).
fn rate_span(num_requests: Option<usize>, duration: Option<f64>) -> Span {
    Span {
        requests: num_requests.or(duration.is_none().then_some(256)),
        duration_us: duration.map(|d| (d * 1e6).min(u64::MAX as f64) as u64),
    }
}

pub(super) fn rate(a: &RateArgs) -> Result<(LoadMode, PromptMode), Error> {
    check_levels("--rates", &a.rates)?;
    let span = rate_span(a.load.num_requests, a.duration);
    if a.rates.iter().any(|r| r.0.is_none()) && span.requests.is_none() {
        return Err(Error::Input(
            "--rates inf needs --num-requests (a duration means nothing at an infinite rate)"
                .into(),
        ));
    }
    for r in a.rates.iter().filter_map(|r| r.0) {
        rate_fits(r, a.duration, span.requests)?;
    }
    let mode = LoadMode::Rate(RateSettings {
        rates: a.rates.clone(),
        burstiness: a.burstiness,
        duration_s: a.duration,
        span,
        max_concurrency: a.max_concurrency,
    });
    Ok((mode, Defaults::fixed(1024, 256)))
}

/// A rate at which the run would not be what was asked: with `--duration`, a mean gap
/// between requests longer than the duration (one request, then nothing); without it,
/// a schedule longer than a year (a typo, not a benchmark; it would hang).
fn rate_fits(r: f64, duration: Option<f64>, requests: Option<usize>) -> Result<(), Error> {
    const YEAR_S: f64 = 365.25 * 86400.0;
    // 1e-300, not three hundred zeros.
    let short = |v: f64| {
        if (1e-3..1e6).contains(&v) {
            format!("{}", (v * 1e3).round() / 1e3)
        } else {
            format!("{v:.3e}")
        }
    };
    let (gap, r) = (1.0 / r, short(r));
    if let Some(d) = duration
        && gap > d
    {
        return Err(Error::Input(format!(
            "--rates {r}: requests would come every {} s on average, longer than --duration {d} s lasts; give a rate of at least {} req/s or a longer --duration",
            short(gap),
            short(1.0 / d)
        )));
    }
    let span = gap * requests.unwrap_or(1).saturating_sub(1) as f64;
    if duration.is_none() && span > YEAR_S {
        return Err(Error::Input(format!(
            "--rates {r}: {} requests would take {} years to send; give a higher rate",
            requests.unwrap_or(1),
            short(span / YEAR_S)
        )));
    }
    Ok(())
}

pub(super) fn trace(a: &TraceArgs) -> Result<(LoadMode, PromptMode), Error> {
    check_levels("--time-scale", &a.time_scale)?;
    let url = super::trace_url::trace_url(a)?;
    if let Some(m) = &a.model_filter
        && m.trim().is_empty()
    {
        return Err(Error::Input(
            "--model-filter: expected a model name as the trace writes it, e.g. ChatGPT".into(),
        ));
    }
    super::sessions::check_trace(&a.load.sessions)?;
    let sessions = a.load.sessions.sessions;
    let mode = LoadMode::Trace(TraceSettings {
        file: a.file.clone(),
        format: a.format,
        time_scales: a.time_scale.clone(),
        limit: a.limit,
        block_size: a.block_size,
        max_context: a.max_context,
        overflow: a.on_overflow,
        sessions,
        max_concurrency: a.max_concurrency,
        model_filter: a.model_filter.as_ref().map(|m| m.trim().to_string()),
        url,
        reshape: reshape(&a.load, a.prompts),
    });
    Ok((mode, PromptMode::Trace { sessions }))
}

/// A trace's lengths and sharing as the flags change them.
fn reshape(a: &LoadArgs, prompts: Option<TracePrompts>) -> Reshape {
    Reshape {
        input_len: a.input_len,
        output_len: a.output_len,
        prompts,
    }
}

pub(super) fn dual_round(a: &DualRoundArgs) -> Result<(LoadMode, PromptMode), Error> {
    check_levels("--concurrency", &a.concurrency)?;
    if a.rounds < 2 {
        return Err(Error::Input(
            "--rounds: expected at least 2 (a cache study compares later rounds with the first)"
                .into(),
        ));
    }
    let prompts = if a.trace.is_some() {
        if a.load.sessions.sessions {
            return Err(Error::Input(
                "--sessions and --trace cannot be combined in dual-round: synthetic sessions make their own inputs (--input-len); to replay a trace's conversations use trace --sessions".into(),
            ));
        }
        if a.load.num_requests.is_some() {
            return Err(Error::Input(
                "--num-requests does not apply with --trace (use --limit)".into(),
            ));
        }
        PromptMode::Trace { sessions: false }
    } else {
        PromptMode::Flags(Defaults {
            input_len: LengthSpec::Fixed(2048),
            output_len: LengthSpec::Fixed(128),
            expand_turns: true,
        })
    };
    if let Some(url) = &a.reset_cache_url {
        super::profile::reset_cache_url(url)?;
    }
    let reset_cache = a
        .reset_cache_url
        .clone()
        .map(|url| (url, a.reset_between.unwrap_or(ResetBetween::Levels)));
    let mode = LoadMode::DualRound(DualRoundSettings {
        levels: a.concurrency.clone(),
        rounds: a.rounds,
        shuffle: !a.no_shuffle,
        reset_cache,
        trace: a.trace.clone(),
        limit: a.limit,
        // Without --trace the lengths are the prompt flags' own.
        reshape: match a.trace {
            Some(_) => reshape(&a.load, a.prompts),
            None => Reshape::default(),
        },
        num_requests: a.load.num_requests,
    });
    Ok((mode, prompts))
}

/// `capacity`: the SLO is required, levels are checked against the load searched.
pub(super) fn capacity(a: &CapacityArgs) -> Result<(LoadMode, PromptMode), Error> {
    if a.load.slo.is_none() {
        return Err(Error::Input(
            "capacity needs --slo: the bounds every request must meet, e.g. --slo ttft_ms=500,tpot_ms=50".into(),
        ));
    }
    if a.attainment <= 0.0 {
        return Err(Error::Input(format!(
            "--attainment {}: expected a share in (0, 1], e.g. 0.99",
            a.attainment
        )));
    }
    if a.resolution >= 1.0 {
        return Err(Error::Input(format!(
            "--resolution {}: expected a share of the level below 1, e.g. 0.05",
            a.resolution
        )));
    }
    if a.load.shard.count > 1 {
        return Err(Error::Input(
            "--shard does not apply to capacity: each probe's verdict needs the whole run's requests".into(),
        ));
    }
    let by = if a.by == "rate" {
        CapacityBy::Rate
    } else {
        CapacityBy::Concurrency
    };
    let (min, max) = match by {
        CapacityBy::Concurrency => capacity_concurrency_levels(a)?,
        CapacityBy::Rate => capacity_rates(a)?,
    };
    if min > max {
        return Err(Error::Input(format!(
            "--min {min} is above --max {max}: the search grows from --min up to --max"
        )));
    }
    let num_requests = a.load.num_requests.unwrap_or(256);
    let span = rate_span(a.load.num_requests, a.duration);
    if by == CapacityBy::Rate {
        rate_fits(min, a.duration, span.requests).map_err(|e| match e {
            Error::Input(m) => Error::Input(m.replacen("--rates", "--min", 1)),
            e => e,
        })?;
    }
    let mode = LoadMode::Capacity(CapacitySettings {
        by,
        min,
        max,
        resolution: a.resolution,
        confirm: a.confirm,
        attainment: a.attainment,
        num_requests,
        burstiness: a.burstiness.unwrap_or(1.0),
        duration_s: a.duration,
        span,
        max_concurrency: a.max_concurrency,
    });
    Ok((mode, Defaults::fixed(1024, 256)))
}

/// More rate runs than a sweep curve needs is a typo (each is a whole run).
const MAX_SWEEP_RATES: usize = 100;

pub(super) fn sweep(a: &SweepArgs) -> Result<(LoadMode, PromptMode), Error> {
    if a.load.shard.count > 1 {
        return Err(Error::Input(
            "--shard does not apply to sweep: its rates come from the whole synchronous and max-throughput runs, which no shard sees".into(),
        ));
    }
    // As `rate`: 256 requests per run unless a count or (for the rate runs) a duration.
    let num_requests = a.load.num_requests.unwrap_or(256);
    if a.rates > MAX_SWEEP_RATES {
        return Err(Error::Input(format!(
            "--rates {}: expected at most {MAX_SWEEP_RATES} rates (each is a run of its own)",
            a.rates
        )));
    }
    let span = rate_span(a.load.num_requests, a.duration);
    let mode = LoadMode::Sweep(SweepSettings {
        rates: a.rates,
        num_requests,
        burstiness: a.burstiness,
        duration_s: a.duration,
        span,
        max_concurrency: a.max_concurrency,
    });
    Ok((mode, Defaults::fixed(1024, 256)))
}

/// Whole levels, 1 to 1024 by default; the rate flags do not apply.
fn capacity_concurrency_levels(a: &CapacityArgs) -> Result<(f64, f64), Error> {
    let rate_only = [
        ("--burstiness", a.burstiness.is_some()),
        ("--duration", a.duration.is_some()),
        ("--max-concurrency", a.max_concurrency.is_some()),
    ];
    if let Some((flag, _)) = rate_only.iter().find(|f| f.1) {
        return Err(Error::Input(format!(
            "{flag} applies to --by rate only (a concurrency probe holds its level itself)"
        )));
    }
    for (flag, v) in [("--min", a.min), ("--max", a.max)] {
        if let Some(v) = v
            && v.fract() != 0.0
        {
            return Err(Error::Input(format!(
                "{flag} {v}: expected a whole concurrency level (--by concurrency)"
            )));
        }
    }
    Ok((a.min.unwrap_or(1.0), a.max.unwrap_or(1024.0)))
}

/// Rates: no universal scale, so --max is required; --min defaults to --max / 64.
fn capacity_rates(a: &CapacityArgs) -> Result<(f64, f64), Error> {
    let Some(max) = a.max else {
        return Err(Error::Input(
            "--by rate needs --max: the highest request rate (req/s) to probe, e.g. --max 50"
                .into(),
        ));
    };
    Ok((a.min.unwrap_or(max / 64.0), max))
}
