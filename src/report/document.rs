//! results.json as one typed document: every writer (a session's runs, `merge`) builds
//! a `ResultsDoc` and every reader (`report`, `compare`, the HTML pages, `merge`) gets
//! one back, so field names live here and nowhere else. The layout is the results
//! spec's; fields a newer writer adds are ignored when read.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::metrics::Summary;
use crate::metrics::ordered_map::OrderedMap;
use crate::record::FailureKind;
use crate::shard::Shard;

pub use super::run_params::{LengthRange, RunParams, ShardParams};

pub use super::findings::{
    CapacityDoc, CapacityLevel, CapacityProbe, InteractivityPoint, RepeatInterval, RepeatsDoc,
    RoundFigures, RoundRatios, RoundsDoc,
};

/// The `schema_version` this build writes. Files without the field were written before
/// it existed and are version 1, the same layout.
pub const SCHEMA_VERSION: u32 = 1;

/// DIR/results.json.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResultsDoc {
    /// Absent in files written before the field existed: read those as version 1
    /// (`ResultsDoc::version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<Tool>,
    /// RFC 3339, when the session (or the earliest merged part) started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The built-in simulator, not a real server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// `--api embeddings`: the prompts each request carried (`--batch-inputs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_inputs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Which synthetic prompt generator, when prompts were synthetic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic_prompts: Option<String>,
    /// `--shard I/N`, when the session sent only a part of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// The command line (the API key masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// `merge`: the directories merged, in the order given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<Vec<MergedFrom>>,
    /// Dual-round levels: every round against the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_round: Option<Vec<RoundsDoc>>,
    /// Levels run more than once (`--repeat`): each key metric's mean over the
    /// repeats, its 95 % Student-t interval and coefficient of variation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<Vec<RepeatsDoc>>,
    /// `merge` of shards: how many, and which were merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardsDoc>,
    /// `--append`: each later session that added runs to the directory (the header
    /// above, `command` included, is the first session's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appended: Option<Vec<Appended>>,
    /// `capacity`: the search's answer, bracket and probes (rewritten after each probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityDoc>,
    /// `--gpus N`: a label only, for the throughput per GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// `--metadata KEY=VALUE` labels in the order given (e.g. `config` for a study's
    /// server configuration); shown with each run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<OrderedMap<String, String>>,
    /// Throughput against interactivity, one point per run that has both (the Pareto
    /// chart's data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactivity: Option<Vec<InteractivityPoint>>,
    /// Output tokens counted with a tokenizer the user did not choose (the built-in
    /// default), because the server sent no usage: which runs, and the warning shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_counted_with: Option<CountedWith>,
    /// `--max-input-length`: the dataset prompts cut to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_prompts: Option<TruncatedPrompts>,
    #[serde(default)]
    pub runs: Vec<SavedRun>,
}

/// The tokenizer that counted output tokens for lack of usage, when not chosen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct CountedWith {
    pub tokenizer: String,
    /// Runs in which some requests' output tokens were counted with it.
    pub runs: Vec<String>,
    /// Whether the endpoint answered a tokenize route (`--tokenizer server` would work).
    pub server_can_tokenize: bool,
    pub warning: String,
}

/// `--max-input-length N`: how many of the dataset's prompts were longer and cut.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TruncatedPrompts {
    pub max_input_length: u64,
    pub truncated: u64,
    pub prompts: u64,
}

/// One `--append` session: when it started, its command line, the runs it added.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Appended {
    pub started: Option<String>,
    pub command: Option<Vec<String>>,
    pub runs: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl Tool {
    /// This build.
    pub fn this() -> Tool {
        Tool {
            name: "servescope".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// `--shard I/N` as saved.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardDoc {
    pub index: u32,
    pub count: u32,
}

impl From<Shard> for ShardDoc {
    fn from(s: Shard) -> Self {
        ShardDoc {
            index: s.index,
            count: s.count,
        }
    }
}

impl ShardDoc {
    /// The shard, when the numbers make one (index < count).
    pub fn shard(self) -> Option<Shard> {
        (self.index < self.count).then_some(Shard {
            index: self.index,
            count: self.count,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ShardsDoc {
    pub count: u32,
    pub merged: Vec<u32>,
}

/// One directory of a merge, with its header's identity and how far each of its runs
/// started after the earliest part of that run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MergedFrom {
    pub dir: String,
    pub started: Option<String>,
    pub endpoint: Option<String>,
    pub model: Option<String>,
    pub command: Option<Vec<String>>,
    pub shard: Option<ShardDoc>,
    pub run_offsets_s: OrderedMap<String, f64>,
}

/// One run as saved in results.json.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SavedRun {
    pub label: String,
    pub mode: RunMode,
    #[serde(default)]
    pub params: RunParams,
    /// Wall-clock start: RFC 3339 and UNIX seconds (0 in files that lack it).
    #[serde(default)]
    pub started: String,
    #[serde(default)]
    pub started_unix: f64,
    /// false: the run stopped before every planned request was sent and answered.
    /// Absent in files written before the field existed: complete (`is_complete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// Why an incomplete run stopped ("interrupted by SIGINT", ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// Requests the run was to send (this process's part when sharded), and those sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_planned: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_sent: Option<u64>,
    pub summary: Summary,
}

impl SavedRun {
    /// A run of a session: incomplete when it was stopped (`stopped` says why) with
    /// requests unsent or cancelled; a stop after its last request ended changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn of_session(
        label: String,
        mode: RunMode,
        params: RunParams,
        (started, started_unix): (String, f64),
        summary: Summary,
        planned: usize,
        stopped: Option<String>,
    ) -> SavedRun {
        let sent = summary.total;
        let cancelled = summary.failures.count(FailureKind::Cancelled);
        let cut_short = sent < planned as u64 || cancelled > 0;
        let incomplete_reason = stopped.filter(|_| cut_short);
        SavedRun {
            label,
            mode,
            params,
            started,
            started_unix,
            complete: Some(incomplete_reason.is_none()),
            incomplete_reason,
            requests_planned: Some(planned as u64),
            requests_sent: Some(sent),
            summary,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.complete.unwrap_or(true)
    }

    /// "INCOMPLETE: interrupted by SIGINT after 37 of 256 requests sent (4 cancelled)",
    /// for a run that did not finish.
    pub fn incomplete_note(&self) -> Option<String> {
        if self.is_complete() {
            return None;
        }
        let why = self
            .incomplete_reason
            .as_deref()
            .unwrap_or("the run did not finish");
        let sent = self.requests_sent.unwrap_or(self.summary.total);
        let mut note = match self.requests_planned {
            Some(planned) => format!("INCOMPLETE: {why} after {sent} of {planned} requests sent"),
            None => format!("INCOMPLETE: {why} ({sent} requests recorded)"),
        };
        let cancelled = self.summary.failures.count(FailureKind::Cancelled);
        if cancelled > 0 {
            note.push_str(&format!(
                " ({cancelled} cancelled at the end of the grace period)"
            ));
        }
        Some(note)
    }
}

/// How a run sent its requests; saved as the strings of the results spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunMode {
    Batch,
    Throughput,
    Concurrency,
    Rate,
    Trace,
    DualRound,
    /// `sweep`: a synchronous run, a max-throughput run, then open-loop rates between
    /// them; `params.sweep` tells which.
    Sweep,
    /// A mode this build does not know (a newer writer's), kept as written.
    Other(String),
}

/// Unknown: a run of a directory without results.json.
impl Default for RunMode {
    fn default() -> Self {
        RunMode::Other(String::new())
    }
}

impl RunMode {
    pub fn as_str(&self) -> &str {
        match self {
            RunMode::Batch => "batch",
            RunMode::Throughput => "throughput",
            RunMode::Concurrency => "concurrency",
            RunMode::Rate => "rate",
            RunMode::Trace => "trace",
            RunMode::DualRound => "dual-round",
            RunMode::Sweep => "sweep",
            RunMode::Other(s) => s,
        }
    }

    pub fn parse(s: &str) -> RunMode {
        match s {
            "batch" => RunMode::Batch,
            "throughput" => RunMode::Throughput,
            "concurrency" => RunMode::Concurrency,
            "rate" => RunMode::Rate,
            "trace" => RunMode::Trace,
            "dual-round" => RunMode::DualRound,
            "sweep" => RunMode::Sweep,
            other => RunMode::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for RunMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RunMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RunMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RunMode::parse(&String::deserialize(d)?))
    }
}

impl ResultsDoc {
    /// A new document of this build, without runs.
    pub fn new() -> ResultsDoc {
        ResultsDoc {
            schema_version: Some(SCHEMA_VERSION),
            tool: Some(Tool::this()),
            ..ResultsDoc::default()
        }
    }

    /// The layout version; files without the field are version 1.
    pub fn version(&self) -> u32 {
        self.schema_version.unwrap_or(1)
    }

    pub fn run(&self, label: &str) -> Option<&SavedRun> {
        self.runs.iter().find(|r| r.label == label)
    }

    /// `path` parsed: a syntax error is "not valid JSON", a wrong shape names the field.
    pub fn read(path: &Path) -> Result<ResultsDoc, ReadError> {
        let text = std::fs::read_to_string(path).map_err(ReadError::Io)?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ReadError::Invalid(format!("not valid JSON: {e}")))?;
        serde_json::from_value(value).map_err(|e| {
            ReadError::Invalid(format!(
                "not servescope results (expected the results spec's layout): {e}"
            ))
        })
    }

    /// Written whole via a temporary file and a rename (a reader never sees half).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        super::results::write_atomically(&dir.join("results.json"), text.as_bytes())
    }
}

/// Why results.json could not be read.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Invalid(String),
}

impl ReadError {
    /// As the input error of a command, naming the file.
    pub fn at(self, path: &Path) -> Error {
        match self {
            ReadError::Io(e) => Error::Input(format!("{}: {e}", path.display())),
            ReadError::Invalid(m) => Error::Input(format!("{}: {m}", path.display())),
        }
    }
}
