//! The load subcommands' flags; each flag is defined once and shared by the load
//! subcommands through `LoadArgs`.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;

use super::analysis::{PercentilesArg, SliceArg};
use super::values::{positive_f64, positive_int, seconds, share, whole};
use crate::client::openai::Api;
use crate::schedule::arrivals::RampUp;
use crate::settings::{Rate, ResetBetween};
use crate::shard::Shard;
use crate::workload::synthetic::{LengthSpec, SyntheticKind};
use crate::workload::trace::TraceFormat;
use crate::workload::trace_file::Overflow;
use crate::workload::trace_reshape::TracePrompts;

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// Batch sizes, one run each
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "64",
        value_name = "N,...",
        allow_negative_numbers = true,
        value_parser = positive_int::<usize>
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
        value_name = "N,...",
        allow_negative_numbers = true,
        value_parser = positive_int::<usize>
    )]
    pub concurrency: Vec<usize>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct RateArgs {
    /// Request rates in requests/s, one run each; `inf` sends every request at once
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        value_name = "R,...",
        allow_negative_numbers = true
    )]
    pub rates: Vec<Rate>,
    /// Gamma shape of inter-arrival gaps: 1 = Poisson, < 1 burstier, > 1 more regular
    #[arg(long, default_value_t = 1.0, value_parser = positive_f64)]
    pub burstiness: f64,
    /// Stop drawing arrivals after this many seconds (with --num-requests: whichever
    /// comes first)
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64)]
    pub duration: Option<f64>,
    /// At most this many requests in flight; later ones wait (their wait is reported)
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub max_concurrency: Option<usize>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// The trace: JSON lines (Qwen/Bailian, Mooncake) or CSV (Azure LLM inference,
    /// BurstGPT); a file, or an http(s):// URL downloaded once into --cache-dir
    pub file: PathBuf,
    /// Force the format instead of recognising it from the fields
    #[arg(long, value_enum)]
    pub format: Option<TraceFormat>,
    /// Time scales, one replay each: request i is sent at (t_i − t_0) × scale
    /// (< 1 compresses time: more load)
    #[arg(long, value_delimiter = ',', default_value = "1", value_name = "S,...", value_parser = positive_f64)]
    pub time_scale: Vec<f64>,
    /// Replay only the first N requests
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub limit: Option<usize>,
    /// Tokens per hash id [default: 16 for Qwen, 512 for Mooncake; CSV traces have none]
    #[arg(long, value_name = "TOKENS", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub block_size: Option<usize>,
    /// Requests whose input + output exceed this many tokens are clipped or skipped
    #[arg(long, value_name = "TOKENS", allow_negative_numbers = true, value_parser = positive_int::<u32>)]
    pub max_context: Option<u32>,
    /// With --max-context: clip the request to fit, or skip it
    #[arg(long, value_enum, default_value = "clip")]
    pub on_overflow: Overflow,
    /// At most this many requests in flight; later ones wait (their wait is reported)
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub max_concurrency: Option<usize>,
    /// BurstGPT traces: replay only the rows of this model (e.g. ChatGPT, GPT-4)
    #[arg(long, value_name = "NAME")]
    pub model_filter: Option<String>,
    /// A trace URL's download cache [default: $XDG_CACHE_HOME/servescope/traces, else
    /// ~/.cache/servescope/traces]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// A trace URL's expected SHA-256 (64 hex digits): a download that differs is removed
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// What the prompts share [default: hash-ids]
    #[arg(long, value_enum)]
    pub prompts: Option<TracePrompts>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct DualRoundArgs {
    /// Concurrency levels, one set of rounds each
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "5,10,20",
        value_name = "N,...",
        allow_negative_numbers = true,
        value_parser = positive_int::<usize>
    )]
    pub concurrency: Vec<usize>,
    /// Rounds of the same requests per level
    #[arg(long, default_value_t = 2, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub rounds: usize,
    /// Send later rounds in the same order as the first (default: shuffled, seeded)
    #[arg(long)]
    pub no_shuffle: bool,
    /// Empty the server's prefix cache: `vllm` (POST ROOT/reset_prefix_cache),
    /// `sglang` (ROOT/flush_cache), `llamacpp` (erase every slot: GET ROOT/slots, then
    /// POST /slots/ID?action=erase; needs llama-server --slot-save-path, and --cache-ram 0
    /// or its RAM prompt cache brings erased prompts back), or a URL to POST to
    #[arg(long, value_name = "PRESET|URL")]
    pub reset_cache_url: Option<String>,
    /// When to reset the cache [default: levels]
    #[arg(long, value_enum, requires = "reset_cache_url")]
    pub reset_between: Option<ResetBetween>,
    /// Requests from a trace's lengths and hash-id prompts instead of --dataset or
    /// synthetic prompts
    #[arg(long, value_name = "FILE", conflicts_with = "dataset")]
    pub trace: Option<PathBuf>,
    /// With --trace: the first N requests
    #[arg(long, value_name = "N", requires = "trace", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub limit: Option<usize>,
    /// With --trace: what the prompts share [default: hash-ids]
    #[arg(long, value_enum, requires = "trace")]
    pub prompts: Option<TracePrompts>,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `capacity`: search for the largest load meeting the SLO.
#[derive(Args, Debug)]
pub struct CapacityArgs {
    /// The load searched: closed-loop concurrency or open-loop request rate
    #[arg(long, value_parser = ["concurrency", "rate"], default_value = "concurrency")]
    pub by: String,
    /// A level passes when at least this share of its sent requests succeeded and met
    /// every --slo bound (failed requests are misses)
    #[arg(long, default_value_t = 0.99, value_name = "SHARE", value_parser = share)]
    pub attainment: f64,
    /// The first level probed [default: concurrency 1; rate --max / 64]
    #[arg(long, value_name = "LEVEL", value_parser = positive_f64)]
    pub min: Option<f64>,
    /// The highest level probed [default: concurrency 1024; rate: required]
    #[arg(long, value_name = "LEVEL", value_parser = positive_f64)]
    pub max: Option<f64>,
    /// Bisect until the bracket is at most this share of the passing level (concurrency:
    /// never finer than 1)
    #[arg(long, default_value_t = 0.05, value_name = "SHARE", value_parser = positive_f64)]
    pub resolution: f64,
    /// Probe a level again this many times when its attainment is within two binomial
    /// standard errors of --attainment; the level is judged on all its probes pooled
    #[arg(long, default_value_t = 0, value_name = "N", allow_negative_numbers = true, value_parser = whole::<usize>)]
    pub confirm: usize,
    /// --by rate: gamma shape of inter-arrival gaps (1 = Poisson) [default: 1]
    #[arg(long, value_parser = positive_f64)]
    pub burstiness: Option<f64>,
    /// --by rate: stop drawing a probe's arrivals after this many seconds (with
    /// --num-requests: whichever comes first)
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64)]
    pub duration: Option<f64>,
    /// --by rate: at most this many requests in flight
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub max_concurrency: Option<usize>,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `sweep`: synchronous, max throughput, then open-loop rates between them.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// How many open-loop rates to run, evenly spaced strictly between the synchronous
    /// run's request rate and the max-throughput run's
    #[arg(long, default_value_t = 8, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub rates: usize,
    /// Gamma shape of the rate runs' inter-arrival gaps: 1 = Poisson, < 1 burstier
    #[arg(long, default_value_t = 1.0, value_parser = positive_f64)]
    pub burstiness: f64,
    /// Rate runs: stop drawing arrivals after this many seconds (with --num-requests:
    /// whichever comes first)
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64)]
    pub duration: Option<f64>,
    /// Rate runs and the max-throughput run: at most this many requests in flight
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub max_concurrency: Option<usize>,
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
    /// Without --endpoint: the built-in simulator's chat answers start with N reasoning
    /// tokens (LO:HI: drawn per request), as `servescope sim --reasoning-tokens`
    #[arg(long, value_name = "N|LO:HI", value_parser = crate::sim::ReasoningTokens::parse)]
    pub sim_reasoning_tokens: Option<crate::sim::ReasoningTokens>,
    /// Without --endpoint: the built-in simulator does not honour "ignore_eos", as
    /// `servescope sim --ignore-ignore-eos`
    #[arg(long)]
    pub sim_ignore_ignore_eos: bool,
    /// Model name to request [default: the first id of GET /v1/models]. Several, comma
    /// separated (a,b: models, or LoRA adapters served under one base), mix them: each
    /// request goes to one, drawn from --seed (see --model-weights)
    #[arg(long, value_name = "NAME[,NAME...]")]
    pub model: Option<String>,
    /// Shares of the --model mix, one per name, e.g. 0.7,0.3 [default: equal shares]
    #[arg(long, value_name = "W,W...", requires = "model")]
    pub model_weights: Option<String>,
    /// Add this header to every request sent to the server (repeatable), e.g.
    /// -H 'X-Route: canary'. Credential-like ones (Authorization, Cookie, names with
    /// key, token, secret, auth, password, credential) are sent but never saved or printed
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// Which API to call [default: chat, or what a full --endpoint path names]
    #[arg(long, value_enum)]
    pub api: Option<Api>,
    /// --api embeddings: prompts sent in each request's "input" list, each built by the
    /// workload as one request's prompt would be [default: 1]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<u32>)]
    pub batch_inputs: Option<u32>,
    /// Bearer token for the server; never printed or saved
    #[arg(
        long,
        env = "OPENAI_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// Hugging Face tokenizer.json (or a model directory holding one), ORG/NAME from the
    /// local Hugging Face cache, `server` (the endpoint's own /tokenize route), or
    /// builtin:cl100k / builtin:o200k [default: builtin:cl100k, embedded, no network]
    #[arg(long, value_name = "PATH|ORG/NAME|server")]
    pub tokenizer: Option<String>,
    /// Cut --dataset prompts to at most N tokens of the run's tokenizer (chat entries lose
    /// their oldest turns first, then the last user turn's text)
    #[arg(long, value_name = "N")]
    pub max_input_length: Option<usize>,
    /// Prompt length in tokens: N or LO:HI (uniform) [default: batch 1:8192, throughput
    /// 100:1024, concurrency 1024; a trace's own]. On a trace it replaces every request's
    /// length, drawn per request from --seed, keeping its time and shared blocks
    #[arg(long, value_name = "N|LO:HI")]
    pub input_len: Option<LengthSpec>,
    /// max_tokens per request: N or LO:HI [default: batch 16:1024, throughput 100:1024,
    /// concurrency 256; a trace's own]
    #[arg(long, alias = "max-output-tokens", value_name = "N|LO:HI")]
    pub output_len: Option<LengthSpec>,
    /// Sampling temperature sent with every request [default: 0, greedy]
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    pub temperature: Option<f64>,
    /// Nucleus sampling: top_p sent with every request, in (0, 1] [default: not sent]
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub top_p: Option<f64>,
    /// Requests per run [default: throughput 256, concurrency 256; batch: the batch size]
    #[arg(long, alias = "num-samples", value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub num_requests: Option<usize>,
    /// Run every level N times, back to back (prompts and arrivals drawn anew for each
    /// repeat from --seed); each key metric is then reported as a mean with a 95%
    /// confidence interval and coefficient of variation
    #[arg(long, default_value_t = 1, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<u32>)]
    pub repeat: u32,
    /// Seed for every random choice: the same seed sends the same requests
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = whole::<u64>)]
    pub seed: u64,
    /// Prompts from a dataset file (.jsonl, .json list, or {"data": [...]}) instead of
    /// synthetic ones
    #[arg(long, value_name = "FILE")]
    pub dataset: Option<PathBuf>,
    /// Send prompts as token ids (completions API; vLLM and SGLang accept them)
    #[arg(long)]
    pub prompt_token_ids: bool,
    /// Shared-prefix groups (SGLang's generated-shared-prefix): G system prompts of exactly
    /// S tokens, each followed by P questions of exactly Q tokens, the G×P requests sent
    /// in a seeded shuffle; --num-requests defaults to G×P (more: further shuffled passes
    /// of new questions behind the same system prompts; fewer: the first of the shuffle)
    #[arg(long, value_name = "groups=G,prompts=P,system-len=S,question-len=Q", conflicts_with_all = ["dataset", "input_len"])]
    pub shared_prefix: Option<crate::workload::shared_prefix::SharedPrefixSpec>,
    /// N synthetic images per request (chat or responses API), as image_url data URLs
    /// in the user message, different for every request and fixed by --seed
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<u32>)]
    pub images: Option<u32>,
    /// --images: width and height in pixels [default: 512x512]
    #[arg(long, value_name = "WxH", value_parser = crate::workload::images::parse_size)]
    pub image_size: Option<(u32, u32)>,
    /// --images: png or jpeg [default: jpeg]
    #[arg(long, value_name = "png|jpeg")]
    pub image_format: Option<crate::workload::images::ImageFormat>,
    /// Without --endpoint: the built-in simulator charges N prompt tokens per image, as
    /// `servescope sim --image-tokens` [default: 576]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = whole::<u32>)]
    pub sim_image_tokens: Option<u32>,
    /// How synthetic prompts are made: `words` (random one-token words, exact with no
    /// tokenizer work) or `random-ids` (mini-sglang's decode/re-encode of random ids)
    /// [default: words]
    #[arg(long, value_enum, value_name = "KIND")]
    pub synthetic_prompts: Option<SyntheticKind>,
    /// Do not send "ignore_eos": true (OpenAI itself rejects it); outputs may then end early
    #[arg(long)]
    pub no_ignore_eos: bool,
    /// JSON object merged into every request body last, e.g. '{"top_k": 1}'
    #[arg(long, value_name = "JSON")]
    pub extra_body: Option<String>,
    /// Tool definitions sent with every chat request: a JSON array of
    /// {"type": "function", "function": {"name", "description", "parameters"}}
    /// (a dataset entry's own "tools" replace them for that entry)
    #[arg(long, value_name = "FILE")]
    pub tools: Option<PathBuf>,
    /// tool_choice sent with requests that carry tools: auto, none, required, or a
    /// tool's name (that tool must be called) [default: not sent, the server's auto]
    #[arg(long, value_name = "auto|none|required|NAME")]
    pub tool_choice: Option<String>,
    /// Give up on a request after this many seconds (0: never)
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS", allow_negative_numbers = true, value_parser = seconds)]
    pub timeout: f64,
    /// Give up on a request after this many seconds without a byte from the server
    /// (before the headers, or between events); catches stalled streams [default: off]
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64)]
    pub idle_timeout: Option<f64>,
    /// Try a request again after a connection error or an HTTP 429 (honouring
    /// Retry-After, at most 30 s), up to N times; latency counts from the first try
    #[arg(long, default_value_t = 0, value_name = "N", allow_negative_numbers = true, value_parser = whole::<u32>)]
    pub retries: u32,
    /// Write requests.jsonl (as requests finish), results.json and summary.csv here
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// --output-dir already holds results (results.json or requests.jsonl): replace them
    #[arg(long, requires = "output_dir", conflicts_with = "append")]
    pub overwrite: bool,
    /// --output-dir already holds results: add this session's runs to them (a label
    /// already there gets a suffix, " #2"); runs of the same mode only
    #[arg(long, requires = "output_dir")]
    pub append: bool,
    /// After the session, also write a self-contained HTML report of --output-dir here
    #[arg(long, value_name = "OUT.html", requires = "output_dir")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub percentiles: PercentilesArg,
    #[command(flatten)]
    pub slice: SliceArg,
    /// Service-level objective for goodput: a YAML file (`slo: {ttft_ms: 500, tpot_ms:
    /// 50, e2e_ms: 10000, min_output_tok_s: 20}`) or inline `ttft_ms=500,tpot_ms=50`
    #[arg(long, alias = "slo-file", value_name = "FILE|K=V,...")]
    pub slo: Option<String>,
    /// Scrape the server's Prometheus metrics before, during and after each run: metric
    /// names and/or presets `vllm`, `sglang`, `llamacpp`, `spec-decode`, `dcgm`, `node`; `SOURCE=NAMES`
    /// for a source of --metrics-url SOURCE=URL (repeatable)
    #[arg(long, alias = "prometheus-metrics", value_name = "[SOURCE=]NAMES")]
    pub metrics: Vec<String>,
    /// Where the server's metrics are [default: ENDPOINT/metrics]; `NAME=URL` adds a
    /// source scraped beside it, reported under NAME (e.g. dcgm=http://HOST:9400/metrics;
    /// a source named like a preset gets that preset); repeatable
    #[arg(long, alias = "prometheus-url", value_name = "[NAME=]URL")]
    pub metrics_url: Vec<String>,
    /// Seconds between gauge samples during a run
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS", value_parser = positive_f64)]
    pub metrics_interval: f64,
    /// Stop a run (and exit non-zero) once more than this share of requests failed,
    /// counted after the first 10 ended, e.g. 0.1
    #[arg(long, value_name = "SHARE", value_parser = share)]
    pub max_error_rate: Option<f64>,
    /// Count every response's text with the client tokenizer, also when the server
    /// reports usage, to show the gap between the two counts (costs client CPU; without
    /// it the text is counted only when usage is missing)
    #[arg(long)]
    pub count_output_text: bool,
    /// Build prompts up to this many MB before each run; the rest are built while it
    /// runs, just ahead of sending (a batch, and dual-round rounds, build all first)
    #[arg(long, value_name = "MB", default_value_t = 64, allow_negative_numbers = true, value_parser = whole::<usize>)]
    pub prepare_ahead_mb: usize,
    /// Send only shard I of N of the workload (one client machine of N): request i iff
    /// i mod N == I (trace --sessions: by the conversation's first turn), at the times
    /// the whole workload gives it. --concurrency, --max-concurrency and batch sizes
    /// describe the whole run: shard I gets C/N, plus one if I < C mod N (at least 1).
    /// Join the shards' --output-dir with `servescope merge`
    #[arg(long, value_name = "I/N", default_value_t = Shard::WHOLE)]
    pub shard: Shard,
    /// Prepare, then start the first run at this wall-clock instant (RFC 3339 with a
    /// zone, e.g. 2026-11-22T15:30:00Z), so shards on several machines start together;
    /// later runs follow as usual. More than 1 s late is an error
    #[arg(long, value_name = "RFC3339", value_parser = crate::start_at::parse)]
    pub start_at: Option<SystemTime>,
    /// Warm-up: the first N requests of each run, sent at the run's load before the
    /// measured ones (extra requests with prompts of their own), are saved flagged
    /// "warmup": true and left out of every statistic. Batch and throughput: a burst of
    /// N, finished before the measured one. Not for trace or dual-round
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<usize>)]
    pub warmup: Option<usize>,
    /// Warm-up by time: the requests sent (rate: due) in each run's first S seconds are
    /// warm-up, as with --warmup. Concurrency and rate only
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64, conflicts_with = "warmup")]
    pub warmup_s: Option<f64>,
    /// Rate runs: how the arrival rate rises to each target over --ramp-up-s, then holds:
    /// `linear` (from 0) or `exponential` (from 1 % of the target)
    #[arg(long, value_enum, value_name = "STRATEGY")]
    pub ramp_up: Option<RampUp>,
    /// Seconds of ramp-up. Rate runs: with --ramp-up. Concurrency: slot i of C starts
    /// at i·S/C instead of all at once
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64)]
    pub ramp_up_s: Option<f64>,
    #[command(flatten)]
    pub sessions: super::sessions::SessionArgs,
    #[command(flatten)]
    pub profile: super::profile::ProfileArgs,
    /// Accept invalid TLS certificates (self-signed test servers)
    #[arg(long)]
    pub insecure: bool,
    /// No progress display
    #[arg(long, short)]
    pub quiet: bool,
    /// GPUs serving the endpoint: a label only, saved in results.json and used to show
    /// output tokens/s per GPU (the throughput–interactivity chart)
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = positive_int::<u32>)]
    pub gpus: Option<u32>,
    /// A label saved in results.json's "metadata" and shown with each run (repeatable),
    /// e.g. --metadata config=tp2 --metadata gpu=H100; keys that look like credentials
    /// and values holding the API key are refused
    #[arg(long, value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
}
