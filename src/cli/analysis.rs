//! The flags of the commands that read saved results: report, compare, merge.

use std::path::PathBuf;

use clap::Args;

use super::values::{non_negative_f64, share};

/// `--percentiles`, shared by the load subcommands, report and merge.
#[derive(Args, Debug, Clone)]
pub struct PercentilesArg {
    /// Percentiles to report besides 50, 90, 99
    #[arg(long, value_name = "P,...", default_value = "50,90,99")]
    pub percentiles: String,
}

/// `--slice-s`, shared by the load subcommands and report.
#[derive(Args, Debug, Clone)]
pub struct SliceArg {
    /// Also cut each run into slices of S seconds from its start (a multiple of 0.01):
    /// output tok/s and latency percentiles per slice (results.json, slices.csv, HTML)
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub slice_s: Option<f64>,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A directory written with --output-dir, or a study's output directory (each
    /// configuration's runs on one page with --html)
    pub dir: PathBuf,
    #[command(flatten)]
    pub percentiles: PercentilesArg,
    #[command(flatten)]
    pub slice: SliceArg,
    /// Also rewrite DIR/results.json and DIR/summary.csv from the records
    #[arg(long)]
    pub rewrite: bool,
    /// Compute goodput under this SLO (a YAML file or inline `ttft_ms=500,tpot_ms=50`)
    #[arg(long, value_name = "FILE|K=V,...")]
    pub slo: Option<String>,
    /// Also write a self-contained HTML report (charts, tables, timelines) here
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// A capacity directory: judge every probe again against this share of requests
    /// meeting the SLO (--slo, or the one the probes ran with) [default: the search's]
    #[arg(long, value_name = "SHARE", value_parser = share)]
    pub attainment: Option<f64>,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The baseline: a result directory or its results.json. Alone: a study's output
    /// directory (its study.json, or result directories whose results carry the
    /// `config` metadata), every configuration lined up against the first
    pub a: PathBuf,
    /// The candidate, compared with A: a result directory or its results.json
    pub b: Option<PathBuf>,
    /// A change of at most this many percent either way is reported as noise
    #[arg(long, default_value_t = 5.0, value_name = "PERCENT", value_parser = non_negative_f64)]
    pub noise: f64,
    /// Also write the comparison as a self-contained HTML page here
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Result directories written with --output-dir by the processes that shared the
    /// workload (the same runs in each), e.g. the shards of --shard I/N
    #[arg(required = true, num_args = 2.., value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// The merged result directory (created; must not hold results already, unless
    /// --overwrite)
    #[arg(long, short, value_name = "OUT")]
    pub output: PathBuf,
    /// OUT already holds results: replace them
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub percentiles: PercentilesArg,
    /// Goodput under this SLO [default: the SLO the runs were made with, if any]
    #[arg(long, value_name = "FILE|K=V,...")]
    pub slo: Option<String>,
    /// Also write a self-contained HTML report of the merged results here
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
}
