//! The load subcommands: each turns its flags into a list of runs for one session.

use std::sync::Arc;

use crate::cli::{
    BatchArgs, ConcurrencyArgs, DualRoundArgs, RateArgs, ResetBetween, ThroughputArgs,
};
use crate::error::Error;
use crate::report::document::{RunMode, RunParams};
use crate::schedule::arrivals::{Span, rate_arrivals};
use crate::schedule::{Arrivals, Load};
use crate::session::{Defaults, RunPlan, SessionOutcome, Source, run_session};
use crate::workload::dataset::{Conversation, expand_turns, read_dataset};
use crate::workload::synthetic::LengthSpec;
use crate::workload::trace_file::TraceFile;

/// Levels name their runs, and run labels must be unique within a result file.
pub fn check_levels<T: PartialEq + std::fmt::Display>(flag: &str, v: &[T]) -> Result<(), Error> {
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

fn positive(flag: &str, v: &[usize]) -> Result<(), Error> {
    if v.is_empty() || v.contains(&0) {
        return Err(Error::Input(format!(
            "{flag}: expected a comma-separated list of positive integers"
        )));
    }
    check_levels(flag, v)
}

pub fn batch(a: BatchArgs, argv: &[String]) -> Result<SessionOutcome, Error> {
    positive("--batch-sizes", &a.batch_sizes)?;
    if a.load.num_requests.is_some() {
        return Err(Error::Input(
            "--num-requests does not apply to batch: each batch size is its request count".into(),
        ));
    }
    let plans = a
        .batch_sizes
        .iter()
        .map(|&b| RunPlan {
            label: format!("batch {b}"),
            mode: RunMode::Batch,
            params: RunParams {
                batch_size: Some(b),
                num_requests: Some(b),
                ..RunParams::default()
            },
            load: Load::AllAtOnce,
            requests: b,
            warmup: false,
            ..RunPlan::default()
        })
        .collect();
    let d = Defaults {
        input_len: LengthSpec::Range { lo: 1, hi: 8192 },
        output_len: LengthSpec::Range { lo: 16, hi: 1024 },
        expand_turns: false,
    };
    run_session(&a.load, Source::Args(d), plans, argv)
}

pub fn throughput(a: ThroughputArgs, argv: &[String]) -> Result<SessionOutcome, Error> {
    let n = a.load.num_requests.unwrap_or(256);
    positive("--num-requests", &[n])?;
    let plans = vec![RunPlan {
        label: "throughput".into(),
        mode: RunMode::Throughput,
        params: RunParams {
            num_requests: Some(n),
            ..RunParams::default()
        },
        load: Load::AllAtOnce,
        requests: n,
        warmup: true,
        ..RunPlan::default()
    }];
    let d = Defaults {
        input_len: LengthSpec::Range { lo: 100, hi: 1024 },
        output_len: LengthSpec::Range { lo: 100, hi: 1024 },
        expand_turns: false,
    };
    run_session(&a.load, Source::Args(d), plans, argv)
}

pub fn concurrency(a: ConcurrencyArgs, argv: &[String]) -> Result<SessionOutcome, Error> {
    positive("--concurrency", &a.concurrency)?;
    let n = a.load.num_requests.unwrap_or(256);
    positive("--num-requests", &[n])?;
    let plans = a
        .concurrency
        .iter()
        .map(|&c| RunPlan {
            label: format!("concurrency {c}"),
            mode: RunMode::Concurrency,
            params: RunParams {
                concurrency: Some(c),
                num_requests: Some(n),
                ..RunParams::default()
            },
            load: Load::ClosedLoop { concurrency: c },
            requests: n,
            warmup: false,
            ..RunPlan::default()
        })
        .collect();
    let d = Defaults {
        input_len: LengthSpec::Fixed(1024),
        output_len: LengthSpec::Fixed(256),
        expand_turns: false,
    };
    run_session(&a.load, Source::Args(d), plans, argv)
}

pub fn rate(a: RateArgs, argv: &[String]) -> Result<SessionOutcome, Error> {
    check_levels("--rates", &a.rates)?;
    if let Some(c) = a.max_concurrency {
        positive("--max-concurrency", &[c])?;
    }
    // Without a count or a duration: 256 requests per rate, as the other modes.
    let span = Span {
        requests: a.load.num_requests.or(if a.duration.is_some() {
            None
        } else {
            Some(256)
        }),
        duration_us: a.duration.map(|d| (d * 1e6).min(u64::MAX as f64) as u64),
    };
    if let Some(n) = span.requests {
        positive("--num-requests", &[n])?;
    }
    if a.rates.iter().any(|r| r.0.is_none()) && span.requests.is_none() {
        return Err(Error::Input(
            "--rates inf needs --num-requests (a duration means nothing at an infinite rate)"
                .into(),
        ));
    }
    let plans = a
        .rates
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let offsets =
                rate_arrivals(r.0, a.burstiness, span, a.load.seed.wrapping_add(i as u64));
            RunPlan {
                label: format!("rate {r}"),
                mode: RunMode::Rate,
                params: RunParams {
                    rate: Some(r.0),
                    burstiness: Some(a.burstiness),
                    num_requests: Some(offsets.len()),
                    duration_s: Some(a.duration),
                    max_concurrency: Some(a.max_concurrency),
                    ..RunParams::default()
                },
                requests: offsets.len(),
                load: Load::OpenLoop {
                    at: Arrivals::Offsets(Arc::new(offsets)),
                    cap: a.max_concurrency,
                },
                warmup: false,
                ..RunPlan::default()
            }
        })
        .collect();
    let d = Defaults {
        input_len: LengthSpec::Fixed(1024),
        output_len: LengthSpec::Fixed(256),
        expand_turns: false,
    };
    run_session(&a.load, Source::Args(d), plans, argv)
}

pub fn dual_round(a: DualRoundArgs, argv: &[String]) -> Result<SessionOutcome, Error> {
    positive("--concurrency", &a.concurrency)?;
    if a.rounds < 2 {
        return Err(Error::Input(
            "--rounds: expected at least 2 (a cache study compares later rounds with the first)"
                .into(),
        ));
    }
    if a.limit == Some(0) {
        return Err(Error::Input("--limit must be positive".into()));
    }
    let (source, n) = match &a.trace {
        Some(path) => {
            if a.load.num_requests.is_some() {
                return Err(Error::Input(
                    "--num-requests does not apply with --trace (use --limit)".into(),
                ));
            }
            let file = TraceFile::scan(path, None, a.limit, None)
                .map_err(|e| Error::Input(e.to_string()))?;
            let n = file.info().requests;
            let source = Source::Trace {
                block_size: file.format().block_size(),
                file: Arc::new(file),
                sessions: false,
            };
            (source, n)
        }
        None => {
            let d = Defaults {
                input_len: LengthSpec::Fixed(2048),
                output_len: LengthSpec::Fixed(128),
                expand_turns: true,
            };
            // A dataset is sent whole (each turn of a conversation once) unless limited.
            let n = match (a.load.num_requests, &a.load.dataset) {
                (Some(n), _) => n,
                (None, Some(path)) => {
                    let entries = read_dataset(path, Conversation::FirstTurn)?;
                    expand_turns(entries).len()
                }
                (None, None) => 100,
            };
            (Source::Args(d), n)
        }
    };
    positive("--num-requests", &[n])?;
    let between = a
        .reset_cache_url
        .as_ref()
        .map(|_| a.reset_between.unwrap_or(ResetBetween::Levels));
    let reset_here = |round: usize| match between {
        Some(ResetBetween::Rounds) => round > 1,
        Some(ResetBetween::Levels) => round == 1,
        Some(ResetBetween::Both) => true,
        None => false,
    };
    let mut plans = Vec::new();
    for (level, &c) in a.concurrency.iter().enumerate() {
        for round in 1..=a.rounds {
            plans.push(RunPlan {
                label: format!("concurrency {c} round {round}"),
                mode: RunMode::DualRound,
                params: RunParams {
                    concurrency: Some(c),
                    round: Some(round as u32),
                    num_requests: Some(n),
                    shuffled: Some(round > 1 && !a.no_shuffle),
                    cache_reset_before: Some(reset_here(round)),
                    ..RunParams::default()
                },
                load: Load::ClosedLoop { concurrency: c },
                requests: n,
                // Every round of a level sends the same requests; each level its own.
                prompts: Some(level as u64),
                shuffle: (round > 1 && !a.no_shuffle)
                    .then(|| a.load.seed.wrapping_add((level * 1000 + round) as u64)),
                reset_cache: reset_here(round)
                    .then(|| a.reset_cache_url.clone())
                    .flatten(),
                ..RunPlan::default()
            });
        }
    }
    run_session(&a.load, source, plans, argv)
}
