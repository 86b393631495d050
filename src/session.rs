//! One benchmark session: check the inputs, find the server (or start the simulator),
//! test the connection, then do each planned run — prepare its requests, send them by
//! its load, summarise, print, and save results after every run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::cli::LoadArgs;
use crate::client::endpoint::Endpoint;
use crate::client::openai::{Api, BodyOptions, PromptBody, build_body};
use crate::client::{ApiKey, ClientConfig, DRAIN_AFTER_DONE, HttpClient};
use crate::clock::RunClock;
use crate::error::Error;
use crate::feed::Feeder;
use crate::metrics::server::{DEFAULT_TIMEOUT, MetricsSpec, Scraper, same_origin};
use crate::metrics::slo::Slo;
use crate::metrics::stats::parse_percentiles;
use crate::metrics::{Summary, summarize};
use crate::progress::{Live, Progress, ProgressMode};
use crate::recorder::{Recorder, TextCounting};
use crate::report::results::{SavedRun, document, write_results_json, write_summary_csv};
use crate::report::rounds::RoundComparison;
use crate::report::table::{TERMINOLOGY_NOTE, render};
use crate::schedule::{Load, RunContext};
use crate::shard::{Pick, conversation_roots};
use crate::shutdown::Shutdown;
use crate::sim::{SimConfig, SimServer};
use crate::workload::Tokenizer;
use crate::workload::blocks::BlockPrompts;
use crate::workload::dataset::{Conversation, expand_turns, read_dataset};
use crate::workload::prepare::{PreparedRequest, PromptSource, WorkloadSpec};
use crate::workload::sessions::Sessions;
use crate::workload::sessions::link_parents;
use crate::workload::synthetic::{LengthSpec, SyntheticPrompts};
use crate::workload::trace_file::TraceFile;

/// One run of a session.
#[derive(Clone, Debug, Default)]
pub struct RunPlan {
    pub label: String,
    pub mode: &'static str,
    pub params: Map<String, Value>,
    pub load: Load,
    pub requests: usize,
    /// Send one request, unrecorded, before the run (the seed's throughput warm-up).
    pub warmup: bool,
    /// Which prompt set: runs with the same number send the same requests (a
    /// dual-round level's rounds); by default each run has its own.
    pub prompts: Option<u64>,
    /// Send the requests in an order shuffled with this seed.
    pub shuffle: Option<u64>,
    /// POST to this URL (a prefix-cache reset) before the run.
    pub reset_cache: Option<String>,
    /// Runs compared with each other (a dual-round level), and this run's round.
    pub group: Option<(String, u32)>,
}

/// Per-mode defaults for flags the user left out.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    pub input_len: LengthSpec,
    pub output_len: LengthSpec,
    /// Replay a multi-turn dataset entry as growing chat histories, one request per user
    /// turn (dual-round: each turn resends the history, so a prefix cache matters).
    pub expand_turns: bool,
}

/// Where a session's requests come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Synthetic prompts or `--dataset`, with these defaults for unset lengths.
    Args(Defaults),
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

/// Everything resolved from the flags before any request is sent.
struct Resolved {
    workload: WorkloadSpec,
    tokenizer: Tokenizer,
    extra: Map<String, Value>,
    percentiles: Vec<f64>,
    timeout: Option<Duration>,
    progress: ProgressMode,
    /// `--sessions`: each turn's parent turn, for the whole trace.
    sessions: Option<Arc<Vec<Option<u32>>>>,
    slo: Option<Slo>,
}

fn resolve(args: &LoadArgs, source: &Source) -> Result<Resolved, Error> {
    let tokenizer = Tokenizer::load(args.tokenizer.as_deref())?;
    let slo = args
        .slo
        .as_deref()
        .map(Slo::parse_arg)
        .transpose()
        .map_err(|e| Error::Input(format!("--slo: {e}")))?;
    let percentiles = parse_percentiles(&args.percentiles)
        .map_err(|e| Error::Input(format!("--percentiles: {e}")))?;
    let extra = match &args.extra_body {
        None => Map::new(),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                return Err(Error::Input(
                    "--extra-body: expected a JSON object, e.g. '{\"top_k\": 1}'".into(),
                ));
            }
            Err(e) => {
                return Err(Error::Input(format!(
                    "--extra-body: not valid JSON ({e}); expected an object, e.g. '{{\"top_k\": 1}}'"
                )));
            }
        },
    };
    let timeout = match args.timeout {
        0.0 => None,
        t => Some(Duration::try_from_secs_f64(t).map_err(|_| {
            Error::Input(format!(
                "--timeout {t}: expected a number of seconds ≥ 0 (0 = no timeout)"
            ))
        })?),
    };
    let (source, output_len, sessions) = match source {
        Source::Trace {
            file,
            block_size,
            sessions,
        } => {
            if *sessions && args.prompt_token_ids {
                return Err(Error::Input(
                    "--sessions sends chat histories as text: it cannot be combined with --prompt-token-ids".into(),
                ));
            }
            for (given, flag) in [
                (args.dataset.is_some(), "--dataset"),
                (args.input_len.is_some(), "--input-len"),
                (args.output_len.is_some(), "--output-len"),
                (args.num_requests.is_some(), "--num-requests (use --limit)"),
            ] {
                if given {
                    return Err(Error::Input(format!(
                        "{flag} does not apply to trace replay: the trace gives every request's lengths"
                    )));
                }
            }
            let blocks = BlockPrompts::new(&tokenizer, *block_size, args.seed)
                .map_err(|e| Error::Input(e.to_string()))?;
            let links = if *sessions {
                let turns = file
                    .requests()
                    .map_err(|e| Error::Input(e.to_string()))?
                    .map(|r| r.map(|t| (t.chat_id, t.parent_chat_id)));
                let links = link_parents(turns).map_err(|e| Error::Input(e.to_string()))?;
                eprintln!(
                    "--sessions: {} of {} turns continue an earlier turn's conversation",
                    links.iter().flatten().count(),
                    links.len()
                );
                Some(Arc::new(links))
            } else {
                None
            };
            let source = PromptSource::Trace {
                file: file.clone(),
                blocks: Arc::new(blocks),
            };
            (source, LengthSpec::Fixed(1), links)
        }
        Source::Args(defaults) => {
            let source = match &args.dataset {
                Some(path) => {
                    if args.input_len.is_some() {
                        return Err(Error::Input(
                            "--input-len does not apply with --dataset (prompts come from the file)"
                                .into(),
                        ));
                    }
                    let mut entries = read_dataset(path, Conversation::FirstTurn)?;
                    if defaults.expand_turns {
                        entries = expand_turns(entries);
                    }
                    PromptSource::Dataset(Arc::new(entries))
                }
                None => {
                    let (prompts, fallback) =
                        SyntheticPrompts::resolve(args.synthetic_prompts, &tokenizer);
                    if let Some(why) = fallback {
                        eprintln!("note: synthetic prompts use random token ids instead: {why}");
                    }
                    PromptSource::Synthetic {
                        input_len: args.input_len.unwrap_or(defaults.input_len),
                        prompts,
                    }
                }
            };
            (source, args.output_len.unwrap_or(defaults.output_len), None)
        }
    };
    Ok(Resolved {
        workload: WorkloadSpec {
            source,
            output_len,
            seed: args.seed,
            token_ids: args.prompt_token_ids,
        },
        tokenizer,
        extra,
        percentiles,
        timeout,
        progress: ProgressMode::detect(args.quiet),
        sessions,
        slo,
    })
}

/// The command line as saved in results.json, with the API key's value masked.
pub fn redacted_command(argv: &[String], key: Option<&str>) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut mask_next = false;
    for a in argv {
        if mask_next {
            out.push("***".into());
            mask_next = false;
        } else if a == "--api-key" {
            out.push(a.clone());
            mask_next = true;
        } else if a.starts_with("--api-key=") {
            out.push("--api-key=***".into());
        } else if key.is_some_and(|k| !k.is_empty() && a.contains(k)) {
            out.push("***".into());
        } else {
            out.push(a.clone());
        }
    }
    out
}

pub fn run_session(
    args: &LoadArgs,
    source: Source,
    plans: Vec<RunPlan>,
    argv: &[String],
) -> Result<SessionOutcome, Error> {
    let r = resolve(args, &source)?;
    if let Some(at) = args.start_at {
        crate::start_at::check_not_past(at, std::time::SystemTime::now()).map_err(Error::Input)?;
    }
    let pick = match (&r.sessions, args.shard) {
        (Some(parents), shard) if !shard.is_whole() => Pick::ByRoot {
            shard,
            roots: Arc::new(conversation_roots(parents)),
        },
        (_, shard) => Pick::Every(shard),
    };
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Output(format!("--output-dir {}: {e}", dir.display())))?;
    }

    // The embedded default: no --endpoint means the simulator, in-process.
    let sim;
    let (endpoint_text, simulated) = match &args.endpoint {
        Some(e) => (e.clone(), false),
        None => {
            sim = SimServer::start(SimConfig::default(), ([127, 0, 0, 1], 0).into())
                .map_err(|e| Error::Server(format!("cannot start the built-in simulator: {e}")))?;
            eprintln!(
                "No --endpoint given: benchmarking the built-in simulator at {} (see `servescope sim --help`).",
                sim.url()
            );
            (sim.url(), true)
        }
    };
    let endpoint = Endpoint::parse(&endpoint_text, args.api)?;
    if args.prompt_token_ids && endpoint.api != Api::Completions {
        return Err(Error::Input(
            "--prompt-token-ids needs the completions API (add --api completions)".into(),
        ));
    }
    let client = HttpClient::new(&ClientConfig {
        api_key: args.api_key.clone().map(ApiKey::new),
        timeout: r.timeout,
        idle_timeout: args
            .idle_timeout
            .and_then(|s| Duration::try_from_secs_f64(s).ok()),
        retries: args.retries,
        insecure: args.insecure,
        drain_after_done: DRAIN_AFTER_DONE,
    })?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Server(format!("cannot start the async runtime: {e}")))?;

    let shutdown = Arc::new(Shutdown::default());
    rt.block_on(async { shutdown.listen() })
        .map_err(|e| Error::Server(format!("cannot watch for Ctrl-C: {e}")))?;
    let model = match &args.model {
        Some(m) => m.clone(),
        None => rt.block_on(first_model(&client, &endpoint))?,
    };
    let body_opts = BodyOptions {
        api: endpoint.api,
        model: model.clone(),
        ignore_eos: !args.no_ignore_eos,
        extra: r.extra.clone(),
    };
    rt.block_on(connection_test(&client, &endpoint, &body_opts))?;

    let metrics = setup_metrics(args, &endpoint, &client)?;
    let recorder = Recorder::start(
        args.output_dir
            .as_ref()
            .map(|d| d.join("requests.jsonl"))
            .as_deref(),
        TextCounting {
            tokenizer: r.tokenizer.clone(),
            always: args.count_output_text,
        },
    )
    .map_err(|e| Error::Output(format!("cannot write requests.jsonl: {e}")))?;

    let mut header = Map::new();
    header.insert(
        "tool".into(),
        json!({"name": "servescope", "version": env!("CARGO_PKG_VERSION")}),
    );
    header.insert("started".into(), json!(RunClock::start().wall_rfc3339()));
    header.insert("endpoint".into(), json!(endpoint.url.as_str()));
    header.insert("simulated".into(), json!(simulated));
    header.insert("model".into(), json!(model));
    header.insert("api".into(), json!(endpoint.api.as_str()));
    header.insert("tokenizer".into(), json!(r.tokenizer.name()));
    header.insert("seed".into(), json!(args.seed));
    if let PromptSource::Synthetic { prompts, .. } = &r.workload.source {
        header.insert("synthetic_prompts".into(), json!(prompts.name()));
    }
    if !args.shard.is_whole() {
        header.insert("shard".into(), args.shard.to_json());
    }
    if let Some(at) = args.start_at {
        header.insert("start_at".into(), json!(crate::start_at::format(at)));
    }
    header.insert(
        "command".into(),
        json!(redacted_command(argv, args.api_key.as_deref())),
    );

    if r.progress != ProgressMode::Off {
        eprintln!("{TERMINOLOGY_NOTE}");
    }
    let mut saved: Vec<SavedRun> = Vec::new();
    let mut error_rate_stop: Option<String> = None;
    let mut all_failed: Vec<String> = Vec::new();
    // The prepared requests of the last prompt set, reused by runs that share it.
    let mut prepared: Option<(u64, Vec<PreparedRequest>)> = None;
    // Only the first run waits for --start-at; later ones follow as usual.
    let mut start_at = args.start_at;
    for (index, plan) in plans.iter().enumerate() {
        let run = plan.prompts.unwrap_or(index as u64);
        let feeder = Feeder {
            workload: &r.workload,
            body: &body_opts,
            tokenizer: &r.tokenizer,
            run,
            keep_turns: r.sessions.is_some(),
            pick: &pick,
        };
        // This process's part of the run (all of it unless --shard).
        let count = pick.len_of(plan.requests);
        let shard = pick.shard();
        let mut params = plan.params.clone();
        if !shard.is_whole() {
            if count == 0 {
                eprintln!(
                    "note: --shard {shard}: none of the {} requests of {} fall to this shard",
                    plan.requests, plan.label
                );
            }
            let mut part = shard.to_json();
            part["num_requests"] = json!(count);
            match &plan.load {
                Load::ClosedLoop { concurrency } => {
                    part["concurrency"] = json!(shard.part_of(*concurrency));
                }
                Load::OpenLoop { cap: Some(c), .. } => {
                    part["max_concurrency"] = json!(shard.part_of(*c));
                }
                _ => {}
            }
            params.insert("shard".into(), part);
        }
        // Prompts are built before the clock starts, within a memory budget; the rest
        // while the run goes. A batch, and rounds that resend one prompt set, hold all.
        let hold_all = plan.prompts.is_some() || plan.load == Load::AllAtOnce;
        let budget = if hold_all {
            usize::MAX
        } else {
            args.prepare_ahead_mb.saturating_mul(1 << 20)
        };
        let mut upfront = match prepared.take() {
            Some((set, reqs)) if set == run && reqs.len() == count => reqs,
            _ => feeder.upfront(count, budget)?,
        };
        if plan.prompts.is_some() {
            prepared = Some((run, upfront.clone()));
        }
        if let Some(seed) = plan.shuffle {
            use rand::SeedableRng;
            use rand::seq::SliceRandom;
            upfront.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        }
        if let Some(url) = &plan.reset_cache {
            rt.block_on(reset_cache(&client, &endpoint, url));
        }
        if plan.warmup
            && let Some(first) = upfront.first()
        {
            let live = Live::default();
            let out = rt.block_on(client.execute(
                &endpoint.url,
                first.body.clone(),
                &RunClock::start(),
                &live,
            ));
            if let Some((kind, msg)) = out.failure {
                eprintln!(
                    "warning: the warm-up request failed ({}): {msg}",
                    kind.as_str()
                );
            }
        }
        let expected_tokens: u64 = match &r.workload.source {
            // A shard's share, roughly (for the progress bar).
            PromptSource::Trace { file, .. } => file.info().output_tokens / shard.count as u64,
            // Extrapolated from the prompts built so far (for the progress bar).
            _ => {
                let sum: u64 = upfront.iter().map(|q| q.max_tokens as u64).sum();
                sum * count as u64 / upfront.len().max(1) as u64
            }
        };
        let sessions = match (&r.workload.source, &r.sessions) {
            (PromptSource::Trace { blocks, .. }, Some(links)) => Some(Arc::new(Sessions::new(
                links.clone(),
                blocks.clone(),
                r.tokenizer.clone(),
                body_opts.clone(),
                r.workload.seed,
                run,
            ))),
            _ => None,
        };
        let live = Arc::new(Live::default());
        let failures = Arc::new(crate::schedule::FailureCounter::default());
        let stop = || shutdown.requested().is_some();
        let first_start = start_at.take();
        if let Some(at) = first_start {
            let left = at
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            eprintln!(
                "--start-at {}: prepared; waiting {:.1} s",
                crate::start_at::format(at),
                left.as_secs_f64()
            );
            // Most of the wait before the server's metrics are first scraped, so their
            // rates are not diluted by it; the last second once the run is ready.
            crate::start_at::wait_until_near(at, Duration::from_secs(1), stop);
        }
        // The run's clock starts when its context is made: for open-loop runs, only once
        // the first requests are prepared; with --start-at, at that instant.
        let make_ctx = || -> Result<Arc<RunContext>, Error> {
            let clock = match first_start {
                Some(at) => crate::start_at::start_clock_at(at, stop).map_err(Error::Input)?,
                None => RunClock::start(),
            };
            Ok(Arc::new(RunContext {
                client: client.clone(),
                url: endpoint.url.clone(),
                clock,
                live: live.clone(),
                failures: failures.clone(),
                recorder: recorder.handle(),
                label: Arc::from(plan.label.as_str()),
                sessions: sessions.clone().map(|s| s as _),
                max_error_rate: args.max_error_rate,
                shutdown: shutdown.clone(),
            }))
        };
        let scrape = match &metrics {
            Some((scraper, spec)) => match rt.block_on(scraper.start(spec)) {
                Ok(running) => Some(running),
                Err(e) => {
                    eprintln!(
                        "WARNING: cannot scrape the server's metrics ({e}); this run has none"
                    );
                    None
                }
            },
            None => None,
        };
        let clock = {
            let _progress = Progress::start(
                r.progress,
                &plan.label,
                live.clone(),
                count as u64,
                expected_tokens,
            );
            // A shard takes its part of a limit that describes the whole run.
            match &plan.load {
                Load::OpenLoop { at, cap } => {
                    let cap = cap.map(|c| shard.part_of(c));
                    feeder.open_loop(&rt, upfront, count, at, cap, make_ctx)?
                }
                Load::AllAtOnce => feeder.closed_loop(&rt, upfront, count, None, make_ctx)?,
                Load::ClosedLoop { concurrency } => {
                    let c = shard.part_of(*concurrency);
                    feeder.closed_loop(&rt, upfront, count, Some(c), make_ctx)?
                }
            }
        };
        let data = recorder.handle().end_run().map_err(Error::Output)?;
        let mut summary = summarize(&data, &r.percentiles).with_goodput(&data, r.slo.as_ref());
        if let Some(running) = scrape {
            match rt.block_on(running.finish()) {
                Ok(m) => summary.server_metrics = Some(m.to_json_with(&summary.percentiles)),
                Err(e) => eprintln!(
                    "WARNING: the server's metrics after {} are unusable: {e}",
                    plan.label
                ),
            }
        }
        print!("{}", render(&plan.label, &summary));
        if plan.mode == "throughput" {
            println!(
                "Offline throughput: {} requests, {} tokens ({} input + {} output) in {:.2} s = {:.2} tok/s ({:.2} output tok/s)",
                summary.succeeded,
                summary.tokens.input + summary.tokens.output,
                summary.tokens.input,
                summary.tokens.output,
                summary.duration_s,
                summary.total_tok_s,
                summary.output_tok_s
            );
        }
        println!();
        let stopped = failures.exceeded(args.max_error_rate);
        if stopped {
            eprintln!(
                "error: {} — more than {} of its requests failed; stopping (--max-error-rate)",
                plan.label,
                args.max_error_rate.unwrap_or(0.0)
            );
        }
        if summary.succeeded == 0 && summary.total > 0 {
            let kinds: Vec<String> = summary
                .failures
                .counts
                .iter()
                .map(|(k, n)| format!("{n} {}", k.as_str()))
                .collect();
            all_failed.push(format!("{}: {}", plan.label, kinds.join(", ")));
        }
        saved.push(SavedRun {
            label: plan.label.clone(),
            mode: plan.mode.to_string(),
            params,
            started: clock.wall_rfc3339(),
            started_unix: clock.wall_unix_s(),
            summary: summary.clone(),
        });
        // The last round of a level: compare the rounds.
        if let Some((group, _)) = &plan.group
            && plans
                .get(index + 1)
                .and_then(|p| p.group.as_ref())
                .map(|g| &g.0)
                != Some(group)
        {
            let rounds: Vec<(u32, &Summary)> = plans
                .iter()
                .zip(&saved)
                .filter_map(|(p, s)| match &p.group {
                    Some((g, round)) if g == group => Some((*round, &s.summary)),
                    _ => None,
                })
                .collect();
            let cmp = RoundComparison::new(group, &rounds);
            print!("{}", cmp.render());
            println!();
            match header.get_mut("dual_round") {
                Some(Value::Array(list)) => list.push(cmp.to_json()),
                _ => {
                    header.insert("dual_round".into(), Value::Array(vec![cmp.to_json()]));
                }
            }
        }
        if stopped {
            error_rate_stop = Some(plan.label.clone());
        }
        if let Some(dir) = &args.output_dir {
            write_results_json(dir, &document(&header, &saved))
                .and_then(|_| write_summary_csv(dir, &saved))
                .map_err(|e| {
                    Error::Output(format!("cannot write results to {}: {e}", dir.display()))
                })?;
        }
        if error_rate_stop.is_some() || shutdown.requested().is_some() {
            break;
        }
    }
    drop(recorder);
    if let Some(dir) = &args.output_dir {
        eprintln!("Results in {}", dir.display());
    }
    // Written whatever ended the session; its own failure counts only if nothing else failed.
    let html = crate::report::html::after_session(args, &r.percentiles, r.slo.as_ref());
    if let Some(signal) = shutdown.requested() {
        return Err(Error::Interrupted {
            signal,
            runs: saved.len(),
        });
    }
    if let Some(label) = error_rate_stop {
        let failures = saved
            .last()
            .map(|s| {
                s.summary
                    .failures
                    .counts
                    .iter()
                    .map(|(k, n)| format!("{n} {}", k.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        return Err(Error::AllFailed(format!(
            "{label}: the failure share passed --max-error-rate ({failures}); later runs were not started"
        )));
    }
    if !all_failed.is_empty() {
        return Err(Error::AllFailed(format!(
            "every request failed in: {}",
            all_failed.join("; ")
        )));
    }
    html?;
    Ok(SessionOutcome {
        runs: saved.into_iter().map(|s| (s.label, s.summary)).collect(),
        output_dir: args.output_dir.clone(),
        model,
    })
}

/// The scraper and what it scrapes, when `--metrics` or `--metrics-url` is given. The
/// API key goes to the metrics URL only when it is the benchmarked server itself.
fn setup_metrics(
    args: &LoadArgs,
    endpoint: &Endpoint,
    client: &HttpClient,
) -> Result<Option<(Scraper, MetricsSpec)>, Error> {
    if args.metrics.is_none() && args.metrics_url.is_none() {
        return Ok(None);
    }
    let url = match &args.metrics_url {
        Some(u) => reqwest::Url::parse(u)
            .map_err(|e| Error::Input(format!("--metrics-url {u}: not a URL ({e})")))?,
        None => endpoint
            .root
            .join("metrics")
            .map_err(|e| Error::Input(format!("--metrics-url: {e}")))?,
    };
    let names = args.metrics.as_deref().unwrap_or("vllm,sglang,llamacpp");
    let spec = MetricsSpec::new(
        url.clone(),
        names,
        Duration::from_secs_f64(args.metrics_interval),
    )
    .map_err(|e| Error::Input(format!("--metrics: {e}")))?;
    let auth = same_origin(&url, &endpoint.url)
        .then(|| client.auth_header())
        .flatten();
    let scraper = Scraper::new(auth, DEFAULT_TIMEOUT).map_err(Error::Server)?;
    Ok(Some((scraper, spec)))
}

/// Empty the server's prefix cache (a POST), warning loudly when it fails: a round
/// meant to start cold would then measure a warm cache.
async fn reset_cache(client: &HttpClient, endpoint: &Endpoint, url: &str) {
    let result = match reqwest::Url::parse(url) {
        Ok(u) => {
            // The key goes only where the benchmarked server is.
            let same_origin = u.scheme() == endpoint.root.scheme()
                && u.host_str() == endpoint.root.host_str()
                && u.port_or_known_default() == endpoint.root.port_or_known_default();
            client.post_empty(&u, same_origin).await
        }
        Err(e) => Err(format!("not a URL ({e})")),
    };
    if let Err(e) = result {
        eprintln!(
            "WARNING: the cache reset at {url} failed ({e}); the next round may start with a warm cache"
        );
    }
}

async fn first_model(client: &HttpClient, endpoint: &Endpoint) -> Result<String, Error> {
    let doc = client.get_json(&endpoint.models_url).await.map_err(|e| {
        Error::Server(format!(
            "cannot list models at {} ({e}); give --model",
            endpoint.models_url
        ))
    })?;
    doc["data"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Server(format!(
                "{} lists no model (expected {{\"data\": [{{\"id\": ...}}]}}); give --model",
                endpoint.models_url
            ))
        })
}

/// One short request before the run, as bench_simple does: a server that cannot answer
/// it is reported now, not as hundreds of failed requests.
async fn connection_test(
    client: &HttpClient,
    endpoint: &Endpoint,
    opts: &BodyOptions,
) -> Result<(), Error> {
    let body = build_body(opts, PromptBody::Text("Hello"), 4);
    let out = client
        .execute(
            &endpoint.url,
            body.into(),
            &RunClock::start(),
            &Live::default(),
        )
        .await;
    match out.failure {
        None => Ok(()),
        Some((kind, msg)) => Err(Error::Server(format!(
            "connection test to {} failed ({}): {msg}",
            endpoint.url,
            kind.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_is_masked_in_the_saved_command() {
        let argv: Vec<String> = [
            "servescope",
            "batch",
            "--api-key",
            "sk-secret",
            "--api-key=sk-secret",
            "x",
        ]
        .map(String::from)
        .to_vec();
        let out = redacted_command(&argv, Some("sk-secret"));
        assert!(!out.iter().any(|a| a.contains("sk-secret")), "{out:?}");
        assert_eq!(out[2], "--api-key");
        assert_eq!(out[3], "***");
        assert_eq!(out[4], "--api-key=***");
    }
}
