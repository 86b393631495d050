//! The load subcommands: each turns its settings into a list of runs for one session.

use std::sync::Arc;

use crate::capacity::CapacityPlanner;
use crate::error::Error;
use crate::report::document::{RunMode, RunParams};
use crate::schedule::arrivals::{Ramp, Warmup, planned_arrivals};
use crate::schedule::{Arrivals, Load};
use crate::session::planner::Fixed;
use crate::session::repeat::{interleave, repeat, seed_of};
use crate::session::{RunPlan, SessionOutcome, Source, run_session};
use crate::settings::{
    DualRoundSettings, LoadMode, LoadSettings, Prompts, RateSettings, ResetBetween, StartSettings,
};
use crate::shutdown::{Shutdown, Signals};
use crate::sweep::Sweep;
use crate::workload::dataset::dataset_prompts;

/// Plan the runs of a load subcommand and do them in one session.
pub fn run(load: LoadSettings, argv: &[String]) -> Result<SessionOutcome, Error> {
    // First of all: a signal while a trace is checked or prompts are built stops too.
    let signals =
        Signals::install().map_err(|e| Error::Server(format!("cannot watch for Ctrl-C: {e}")))?;
    let shutdown = signals.shutdown();
    let LoadSettings { mode, session } = load;
    let start = &session.run.start;
    let n = session.run.repeat;
    let (source, plans) = match mode {
        LoadMode::Batch { sizes } => (Source::Prompts, repeat(starting(batch(&sizes), start), n)),
        LoadMode::Throughput { num_requests } => (
            Source::Prompts,
            repeat(starting(throughput(num_requests), start), n),
        ),
        LoadMode::Concurrency {
            levels,
            num_requests,
        } => (
            Source::Prompts,
            repeat(starting(concurrency(&levels, num_requests), start), n),
        ),
        // Each repeat draws its own arrivals.
        LoadMode::Rate(r) => {
            let seed = session.workload.seed;
            let draws = (1..=n).map(|k| rate(&r, start, seed_of(seed, k))).collect();
            (Source::Prompts, interleave(draws))
        }
        // A trace fixes every request and its time: each repeat replays it as it is.
        LoadMode::Trace(t) => {
            let (source, plans) = crate::replay::plan_trace(&t, session.workload.seed, &shutdown)?;
            (source, repeat(plans, n))
        }
        LoadMode::DualRound(d) => dual_round(
            &d,
            &session.workload.prompts,
            session.workload.seed,
            &shutdown,
        )?,
        // A search: each probe chosen from the ones before (the SLO is checked present).
        LoadMode::Capacity(c) => {
            let slo = session.output.slo.clone().unwrap_or_default();
            let planner = CapacityPlanner::new(c, slo, session.workload.seed, *start);
            return run_session(&session, Source::Prompts, Box::new(planner), argv, shutdown);
        }
        LoadMode::Sweep(sw) => {
            // Its rate runs depend on the first two runs' results: a planner of its own.
            let mut planner = Sweep::new(sw, session.workload.seed, session.output.gpus, *start);
            if let Prompts::Sessions { spec, .. } = &session.workload.prompts {
                planner = planner.of_sessions(spec.mean_turns());
            }
            return run_session(&session, Source::Prompts, Box::new(planner), argv, shutdown);
        }
    };
    run_session(
        &session,
        source,
        Box::new(Fixed::new(plans)),
        argv,
        shutdown,
    )
}

/// Batch, throughput and closed-loop plans with the run's warm-up and slot ramp
/// (`--warmup` replaces the throughput run's single unrecorded warm-up request).
pub(crate) fn starting(mut plans: Vec<RunPlan>, start: &StartSettings) -> Vec<RunPlan> {
    for p in &mut plans {
        p.warmup_phase = start.warmup_phase();
        p.params.warmup_requests = start.warmup;
        p.params.warmup_s = start.warmup_s;
        p.warmup &= p.warmup_phase == Warmup::None;
        if let (Load::ClosedLoop { concurrency: c }, Some(secs)) = (&p.load, start.ramp_up_s) {
            let us = (secs * 1e6).round() as u64;
            p.slot_ramp_us = Some(us);
            p.params.ramp_up = Some("slots".into());
            p.params.ramp_up_s = Some(secs);
            let last_slot = us as u128 * (*c as u128 - 1) / *c as u128;
            p.params.ramp_up_end_us = Some(last_slot.min(u64::MAX as u128) as u64);
        }
    }
    plans
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

pub(crate) fn concurrency(levels: &[usize], n: usize) -> Vec<RunPlan> {
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

pub(crate) fn rate(a: &RateSettings, start: &StartSettings, seed: u64) -> Vec<RunPlan> {
    let ramp = start
        .ramp_up
        .zip(start.ramp_up_s)
        .map(|(strategy, secs)| Ramp { strategy, secs });
    a.rates
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let seed = seed.wrapping_add(i as u64);
            let (offsets, warm) =
                planned_arrivals(r.0, a.burstiness, ramp, a.span, start.warmup_phase(), seed);
            let measured = offsets.len() - warm;
            RunPlan {
                label: format!("rate {r}"),
                mode: RunMode::Rate,
                params: RunParams {
                    rate: Some(r.0),
                    burstiness: Some(a.burstiness),
                    num_requests: Some(measured),
                    duration_s: Some(a.duration_s),
                    max_concurrency: Some(a.max_concurrency),
                    warmup_requests: (warm > 0 || start.warmup.is_some()).then_some(warm),
                    warmup_s: start.warmup_s,
                    ramp_up: ramp.map(|r| r.strategy.as_str().to_string()),
                    ramp_up_s: ramp.map(|r| r.secs),
                    ramp_up_end_us: ramp.map(|r| (r.secs * 1e6).round() as u64),
                    ..RunParams::default()
                },
                requests: measured,
                load: Load::OpenLoop {
                    at: Arrivals::Offsets(Arc::new(offsets)),
                    cap: a.max_concurrency,
                },
                warmup: false,
                warmup_phase: Warmup::Requests(warm),
                ..RunPlan::default()
            }
        })
        .collect()
}

/// The requests of a dual-round level: from the trace, or the prompt flags.
fn dual_round_source(
    a: &DualRoundSettings,
    prompts: &Prompts,
    seed: u64,
    shutdown: &Shutdown,
) -> Result<(Source, usize), Error> {
    if let Some(path) = &a.trace {
        let file = crate::replay::scan_rounds(a, path, seed, shutdown)?;
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
    let (source, n) = dual_round_source(a, prompts, seed, shutdown)?;
    // The count a trace or a dataset gave (a given --num-requests is checked already).
    if n == 0 {
        return Err(Error::Input(
            "--num-requests: expected a comma-separated list of positive integers".into(),
        ));
    }
    // A trace's file, and what replaced its lengths, in every run's params.
    let base = match &source {
        Source::Trace { file, .. } => RunParams {
            trace: Some(file.path().display().to_string()),
            format: Some(file.format().name().to_string()),
            limit: Some(a.limit),
            ..crate::replay::reshape_params(file.format(), &a.reshape)
        },
        Source::Prompts => RunParams::default(),
    };
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
                    ..base.clone()
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
