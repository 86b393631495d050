//! `servebench trace FILE`: read the trace, fit it to `--max-context`, and plan one
//! open-loop replay per time scale.

use std::sync::Arc;

use serde_json::json;

use crate::cli::{Overflow, TraceArgs};
use crate::commands::check_levels;
use crate::error::Error;
use crate::schedule::Load;
use crate::schedule::arrivals::trace_offset;
use crate::schedule::sessions::link_parents;
use crate::session::{RunPlan, SessionOutcome, Source, run_session};
use crate::workload::trace::{TraceFormat, TraceRequest, read_trace};

/// How many requests `--max-context` changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fitted {
    pub clipped: usize,
    pub skipped: usize,
}

/// Make every request fit `max_context` tokens (input + output): clip it (the prompt
/// first; the output only if it alone does not fit) or leave it out.
pub fn fit_to_context(
    requests: &mut Vec<TraceRequest>,
    max_context: u32,
    overflow: Overflow,
    block_size: usize,
) -> Fitted {
    let mut fitted = Fitted::default();
    requests.retain_mut(|r| {
        if r.input_len as u64 + r.output_len as u64 <= max_context as u64 {
            return true;
        }
        match overflow {
            Overflow::Skip => {
                fitted.skipped += 1;
                false
            }
            Overflow::Clip => {
                fitted.clipped += 1;
                r.output_len = r.output_len.min(max_context.saturating_sub(1).max(1));
                r.input_len = max_context.saturating_sub(r.output_len).max(1);
                r.hash_ids
                    .truncate((r.input_len as usize).div_ceil(block_size));
                true
            }
        }
    });
    fitted
}

pub fn run_trace(a: TraceArgs, argv: &[String]) -> Result<SessionOutcome, Error> {
    check_levels("--time-scale", &a.time_scale)?;
    if a.limit == Some(0) || a.max_concurrency == Some(0) || a.block_size == Some(0) {
        return Err(Error::Input(
            "--limit, --max-concurrency and --block-size must be positive".into(),
        ));
    }
    let (format, mut requests) =
        read_trace(&a.file, a.format, a.limit).map_err(|e| Error::Input(e.to_string()))?;
    let block_size = a.block_size.unwrap_or(format.block_size());
    let fitted = match a.max_context {
        Some(0) => return Err(Error::Input("--max-context must be positive".into())),
        Some(n) => fit_to_context(&mut requests, n, a.on_overflow, block_size),
        None => Fitted::default(),
    };
    if fitted.clipped + fitted.skipped > 0 {
        eprintln!(
            "--max-context {}: {} requests clipped, {} skipped (of {} read)",
            a.max_context.unwrap_or(0),
            fitted.clipped,
            fitted.skipped,
            requests.len() + fitted.skipped
        );
    }
    if requests.is_empty() {
        return Err(Error::Input(format!(
            "{}: no request left to replay after --max-context",
            a.file.display()
        )));
    }
    if a.sessions && format != TraceFormat::Qwen {
        return Err(Error::Input(format!(
            "--sessions needs a Qwen trace (turns linked by parent_chat_id); {} is {}",
            a.file.display(),
            format.name()
        )));
    }
    if a.sessions {
        let linked = link_parents(&requests).iter().flatten().count();
        eprintln!(
            "--sessions: {linked} of {} turns continue an earlier turn's conversation",
            requests.len()
        );
    }
    let t_min = requests.iter().map(|r| r.timestamp_us).min().unwrap_or(0);
    let plans = a
        .time_scale
        .iter()
        .map(|&scale| {
            let offsets: Vec<u64> = requests
                .iter()
                .map(|r| trace_offset(r.timestamp_us, t_min, scale))
                .collect();
            RunPlan {
                label: format!("trace x{scale}"),
                mode: "trace",
                params: match json!({
                    "time_scale": scale,
                    "num_requests": requests.len(),
                    "max_concurrency": a.max_concurrency,
                    "trace": a.file.display().to_string(),
                    "format": format.name(),
                    "limit": a.limit,
                    "block_size": block_size,
                    "max_context": a.max_context,
                    "sessions": a.sessions,
                    "clipped": fitted.clipped,
                    "skipped": fitted.skipped,
                }) {
                    serde_json::Value::Object(m) => m,
                    _ => serde_json::Map::new(),
                },
                requests: offsets.len(),
                load: Load::OpenLoop {
                    offsets: Arc::new(offsets),
                    cap: a.max_concurrency,
                },
                warmup: false,
                ..RunPlan::default()
            }
        })
        .collect();
    let source = Source::Trace {
        requests: Arc::new(requests),
        block_size,
        sessions: a.sessions,
    };
    run_session(&a.load, source, plans, argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(input: u32, output: u32, blocks: usize) -> TraceRequest {
        TraceRequest {
            line: 1,
            timestamp_us: 0,
            input_len: input,
            output_len: output,
            hash_ids: (0..blocks as u64).collect(),
            chat_id: None,
            parent_chat_id: None,
            turn: None,
            kind: None,
        }
    }

    #[test]
    fn clip_and_skip() {
        let base = vec![req(100, 10, 7), req(1000, 50, 63), req(10, 5000, 1)];
        let mut clip = base.clone();
        let f = fit_to_context(&mut clip, 500, Overflow::Clip, 16);
        assert_eq!(
            f,
            Fitted {
                clipped: 2,
                skipped: 0
            }
        );
        assert_eq!((clip[0].input_len, clip[0].output_len), (100, 10));
        assert_eq!((clip[1].input_len, clip[1].output_len), (450, 50));
        assert_eq!(clip[1].hash_ids.len(), 29, "ceil(450 / 16) blocks kept");
        assert_eq!((clip[2].input_len, clip[2].output_len), (1, 499));
        let mut skip = base;
        let f = fit_to_context(&mut skip, 500, Overflow::Skip, 16);
        assert_eq!(
            f,
            Fitted {
                clipped: 0,
                skipped: 2
            }
        );
        assert_eq!(skip.len(), 1);
    }
}
