//! The `convert` command's flags, and the conversion job they describe.

use std::path::PathBuf;

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::convert::{ConvertJob, LongbenchFormat, LongbenchJob, Sample, SharegptJob};

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

impl ConvertArgs {
    /// The conversion the flags ask for.
    pub(crate) fn into_job(self) -> ConvertJob {
        let sample = |s: SampleArgs| Sample {
            num_samples: s.num_samples,
            seed: s.seed,
        };
        match self.kind {
            ConvertKind::Longbench(a) => ConvertJob::Longbench(LongbenchJob {
                inputs: a.inputs,
                output: a.output,
                format: a.format,
                sample: sample(a.sample),
            }),
            ConvertKind::Sharegpt(a) => ConvertJob::Sharegpt(SharegptJob {
                input: a.input,
                output: a.output,
                multi_turn: a.multi_turn,
                sample: sample(a.sample),
            }),
        }
    }
}

impl ValueEnum for LongbenchFormat {
    fn value_variants<'a>() -> &'a [Self] {
        use LongbenchFormat::*;
        &[
            Auto,
            ContextQuestion,
            ContextOnly,
            QuestionOnly,
            Concatenate,
        ]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            LongbenchFormat::Auto => "Per subset, as the dual-round tool's converter chose",
            LongbenchFormat::ContextQuestion => {
                "`{context}\\n\\nQuestion: {input}` (Chinese subsets: `问题: {input}`)"
            }
            LongbenchFormat::ContextOnly => "`{context}`",
            LongbenchFormat::QuestionOnly => "`{input}`",
            LongbenchFormat::Concatenate => "`{context}\\n{input}`",
        };
        Some(PossibleValue::new(self.as_str()).help(help))
    }
}
