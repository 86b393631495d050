//! What `convert` is asked to do, as the settings give it (the flags are in
//! `cli::convert`).

use std::path::PathBuf;

/// One conversion.
#[derive(Debug)]
pub enum ConvertJob {
    Longbench(LongbenchJob),
    Sharegpt(SharegptJob),
}

/// LongBench JSON Lines subsets to prompts.
#[derive(Debug)]
pub struct LongbenchJob {
    pub inputs: Vec<PathBuf>,
    pub output: PathBuf,
    pub format: LongbenchFormat,
    pub sample: Sample,
}

/// A ShareGPT JSON list to prompts.
#[derive(Debug)]
pub struct SharegptJob {
    pub input: PathBuf,
    pub output: PathBuf,
    /// Chat messages up to the last user turn, instead of the first user turn as text.
    pub multi_turn: bool,
    pub sample: Sample,
}

/// Keep `num_samples` entries chosen at random with `seed`, in file order (all: None).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub num_samples: Option<u64>,
    pub seed: u64,
}

/// How a LongBench entry becomes a prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongbenchFormat {
    /// Per subset, as the dual-round tool's converter chose
    Auto,
    /// `{context}\n\nQuestion: {input}` (Chinese subsets: `问题: ` for `Question: `)
    ContextQuestion,
    /// `{context}`
    ContextOnly,
    /// `{input}`
    QuestionOnly,
    /// `{context}\n{input}`
    Concatenate,
}
