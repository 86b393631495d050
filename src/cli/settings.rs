//! The one conversion from clap's arguments to [`Settings`], as hyperfine's
//! `Options::from_cli_arguments` does: every flag check, default and conflict lives
//! here, and each error names its flag. Checks that need the server or a file's
//! contents (the endpoint's API, a trace's format) stay where those are known.

use std::time::Duration;

use serde_json::{Map, Value};

use super::endpoint_flags::{api_key, headers, model_mix};
use super::load::LoadArgs;
use super::load_modes::{
    PromptMode, batch, capacity, concurrency, dual_round, rate, sweep, throughput, trace,
};
use super::prompts::{max_input_length, prompts};
use super::{Cli, Command, CompareArgs, MergeArgs, ReportArgs, SimArgs};
use crate::error::Error;
use crate::metrics::slo::Slo;
use crate::metrics::stats::parse_percentiles;
use crate::settings::{
    CompareSettings, Existing, LoadSettings, MergeSettings, OutputSettings, ReportSettings,
    RunSettings, SessionSettings, Settings, SimSettings, StartSettings, TargetSettings,
    WorkloadSettings,
};
use crate::workload::tools::{ToolChoice, ToolSet};

impl Settings {
    /// Check the parsed command line and fill in every default.
    pub fn from_cli(cli: Cli) -> Result<Settings, Error> {
        let cli = super::media::default_count(cli);
        let load = |mode, session: SessionSettings| -> Result<Settings, Error> {
            super::start::check(&mode, &session.run.start)?;
            Ok(Settings::Load(Box::new(LoadSettings { mode, session })))
        };
        Ok(match cli.command {
            Command::Batch(a) => {
                let (mode, prompts) = batch(&a)?;
                load(mode, session(a.load, prompts)?)?
            }
            Command::Throughput(a) => {
                let (mode, prompts) = throughput(&a)?;
                load(mode, session(a.load, prompts)?)?
            }
            Command::Concurrency(a) => {
                let (mode, prompts) = concurrency(&a)?;
                load(mode, session(a.load, prompts)?)?
            }
            Command::Rate(a) => {
                let (mode, prompts) = rate(&a)?;
                load(mode, session(a.load, prompts)?)?
            }
            Command::Trace(a) => {
                let (mode, prompts) = trace(&a)?;
                load(mode, session(a.load, prompts)?)?
            }
            Command::DualRound(a) => {
                // A level's rounds already resend one prompt set on purpose, the cache
                // state being the point: repeating them would mix cold and warm.
                if a.load.repeat > 1 {
                    return Err(Error::Input(
                        "--repeat does not apply to dual-round: its rounds are the repeats of a level (use --rounds)".into(),
                    ));
                }
                let (mode, prompts) = dual_round(&a)?;
                load(mode, session(a.load, prompts)?)?
            }
            Command::Capacity(a) => {
                if a.load.repeat > 1 {
                    return Err(Error::Input(
                        "--repeat does not apply to capacity: the search chooses its probes one by one; to probe a doubtful level again use --confirm N".into(),
                    ));
                }
                let (mode, prompts) = capacity(&a)?;
                load(mode, session(a.load, prompts)?)?
            }
            Command::Sweep(a) => {
                if a.load.repeat > 1 {
                    return Err(Error::Input(
                        "--repeat does not apply to sweep: its rates come from its first two runs, so a repeat is another sweep (run it again, then compare the two)".into(),
                    ));
                }
                let (mode, prompts) = sweep(&a)?;
                load(mode, session(a.load, prompts)?)?
            }
            Command::Sim(a) => Settings::Sim(Box::new(sim(a)?)),
            Command::Report(a) => Settings::Report(report(a)?),
            Command::Compare(a) => Settings::Compare(compare(a)?),
            Command::Merge(a) => Settings::Merge(merge(a)?),
            Command::Convert(a) => Settings::Convert(a.into_job()),
            Command::Completions(a) => Settings::Completions(a.shell.into()),
            Command::Man(a) => Settings::Man { dir: a.dir },
            Command::Schema(a) => Settings::Schema(a.kind.into()),
            Command::Run(a) => Settings::Study(crate::settings::StudySettings {
                file: a.file,
                overrides: a.overrides,
            }),
        })
    }
}

/// The flags every load subcommand shares.
fn session(a: LoadArgs, mode: PromptMode) -> Result<SessionSettings, Error> {
    let slo = slo(a.slo.as_deref())?;
    let percentiles = percentiles(&a.percentiles.percentiles)?;
    let extra_body = sampling(extra_body(a.extra_body.as_deref())?, a.temperature, a.top_p)?;
    let timeout = match a.timeout {
        0.0 => None,
        t => Some(Duration::try_from_secs_f64(t).map_err(|_| {
            Error::Input(format!(
                "--timeout {t}: expected a number of seconds ≥ 0 (0 = no timeout)"
            ))
        })?),
    };
    let batch_inputs = super::embeddings::check(&a, &mode, slo.as_ref())?;
    let (prompts, output_len) = prompts(&a, mode)?;
    let max_input_length = max_input_length(&a, &prompts)?;
    if let Some(at) = a.start_at {
        crate::start_at::check_not_past(at, std::time::SystemTime::now()).map_err(Error::Input)?;
    }
    if let Some(html) = &a.html {
        html_out(html, a.output_dir.as_deref())?;
    }
    let metrics = super::metric_sources::metrics(&a)?;
    let (tools, tool_choice) = tools(&a)?;
    let (model, models) = model_mix(a.model.as_deref(), a.model_weights.as_deref())?;
    let headers = headers(&a.headers, a.api_key.is_some())?;
    let images = super::media::images(&a)?;
    let metadata = super::metadata::parse(&a.metadata, a.api_key.as_deref(), &headers)?;
    if a.sim_reasoning_tokens.is_some() && a.endpoint.is_some() {
        return Err(Error::Input(
            "--sim-reasoning-tokens sets the built-in simulator, which --endpoint replaces: give one of them".into(),
        ));
    }
    if a.sim_ignore_ignore_eos && a.endpoint.is_some() {
        return Err(Error::Input(
            "--sim-ignore-ignore-eos sets the built-in simulator, which --endpoint replaces: give one of them".into(),
        ));
    }
    Ok(SessionSettings {
        target: TargetSettings {
            endpoint: a.endpoint,
            model,
            headers,
            api: a.api,
            batch_inputs,
            api_key: api_key(a.api_key)?,
            timeout,
            idle_timeout: a
                .idle_timeout
                .and_then(|s| Duration::try_from_secs_f64(s).ok()),
            retries: a.retries,
            insecure: a.insecure,
            metrics,
            profile: super::profile::profile(&a.profile)?,
            sim_reasoning_tokens: a.sim_reasoning_tokens,
            sim_image_tokens: a.sim_image_tokens,
            sim_ignore_ignore_eos: a.sim_ignore_ignore_eos,
        },
        workload: WorkloadSettings {
            tokenizer: a.tokenizer,
            max_input_length,
            prompts,
            output_len,
            seed: a.seed,
            prompt_token_ids: a.prompt_token_ids,
            ignore_eos: !a.no_ignore_eos,
            extra_body,
            tools,
            tool_choice,
            count_output_text: a.count_output_text,
            prepare_ahead_mb: a.prepare_ahead_mb,
            models,
            images,
        },
        run: RunSettings {
            max_error_rate: a.max_error_rate,
            shard: a.shard,
            start_at: a.start_at,
            quiet: a.quiet,
            start: StartSettings {
                warmup: a.warmup,
                warmup_s: a.warmup_s,
                ramp_up: a.ramp_up,
                ramp_up_s: a.ramp_up_s,
            },
            repeat: a.repeat,
        },
        output: OutputSettings {
            dir: a.output_dir,
            existing: match (a.overwrite, a.append) {
                (true, _) => Existing::Overwrite,
                (_, true) => Existing::Append,
                _ => Existing::Refuse,
            },
            html: a.html,
            percentiles,
            slo,
            slice_us: slice_us(a.slice.slice_s)?,
            gpus: a.gpus,
            metadata,
        },
    })
}

/// `--tools FILE` (read and checked now) and `--tool-choice`: tools go with the chat API
/// only; a named choice must be one of the tools (a dataset's entries are checked when
/// the dataset is read).
fn tools(a: &LoadArgs) -> Result<(Option<ToolSet>, Option<ToolChoice>), Error> {
    let tools = match &a.tools {
        Some(path) => {
            if let Some(api) = a.api.filter(|api| !api.takes_tools()) {
                return Err(Error::Input(format!(
                    "--tools needs the chat or responses API: the {} API takes no tools (drop --api {})",
                    api.as_str(),
                    api.as_str()
                )));
            }
            Some(ToolSet::load(path).map_err(Error::Input)?)
        }
        None => None,
    };
    let Some(choice) = &a.tool_choice else {
        return Ok((tools, None));
    };
    let choice = ToolChoice::parse(choice).map_err(Error::Input)?;
    match &tools {
        Some(t) => {
            let file = a.tools.as_ref().map(|p| p.display().to_string());
            choice
                .check(t, &format!("--tools {}", file.unwrap_or_default()))
                .map_err(Error::Input)?
        }
        None if a.dataset.is_none() => {
            return Err(Error::Input(
                "--tool-choice needs --tools FILE (or a --dataset whose entries carry \"tools\")"
                    .into(),
            ));
        }
        None => {}
    }
    Ok((tools, Some(choice)))
}

/// `--html OUT.html` can be written: checked before anything runs, so a typo in the
/// path does not cost the benchmark's report. A file that does not exist yet is
/// created and removed again (the one sure test of a directory's permissions).
/// `made`: the directory the command creates (`--output-dir`, `merge -o`); an HTML
/// path directly in it is fine before it exists.
fn html_out(path: &std::path::Path, made: Option<&std::path::Path>) -> Result<(), Error> {
    use std::fs::{OpenOptions, remove_file};
    use std::path::Component;
    fn plain(p: &std::path::Path) -> Vec<Component<'_>> {
        p.components().filter(|c| *c != Component::CurDir).collect()
    }
    if let (Some(parent), Some(made)) = (path.parent(), made)
        && !made.exists()
        && plain(parent) == plain(made)
    {
        return Ok(());
    }
    let bad = |why: String| {
        Err(Error::Input(format!(
            "--html {}: {why}; expected a file path in an existing, writable directory",
            path.display()
        )))
    };
    if path.is_dir() {
        return bad("is a directory".into());
    }
    let existed = path.exists();
    match OpenOptions::new().append(true).create(true).open(path) {
        Ok(_) if !existed => {
            let _ = remove_file(path);
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bad("its directory does not exist".into())
        }
        Err(e) => bad(format!("cannot be written ({e})")),
    }
}

fn extra_body(s: Option<&str>) -> Result<Map<String, Value>, Error> {
    match s {
        None => Ok(Map::new()),
        Some(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(Error::Input(
                "--extra-body: expected a JSON object, e.g. '{\"top_k\": 1}'".into(),
            )),
            Err(e) => Err(Error::Input(format!(
                "--extra-body: not valid JSON ({e}); expected an object, e.g. '{{\"top_k\": 1}}'"
            ))),
        },
    }
}

/// `--temperature` and `--top-p` go into every body as `--extra-body` keys would (the
/// body's own default is temperature 0); giving one both ways is ambiguous.
fn sampling(
    mut extra: Map<String, Value>,
    temperature: Option<f64>,
    top_p: Option<f64>,
) -> Result<Map<String, Value>, Error> {
    if let Some(t) = temperature
        && !(t.is_finite() && t >= 0.0)
    {
        return Err(Error::Input(format!(
            "--temperature {t}: expected a number ≥ 0 (0 = greedy)"
        )));
    }
    if let Some(p) = top_p
        && !(p > 0.0 && p <= 1.0)
    {
        return Err(Error::Input(format!(
            "--top-p {p}: expected a share in (0, 1], e.g. 0.9"
        )));
    }
    for (flag, key, value) in [
        ("--temperature", "temperature", temperature),
        ("--top-p", "top_p", top_p),
    ] {
        let Some(v) = value else { continue };
        if extra.contains_key(key) {
            return Err(Error::Input(format!(
                "{flag} and --extra-body both set \"{key}\"; give it once"
            )));
        }
        extra.insert(key.into(), serde_json::json!(v));
    }
    Ok(extra)
}

/// `--slice-s S`: seconds > 0, in whole steps of the 10 ms token timeline (so every
/// slice adds whole bins and its throughput is exact), at most a day.
fn slice_us(s: Option<f64>) -> Result<Option<u64>, Error> {
    let Some(s) = s else { return Ok(None) };
    let steps = s * 100.0;
    if !(s > 0.0 && s <= 86_400.0 && (steps - steps.round()).abs() < 1e-6) {
        return Err(Error::Input(format!(
            "--slice-s {s}: expected seconds > 0 and at most 86400, in steps of 0.01 (e.g. 1, 0.5, 10)"
        )));
    }
    let bin = crate::metrics::slices::BIN_US;
    Ok(Some(steps.round() as u64 * bin))
}

fn percentiles(s: &str) -> Result<Vec<f64>, Error> {
    parse_percentiles(s).map_err(|e| Error::Input(format!("--percentiles: {e}")))
}

fn slo(s: Option<&str>) -> Result<Option<Slo>, Error> {
    s.map(Slo::parse_arg).transpose().map_err(|e| {
        // Inline and unreadable values already name the flag; file errors name the file.
        let e = e.to_string();
        Error::Input(if e.starts_with("--slo") {
            e
        } else {
            format!("--slo: {e}")
        })
    })
}

fn sim(a: SimArgs) -> Result<SimSettings, Error> {
    let mut config = a.model.into_config().map_err(Error::Input)?;
    a.dcgm.apply(&mut config).map_err(Error::Input)?;
    Ok(SimSettings {
        config,
        host: a.host,
        port: a.port,
    })
}

fn report(a: ReportArgs) -> Result<ReportSettings, Error> {
    if let Some(html) = &a.html {
        html_out(html, None)?;
    }
    if a.attainment == Some(0.0) {
        return Err(Error::Input(
            "--attainment 0: expected a share in (0, 1], e.g. 0.99".into(),
        ));
    }
    Ok(ReportSettings {
        attainment: a.attainment,
        percentiles: percentiles(&a.percentiles.percentiles)?,
        slo: slo(a.slo.as_deref())?,
        dir: a.dir,
        rewrite: a.rewrite,
        html: a.html,
        slice_us: slice_us(a.slice.slice_s)?,
    })
}

fn compare(a: CompareArgs) -> Result<CompareSettings, Error> {
    if let Some(html) = &a.html {
        html_out(html, None)?;
    }
    Ok(CompareSettings {
        a: a.a,
        b: a.b,
        noise: a.noise,
        html: a.html,
    })
}

fn merge(a: MergeArgs) -> Result<MergeSettings, Error> {
    if let Some(html) = &a.html {
        html_out(html, Some(&a.output))?;
    }
    Ok(MergeSettings {
        percentiles: percentiles(&a.percentiles.percentiles)?,
        slo: slo(a.slo.as_deref())?,
        dirs: a.dirs,
        output: a.output,
        overwrite: a.overwrite,
        html: a.html,
    })
}
