//! What a command's flags mean once checked, defaulted and reconciled: the one value
//! the rest of the program reads. Only `cli` builds it (`Settings::from_cli`), where
//! every flag check, default and conflict lives; nothing here knows clap.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::client::openai::Api;
use crate::metrics::slo::Slo;
use crate::schedule::arrivals::{RampUp, Span, Warmup};
use crate::shard::Shard;
use crate::sim::SimConfig;
use crate::workload::synthetic::{LengthSpec, SyntheticKind};
use crate::workload::trace::TraceFormat;
use crate::workload::trace_file::Overflow;
use crate::workload::trace_reshape::Reshape;

/// One command, ready to run.
#[derive(Debug)]
pub enum Settings {
    /// A load subcommand: a benchmark session (boxed: much larger than the others).
    Load(Box<LoadSettings>),
    /// The simulator (boxed: its model is much larger than the other commands).
    Sim(Box<SimSettings>),
    Report(ReportSettings),
    Compare(CompareSettings),
    Merge(MergeSettings),
    /// `convert` still reads its own flags (they move under `cli` with its split).
    Convert(crate::convert::ConvertJob),
    /// `completions SHELL`: print the shell's completion script.
    Completions(CompletionShell),
    /// `man`: print the man page, or write every page into a directory.
    Man {
        dir: Option<std::path::PathBuf>,
    },
    /// `run STUDY.yaml`: the file is read and checked by `crate::study`.
    Study(StudySettings),
    /// `schema`: print a file's JSON Schema.
    Schema(SchemaDoc),
}

/// `servescope run`: the study file and the load flags given after it.
#[derive(Debug)]
pub struct StudySettings {
    pub file: std::path::PathBuf,
    /// Flags after the file, as typed: each replaces the file's value in every load
    /// whose mode takes it.
    pub overrides: Vec<String>,
}

/// The files whose JSON Schema `servescope schema` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaDoc {
    Study,
    Results,
}

/// A shell `servescope completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    PowerShell,
}

/// A load subcommand: which runs (`mode`) and how the session sends them.
#[derive(Debug)]
pub struct LoadSettings {
    pub mode: LoadMode,
    pub session: SessionSettings,
}

/// The runs of each load subcommand, checked and with their defaults filled in.
#[derive(Debug)]
pub enum LoadMode {
    Batch {
        sizes: Vec<usize>,
    },
    Throughput {
        num_requests: usize,
    },
    Concurrency {
        levels: Vec<usize>,
        num_requests: usize,
    },
    Rate(RateSettings),
    Trace(TraceSettings),
    DualRound(DualRoundSettings),
    /// `capacity`: a search for the largest level meeting the SLO.
    Capacity(CapacitySettings),
    Sweep(SweepSettings),
}

/// `sweep`: its rate runs' flags; the synchronous and max-throughput runs send
/// `num_requests` each.
#[derive(Debug)]
pub struct SweepSettings {
    /// Open-loop rates between the two measured ones.
    pub rates: usize,
    pub num_requests: usize,
    pub burstiness: f64,
    pub duration_s: Option<f64>,
    /// How many arrivals, or for how long, per rate run.
    pub span: Span,
    pub max_concurrency: Option<usize>,
}

#[derive(Debug)]
pub struct RateSettings {
    pub rates: Vec<Rate>,
    pub burstiness: f64,
    pub duration_s: Option<f64>,
    /// How many arrivals, or for how long, per rate.
    pub span: Span,
    pub max_concurrency: Option<usize>,
}

#[derive(Debug)]
pub struct TraceSettings {
    pub file: PathBuf,
    /// Forced by `--format`; else recognised from the file.
    pub format: Option<TraceFormat>,
    pub time_scales: Vec<f64>,
    pub limit: Option<usize>,
    /// `--block-size`; else the format's.
    pub block_size: Option<usize>,
    pub max_context: Option<u32>,
    pub overflow: Overflow,
    pub sessions: bool,
    pub max_concurrency: Option<usize>,
    /// `--model-filter`: BurstGPT rows of this model only.
    pub model_filter: Option<String>,
    /// The trace was given as a URL: downloaded once into a cache, then read there.
    pub url: Option<crate::workload::download::TraceUrl>,
    /// `--input-len`, `--output-len`, `--prompts`: the trace's lengths and sharing changed.
    pub reshape: Reshape,
}

#[derive(Debug)]
pub struct DualRoundSettings {
    pub levels: Vec<usize>,
    pub rounds: usize,
    /// Later rounds are shuffled (not `--no-shuffle`).
    pub shuffle: bool,
    /// The cache reset's URL and when it is called.
    pub reset_cache: Option<(String, ResetBetween)>,
    /// Requests from this trace instead of the prompt flags.
    pub trace: Option<PathBuf>,
    pub limit: Option<usize>,
    /// With `trace`: its lengths and sharing changed (`--input-len`, `--output-len`,
    /// `--prompts`).
    pub reshape: Reshape,
    /// `--num-requests`; else the trace's or the dataset's count, or 100.
    pub num_requests: Option<usize>,
}

/// `capacity`: what is searched and how finely. The SLO is the session's (required).
#[derive(Clone, Debug)]
pub struct CapacitySettings {
    pub by: CapacityBy,
    pub min: f64,
    pub max: f64,
    /// Relative gap at which bisection stops.
    pub resolution: f64,
    /// Repeats of a probe near the threshold.
    pub confirm: usize,
    /// Share of sent requests that must meet the SLO.
    pub attainment: f64,
    /// Requests per probe (a concurrency probe sends at least 2 × its level).
    pub num_requests: usize,
    /// Rate probes: arrivals' gamma shape, how long, and the in-flight cap.
    pub burstiness: f64,
    pub duration_s: Option<f64>,
    pub span: Span,
    pub max_concurrency: Option<usize>,
}

/// The load a capacity search varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityBy {
    Concurrency,
    Rate,
}

impl CapacityBy {
    pub fn as_str(self) -> &'static str {
        match self {
            CapacityBy::Concurrency => "concurrency",
            CapacityBy::Rate => "rate",
        }
    }
}

/// A request rate: requests per second, or `inf` (everything at once).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub Option<f64>);

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("inf") {
            return Ok(Rate(None));
        }
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Rate(Some(r))),
            _ => Err(format!("{s:?}: expected requests per second > 0, or inf")),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(r) => write!(f, "{r}"),
            None => f.write_str("inf"),
        }
    }
}

/// When `--reset-cache-url` is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetBetween {
    /// Before every round after the first (each round starts cold)
    Rounds,
    /// Before every concurrency level (each level starts cold; rounds share the cache)
    Levels,
    /// Both
    Both,
}

/// Everything a benchmark session needs besides its runs.
#[derive(Debug)]
pub struct SessionSettings {
    pub target: TargetSettings,
    pub workload: WorkloadSettings,
    pub run: RunSettings,
    pub output: OutputSettings,
}

/// The server and how requests reach it.
#[derive(Debug)]
pub struct TargetSettings {
    /// None: the built-in simulator, in-process.
    pub endpoint: Option<String>,
    /// None: the first model the server lists. With a `--model a,b` mix: its first name.
    pub model: Option<String>,
    /// `-H`: headers sent with every request to the server.
    pub headers: crate::client::headers::ExtraHeaders,
    pub api: Option<Api>,
    /// `--batch-inputs`: prompts per embeddings request (1 for the other APIs).
    pub batch_inputs: u32,
    pub api_key: Option<String>,
    /// Per request; None: never.
    pub timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub retries: u32,
    pub insecure: bool,
    /// Scrape the server's metrics (`--metrics` or `--metrics-url` given).
    pub metrics: Option<MetricsSettings>,
    /// `--profile` and its flags: the engine's profiler around each run.
    pub profile: Option<ProfileSettings>,
    /// `--sim-reasoning-tokens`: the built-in simulator's reasoning phase.
    pub sim_reasoning_tokens: Option<crate::sim::ReasoningTokens>,
    /// `--sim-image-tokens`: the built-in simulator's prompt tokens per image.
    pub sim_image_tokens: Option<u32>,
    /// `--sim-ignore-ignore-eos`: the built-in simulator does not honour `ignore_eos`.
    pub sim_ignore_ignore_eos: bool,
}

/// `--profile`: which routes start and stop the profiler, and over what.
#[derive(Clone, Debug, Default)]
pub struct ProfileSettings {
    /// `--profile-url-start` (a URL or a path); None: ROOT/start_profile.
    pub start: Option<String>,
    /// `--profile-url-stop`; None: ROOT/stop_profile.
    pub stop: Option<String>,
    /// `--profile-requests N`: only the first N measured requests; None: the whole run.
    pub requests: Option<usize>,
}

#[derive(Debug)]
pub struct MetricsSettings {
    /// Metric names and presets.
    pub names: String,
    /// None: the endpoint's /metrics.
    pub url: Option<String>,
    pub interval: Duration,
    /// Whether the server's own metrics are scraped (a plain `--metrics` or
    /// `--metrics-url`); `names` and `url` are its.
    pub engine: bool,
    /// `--metrics-url NAME=URL`: other sources, in the order given.
    pub sources: Vec<MetricSourceSettings>,
}

/// A metrics source beside the engine's own (`--metrics-url NAME=URL`).
#[derive(Debug)]
pub struct MetricSourceSettings {
    pub name: String,
    pub url: String,
    /// Metric names and presets (`--metrics NAME=...`, else the preset `name`).
    pub names: String,
}

/// What is sent.
#[derive(Debug)]
pub struct WorkloadSettings {
    pub tokenizer: Option<String>,
    /// `--max-input-length`: dataset prompts cut to this many tokens.
    pub max_input_length: Option<usize>,
    pub prompts: Prompts,
    /// max_tokens (not a trace's: it gives every request's, or `--output-len` replaces them
    /// through `TraceSettings::reshape`).
    pub output_len: LengthSpec,
    pub seed: u64,
    pub prompt_token_ids: bool,
    pub ignore_eos: bool,
    /// Merged into every request body last.
    pub extra_body: Map<String, Value>,
    /// `--tools`, checked; sent with every chat request without tools of its own.
    pub tools: Option<crate::workload::tools::ToolSet>,
    /// `--tool-choice`; a name is one of `--tools` (and of every dataset entry's tools).
    pub tool_choice: Option<crate::workload::tools::ToolChoice>,
    pub count_output_text: bool,
    pub prepare_ahead_mb: usize,
    /// `--model a,b --model-weights`: the mix of several models; None for one.
    pub models: Option<std::sync::Arc<crate::workload::models::ModelMix>>,
    /// `--images N`: synthetic images added to every request (chat and Responses APIs).
    pub images: Option<crate::workload::images::ImageSpec>,
}

/// Where prompts come from.
#[derive(Debug)]
pub enum Prompts {
    Synthetic {
        kind: SyntheticKind,
        input_len: LengthSpec,
    },
    Dataset {
        path: PathBuf,
        /// One request per user turn of a multi-turn entry, each with its history.
        expand_turns: bool,
    },
    /// A trace's lengths and hash-id prompts (the command reads the trace).
    Trace,
    /// `--shared-prefix`: groups of questions behind a shared system prompt each.
    SharedPrefix(crate::workload::shared_prefix::SharedPrefixSpec),
    /// `--sessions`: synthetic multi-turn sessions, each turn a new input of
    /// `input_len` tokens; the load counts sessions.
    Sessions {
        kind: SyntheticKind,
        input_len: LengthSpec,
        spec: crate::workload::chat::SessionSpec,
    },
}

/// How the runs go.
#[derive(Debug)]
pub struct RunSettings {
    pub max_error_rate: Option<f64>,
    pub shard: Shard,
    /// The first run starts at this instant.
    pub start_at: Option<SystemTime>,
    pub quiet: bool,
    /// How each run begins: its warm-up and its ramp to the target load.
    pub start: StartSettings,
    /// `--repeat`: runs per level (1: each level once).
    pub repeat: u32,
}

/// `--warmup N` / `--warmup-s S`, `--ramp-up` / `--ramp-up-s S`, checked for the mode
/// (`cli::start`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StartSettings {
    pub warmup: Option<usize>,
    pub warmup_s: Option<f64>,
    /// Rate runs only.
    pub ramp_up: Option<RampUp>,
    pub ramp_up_s: Option<f64>,
}

impl StartSettings {
    /// The warm-up asked for, with a time in µs.
    pub fn warmup_phase(&self) -> Warmup {
        match (self.warmup, self.warmup_s) {
            (Some(n), _) => Warmup::Requests(n),
            (None, Some(s)) => Warmup::Until((s * 1e6).min(u64::MAX as f64) as u64),
            (None, None) => Warmup::None,
        }
    }
}

/// What is written and printed.
#[derive(Debug)]
pub struct OutputSettings {
    pub dir: Option<PathBuf>,
    /// What to do when `dir` already holds results.
    pub existing: Existing,
    pub html: Option<PathBuf>,
    pub percentiles: Vec<f64>,
    pub slo: Option<Slo>,
    /// `--slice-s`, in µs (a multiple of the 10 ms token timeline).
    pub slice_us: Option<u64>,
    /// `--gpus`: a label, for throughput per GPU.
    pub gpus: Option<u32>,
    /// `--metadata KEY=VALUE` labels, in the order given.
    pub metadata: Option<crate::metrics::ordered_map::OrderedMap<String, String>>,
}

#[derive(Debug)]
pub struct SimSettings {
    pub host: String,
    pub port: u16,
    pub config: SimConfig,
}

/// `report DIR`.
#[derive(Debug)]
pub struct ReportSettings {
    pub dir: PathBuf,
    pub percentiles: Vec<f64>,
    pub rewrite: bool,
    pub slo: Option<Slo>,
    pub html: Option<PathBuf>,
    /// `--slice-s`, in µs; `None`: as each run was saved.
    pub slice_us: Option<u64>,
    /// `--attainment`: judge a capacity search's probes again against this target.
    pub attainment: Option<f64>,
}

/// `compare A B`.
#[derive(Debug)]
pub struct CompareSettings {
    pub a: PathBuf,
    /// Without B, A is a study's output directory.
    pub b: Option<PathBuf>,
    pub noise: f64,
    pub html: Option<PathBuf>,
}

/// `--output-dir` holding results already: refuse (the default), `--overwrite` or
/// `--append`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    #[default]
    Refuse,
    Overwrite,
    Append,
}

/// `merge DIR... -o OUT`.
#[derive(Debug)]
pub struct MergeSettings {
    pub dirs: Vec<PathBuf>,
    pub output: PathBuf,
    /// `--overwrite`: OUT may hold results already.
    pub overwrite: bool,
    pub percentiles: Vec<f64>,
    pub slo: Option<Slo>,
    pub html: Option<PathBuf>,
}
