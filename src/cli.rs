//! Command-line definitions only; each flag is defined once and shared by the load
//! subcommands through `LoadArgs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::client::openai::Api;
use crate::workload::synthetic::LengthSpec;

#[derive(Parser, Debug)]
#[command(
    name = "servebench",
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
    /// Run the built-in simulated OpenAI-compatible server
    Sim(SimArgs),
    /// Recompute and print the summaries of a saved result directory
    Report(ReportArgs),
}

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// Batch sizes, one run each
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "64",
        value_name = "N,..."
    )]
    pub batch_sizes: Vec<usize>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct ThroughputArgs {
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct ConcurrencyArgs {
    /// Concurrency levels, one run each
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "5,10,20",
        value_name = "N,..."
    )]
    pub concurrency: Vec<usize>,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Flags shared by every load subcommand.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Server to benchmark: a base (http://127.0.0.1:8000), an OpenAI base (.../v1) or a
    /// full route (.../v1/chat/completions). Default: the built-in simulator, in-process
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Model name to request [default: the first id of GET /v1/models]
    #[arg(long)]
    pub model: Option<String>,
    /// Which API to call [default: chat, or what a full --endpoint path names]
    #[arg(long, value_enum)]
    pub api: Option<Api>,
    /// Bearer token for the server; never printed or saved
    #[arg(
        long,
        env = "OPENAI_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// Hugging Face tokenizer.json (or a model directory holding one), or builtin:cl100k /
    /// builtin:o200k [default: builtin:cl100k, embedded, no network]
    #[arg(long, value_name = "PATH")]
    pub tokenizer: Option<String>,
    /// Prompt length in tokens: N or LO:HI (uniform) [default: batch 1:8192, throughput
    /// 100:1024, concurrency 1024]
    #[arg(long, value_name = "N|LO:HI")]
    pub input_len: Option<LengthSpec>,
    /// max_tokens per request: N or LO:HI [default: batch 16:1024, throughput 100:1024,
    /// concurrency 256]
    #[arg(long, value_name = "N|LO:HI")]
    pub output_len: Option<LengthSpec>,
    /// Requests per run [default: throughput 256, concurrency 256; batch: the batch size]
    #[arg(long, value_name = "N")]
    pub num_requests: Option<usize>,
    /// Seed for every random choice: the same seed sends the same requests
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prompts from a dataset file (.jsonl, .json list, or {"data": [...]}) instead of
    /// synthetic ones
    #[arg(long, value_name = "FILE")]
    pub dataset: Option<PathBuf>,
    /// Send prompts as token ids (completions API; vLLM and SGLang accept them)
    #[arg(long)]
    pub prompt_token_ids: bool,
    /// Do not send "ignore_eos": true (OpenAI itself rejects it); outputs may then end early
    #[arg(long)]
    pub no_ignore_eos: bool,
    /// JSON object merged into every request body last, e.g. '{"top_k": 1}'
    #[arg(long, value_name = "JSON")]
    pub extra_body: Option<String>,
    /// Give up on a request after this many seconds (0: never)
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS", allow_negative_numbers = true, value_parser = seconds)]
    pub timeout: f64,
    /// Write requests.jsonl (as requests finish), results.json and summary.csv here
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Percentiles to report besides 50, 90, 99
    #[arg(long, value_name = "P,...", default_value = "50,90,99")]
    pub percentiles: String,
    /// Accept invalid TLS certificates (self-signed test servers)
    #[arg(long)]
    pub insecure: bool,
    /// No progress display
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one and prints it)
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Model id the simulator serves
    #[arg(long, default_value = "servebench-sim")]
    pub model: String,
    /// Fixed part of the time to first token, ms
    #[arg(long, default_value_t = 15.0)]
    pub ttft_ms: f64,
    /// Prefill cost per prompt token, ms
    #[arg(long, default_value_t = 0.04)]
    pub prefill_ms_per_token: f64,
    /// Time per output token, ms
    #[arg(long, default_value_t = 10.0)]
    pub tpot_ms: f64,
    /// Output tokens per streamed chunk
    #[arg(long, default_value_t = 1)]
    pub tokens_per_chunk: u32,
    /// Do not send a role-only first chunk
    #[arg(long)]
    pub no_role_chunk: bool,
    /// Seed for output lengths when ignore_eos is off
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A directory written with --output-dir
    pub dir: PathBuf,
    /// Percentiles to report besides 50, 90, 99
    #[arg(long, value_name = "P,...", default_value = "50,90,99")]
    pub percentiles: String,
    /// Also rewrite DIR/results.json and DIR/summary.csv from the records
    #[arg(long)]
    pub rewrite: bool,
}

/// A duration in seconds: finite and not negative.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?}: expected a number of seconds ≥ 0")),
    }
}
