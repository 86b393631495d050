//! The load subcommands: each turns its settings into a list of runs for one session.

use std::sync::Arc;

use crate::error::Error;
use crate::report::document::{RunMode, RunParams};
use crate::schedule::arrivals::rate_arrivals;
use crate::schedule::{Arrivals, Load};
use crate::session::repeat::{interleave, repeat, seed_of};
use crate::session::{RunPlan, SessionOutcome, Source, run_session};
use crate::settings::{
    DualRoundSettings, LoadMode, LoadSettings, Prompts, RateSettings, ResetBetween,
};
use crate::shutdown::{Shutdown, Signals};
use crate::workload::dataset::dataset_prompts;
use crate::workload::trace_file::TraceFile;

/// Plan the runs of a load subcommand and do them in one session.
pub fn run(load: LoadSettings, argv: &[String]) -> Result<SessionOutcome, Error> {
    // First of all: a signal while a trace is checked or prompts are built stops too.
    let signals =
        Signals::install().map_err(|e| Error::Server(format!("cannot watch for Ctrl-C: {e}")))?;
    let shutdown = signals.shutdown();
    let LoadSettings { mode, session } = load;
    let n = session.run.repeat;
    let (source, plans) = match mode {
        LoadMode::Batch { sizes } => (Source::Prompts, repeat(batch(&sizes), n)),
        LoadMode::Throughput { num_requests } => {
            (Source::Prompts, repeat(throughput(num_requests), n))
        }
        LoadMode::Concurrency {
            levels,
            num_requests,
        } => (
            Source::Prompts,
            repeat(concurrency(&levels, num_requests), n),
        ),
        // Each repeat draws its own arrivals.
        LoadMode::Rate(r) => {
            let seed = session.workload.seed;
            let draws = (1..=n).map(|k| rate(&r, seed_of(seed, k))).collect();
            (Source::Prompts, interleave(draws))
        }
        // A trace fixes every request and its time: each repeat replays it as it is.
        LoadMode::Trace(t) => {
            let (source, plans) = crate::replay::plan_trace(&t, &shutdown)?;
            (source, repeat(plans, n))
        }
        LoadMode::DualRound(d) => dual_round(
            &d,
            &session.workload.prompts,
            session.workload.seed,
            &shutdown,
        )?,
    };
    run_session(&session, source, plans, argv, shutdown)
}

fn batch(sizes: &[usize]) -> Vec<RunPlan> {
    sizes
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
        .collect()
}

fn throughput(n: usize) -> Vec<RunPlan> {
    vec![RunPlan {
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
    }]
}

fn concurrency(levels: &[usize], n: usize) -> Vec<RunPlan> {
    levels
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
        .collect()
}

fn rate(a: &RateSettings, seed: u64) -> Vec<RunPlan> {
    a.rates
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let offsets = rate_arrivals(r.0, a.burstiness, a.span, seed.wrapping_add(i as u64));
            RunPlan {
                label: format!("rate {r}"),
                mode: RunMode::Rate,
                params: RunParams {
                    rate: Some(r.0),
                    burstiness: Some(a.burstiness),
                    num_requests: Some(offsets.len()),
                    duration_s: Some(a.duration_s),
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
        .collect()
}

/// The requests of a dual-round level: from the trace, or the prompt flags.
fn dual_round_source(
    a: &DualRoundSettings,
    prompts: &Prompts,
    shutdown: &Shutdown,
) -> Result<(Source, usize), Error> {
    if let Some(path) = &a.trace {
        let stop = || shutdown.requested().is_some();
        let file = TraceFile::scan(path, None, a.limit, None, &stop)
            .map_err(|e| Error::Input(e.to_string()))?
            .ok_or_else(|| shutdown.interrupted())?;
        let n = file.info().requests;
        let source = Source::Trace {
            block_size: file.format().block_size(),
            file: Arc::new(file),
            sessions: false,
        };
        return Ok((source, n));
    }
    // A dataset is sent whole (each turn of a conversation once) unless limited.
    let n = match (a.num_requests, prompts) {
        (Some(n), _) => n,
        (None, Prompts::Dataset { path, .. }) => dataset_prompts(path, true)?.len(),
        (None, _) => 100,
    };
    Ok((Source::Prompts, n))
}

fn dual_round(
    a: &DualRoundSettings,
    prompts: &Prompts,
    seed: u64,
    shutdown: &Shutdown,
) -> Result<(Source, Vec<RunPlan>), Error> {
    let (source, n) = dual_round_source(a, prompts, shutdown)?;
    // The count a trace or a dataset gave (a given --num-requests is checked already).
    if n == 0 {
        return Err(Error::Input(
            "--num-requests: expected a comma-separated list of positive integers".into(),
        ));
    }
    let reset_here = |round: usize| match a.reset_cache.as_ref().map(|r| r.1) {
        Some(ResetBetween::Rounds) => round > 1,
        Some(ResetBetween::Levels) => round == 1,
        Some(ResetBetween::Both) => true,
        None => false,
    };
    let mut plans = Vec::new();
    for (level, &c) in a.levels.iter().enumerate() {
        for round in 1..=a.rounds {
            let shuffled = round > 1 && a.shuffle;
            plans.push(RunPlan {
                label: format!("concurrency {c} round {round}"),
                mode: RunMode::DualRound,
                params: RunParams {
                    concurrency: Some(c),
                    round: Some(round as u32),
                    num_requests: Some(n),
                    shuffled: Some(shuffled),
                    cache_reset_before: Some(reset_here(round)),
                    ..RunParams::default()
                },
                load: Load::ClosedLoop { concurrency: c },
                requests: n,
                // Every round of a level sends the same requests; each level its own.
                prompts: Some(level as u64),
                shuffle: shuffled.then(|| seed.wrapping_add((level * 1000 + round) as u64)),
                reset_cache: reset_here(round)
                    .then(|| a.reset_cache.as_ref().map(|r| r.0.clone()))
                    .flatten(),
                ..RunPlan::default()
            });
        }
    }
    Ok((source, plans))
}
