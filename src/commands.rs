//! The load subcommands: each turns its flags into a list of runs for one session.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::cli::{BatchArgs, ConcurrencyArgs, RateArgs, ThroughputArgs};
use crate::error::Error;
use crate::schedule::Load;
use crate::schedule::arrivals::{Span, rate_arrivals};
use crate::session::{Defaults, RunPlan, SessionOutcome, Source, run_session};
use crate::workload::synthetic::LengthSpec;

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

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
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
            mode: "batch",
            params: map(json!({"batch_size": b, "num_requests": b})),
            load: Load::AllAtOnce,
            requests: b,
            warmup: false,
        })
        .collect();
    let d = Defaults {
        input_len: LengthSpec::Range { lo: 1, hi: 8192 },
        output_len: LengthSpec::Range { lo: 16, hi: 1024 },
    };
    run_session(&a.load, Source::Args(d), plans, argv)
}

pub fn throughput(a: ThroughputArgs, argv: &[String]) -> Result<SessionOutcome, Error> {
    let n = a.load.num_requests.unwrap_or(256);
    positive("--num-requests", &[n])?;
    let plans = vec![RunPlan {
        label: "throughput".into(),
        mode: "throughput",
        params: map(json!({"num_requests": n})),
        load: Load::AllAtOnce,
        requests: n,
        warmup: true,
    }];
    let d = Defaults {
        input_len: LengthSpec::Range { lo: 100, hi: 1024 },
        output_len: LengthSpec::Range { lo: 100, hi: 1024 },
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
            mode: "concurrency",
            params: map(json!({"concurrency": c, "num_requests": n})),
            load: Load::ClosedLoop { concurrency: c },
            requests: n,
            warmup: false,
        })
        .collect();
    let d = Defaults {
        input_len: LengthSpec::Fixed(1024),
        output_len: LengthSpec::Fixed(256),
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
                mode: "rate",
                params: map(json!({
                    "rate": r.0,
                    "burstiness": a.burstiness,
                    "num_requests": offsets.len(),
                    "duration_s": a.duration,
                    "max_concurrency": a.max_concurrency,
                })),
                requests: offsets.len(),
                load: Load::OpenLoop {
                    offsets: Arc::new(offsets),
                    cap: a.max_concurrency,
                },
                warmup: false,
            }
        })
        .collect();
    let d = Defaults {
        input_len: LengthSpec::Fixed(1024),
        output_len: LengthSpec::Fixed(256),
    };
    run_session(&a.load, Source::Args(d), plans, argv)
}
