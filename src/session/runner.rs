//! One run plan: prepare its requests, send them by its load, and summarise it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::report::document::{RunParams, ShardParams};

use super::RunPlan;
use super::around::{Around, AroundSpec};
use super::inputs::Inputs;
use super::target::Target;
use crate::clock::RunClock;
use crate::console::printable;
use crate::error::Error;
use crate::feed::{ClosedStart, Feeder, OpenWarmup};
use crate::metrics::cold_round;
use crate::metrics::server::Source;
use crate::metrics::steady::RunShape;
use crate::metrics::validity::raise;
use crate::metrics::{Summary, summarize};
use crate::progress::{Live, Progress, ProgressMode};
use crate::recorder::Recorder;
use crate::schedule::arrivals::Warmup;
use crate::schedule::{FailureCounter, Load, RunContext, SlotRamp};
use crate::settings::SessionSettings;
use crate::shard::{Pick, Shard};
use crate::shutdown::{Phase, Shutdown, signal_name};
use crate::workload::chat_run::ChatSessions;
use crate::workload::prepare::{PreparedRequest, PromptSource, prepare_ids};
use crate::workload::sessions::Sessions;

/// What a run needs from the session, borrowed for all of its runs.
pub struct Stage<'a> {
    pub settings: &'a SessionSettings,
    pub inputs: &'a Inputs,
    pub target: &'a Target,
    pub pick: &'a Pick,
    pub recorder: &'a Recorder,
    pub metrics: &'a [Source],
    /// `--profile`: the profiler's routes.
    pub profiler: Option<&'a super::profile::Profiler>,
    pub progress: ProgressMode,
}

/// Does the runs of a session in order, carrying what passes from one to the next.
pub struct Runner<'a> {
    stage: Stage<'a>,
    /// The prepared requests of the last prompt set, reused by runs that share it.
    prepared: Option<(u64, Vec<PreparedRequest>)>,
    /// Only the first run waits for --start-at; later ones follow as usual.
    start_at: Option<SystemTime>,
}

/// A finished run.
pub struct Finished {
    pub summary: Summary,
    /// The plan's parameters, with this shard's part when sharded.
    pub params: RunParams,
    pub clock: RunClock,
    /// More than `--max-error-rate` of its requests failed.
    pub error_rate_exceeded: bool,
    /// Requests this process was to send.
    pub planned: usize,
    /// Why the run stopped sending before its end (a signal, `--max-error-rate`).
    pub stopped: Option<String>,
}

impl<'a> Runner<'a> {
    pub fn new(stage: Stage<'a>) -> Self {
        let start_at = stage.settings.run.start_at;
        Runner {
            stage,
            prepared: None,
            start_at,
        }
    }

    /// The session's signal state.
    pub fn target(&self) -> &'a Target {
        self.stage.target
    }

    pub fn shutdown(&self) -> Arc<Shutdown> {
        self.stage.target.shutdown.clone()
    }

    /// Run `plan`, the `index`th of the session. `Error::Interrupted` when a signal
    /// came before it sent anything.
    pub fn run(&mut self, index: usize, plan: &RunPlan) -> Result<Finished, Error> {
        let (inputs, target, pick) = (self.stage.inputs, self.stage.target, self.stage.pick);
        target.shutdown.enter(match index {
            0 => Phase::Preparing,
            _ => Phase::Between,
        });
        let run = plan.prompts.unwrap_or(index as u64);
        let feeder = Feeder {
            workload: &inputs.workload,
            body: &target.body,
            tokenizer: &inputs.tokenizer,
            run,
            keep_turns: inputs.sessions.is_some(),
            pick,
        };
        // This process's part of the run (all of it unless --shard).
        let count = pick.len_of(plan.requests);
        let mut params = shard_params(plan, count, pick.shard());
        if let PromptSource::Sessions(chat) = &inputs.workload.source {
            params.sessions = Some(true);
            errln!(
                "{}: --sessions: the load counts sessions ({count} of {} turns each{}), not requests",
                plan.label,
                chat.spec.turns,
                match chat.spec.think_ms.hi {
                    0 => String::new(),
                    _ => format!(", {} ms think time", chat.spec.think_ms),
                }
            );
        }
        let upfront = self.prepare(&feeder, plan, run, count)?;
        self.before_run(plan, &feeder);
        let live = Arc::new(Live::for_mode(self.stage.progress));
        let failures = Arc::new(FailureCounter::default());
        let (clock, around) = self.drive(&feeder, plan, upfront, count, (&live, &failures))?;
        // Sending is over: from here on the run is being saved, which a first signal's
        // deadline must not cut short (shutdown.rs).
        target.shutdown.enter(Phase::Between);
        let summary = self.summarise(plan, &params, around)?;
        let error_rate_exceeded = failures.exceeded(self.stage.settings.run.max_error_rate);
        let stopped = match target.shutdown.requested() {
            Some(signal) => Some(format!("interrupted by {}", signal_name(signal))),
            None => error_rate_exceeded.then(|| "--max-error-rate exceeded".to_string()),
        };
        Ok(Finished {
            summary,
            params,
            clock,
            error_rate_exceeded,
            planned: planned_requests(&inputs.workload, pick, run, count),
            stopped,
        })
    }

    /// Prompts are built before the clock starts, within a memory budget; the rest
    /// while the run goes. A batch, and rounds that resend one prompt set, hold all.
    fn prepare(
        &mut self,
        feeder: &Feeder,
        plan: &RunPlan,
        run: u64,
        count: usize,
    ) -> Result<Vec<PreparedRequest>, Error> {
        // A server tokenizer is never asked while requests are measured.
        let hold_all = plan.prompts.is_some()
            || plan.load == Load::AllAtOnce
            || self.stage.inputs.prepares_with_server();
        let budget = if hold_all {
            usize::MAX
        } else {
            let mb = self.stage.settings.workload.prepare_ahead_mb;
            mb.saturating_mul(1 << 20)
        };
        let shutdown = &self.stage.target.shutdown;
        let mut upfront = match self.prepared.take() {
            Some((set, reqs)) if set == run && reqs.len() == count => reqs,
            _ => feeder.upfront(count, budget, &|| shutdown.requested().is_some())?,
        };
        // Building many long prompts takes a while; a signal ends it (part built).
        shutdown.check()?;
        if plan.prompts.is_some() {
            self.prepared = Some((run, upfront.clone()));
        }
        if let Some(seed) = plan.shuffle {
            use rand::SeedableRng;
            use rand::seq::SliceRandom;
            upfront.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        }
        Ok(upfront)
    }

    /// The cache reset and the warm-up request, when the plan asks for them.
    fn before_run(&self, plan: &RunPlan, feeder: &Feeder) {
        let target = self.stage.target;
        if let Some(url) = &plan.reset_cache {
            target.reset_cache(url);
        }
        // A prompt of its own: request number `plan.requests` is built like the others
        // but never sent by the run (nor by any shard), so no measured request finds
        // the warm-up's prompt in a prefix cache.
        let warmup = || {
            let id = [plan.requests as u64];
            prepare_ids(
                feeder.workload,
                feeder.body,
                feeder.tokenizer,
                feeder.run,
                &id,
                &|| false,
            )
            .ok()
        };
        if plan.warmup
            && let Some(first) = warmup().and_then(|mut w| w.pop())
        {
            let live = Live::default();
            let Ok(out) = target.block_unless_stopped(target.client.execute(
                &target.endpoint.url,
                first.body.clone(),
                &RunClock::start(),
                &live,
            )) else {
                return; // a signal: the run will not start
            };
            if let Some((kind, msg)) = out.failure {
                errln!(
                    "warning: the warm-up request failed ({}): {}",
                    kind.as_str(),
                    printable(&msg)
                );
            }
        }
    }

    /// Send the run's requests by its load, with the server's metrics scraped and the
    /// progress shown meanwhile. Returns the run's clock and what watched it, to finish.
    fn drive(
        &mut self,
        feeder: &Feeder,
        plan: &RunPlan,
        upfront: Vec<PreparedRequest>,
        count: usize,
        (live, failures): (&Arc<Live>, &Arc<FailureCounter>),
    ) -> Result<(RunClock, Around), Error> {
        let first_start = self.start_at.take();
        let s = &self.stage;
        let target = s.target;
        let shard = s.pick.shard();
        // This process's part of the warm-up: its ids follow the measured ones.
        let warmup = match plan.warmup_phase {
            Warmup::Requests(n) => Warmup::Requests(s.pick.len_of(plan.requests + n) - count),
            w => w,
        };
        let warm_count = match warmup {
            Warmup::Requests(n) => n,
            _ => 0,
        };
        let expected_tokens = expected_tokens(
            &s.inputs.workload.source,
            &upfront,
            count + warm_count,
            shard,
        );
        let sessions = self.sessions(feeder.run);
        let stop = || target.shutdown.requested().is_some();
        if let Some(at) = first_start {
            target.shutdown.enter(Phase::Waiting);
            wait_for_start(at, stop);
        }
        target.shutdown.check()?;
        let mut around = Around::start(&AroundSpec {
            target,
            metrics: s.metrics,
            profiler: s.profiler,
            connections: super::client_meter::planned_connections(
                &plan.load,
                count + warm_count,
                shard,
            ),
        });
        let watch = around.watch();
        // The run's clock starts when its context is made: for open-loop runs, only once
        // the first requests are prepared; with --start-at, at that instant.
        let make_ctx = || -> Result<Arc<RunContext>, Error> {
            let clock = match first_start {
                Some(at) => crate::start_at::start_clock_at(at, stop).map_err(Error::Input)?,
                None => RunClock::start(),
            };
            // From here requests go out: a signal gives those in flight their grace period.
            target.shutdown.enter(Phase::Running);
            target.shutdown.check()?;
            Ok(Arc::new(RunContext {
                client: target.client.clone(),
                url: target.endpoint.url.clone(),
                clock,
                live: live.clone(),
                failures: failures.clone(),
                recorder: s.recorder.handle(),
                label: Arc::from(plan.label.as_str()),
                sessions: sessions.clone().map(|s| s as _),
                chats: self.chats(),
                max_error_rate: s.settings.run.max_error_rate,
                shutdown: target.shutdown.clone(),
                abandon: Default::default(),
                watch,
                ignore_eos: target.body.asks_exact_lengths(),
            }))
        };
        // Sessions: the display counts requests, a session's mean turns each.
        let per = match &s.inputs.workload.source {
            PromptSource::Sessions(chat) => chat.spec.mean_turns(),
            _ => 1.0,
        };
        let _progress = Progress::start(
            s.progress,
            &plan.label,
            live.clone(),
            ((count + warm_count) as f64 * per).round() as u64,
            (expected_tokens as f64 * per).round() as u64,
        );
        let clock = self.send_by_load(feeder, plan, (upfront, count), warmup, make_ctx)?;
        around.set_clock(clock);
        Ok((clock, around))
    }

    /// Send by the plan's load, with its warm-up first (`warmup`: this process's part).
    fn send_by_load(
        &self,
        feeder: &Feeder,
        plan: &RunPlan,
        (upfront, count): (Vec<PreparedRequest>, usize),
        warmup: Warmup,
        make_ctx: impl FnOnce() -> Result<Arc<RunContext>, Error>,
    ) -> Result<RunClock, Error> {
        let shard = self.stage.pick.shard();
        let rt = &self.stage.target.rt;
        // A shard takes its part of a limit that describes the whole run.
        match &plan.load {
            Load::OpenLoop { at, cap } => {
                let cap = cap.map(|c| shard.part_of(c));
                let warm = OpenWarmup {
                    measured: plan.requests,
                    warmup: match plan.warmup_phase {
                        Warmup::Requests(n) => n,
                        _ => 0,
                    },
                };
                feeder.open_loop(rt, upfront, count, at, cap, warm, make_ctx)
            }
            Load::AllAtOnce => {
                let start = ClosedStart {
                    warmup,
                    slot_ramp: None,
                };
                feeder.closed_loop(rt, upfront, count, None, start, make_ctx)
            }
            Load::ClosedLoop { concurrency } => {
                let c = shard.part_of(*concurrency);
                let start = ClosedStart {
                    warmup,
                    slot_ramp: plan.slot_ramp_us.map(|us| SlotRamp {
                        us,
                        first: shard.index as usize,
                        step: shard.count as usize,
                        of: *concurrency,
                    }),
                };
                feeder.closed_loop(rt, upfront, count, Some(c), start, make_ctx)
            }
        }
    }

    /// Trace `--sessions`: this run's conversations.
    fn sessions(&self, run: u64) -> Option<Arc<Sessions>> {
        let inputs = self.stage.inputs;
        match (&inputs.workload.source, &inputs.sessions) {
            (PromptSource::Trace { blocks, .. }, Some(links)) => Some(Arc::new(
                Sessions::new(
                    links.clone(),
                    blocks.clone(),
                    inputs.tokenizer.clone(),
                    self.stage.target.body.clone(),
                    inputs.workload.seed,
                    run,
                )
                .with_models(inputs.workload.models.clone()),
            )),
            _ => None,
        }
    }

    /// `--sessions` (synthetic): what runs each session turn by turn.
    fn chats(&self) -> Option<Arc<dyn crate::schedule::Conversations>> {
        let inputs = self.stage.inputs;
        match &inputs.workload.source {
            PromptSource::Sessions(_) => Some(Arc::new(ChatSessions::new(
                self.stage.target.body.clone(),
                inputs.tokenizer.clone(),
            ))),
            _ => None,
        }
    }

    /// The run's records summarised, with goodput and the server's metrics.
    fn summarise(
        &self,
        plan: &RunPlan,
        params: &RunParams,
        mut around: Around,
    ) -> Result<Summary, Error> {
        around.sending_over();
        let s = &self.stage;
        let output = &s.settings.output;
        let data = s.recorder.handle().end_run().map_err(Error::Output)?;
        // The steady state from the saved mode and params, as `report` will find it.
        let shape = RunShape {
            pacing: params.pacing(&plan.mode),
            slice_us: output.slice_us,
        };
        let mut summary = summarize(&data, &output.percentiles)
            .with_goodput(&data, output.slo.as_ref())
            .with_shape(&data, &shape);
        around.finish(s.target, &plan.label, &mut summary);
        // Dual-round: a round 1 that found its prompts cached was not cold.
        if let Some((level, 1)) = crate::report::rounds::level_of(&plan.mode, params)
            && let Some(flag) = cold_round::check(data.samples(), &summary, &level)
        {
            raise(&mut summary.validity, flag);
        }
        Ok(summary)
    }
}

/// The plan's parameters, with this shard's part of the run when sharded.
fn shard_params(plan: &RunPlan, count: usize, shard: Shard) -> RunParams {
    let mut params = plan.params.clone();
    if shard.is_whole() {
        return params;
    }
    if count == 0 {
        errln!(
            "note: --shard {shard}: none of the {} requests of {} fall to this shard",
            plan.requests,
            plan.label
        );
    }
    params.shard = Some(ShardParams {
        index: shard.index,
        count: shard.count,
        num_requests: count,
        concurrency: match &plan.load {
            Load::ClosedLoop { concurrency } => Some(shard.part_of(*concurrency)),
            _ => None,
        },
        max_concurrency: match &plan.load {
            Load::OpenLoop { cap: Some(c), .. } => Some(shard.part_of(*c)),
            _ => None,
        },
    });
    params
}

/// Requests this process is to send: `count`, or with `--sessions` the turns of its
/// `count` sessions.
fn planned_requests(
    w: &crate::workload::prepare::WorkloadSpec,
    pick: &Pick,
    run: u64,
    count: usize,
) -> usize {
    match &w.source {
        PromptSource::Sessions(chat) => pick
            .ids()
            .take(count)
            .map(|s| chat.turns_of(w.seed, run, s) as usize)
            .sum(),
        _ => count,
    }
}

/// Output tokens the run should produce (for the progress bar).
fn expected_tokens(
    source: &PromptSource,
    upfront: &[PreparedRequest],
    count: usize,
    shard: Shard,
) -> u64 {
    match source {
        // A shard's share, roughly.
        PromptSource::Trace { file, .. } => file.info().output_tokens / shard.count as u64,
        // Extrapolated from the prompts built so far.
        _ => {
            let sum: u64 = upfront.iter().map(|q| q.max_tokens as u64).sum();
            sum * count as u64 / upfront.len().max(1) as u64
        }
    }
}

/// `--start-at`: most of the wait, before the server's metrics are first scraped so
/// their rates are not diluted by it; the last second once the run is ready.
fn wait_for_start(at: SystemTime, stop: impl Fn() -> bool) {
    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
    errln!(
        "--start-at {}: prepared; waiting {:.1} s",
        crate::start_at::format(at),
        left.as_secs_f64()
    );
    crate::start_at::wait_until_near(at, Duration::from_secs(1), stop);
}
