//! The `convert` command's flags.

use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    #[command(subcommand)]
    pub kind: ConvertKind,
}

#[derive(clap::Subcommand, Debug)]
pub enum ConvertKind {
    /// LongBench JSON Lines subsets (fields input, context, _id, dataset, ...) to prompts
    Longbench(LongbenchArgs),
    /// A ShareGPT JSON list ({"id", "conversations": [{"from", "value"}]}) to prompts
    Sharegpt(SharegptArgs),
}

#[derive(clap::Args, Debug)]
pub struct LongbenchArgs {
    /// LongBench JSON Lines files, e.g. data/hotpotqa.jsonl (one subset each, or mixed)
    #[arg(required = true, value_name = "IN")]
    pub inputs: Vec<PathBuf>,
    /// Where to write the prompts (JSON Lines)
    #[arg(short, long, value_name = "OUT.jsonl")]
    pub output: PathBuf,
    /// How an entry becomes a prompt; auto picks per subset (QA: context_question,
    /// summarisation: context_only, few-shot, synthetic and code: concatenate)
    #[arg(long, value_enum, default_value_t = LongbenchFormat::Auto)]
    pub format: LongbenchFormat,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(clap::Args, Debug)]
pub struct SharegptArgs {
    /// A ShareGPT JSON file (a list of conversations; JSON Lines also read)
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Where to write the prompts (JSON Lines)
    #[arg(short, long, value_name = "OUT.jsonl")]
    pub output: PathBuf,
    /// Write each conversation as chat messages up to its last user turn, instead of
    /// its first user turn as text
    #[arg(long)]
    pub multi_turn: bool,
    #[command(flatten)]
    pub sample: SampleArgs,
}

#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleArgs {
    /// Keep N entries chosen at random with --seed, in file order [default: all]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub num_samples: Option<u64>,
    /// Seed for choosing --num-samples entries: the same seed keeps the same entries
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// How a LongBench entry becomes a prompt.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum LongbenchFormat {
    /// Per subset, as the dual-round tool's converter chose
    Auto,
    /// `{context}\n\n问题: {input}`
    ContextQuestion,
    /// `{context}`
    ContextOnly,
    /// `{input}`
    QuestionOnly,
    /// `{context}\n{input}`
    Concatenate,
}
