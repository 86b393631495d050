//! Every command-line definition, and the one place that turns them into
//! [`Settings`](crate::settings::Settings) ([`settings`]). Nothing past that point sees
//! a clap type.

pub mod analysis;
pub mod convert;
mod embeddings;
mod endpoint_flags;
pub mod load;
mod load_modes;
mod media;
mod metadata;
mod metric_sources;
mod profile;
mod prompts;
pub mod run;
pub mod schema;
pub mod sessions;
mod settings;
pub mod shell;
pub mod sim;
mod sim_spec;
mod start;
mod trace_url;
mod values;

use clap::{Parser, Subcommand};

pub use analysis::{CompareArgs, MergeArgs, ReportArgs};
pub use load::{
    BatchArgs, CapacityArgs, ConcurrencyArgs, DualRoundArgs, LoadArgs, RateArgs, SweepArgs,
    ThroughputArgs, TraceArgs,
};
pub use sim::{SimArgs, SimModelArgs};

#[derive(Parser, Debug)]
#[command(
    name = "servescope",
    version,
    about = "Benchmark LLM serving endpoints (vLLM, SGLang, TGI, llama.cpp, any OpenAI-compatible server)",
    long_about = "Benchmark LLM serving endpoints exactly: every request is streamed and every output event timed.\n\
                  Without --endpoint, a load subcommand benchmarks the built-in simulator."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Send each batch of requests all at once and wait for all (one run per size)
    Batch(BatchArgs),
    /// Offline throughput: one warm-up request, then every request at once
    Throughput(ThroughputArgs),
    /// Closed loop: keep N requests in flight (one run per level)
    Concurrency(ConcurrencyArgs),
    /// Open loop: requests at a rate, Poisson or gamma arrivals (one run per rate)
    Rate(RateArgs),
    /// Replay a request trace (Qwen/Bailian, Mooncake, Azure, BurstGPT) at its timestamps
    Trace(TraceArgs),
    /// Cache study: the same requests in two (or more) rounds, cold then warm, per
    /// concurrency level
    DualRound(DualRoundArgs),
    /// Find the largest load (concurrency or rate) that meets an SLO: grow ×2, then
    /// bisect; every probe is an ordinary run
    Capacity(CapacityArgs),
    /// Sweep: a synchronous run, a max-throughput run, then open-loop rates between
    /// their request rates (load curves and the throughput–interactivity chart)
    Sweep(SweepArgs),
    /// Run the built-in simulated OpenAI-compatible server
    Sim(SimArgs),
    /// Recompute and print the summaries of a saved result directory
    Report(ReportArgs),
    /// Compare two result sets run by run: B against A, with a verdict per metric
    Compare(CompareArgs),
    /// Merge result directories of one workload split across client processes or
    /// machines into one, lined up by wall-clock start
    Merge(MergeArgs),
    /// Convert datasets (LongBench, ShareGPT) into prompt files
    Convert(convert::ConvertArgs),
    /// Run a study file: its loads one after another, each saved under the study's
    /// output directory; flags after the file override its values
    Run(run::RunArgs),
    /// Print the JSON Schema of a file servescope reads (a study) or writes (results.json)
    Schema(schema::SchemaArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(shell::CompletionsArgs),
    /// Print the man page (roff), or write one page per command with --dir
    Man(shell::ManArgs),
}

impl Command {
    /// The shared load flags of a load subcommand; `None` for the other commands.
    pub fn load_args_mut(&mut self) -> Option<&mut LoadArgs> {
        match self {
            Command::Batch(a) => Some(&mut a.load),
            Command::Throughput(a) => Some(&mut a.load),
            Command::Concurrency(a) => Some(&mut a.load),
            Command::Rate(a) => Some(&mut a.load),
            Command::Trace(a) => Some(&mut a.load),
            Command::DualRound(a) => Some(&mut a.load),
            Command::Capacity(a) => Some(&mut a.load),
            Command::Sweep(a) => Some(&mut a.load),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "tests_settings.rs"]
mod tests;

#[cfg(test)]
#[path = "tests_small.rs"]
mod tests_small;
