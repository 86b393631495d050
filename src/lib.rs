//! servescope: benchmark LLM serving endpoints exactly and cheaply.
//!
//! Data flows one way: workload (what is sent) → schedule (when) → client (how) →
//! record (what happened) → metrics (numbers) → report (what people see). The
//! simulator stands beside it as the server the demo and the tests talk to.

pub mod cli;
pub mod client;
pub mod clock;
mod commands;
pub mod convert;
pub mod error;
pub mod feed;
pub mod metrics;
pub mod progress;
pub mod record;
pub mod recorder;
mod replay;
pub mod report;
pub mod schedule;
pub mod session;
pub mod shard;
pub mod shutdown;
pub mod sim;
pub mod start_at;
pub mod timer;
pub mod workload;

use clap::Parser;

pub use cli::Cli;
pub use error::Error;
use session::SessionOutcome;

/// What a command produced.
#[derive(Debug)]
pub enum Outcome {
    Session(SessionOutcome),
    Report(Vec<report::results::SavedRun>),
    /// Two result sets compared (boxed: it is much larger than the other outcomes).
    Compared(Box<report::compare::Comparison>),
    /// Result directories merged into one; its runs.
    Merged(Vec<report::results::SavedRun>),
    /// The simulator ran until stopped.
    Served,
    /// A dataset was converted.
    Converted,
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
    match cli.command {
        Command::Batch(a) => commands::batch(a, argv).map(Outcome::Session),
        Command::Throughput(a) => commands::throughput(a, argv).map(Outcome::Session),
        Command::Concurrency(a) => commands::concurrency(a, argv).map(Outcome::Session),
        Command::Rate(a) => commands::rate(a, argv).map(Outcome::Session),
        Command::Trace(a) => replay::run_trace(a, argv).map(Outcome::Session),
        Command::DualRound(a) => commands::dual_round(a, argv).map(Outcome::Session),
        Command::Sim(a) => run_sim(a).map(|_| Outcome::Served),
        Command::Report(a) => {
            let (p, slo) = analysis_flags(&a.percentiles, a.slo.as_deref())?;
            let runs = report::reanalyze::report(&a.dir, &p, a.rewrite, slo.as_ref())?;
            if let Some(out) = &a.html {
                let opts = report::html::HtmlOptions {
                    percentiles: &p,
                    slo: slo.as_ref(),
                };
                let bytes = report::html::write_report(&a.dir, out, opts)?;
                eprintln!(
                    "HTML report: {} ({} KB)",
                    out.display(),
                    bytes.div_ceil(1024)
                );
            }
            Ok(Outcome::Report(runs))
        }
        Command::Compare(a) => {
            let c = report::compare::compare(&a.a, &a.b, a.noise)?;
            print!("{}", c.render());
            if let Some(out) = &a.html {
                std::fs::write(out, report::compare_page::to_html(&c)).map_err(|e| {
                    Error::Output(format!("--html {}: cannot write: {e}", out.display()))
                })?;
                eprintln!("HTML comparison: {}", out.display());
            }
            Ok(Outcome::Compared(Box::new(c)))
        }
        Command::Merge(a) => {
            let (p, slo) = analysis_flags(&a.percentiles, a.slo.as_deref())?;
            let runs = report::merge::merge(report::merge::MergeOptions {
                dirs: &a.dirs,
                out: &a.output,
                percentiles: &p,
                slo: slo.as_ref(),
                argv,
            })?;
            if let Some(out) = &a.html {
                let opts = report::html::HtmlOptions {
                    percentiles: &p,
                    slo: slo.as_ref(),
                };
                let bytes = report::html::write_report(&a.output, out, opts)?;
                eprintln!(
                    "HTML report: {} ({} KB)",
                    out.display(),
                    bytes.div_ceil(1024)
                );
            }
            Ok(Outcome::Merged(runs))
        }
        Command::Convert(a) => {
            let report = convert::run(a).map_err(|e| match e {
                // The dataset was read but could not be written: exit 1, as for results.
                convert::ConvertError::Write { .. } => Error::Output(e.to_string()),
                _ => Error::Input(e.to_string()),
            })?;
            println!("{report}");
            Ok(Outcome::Converted)
        }
    }
}

/// `--percentiles` and `--slo` of the commands that recompute summaries.
fn analysis_flags(
    percentiles: &str,
    slo: Option<&str>,
) -> Result<(Vec<f64>, Option<metrics::slo::Slo>), Error> {
    let p = metrics::stats::parse_percentiles(percentiles)
        .map_err(|e| Error::Input(format!("--percentiles: {e}")))?;
    let slo = slo
        .map(metrics::slo::Slo::parse_arg)
        .transpose()
        .map_err(|e| Error::Input(format!("--slo: {e}")))?;
    Ok((p, slo))
}

fn run_sim(a: cli::SimArgs) -> Result<(), Error> {
    let config = a.model.into_config().map_err(Error::Input)?;
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
            "servescope sim listening on http://{addr} (model {})",
            config.model
        );
        sim::serve(listener, config)
            .await
            .map_err(|e| Error::Server(format!("simulator stopped: {e}")))
    })
}
