//! servebench: benchmark LLM serving endpoints exactly and cheaply.
//!
//! Data flows one way: workload (what is sent) → schedule (when) → client (how) →
//! record (what happened) → metrics (numbers) → report (what people see). The
//! simulator stands beside it as the server the demo and the tests talk to.

pub mod cli;
pub mod client;
pub mod clock;
pub mod error;
pub mod metrics;
pub mod progress;
pub mod record;
pub mod recorder;
pub mod report;
pub mod schedule;
pub mod session;
pub mod sim;
pub mod timer;
pub mod workload;

use clap::Parser;
use serde_json::json;

pub use cli::Cli;
pub use error::Error;
use schedule::Load;
use session::{Defaults, RunPlan, SessionOutcome, run_session};
use workload::synthetic::LengthSpec;

/// What a command produced.
#[derive(Debug)]
pub enum Outcome {
    Session(SessionOutcome),
    Report(Vec<report::results::SavedRun>),
    /// The simulator ran until stopped.
    Served,
}

/// Run a command from its arguments (argv[0] included), as the binary does. Tests call
/// this in-process.
pub fn run_args<I, T>(argv: I) -> Result<Outcome, Error>
where
    I: IntoIterator<Item = T>,
    T: Into<String>,
{
    let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
    let cli = Cli::try_parse_from(&argv).map_err(|e| Error::Input(e.to_string()))?;
    run(cli, &argv)
}

pub fn run(cli: Cli, argv: &[String]) -> Result<Outcome, Error> {
    use cli::Command;
    // Levels name their runs, and run labels must be unique within a result file.
    let positive = |flag: &str, v: &[usize]| -> Result<(), Error> {
        if v.is_empty() || v.contains(&0) {
            return Err(Error::Input(format!(
                "{flag}: expected a comma-separated list of positive integers"
            )));
        }
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
    };
    match cli.command {
        Command::Batch(a) => {
            positive("--batch-sizes", &a.batch_sizes)?;
            if a.load.num_requests.is_some() {
                return Err(Error::Input(
                    "--num-requests does not apply to batch: each batch size is its request count"
                        .into(),
                ));
            }
            let plans = a
                .batch_sizes
                .iter()
                .map(|&b| RunPlan {
                    label: format!("batch {b}"),
                    mode: "batch",
                    params: json_map(json!({"batch_size": b, "num_requests": b})),
                    load: Load::AllAtOnce,
                    requests: b,
                    warmup: false,
                })
                .collect();
            let d = Defaults {
                input_len: LengthSpec::Range { lo: 1, hi: 8192 },
                output_len: LengthSpec::Range { lo: 16, hi: 1024 },
            };
            run_session(&a.load, d, plans, argv).map(Outcome::Session)
        }
        Command::Throughput(a) => {
            let n = a.load.num_requests.unwrap_or(256);
            positive("--num-requests", &[n])?;
            let plans = vec![RunPlan {
                label: "throughput".into(),
                mode: "throughput",
                params: json_map(json!({"num_requests": n})),
                load: Load::AllAtOnce,
                requests: n,
                warmup: true,
            }];
            let d = Defaults {
                input_len: LengthSpec::Range { lo: 100, hi: 1024 },
                output_len: LengthSpec::Range { lo: 100, hi: 1024 },
            };
            run_session(&a.load, d, plans, argv).map(Outcome::Session)
        }
        Command::Concurrency(a) => {
            positive("--concurrency", &a.concurrency)?;
            let n = a.load.num_requests.unwrap_or(256);
            positive("--num-requests", &[n])?;
            let plans = a
                .concurrency
                .iter()
                .map(|&c| RunPlan {
                    label: format!("concurrency {c}"),
                    mode: "concurrency",
                    params: json_map(json!({"concurrency": c, "num_requests": n})),
                    load: Load::ClosedLoop { concurrency: c },
                    requests: n,
                    warmup: false,
                })
                .collect();
            let d = Defaults {
                input_len: LengthSpec::Fixed(1024),
                output_len: LengthSpec::Fixed(256),
            };
            run_session(&a.load, d, plans, argv).map(Outcome::Session)
        }
        Command::Sim(a) => run_sim(a).map(|_| Outcome::Served),
        Command::Report(a) => {
            let p = metrics::stats::parse_percentiles(&a.percentiles)
                .map_err(|e| Error::Input(format!("--percentiles: {e}")))?;
            report::reanalyze::report(&a.dir, &p, a.rewrite).map(Outcome::Report)
        }
    }
}

fn json_map(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn run_sim(a: cli::SimArgs) -> Result<(), Error> {
    let config = sim::SimConfig {
        model: a.model,
        ttft_base_ms: a.ttft_ms,
        prefill_ms_per_token: a.prefill_ms_per_token,
        tpot_ms: a.tpot_ms,
        tokens_per_chunk: a.tokens_per_chunk.max(1),
        role_chunk: !a.no_role_chunk,
        seed: a.seed,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Server(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind((a.host.as_str(), a.port))
            .await
            .map_err(|e| Error::Input(format!("--host/--port {}:{}: {e}", a.host, a.port)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Server(e.to_string()))?;
        println!(
            "servebench sim listening on http://{addr} (model {})",
            config.model
        );
        sim::serve(listener, config)
            .await
            .map_err(|e| Error::Server(format!("simulator stopped: {e}")))
    })
}
