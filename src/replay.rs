//! `servescope trace FILE`: check the trace in one streaming pass, then plan one
//! open-loop replay per time scale; each replay reads the file again as it goes.

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::report::document::{RunMode, RunParams};
use crate::schedule::{Arrivals, Load};
use crate::session::{RunPlan, Source};
use crate::settings::{DualRoundSettings, TraceSettings};
use crate::shutdown::Shutdown;
use crate::workload::trace::TraceFormat;
use crate::workload::trace_file::{Fit, ReadOptions, TraceFile};
use crate::workload::trace_reshape::{Reshape, TracePrompts};

/// Scan the trace (its flags are checked already) and plan one replay per time scale;
/// `seed` draws replaced lengths.
pub fn plan_trace(
    a: &TraceSettings,
    seed: u64,
    shutdown: &Shutdown,
) -> Result<(Source, Vec<RunPlan>), Error> {
    let (file, block_size) = scan(a, seed, shutdown)?;
    let requests = file.info().requests;
    let plans = a
        .time_scales
        .iter()
        .map(|&scale| RunPlan {
            label: format!("trace x{scale}"),
            mode: RunMode::Trace,
            params: RunParams {
                time_scale: Some(scale),
                ..run_params(a, &file, block_size)
            },
            requests,
            load: Load::OpenLoop {
                at: Arrivals::Trace { time_scale: scale },
                cap: a.max_concurrency,
            },
            warmup: false,
            ..RunPlan::default()
        })
        .collect();
    let source = Source::Trace {
        file: Arc::new(file),
        block_size,
        sessions: a.sessions,
    };
    Ok((source, plans))
}

/// The trace read once and checked whole, with its block size; what was left out,
/// replaced or clipped is said.
fn scan(a: &TraceSettings, seed: u64, shutdown: &Shutdown) -> Result<(TraceFile, usize), Error> {
    // A URL is read from its cached copy, downloaded first if need be.
    let path = match &a.url {
        Some(url) => crate::workload::download::fetch(url, shutdown)?,
        None => a.file.clone(),
    };
    // The block size depends on the format, known once the first line is read.
    let format = trace_format(&path, a.format)?;
    csv_flags(a, format)?;
    let block_size = a.block_size.unwrap_or(format.block_size());
    let fit = a.max_context.map(|max_context| Fit {
        max_context,
        overflow: a.overflow,
        block_size,
    });
    // A long trace takes a while to check: a signal ends that too.
    let stop = || shutdown.requested().is_some();
    let options = ReadOptions {
        format: Some(format),
        limit: a.limit,
        reshape: a.reshape,
        seed,
        block_size: Some(block_size),
        fit,
        model: a.model_filter.clone(),
        sessions: a.sessions,
    };
    let file = TraceFile::scan(&path, &options, &stop)
        .map_err(|e| Error::Input(e.to_string()))?
        .ok_or_else(|| shutdown.interrupted())?;
    let info = *file.info();
    left_out(a, &file)?;
    say_reshaped(&a.file, &a.reshape, a.sessions, &file);
    let fitted = info.fitted;
    if fitted.clipped + fitted.skipped > 0 {
        errln!(
            "--max-context {}: {} requests clipped, {} skipped (of {} read)",
            a.max_context.unwrap_or(0),
            fitted.clipped,
            fitted.skipped,
            info.requests + fitted.skipped
        );
    }
    if info.requests == 0 {
        return Err(Error::Input(format!(
            "{}: no request left to replay after --max-context",
            a.file.display()
        )));
    }
    Ok((file, block_size))
}

/// `dual-round --trace`: the trace read once and checked whole, its lengths and sharing
/// changed as asked.
pub fn scan_rounds(
    a: &DualRoundSettings,
    path: &Path,
    seed: u64,
    shutdown: &Shutdown,
) -> Result<TraceFile, Error> {
    // The format first: a flag it refuses is said before the whole file is read.
    let format = trace_format(path, None)?;
    check_prompts(path, &a.reshape, format)?;
    let stop = || shutdown.requested().is_some();
    let options = ReadOptions {
        format: Some(format),
        limit: a.limit,
        reshape: a.reshape,
        seed,
        ..ReadOptions::default()
    };
    let file = TraceFile::scan(path, &options, &stop)
        .map_err(|e| Error::Input(e.to_string()))?
        .ok_or_else(|| shutdown.interrupted())?;
    say_reshaped(path, &a.reshape, false, &file);
    Ok(file)
}

/// A trace's format: `forced`, else recognised from its first request.
fn trace_format(path: &Path, forced: Option<TraceFormat>) -> Result<TraceFormat, Error> {
    match forced {
        Some(f) => Ok(f),
        None => Ok(crate::workload::trace::TraceReader::open(path, None)
            .map_err(|e| Error::Input(e.to_string()))?
            .format()),
    }
}

/// A replay's params but its time scale.
fn run_params(a: &TraceSettings, file: &TraceFile, block_size: usize) -> RunParams {
    let (format, info) = (file.format(), file.info());
    RunParams {
        num_requests: Some(info.requests),
        max_concurrency: Some(a.max_concurrency),
        trace: Some(a.file.display().to_string()),
        format: Some(format.name().to_string()),
        limit: Some(a.limit),
        block_size: shares_blocks(format, &a.reshape).then_some(block_size),
        max_context: Some(a.max_context),
        sessions: Some(a.sessions),
        clipped: Some(info.fitted.clipped),
        skipped: Some(info.fitted.skipped),
        model_filter: a.model_filter.clone(),
        empty_rows: (!format.has_hash_ids()).then_some(info.left_out.empty),
        ..reshape_params(format, &a.reshape)
    }
}

/// Prompts built from the trace's hash ids (a JSON trace, without `--prompts unique`).
fn shares_blocks(format: TraceFormat, reshape: &Reshape) -> bool {
    format.has_hash_ids() && reshape.prompts != Some(TracePrompts::Unique)
}

/// What a trace run's params say of its lengths and prompts (also dual-round's).
pub fn reshape_params(format: TraceFormat, reshape: &Reshape) -> RunParams {
    let prompts = match shares_blocks(format, reshape) {
        true => TracePrompts::HashIds,
        false => TracePrompts::Unique,
    };
    RunParams {
        input_len: reshape.input_len.map(Into::into),
        output_len: reshape.output_len.map(Into::into),
        prompts: Some(prompts),
        ..RunParams::default()
    }
}

/// Says what replaced the trace's lengths, against what the file gave for the requests
/// replayed.
fn say_reshaped(path: &Path, reshape: &Reshape, sessions: bool, file: &TraceFile) {
    let info = file.info();
    let n = info.requests.max(1) as f64;
    let [own_in, own_out] = [info.own_input_tokens, info.own_output_tokens].map(|t| t as f64 / n);
    let mut said = Vec::new();
    if let Some(l) = reshape.input_len {
        let per_turn = match sessions {
            true => " per turn, after its conversation so far",
            false => "",
        };
        said.push(format!(
            "--input-len {l}{per_turn} (the trace's own mean {own_in:.0})"
        ));
    }
    if let Some(l) = reshape.output_len {
        said.push(format!(
            "--output-len {l} (the trace's own mean {own_out:.0})"
        ));
    }
    if reshape.prompts == Some(TracePrompts::Unique) {
        said.push(match sessions {
            true => "--prompts unique: no prompt shares a prefix with another but for its session's history".into(),
            false => "--prompts unique: no prompt shares a prefix with another".into(),
        });
    }
    if !said.is_empty() {
        errln!("trace {}: {}", path.display(), said.join("; "));
    }
}

/// `--prompts hash-ids` asked of a trace without hash ids: refused, not ignored.
fn check_prompts(path: &Path, reshape: &Reshape, format: TraceFormat) -> Result<(), Error> {
    if reshape.prompts == Some(TracePrompts::HashIds) && !format.has_hash_ids() {
        return Err(Error::Input(format!(
            "--prompts hash-ids needs a trace with hash ids (Qwen, Mooncake); {} is {format}, whose prompts are all distinct",
            path.display()
        )));
    }
    Ok(())
}

/// Flags that only some formats take, refused for the others (and `--block-size` with
/// prompts that use no blocks).
fn csv_flags(a: &TraceSettings, format: TraceFormat) -> Result<(), Error> {
    check_prompts(&a.file, &a.reshape, format)?;
    let file = a.file.display();
    if a.sessions && format != TraceFormat::Qwen {
        return Err(Error::Input(format!(
            "--sessions needs a Qwen trace (turns linked by parent_chat_id); {file} is {}",
            format.name()
        )));
    }
    if a.block_size.is_some() && a.reshape.prompts == Some(TracePrompts::Unique) {
        return Err(Error::Input(
            "--block-size sizes the trace's shared blocks; --prompts unique builds prompts without them: drop one of the two".into(),
        ));
    }
    if a.model_filter.is_some() && !format.has_models() {
        return Err(Error::Input(format!(
            "--model-filter needs a trace with a model per row (BurstGPT); {file} is {format}, which names none"
        )));
    }
    if a.block_size.is_some() && !format.has_hash_ids() {
        return Err(Error::Input(format!(
            "--block-size applies to traces with hash ids (Qwen, Mooncake); {file} is {format}, whose prompts are all distinct"
        )));
    }
    Ok(())
}

/// Says which CSV rows were left out; an error when none is left to replay.
fn left_out(a: &TraceSettings, file: &TraceFile) -> Result<(), Error> {
    let info = file.info();
    let out = info.left_out;
    if out.empty > 0 {
        errln!(
            "trace {}: {} rows with 0 request or response tokens (failed requests) left out",
            a.file.display(),
            out.empty
        );
    }
    if let Some(m) = &a.model_filter {
        if info.requests == 0 && out.other_model > 0 {
            return Err(Error::Input(format!(
                "--model-filter {m}: no row of {} names this model; its rows name {}",
                a.file.display(),
                file.models_seen().join(", ")
            )));
        }
        errln!(
            "--model-filter {m}: {} rows of other models left out",
            out.other_model
        );
    }
    if info.requests == 0 && out.empty == 0 && info.fitted.skipped == 0 {
        return Err(Error::Input(format!(
            "{}: no request to replay: the trace has a header but no rows",
            a.file.display()
        )));
    }
    if info.requests == 0 && out.empty > 0 {
        return Err(Error::Input(format!(
            "{}: no request to replay: every row has 0 request or response tokens",
            a.file.display()
        )));
    }
    Ok(())
}
