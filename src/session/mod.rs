//! One benchmark session, by stage: resolve the workload ([`inputs`]), find the
//! server or start the simulator and test the connection ([`target`]), then do each
//! planned run ([`runner`]: prepare its requests, send them by its load, summarise)
//! and show and save its results after every run ([`sinks`]).

mod around;
pub mod cache_reset;
mod client_meter;
mod count_warning;
mod inputs;
mod model_check;
pub(crate) mod outdir;
pub mod planner;
mod profile;
pub mod repeat;
mod runner;
mod sinks;
mod target;

use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Error;
use crate::metrics::Summary;
use crate::progress::ProgressMode;
use crate::recorder::TextCounting;
use crate::report::document::{RunMode, RunParams, SavedRun};
use crate::report::table::TERMINOLOGY_NOTE;
use crate::schedule::Load;
use crate::settings::SessionSettings;
use crate::shutdown::{Phase, Shutdown};
use crate::workload::prepare::PromptSource;
use crate::workload::trace_file::TraceFile;
use inputs::Inputs;
use planner::Planner;
use runner::{Finished, Runner, Stage};
use sinks::Sinks;
pub use sinks::redacted_command;
use target::Target;

/// One run of a session.
#[derive(Clone, Debug, Default)]
pub struct RunPlan {
    pub label: String,
    pub mode: RunMode,
    pub params: RunParams,
    pub load: Load,
    pub requests: usize,
    /// Send one request, unrecorded, before the run (the seed's throughput warm-up,
    /// when no `--warmup` is given).
    pub warmup: bool,
    /// `--warmup N` / `--warmup-s S`: the run's first requests, recorded but flagged and
    /// measured by nothing (open loop: the count of warm-up arrivals, decided already).
    pub warmup_phase: crate::schedule::arrivals::Warmup,
    /// Closed loop `--ramp-up-s`: slot i of c starts at i·S/c (µs).
    pub slot_ramp_us: Option<u64>,
    /// Which prompt set: runs with the same number send the same requests (a
    /// dual-round level's rounds); by default each run has its own.
    pub prompts: Option<u64>,
    /// Send the requests in an order shuffled with this seed.
    pub shuffle: Option<u64>,
    /// POST to this URL (a prefix-cache reset) before the run.
    pub reset_cache: Option<String>,
}

/// Where a session's requests come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// The prompts the settings name: synthetic or `--dataset`.
    Prompts,
    /// A request trace, checked by a first pass and read again by each replay.
    Trace {
        file: Arc<TraceFile>,
        block_size: usize,
        /// Send turns as continuations of their parent's conversation.
        sessions: bool,
    },
}

/// What a finished session produced (tests inspect it).
#[derive(Debug)]
pub struct SessionOutcome {
    pub runs: Vec<(String, Summary)>,
    pub output_dir: Option<PathBuf>,
    pub model: String,
}

/// Why the runs ended early or failed, as they went.
#[derive(Default)]
struct Tally {
    /// The run after which more than `--max-error-rate` of requests had failed.
    error_rate_stop: Option<String>,
    /// Runs in which every request failed, with the failures by kind.
    all_failed: Vec<String>,
}

/// `shutdown`: the signal listener's, installed before the runs were planned.
pub fn run_session(
    s: &SessionSettings,
    source: Source,
    mut planner: Box<dyn Planner>,
    argv: &[String],
    shutdown: Arc<Shutdown>,
) -> Result<SessionOutcome, Error> {
    let prior = outdir::check(s, planner.mode().as_ref())?;
    let labels = outdir::Labels::of(&prior);
    // `--tokenizer server` needs the server before the prompts; otherwise bad input is
    // reported before any connection is tried.
    let server_tok = s.workload.tokenizer.as_deref() == Some("server");
    let early = match server_tok {
        true => Some(Target::connect(&s.target, &s.workload, shutdown.clone())?),
        false => None,
    };
    let spec = early.as_ref().map(Target::tokenizer_spec);
    let inputs = Inputs::resolve(&s.workload, &source, &shutdown, spec)?;
    let pick = inputs.pick(s.run.shard);
    if let Some(dir) = &s.output.dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Output(format!("--output-dir {}: {e}", dir.display())))?;
    }
    let target = match early {
        Some(t) => t,
        None => Target::connect(&s.target, &s.workload, shutdown)?,
    };
    if inputs.entry_tools() && !target.body.api.takes_tools() {
        return Err(Error::Input(format!(
            "--dataset: entries carry \"tools\", which need the chat or responses API (the {} API takes none)",
            target.body.api.as_str()
        )));
    }
    if inputs.sends_images() {
        crate::workload::images::check_api(target.body.api, inputs.workload.images.is_some())
            .map_err(Error::Input)?;
    }
    if matches!(inputs.workload.source, PromptSource::Sessions(_))
        && target.body.api == crate::client::openai::Api::Embeddings
    {
        return Err(Error::Input(
            "--sessions: the endpoint is an embeddings route, and a session's history grows with each answer, which an embeddings request does not give".into(),
        ));
    }
    let metrics = target.metrics(&s.target)?;
    let profiler = match &s.target.profile {
        // One engine, one profiler: the first shard starts and stops it for all.
        Some(_) if s.run.shard.index != 0 => {
            errln!(
                "note: --profile: shard {} leaves the profiler to shard 0, which starts and stops it for the whole sharded run",
                s.run.shard
            );
            None
        }
        Some(p) => Some(profile::Profiler::new(&target, p)?),
        None => None,
    };
    let recorder = outdir::recorder(
        s.output.dir.as_deref(),
        &prior,
        TextCounting {
            tokenizer: inputs.tokenizer.clone(),
            always: s.workload.count_output_text,
            usage_input: inputs.sends_images(),
        },
    )?;
    let header = outdir::header(prior, sinks::header(s, &target, &inputs, argv));
    // With --append, the runs already in the directory come first.
    let earlier = header.runs.len();
    let mut sinks = Sinks::new(header, &s.output);

    let progress = ProgressMode::detect(s.run.quiet);
    // An embeddings run has neither TPOT nor ITL to explain.
    if progress != ProgressMode::Off
        && target.endpoint.api != crate::client::openai::Api::Embeddings
    {
        errln!("{TERMINOLOGY_NOTE}");
    }
    let mut runner = Runner::new(Stage {
        settings: s,
        inputs: &inputs,
        target: &target,
        pick: &pick,
        recorder: &recorder,
        metrics: &metrics,
        profiler: profiler.as_ref(),
        progress,
    });
    let tally = run_all(
        &mut runner,
        (planner.as_mut(), labels),
        s,
        &mut sinks,
        earlier,
    )?;
    target.shutdown.enter(Phase::Saving);
    drop(runner);
    drop(recorder);
    if let Some(dir) = &s.output.dir {
        errln!("Results in {}", dir.display());
    }
    // Written whatever ended the session; its own failure counts only if nothing else failed.
    let html = sinks::html_report(&s.output);
    if let Err(e) = ending(&target, tally, &sinks.doc.runs[earlier..]) {
        // The session's own error is the one returned (and printed by the caller).
        if let Err(h) = &html {
            errln!("error: the HTML report was not written: {h}");
        }
        return Err(e);
    }
    html?;
    Ok(SessionOutcome {
        runs: sinks
            .doc
            .runs
            .into_iter()
            .skip(earlier)
            .map(|s| (s.label, s.summary))
            .collect(),
        output_dir: s.output.dir.clone(),
        model: target.model.clone(),
    })
}

/// Do the planner's runs in order, showing and saving each as it ends; stops early on
/// a signal or when `--max-error-rate` is passed. The runs before `earlier` in the
/// document were there already (`--append`).
fn run_all(
    runner: &mut Runner,
    (planner, mut labels): (&mut dyn Planner, outdir::Labels),
    s: &SessionSettings,
    sinks: &mut Sinks,
    earlier: usize,
) -> Result<Tally, Error> {
    let shutdown = runner.shutdown();
    let mut tally = Tally::default();
    let mut count_warning = count_warning::CountWarning::default();
    let mut next = planner.next(&[]);
    let mut index = 0;
    while let Some(mut plan) = next.take() {
        labels.make_unique(&mut plan);
        let run = match runner.run(index, &plan) {
            // A signal before the run sent anything: the runs so far are what is saved.
            Err(Error::Interrupted { .. }) => break,
            run => run?,
        };
        index += 1;
        shutdown.enter(Phase::Between);
        let stopped = record_run(s, sinks, &mut tally, &plan, run);
        if let Some(saved) = sinks.doc.runs.last() {
            let (label, summary) = (saved.label.clone(), saved.summary.clone());
            count_warning.after_run(s, runner.target(), (&label, &summary), &mut sinks.doc);
        }
        if stopped {
            tally.error_rate_stop = Some(plan.label.clone());
        }
        next = planner.next(&sinks.doc.runs[earlier..]);
        sinks.compare_rounds(next.as_ref());
        sinks.summarize_repeats();
        planner.annotate(&mut sinks.doc);
        sinks.save()?;
        if tally.error_rate_stop.is_some() || shutdown.requested().is_some() {
            break;
        }
    }
    planner.conclude(&sinks.doc.runs[earlier..]);
    Ok(tally)
}

/// Print a finished run and keep it; returns whether it passed `--max-error-rate`.
fn record_run(
    s: &SessionSettings,
    sinks: &mut Sinks,
    tally: &mut Tally,
    plan: &RunPlan,
    run: Finished,
) -> bool {
    let Finished {
        summary,
        params,
        clock,
        error_rate_exceeded,
        planned,
        stopped,
    } = run;
    let saved = SavedRun::of_session(
        plan.label.clone(),
        plan.mode.clone(),
        params,
        (clock.wall_rfc3339(), clock.wall_unix_s()),
        summary,
        planned,
        stopped,
    );
    sinks.print_run(plan, &saved);
    let summary = &saved.summary;
    if error_rate_exceeded {
        errln!(
            "error: {} — more than {} of its requests failed; stopping (--max-error-rate)",
            plan.label,
            s.run.max_error_rate.unwrap_or(0.0)
        );
    }
    // A capacity probe that failed every request is a verdict (a failing level), not an
    // error of the session.
    if summary.succeeded == 0 && summary.total > 0 && plan.params.capacity_probe != Some(true) {
        tally
            .all_failed
            .push(format!("{}: {}", plan.label, failure_counts(summary)));
    }
    sinks.push(saved);
    error_rate_exceeded
}

/// The session's error, if it ended with one: a signal, the failure share, or runs in
/// which every request failed.
fn ending(target: &Target, tally: Tally, saved: &[SavedRun]) -> Result<(), Error> {
    if let Some(signal) = target.shutdown.requested() {
        return Err(Error::Interrupted {
            signal,
            runs: saved.len(),
        });
    }
    if let Some(label) = tally.error_rate_stop {
        let failures = saved
            .last()
            .map(|s| failure_counts(&s.summary))
            .unwrap_or_default();
        return Err(Error::AllFailed(format!(
            "{label}: the failure share passed --max-error-rate ({failures}); later runs were not started"
        )));
    }
    if !tally.all_failed.is_empty() {
        return Err(Error::AllFailed(format!(
            "every request failed in: {}",
            tally.all_failed.join("; ")
        )));
    }
    Ok(())
}

/// "3 timeout, 1 http" — a run's failures by kind.
fn failure_counts(summary: &Summary) -> String {
    summary
        .failures
        .counts
        .iter()
        .map(|(k, n)| format!("{n} {}", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}
