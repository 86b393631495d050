//! servescope: benchmark LLM serving endpoints exactly and cheaply.
//!
//! Data flows one way: workload (what is sent) → schedule (when) → client (how) →
//! record (what happened) → metrics (numbers) → report (what people see). The
//! simulator stands beside it as the server the demo and the tests talk to.

#[macro_use]
pub mod console;
pub mod capacity;
pub mod cli;
pub mod client;
pub mod clock;
mod commands;
pub mod convert;
pub mod error;
pub mod feed;
pub mod metrics;
pub mod phases;
pub mod progress;
pub mod record;
pub mod recorder;
mod replay;
pub mod report;
pub mod schedule;
pub mod server_timings;
pub mod session;
pub mod settings;
pub mod shard;
pub mod shutdown;
pub mod sim;
pub mod start_at;
pub mod study;
pub mod sweep;
pub mod timer;
pub mod workload;
pub mod yaml;

use clap::Parser;

pub use cli::Cli;
pub use error::Error;
use session::SessionOutcome;
use settings::{CompareSettings, MergeSettings, ReportSettings, Settings, SimSettings};

/// What a command produced.
#[derive(Debug)]
pub enum Outcome {
    Session(SessionOutcome),
    Report(Vec<report::results::SavedRun>),
    /// Two result sets compared (boxed: it is much larger than the other outcomes).
    Compared(Box<report::compare::Comparison>),
    /// A study's configurations lined up against the first.
    StudyCompared(Box<report::study_compare::StudyComparison>),
    /// Result directories merged into one; its runs.
    Merged(Vec<report::results::SavedRun>),
    /// The simulator ran until stopped.
    Served,
    /// A dataset was converted.
    Converted,
    /// A completion script or man page was printed, or man pages written (their paths).
    Generated(Vec<std::path::PathBuf>),
    /// A JSON Schema, as printed.
    Schema(String),
    /// A study file's loads ran.
    Study(study::StudyOutcome),
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
    match Settings::from_cli(cli)? {
        Settings::Load(load) => commands::run(*load, argv).map(Outcome::Session),
        Settings::Sim(s) => run_sim(*s).map(|_| Outcome::Served),
        Settings::Report(s) => run_report(s).map(Outcome::Report),
        Settings::Compare(s) => run_compare(s),
        Settings::Merge(s) => run_merge(s, argv).map(Outcome::Merged),
        Settings::Study(s) => study::run(s).map(Outcome::Study),
        Settings::Convert(a) => {
            let report = convert::run(a).map_err(|e| match e {
                // The dataset was read but could not be written: exit 1, as for results.
                convert::ConvertError::Write { .. } => Error::Output(e.to_string()),
                _ => Error::Input(e.to_string()),
            })?;
            outln!("{report}");
            Ok(Outcome::Converted)
        }
        Settings::Completions(shell) => {
            console::out_bytes(&cli::shell::completions(shell));
            Ok(Outcome::Generated(Vec::new()))
        }
        Settings::Man { dir } => run_man(dir.as_deref()).map(Outcome::Generated),
        Settings::Schema(doc) => {
            let text = match doc {
                // Pretty-printing a Value cannot fail.
                settings::SchemaDoc::Study => {
                    serde_json::to_string_pretty(&study::schema::study()).unwrap_or_default() + "\n"
                }
                settings::SchemaDoc::Results => report::schema::results_schema(),
            };
            out!("{text}");
            Ok(Outcome::Schema(text))
        }
    }
}

/// `servescope man`: the main page to stdout, or every page into `--dir`.
fn run_man(dir: Option<&std::path::Path>) -> Result<Vec<std::path::PathBuf>, Error> {
    let Some(dir) = dir else {
        let page = cli::shell::man_page()
            .map_err(|e| Error::Output(format!("cannot render the man page: {e}")))?;
        console::out_bytes(&page);
        return Ok(Vec::new());
    };
    let pages = cli::shell::write_man_pages(dir)
        .map_err(|e| Error::Output(format!("man --dir {}: cannot write: {e}", dir.display())))?;
    errln!("{} man pages written to {}", pages.len(), dir.display());
    Ok(pages)
}

fn run_report(s: ReportSettings) -> Result<Vec<report::results::SavedRun>, Error> {
    let how = report::reanalyze::Reanalysis {
        percentiles: &s.percentiles,
        slo: s.slo.as_ref(),
        slice_us: s.slice_us,
        ..Default::default()
    };
    if let Some(set) = report::study_set::find(&s.dir)? {
        return report::study_report::report(&set, &s, how);
    }
    let runs = report::reanalyze::report(&s.dir, how, s.rewrite, s.attainment)?;
    if let Some(out) = &s.html {
        let opts = report::html::HtmlOptions {
            percentiles: &s.percentiles,
            slo: s.slo.as_ref(),
            slice_us: s.slice_us,
        };
        let bytes = report::html::write_report(&s.dir, out, opts)?;
        errln!(
            "HTML report: {} ({} KB)",
            out.display(),
            bytes.div_ceil(1024)
        );
    }
    Ok(runs)
}

fn run_compare(s: CompareSettings) -> Result<Outcome, Error> {
    let write = |out: &std::path::Path, html: String| {
        std::fs::write(out, html)
            .map_err(|e| Error::Output(format!("--html {}: cannot write: {e}", out.display())))?;
        errln!("HTML comparison: {}", out.display());
        Ok::<(), Error>(())
    };
    let Some(b) = &s.b else {
        let Some(set) = report::study_set::find(&s.a)? else {
            return Err(Error::Input(format!(
                "compare {}: expected a study's output directory (study.json, or result directories whose results carry --metadata config=...) when B is not given; or give A and B",
                s.a.display()
            )));
        };
        let c = report::study_compare::compare_study(&set, s.noise)?;
        out!("{}", c.render());
        if let Some(out) = &s.html {
            write(out, c.to_html())?;
        }
        return Ok(Outcome::StudyCompared(Box::new(c)));
    };
    let c = report::compare::compare(&s.a, b, s.noise)?;
    out!("{}", c.render());
    if let Some(out) = &s.html {
        write(out, report::compare_page::to_html(&c))?;
    }
    Ok(Outcome::Compared(Box::new(c)))
}

fn run_merge(s: MergeSettings, argv: &[String]) -> Result<Vec<report::results::SavedRun>, Error> {
    let runs = report::merge::merge(report::merge::MergeOptions {
        dirs: &s.dirs,
        out: &s.output,
        percentiles: &s.percentiles,
        slo: s.slo.as_ref(),
        argv,
        overwrite: s.overwrite,
    })?;
    if let Some(out) = &s.html {
        let opts = report::html::HtmlOptions {
            percentiles: &s.percentiles,
            slo: s.slo.as_ref(),
            slice_us: None,
        };
        let bytes = report::html::write_report(&s.output, out, opts)?;
        errln!(
            "HTML report: {} ({} KB)",
            out.display(),
            bytes.div_ceil(1024)
        );
    }
    Ok(runs)
}

fn run_sim(s: SimSettings) -> Result<(), Error> {
    let SimSettings { host, port, config } = s;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Server(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind((host.as_str(), port))
            .await
            .map_err(|e| Error::Input(format!("--host/--port {host}:{port}: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Server(e.to_string()))?;
        let adapters: Vec<&str> = config
            .lora_modules
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        let adapters = match adapters.is_empty() {
            true => String::new(),
            false => format!("; LoRA adapters {}", adapters.join(", ")),
        };
        outln!(
            "servescope sim listening on http://{addr} (model {}{adapters})",
            config.model
        );
        let dcgm = match &config.dcgm {
            Some(d) => {
                let l = tokio::net::TcpListener::bind((host.as_str(), d.port))
                    .await
                    .map_err(|e| Error::Input(format!("--dcgm-port {}: {e}", d.port)))?;
                let at = l.local_addr().map_err(|e| Error::Server(e.to_string()))?;
                outln!(
                    "DCGM-style exporter on http://{at}/metrics ({} GPU{}, {}-{} W)",
                    d.gpus,
                    if d.gpus == 1 { "" } else { "s" },
                    d.idle_w,
                    d.max_w
                );
                Some(l)
            }
            None => None,
        };
        sim::serve_with_dcgm(listener, dcgm, config)
            .await
            .map_err(|e| Error::Server(format!("simulator stopped: {e}")))
    })
}
