//! `servescope sim`: the simulator's settings as command-line flags, optionally over a
//! JSON file; [`SimModelArgs::into_config`] turns them into the simulator's plain
//! [`SimConfig`].
//!
//! Every flag is optional so that only the flags given override the file (or the
//! defaults); defaults are therefore written in the help text rather than by clap.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches, value_parser};

use crate::sim::{
    EngineConfig, FaultConfig, FaultKind, ReasoningField, ReasoningTokens, SimConfig,
};

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one and prints it)
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    #[command(flatten)]
    pub model: SimModelArgs,
    #[command(flatten)]
    pub dcgm: DcgmArgs,
}

/// The DCGM-style exporter (`sim/dcgm.rs`).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Simulator: GPU telemetry (a DCGM-style exporter)")]
pub struct DcgmArgs {
    /// Serve a DCGM-style exporter's /metrics on this port (0 picks a free one): per
    /// GPU, power that follows the load, an energy counter, utilisation, memory used
    #[arg(long, value_name = "PORT")]
    pub dcgm_port: Option<u16>,
    /// Simulated GPUs the exporter shows [default: 1]
    #[arg(long, value_name = "N", requires = "dcgm_port")]
    pub gpus: Option<u32>,
    /// Each GPU's power idle and at full load, in W [default: 80,700]
    #[arg(long, value_name = "IDLE,MAX", requires = "dcgm_port")]
    pub gpu_watts: Option<String>,
}

impl DcgmArgs {
    /// Set `cfg.dcgm` from the flags (over a `dcgm` section of --config).
    pub fn apply(&self, cfg: &mut crate::sim::SimConfig) -> Result<(), String> {
        let Some(port) = self.dcgm_port else {
            return Ok(());
        };
        let mut d = cfg.dcgm.clone().unwrap_or_default();
        d.port = port;
        d.gpus = self.gpus.unwrap_or(d.gpus);
        if let Some(w) = &self.gpu_watts {
            let parsed = w
                .split_once(',')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
            let Some((idle, max)) = parsed else {
                return Err(format!(
                    "--gpu-watts {w}: expected IDLE,MAX in W, e.g. 80,700"
                ));
            };
            (d.idle_w, d.max_w) = (idle, max);
        }
        d.validate()?;
        cfg.dcgm = Some(d);
        Ok(())
    }
}

const IDEAL: &str = "Simulator: ideal timetable (--ideal)";
const ENGINE: &str = "Simulator: engine model (default)";
const FAULTS: &str = "Simulator: faults (by rate and/or on request ordinals)";

/// Flatten into a subcommand with `#[command(flatten)] model: SimModelArgs`, then
/// call [`SimModelArgs::into_config`].
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SimModelArgs {
    /// JSON object of settings: SimConfig's fields, with the engine's under "engine"
    /// (null = ideal timetable); unknown keys are errors; flags override the file
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Model id the simulator serves [default: servescope-sim]
    #[arg(long)]
    pub model: Option<String>,
    /// LoRA adapters served beside --model, as vLLM's --lora-modules: each listed in
    /// /v1/models and answering under its own name; @MS delays each of its requests'
    /// start by MS ms (its TTFT shows the adapter's cost). With any, a request naming a
    /// model not served gets vLLM's 404
    #[arg(long, value_name = "NAME[=PATH][@MS],...", value_delimiter = ',', value_parser = crate::sim::LoraModule::parse)]
    pub lora_modules: Vec<crate::sim::LoraModule>,
    /// Output tokens per streamed chunk, >1 mimics speculative decoding [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tokens_per_chunk: Option<u32>,
    /// Do not send a role-only first chunk
    #[arg(long)]
    pub no_role_chunk: bool,
    /// Speculative decoding: each decode step proposes K draft tokens and streams the
    /// accepted ones and a bonus token in one event; vLLM's spec_decode counters on
    /// /metrics [default: off]
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=crate::sim::MAX_SPEC_TOKENS as i64))]
    pub spec_tokens: Option<u32>,
    /// With --spec-tokens: the chance each draft token is accepted, given the ones
    /// before it were (accepted one by one until the first rejection) [default: 0.7]
    #[arg(long, value_name = "P", value_parser = rate)]
    pub acceptance: Option<f64>,
    /// Stream llama.cpp-style server timings (`timings`: prompt_n, prompt_ms, cache_n,
    /// predicted_n, predicted_ms) in each stream's last chunk
    #[arg(long)]
    pub timings: bool,
    /// Close the connection right after each streamed response, without
    /// `Connection: close` (as llama.cpp's server does)
    #[arg(long)]
    pub close_after_stream: bool,
    /// Share of requests carrying tools (tool_choice auto or unset) answered with a
    /// tool call, drawn from the seed and the prompt; "required" or a named tool always
    /// call one, "none" never [default: 1]
    #[arg(long, value_name = "P", value_parser = rate)]
    pub tool_call_share: Option<f64>,
    /// Seed for output lengths when ignore_eos is off [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// Chat answers start with N reasoning tokens (LO:HI: drawn per request from the
    /// seed and prompt), streamed as reasoning deltas; they count toward max_tokens
    /// [default: no reasoning]
    #[arg(long, value_name = "N|LO:HI", value_parser = ReasoningTokens::parse)]
    pub reasoning_tokens: Option<ReasoningTokens>,
    /// The delta field reasoning streams in: reasoning_content (vLLM's) or reasoning
    /// (newer vLLM's) [default: reasoning_content]
    #[arg(long, value_name = "FIELD", value_parser = ReasoningField::parse)]
    pub reasoning_field: Option<ReasoningField>,
    /// Length of the vectors /v1/embeddings answers with (a request's "dimensions"
    /// overrides it) [default: 384]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub embedding_dim: Option<u32>,
    /// Prompt tokens each image content part costs (chat image_url, Responses
    /// input_image), reported in usage.prompt_tokens [default: 576]
    #[arg(long, value_name = "N")]
    pub image_tokens: Option<u32>,
    /// How long each /start_profile and /stop_profile call takes to answer, ms (a real
    /// engine's stop writes its trace first) [default: 0]
    #[arg(long, value_name = "MS", value_parser = ms)]
    pub profile_delay_ms: Option<f64>,
    /// Slots GET /slots lists, llama.cpp-style; POST /slots/ID?action=erase on every
    /// one empties the prefix cache [default: 4]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub slots: Option<u32>,
    /// Do not honour "ignore_eos": outputs stop at a natural end drawn from the seed and
    /// the prompt, as on a server that ignores the field (servescope flags the run)
    #[arg(long)]
    pub ignore_ignore_eos: bool,
    /// Prefill cost per prompt token, ms [default: 0.033 for the engine, 0.04 with --ideal]
    #[arg(long, value_name = "MS", value_parser = ms)]
    pub prefill_ms_per_token: Option<f64>,

    /// Give each request its own fixed timetable (no queueing, batching or cache)
    #[arg(long, help_heading = IDEAL)]
    pub ideal: bool,
    /// Fixed part of the time to first token, ms [default: 15]
    #[arg(long, value_name = "MS", value_parser = ms, help_heading = IDEAL)]
    pub ttft_ms: Option<f64>,
    /// Time per output token, ms [default: 10]
    #[arg(long, value_name = "MS", value_parser = ms, help_heading = IDEAL)]
    pub tpot_ms: Option<f64>,

    /// Most requests running at once [default: 256]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = ENGINE)]
    pub max_num_seqs: Option<u32>,
    /// Tokens per step: prefill chunks + one per decoding request [default: 8192]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = ENGINE)]
    pub max_num_batched_tokens: Option<u32>,
    /// KV cache size in tokens [default: 450000]
    #[arg(long, value_name = "TOKENS", help_heading = ENGINE)]
    pub kv_capacity_tokens: Option<u64>,
    /// Tokens per KV block, the prefix cache's unit [default: 16]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = ENGINE)]
    pub block_size: Option<u32>,
    /// Longest prompt + max_tokens accepted (longer: HTTP 400) [default: 131072]
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1..), help_heading = ENGINE)]
    pub max_model_len: Option<u32>,
    /// Turn the prefix cache off
    #[arg(long, help_heading = ENGINE)]
    pub no_prefix_caching: bool,
    /// Fixed cost of every step, ms [default: 6]
    #[arg(long, value_name = "MS", value_parser = ms, help_heading = ENGINE)]
    pub step_base_ms: Option<f64>,
    /// Cost per decoding request in a step, ms [default: 0.03]
    #[arg(long, value_name = "MS", value_parser = ms, help_heading = ENGINE)]
    pub decode_ms_per_seq: Option<f64>,
    /// Cost per 1000 context tokens of the decoding requests in a step, ms [default: 0.05]
    #[arg(long, value_name = "MS", value_parser = ms, help_heading = ENGINE)]
    pub kv_read_ms_per_1k_tokens: Option<f64>,

    /// Seed of the fault draws, so the same requests fail in every run. A request gets
    /// at most one fault: a scheduled one (-at) first, else one by rate; between
    /// kinds, the first in this list wins [default: 0]
    #[arg(long, value_name = "N", help_heading = FAULTS)]
    pub fault_seed: Option<u64>,
    #[command(flatten)]
    pub faults: FaultFlags,
}

/// The flags of each fault kind, from its row of the kind table (`FaultKind::info`): its
/// share of requests, its ordinals and its own setting if it has one, in the table's
/// order. `Args` is written by hand so that a new kind needs only a new row.
#[derive(Debug, Clone, Default)]
pub struct FaultFlags([KindFlags; FaultKind::ALL.len()]);

/// One kind's flags as given, indexed like `FaultKind::ALL`.
#[derive(Debug, Clone, Default)]
struct KindFlags {
    rate: Option<f64>,
    at: Option<Vec<u64>>,
    param: Option<u64>,
}

/// A fault flag taking one value (the flag is its own id).
fn fault_arg(long: &'static str, value_name: &'static str, help: String) -> Arg {
    Arg::new(long)
        .long(long)
        .value_name(value_name)
        .help(help)
        .help_heading(FAULTS)
        .action(ArgAction::Set)
}

impl Args for FaultFlags {
    fn augment_args(mut cmd: Command) -> Command {
        for kind in FaultKind::ALL {
            let k = kind.info();
            let at_help = format!(
                "Request ordinals that get {}: completion requests in arrival order from 0 \
                 (servescope's connection test is 0)",
                k.at_what
            );
            cmd = cmd
                .arg(
                    fault_arg(k.rate_flag, "RATE", format!("{} [default: 0]", k.rate_help))
                        .value_parser(rate),
                )
                .arg(
                    fault_arg(k.at_flag, "N,...", at_help)
                        .value_parser(value_parser!(u64))
                        .value_delimiter(',')
                        .action(ArgAction::Append),
                );
            if let Some(p) = &k.param {
                let arg = fault_arg(p.long, p.value_name, p.help.to_string());
                cmd = cmd.arg(arg.value_parser(value_parser!(u64)));
            }
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for FaultFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = FaultFlags::default();
        flags.update_from_arg_matches(m)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for (kind, given) in FaultKind::ALL.into_iter().zip(&mut self.0) {
            let k = kind.info();
            if let Some(&rate) = m.get_one::<f64>(k.rate_flag) {
                given.rate = Some(rate);
            }
            if let Some(at) = m.get_many::<u64>(k.at_flag) {
                given.at = Some(at.copied().collect());
            }
            if let Some(&v) = k.param.as_ref().and_then(|p| m.get_one::<u64>(p.long)) {
                given.param = Some(v);
            }
        }
        Ok(())
    }
}

impl FaultFlags {
    /// The flags over `f`; returns the kinds whose rate a flag set.
    fn apply(&self, f: &mut FaultConfig) -> BTreeSet<FaultKind> {
        let mut rate_given = BTreeSet::new();
        for (kind, given) in FaultKind::ALL.into_iter().zip(&self.0) {
            let spec = f.spec_mut(kind);
            if let Some(rate) = given.rate {
                spec.rate = rate;
                rate_given.insert(kind);
            }
            if let Some(at) = &given.at {
                // A flag replaces the file's schedule rather than adding to it.
                spec.at = at.iter().copied().collect();
            }
            if let (Some(p), Some(v)) = (&kind.info().param, given.param) {
                (p.set)(f, v);
            }
        }
        rate_given
    }
}

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a probability from 0 to 1, got {s:?}")),
    }
}

fn ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("expected a number of milliseconds ≥ 0, got {s:?}")),
    }
}

/// A setting's flag, from its field name.
fn flag(field: &str) -> String {
    match field {
        "prefix_caching" => "--no-prefix-caching".to_string(),
        "role_chunk" => "--no-role-chunk".to_string(),
        "ttft_base_ms" => "--ttft-ms".to_string(),
        _ => format!("--{}", field.replace('_', "-")),
    }
}

impl SimModelArgs {
    /// The settings: defaults, then the file, then the flags. Errors name the flag or
    /// the file's key, and what was expected.
    pub fn into_config(self) -> Result<SimConfig, String> {
        let (mut cfg, file) = match &self.config {
            None => (SimConfig::default(), None),
            Some(path) => {
                let (cfg, keys) = load(path)?;
                (cfg, Some((path.display().to_string(), keys)))
            }
        };
        let mut given = BTreeSet::new();
        if self.ideal {
            cfg.engine = None;
        }
        if let Some(v) = &self.model {
            cfg.model = v.clone();
        }
        if !self.lora_modules.is_empty() {
            cfg.lora_modules = self.lora_modules.clone();
        }
        crate::sim::check_served(&cfg)?;
        cfg.tokens_per_chunk = self.tokens_per_chunk.unwrap_or(cfg.tokens_per_chunk);
        cfg.role_chunk &= !self.no_role_chunk;
        cfg.timings |= self.timings;
        cfg.close_after_stream |= self.close_after_stream;
        cfg.ignore_ignore_eos |= self.ignore_ignore_eos;
        cfg.seed = self.seed.unwrap_or(cfg.seed);
        if let Some(p) = self.tool_call_share {
            cfg.tool_call_share = p;
            given.insert("tool_call_share");
        }
        cfg.reasoning_tokens = self.reasoning_tokens.or(cfg.reasoning_tokens);
        cfg.reasoning_field = self.reasoning_field.unwrap_or(cfg.reasoning_field);
        if let Some(r) = cfg.reasoning_tokens
            && r.min > r.max
        {
            return Err(format!(
                "\"reasoning_tokens\" in --config: min {} exceeds max {}",
                r.min, r.max
            ));
        }
        self.apply_spec(&mut cfg, file.as_ref())?;
        cfg.embedding_dim = self.embedding_dim.unwrap_or(cfg.embedding_dim);
        cfg.image_tokens = self.image_tokens.unwrap_or(cfg.image_tokens);
        if let Some(ms) = self.profile_delay_ms {
            cfg.profile_delay_ms = ms;
            given.insert("profile_delay_ms");
        }
        if let Some(n) = self.slots {
            cfg.slots = n;
            given.insert("slots");
        }
        if !(1..=16_384).contains(&cfg.embedding_dim) {
            return Err(format!(
                "{}: expected 1 to 16384, got {}",
                if self.embedding_dim.is_some() {
                    "--embedding-dim".to_string()
                } else {
                    "\"embedding_dim\" in the --config file".to_string()
                },
                cfg.embedding_dim
            ));
        }
        match &mut cfg.engine {
            Some(e) => self.apply_engine(e, &mut given)?,
            None => self.apply_ideal(&mut cfg, file.as_ref(), &mut given)?,
        }
        // A field is named by the flag that set it, else by the file's key, else as a default.
        let name = |field: &'static str| match &file {
            _ if given.contains(field) => flag(field),
            Some((path, keys)) if keys.contains(field) => format!("\"{field}\" in {path}"),
            _ => format!("{} (default)", flag(field)),
        };
        match &cfg.engine {
            Some(e) => e.check(name)?,
            None => check_ideal(&cfg, name)?,
        }
        check_routes(&cfg, name)?;
        cfg.faults.seed = self.fault_seed.unwrap_or(cfg.faults.seed);
        let faults_given = self.faults.apply(&mut cfg.faults);
        let fault_name = |kind: FaultKind| {
            let key = kind.as_str();
            match &file {
                _ if faults_given.contains(&kind) => format!("--{}", kind.info().rate_flag),
                Some((path, keys)) if keys.contains(&format!("faults.{key}")) => {
                    format!("\"faults.{key}\" in {path}")
                }
                _ => format!("{key} (default)"),
            }
        };
        cfg.faults.check(fault_name)?;
        if !(0.0..=1.0).contains(&cfg.tool_call_share) {
            return Err(format!(
                "{}: expected a probability from 0 to 1, got {}",
                name("tool_call_share"),
                cfg.tool_call_share
            ));
        }
        if cfg.tokens_per_chunk == 0 {
            return Err(format!(
                "{}: expected at least 1, got 0",
                name("tokens_per_chunk")
            ));
        }
        Ok(cfg)
    }

    /// Ideal-timetable flags over `cfg` (the engine is off), recording in `given` the
    /// fields they set; an engine flag is an error, naming what turned the engine off.
    fn apply_ideal(
        &self,
        cfg: &mut SimConfig,
        file: Option<&(String, BTreeSet<String>)>,
        given: &mut BTreeSet<&str>,
    ) -> Result<(), String> {
        if let Some(field) = self.engine_flag() {
            let off = match file {
                Some((path, _)) if !self.ideal => format!("\"engine\": null in {path}"),
                _ => "--ideal".to_string(),
            };
            return Err(format!(
                "{} sets the engine model, which {off} turns off",
                flag(field)
            ));
        }
        let ideal = [
            ("ttft_base_ms", self.ttft_ms, &mut cfg.ttft_base_ms),
            ("tpot_ms", self.tpot_ms, &mut cfg.tpot_ms),
            (
                "prefill_ms_per_token",
                self.prefill_ms_per_token,
                &mut cfg.prefill_ms_per_token,
            ),
        ];
        for (field, value, slot) in ideal {
            if let Some(v) = value {
                *slot = v;
                given.insert(field);
            }
        }
        Ok(())
    }

    /// The first engine flag given, by field name.
    fn engine_flag(&self) -> Option<&'static str> {
        [
            ("max_num_seqs", self.max_num_seqs.is_some()),
            (
                "max_num_batched_tokens",
                self.max_num_batched_tokens.is_some(),
            ),
            ("kv_capacity_tokens", self.kv_capacity_tokens.is_some()),
            ("block_size", self.block_size.is_some()),
            ("max_model_len", self.max_model_len.is_some()),
            ("prefix_caching", self.no_prefix_caching),
            ("step_base_ms", self.step_base_ms.is_some()),
            ("decode_ms_per_seq", self.decode_ms_per_seq.is_some()),
            (
                "kv_read_ms_per_1k_tokens",
                self.kv_read_ms_per_1k_tokens.is_some(),
            ),
        ]
        .into_iter()
        .find_map(|(field, set)| set.then_some(field))
    }

    /// Engine flags over `e`, recording in `given` the fields they set.
    fn apply_engine(&self, e: &mut EngineConfig, given: &mut BTreeSet<&str>) -> Result<(), String> {
        let ideal = [("ttft_base_ms", self.ttft_ms), ("tpot_ms", self.tpot_ms)];
        if let Some((field, _)) = ideal.iter().find(|(_, v)| v.is_some()) {
            return Err(format!(
                "{} sets the ideal timetable: add --ideal to use it instead of the engine model",
                flag(field)
            ));
        }
        macro_rules! apply {
            ($($field:ident),*) => {$(
                if let Some(v) = self.$field {
                    e.$field = v;
                    given.insert(stringify!($field));
                }
            )*};
        }
        apply!(
            max_num_seqs,
            max_num_batched_tokens,
            kv_capacity_tokens,
            block_size,
            max_model_len,
            step_base_ms,
            prefill_ms_per_token,
            decode_ms_per_seq,
            kv_read_ms_per_1k_tokens
        );
        if self.no_prefix_caching {
            e.prefix_caching = false;
            given.insert("prefix_caching");
        }
        Ok(())
    }
}

/// The profile and slot routes' settings (flags or a config file): a delay a timer
/// can wait, a slot count llama.cpp could have.
fn check_routes(cfg: &SimConfig, name: impl Fn(&'static str) -> String) -> Result<(), String> {
    let delay = cfg.profile_delay_ms;
    if !(delay.is_finite() && (0.0..=3_600_000.0).contains(&delay)) {
        return Err(format!(
            "{}: expected milliseconds from 0 to 3600000 (an hour), got {delay}",
            name("profile_delay_ms")
        ));
    }
    if !(1..=1024).contains(&cfg.slots) {
        return Err(format!(
            "{}: expected 1 to 1024 slots, got {}",
            name("slots"),
            cfg.slots
        ));
    }
    Ok(())
}

/// The ideal timetable's times, each named as `name` names its field.
fn check_ideal(cfg: &SimConfig, name: impl Fn(&'static str) -> String) -> Result<(), String> {
    let ms = [
        ("ttft_base_ms", cfg.ttft_base_ms),
        ("prefill_ms_per_token", cfg.prefill_ms_per_token),
        ("tpot_ms", cfg.tpot_ms),
    ];
    match ms.into_iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
        Some((field, v)) => Err(format!(
            "{}: expected a number of milliseconds ≥ 0, got {v}",
            name(field)
        )),
        None => Ok(()),
    }
}

/// The file's settings over the defaults, and the engine keys it sets (fault keys as
/// `faults.<key>`).
fn load(path: &Path) -> Result<(SimConfig, BTreeSet<String>), String> {
    let p = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("--config {p}: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("--config {p}: not valid JSON: {e}"))?;
    let Some(obj) = value.as_object() else {
        return Err(format!("--config {p}: expected a JSON object"));
    };
    let mut keys: BTreeSet<String> = obj.keys().cloned().collect();
    if let Some(engine) = obj.get("engine").and_then(|e| e.as_object()) {
        keys.extend(engine.keys().cloned());
    }
    if let Some(faults) = obj.get("faults").and_then(|e| e.as_object()) {
        keys.extend(faults.keys().map(|k| format!("faults.{k}")));
    }
    let cfg = serde_json::from_value(value).map_err(|e| format!("--config {p}: {e}"))?;
    Ok((cfg, keys))
}
