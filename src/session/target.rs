//! The target of a session: the built-in simulator or the given endpoint, the HTTP
//! client, the model, and a connection test before any run.

use std::sync::Arc;

use crate::client::endpoint::Endpoint;
use crate::client::openai::{Api, BodyOptions, PromptBody, build_body};
use crate::client::{ApiKey, ClientConfig, DRAIN_AFTER_DONE, HttpClient};
use crate::clock::RunClock;
use crate::console::printable;
use crate::error::Error;
use crate::metrics::server::{DEFAULT_TIMEOUT, ENGINE, MetricsSpec, Scraper, Source, same_origin};
use crate::progress::Live;
use crate::settings::{TargetSettings, WorkloadSettings};
use crate::shutdown::{Phase, Shutdown};
use crate::sim::{LoraModule, SimConfig, SimServer};
use crate::workload::tools::BodyTools;

use super::client_meter::Threads;

/// The client runtime's worker threads: the cores its CPU share is measured against.
pub const CLIENT_WORKERS: usize = 2;

/// A server that answered the connection test, and what talks to it.
pub struct Target {
    pub endpoint: Endpoint,
    /// The built-in simulator (no `--endpoint`).
    pub simulated: bool,
    pub client: HttpClient,
    pub rt: tokio::runtime::Runtime,
    pub shutdown: Arc<Shutdown>,
    pub model: String,
    /// What every request body shares.
    pub body: BodyOptions,
    /// The runtime's threads, for the client's CPU meter (`client_meter.rs`).
    pub threads: Threads,
    // Last, so it is dropped after the runtime whose requests it serves.
    _sim: Option<SimServer>,
}

impl Target {
    /// Find the server (or start the simulator), build the client, find the model and
    /// test the connection; a signal abandons the last two at once.
    pub fn connect(
        t: &TargetSettings,
        w: &WorkloadSettings,
        shutdown: Arc<Shutdown>,
    ) -> Result<Target, Error> {
        shutdown.enter(Phase::Connecting);
        let (endpoint, sim) = endpoint(t, w.models.as_deref())?;
        if w.prompt_token_ids && endpoint.api != Api::Completions {
            return Err(Error::Input(
                "--prompt-token-ids needs the completions API (add --api completions)".into(),
            ));
        }
        if (w.tools.is_some() || w.tool_choice.is_some()) && !endpoint.api.takes_tools() {
            return Err(Error::Input(format!(
                "--tools and --tool-choice need the chat or responses API, and {} is the {} API",
                endpoint.url,
                endpoint.api.as_str()
            )));
        }
        let mut client = HttpClient::new(&ClientConfig {
            api_key: t.api_key.clone().map(ApiKey::new),
            timeout: t.timeout,
            idle_timeout: t.idle_timeout,
            retries: t.retries,
            insecure: t.insecure,
            drain_after_done: DRAIN_AFTER_DONE,
        })?
        .for_api(endpoint.api)
        .with_headers(&t.headers, t.api_key.as_deref());
        if endpoint.api == Api::Embeddings {
            client = client.for_embeddings(t.batch_inputs);
        }
        let threads = Threads::default();
        let registry = threads.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(CLIENT_WORKERS)
            .on_thread_start(move || registry.register_current())
            .enable_all()
            .build()
            .map_err(|e| Error::Server(format!("cannot start the async runtime: {e}")))?;
        let model = match &t.model {
            Some(m) => m.clone(),
            None => rt.block_on(shutdown.unless_stopped(first_model(&client, &endpoint)))??,
        };
        let body = BodyOptions {
            api: endpoint.api,
            model: model.clone(),
            ignore_eos: w.ignore_eos,
            extra: w.extra_body.clone(),
            tools: BodyTools::new(w.tools.clone(), w.tool_choice.as_ref()),
            batch_inputs: t.batch_inputs,
        };
        let tests =
            super::model_check::connection_tests(&client, &endpoint, &body, w.models.as_deref());
        rt.block_on(shutdown.unless_stopped(tests))??;
        Ok(Target {
            endpoint,
            simulated: sim.is_some(),
            client,
            rt,
            shutdown,
            model,
            body,
            threads,
            _sim: sim,
        })
    }

    /// Every metrics source to scrape (`--metrics`, `--metrics-url`): the server's own
    /// first, named [`ENGINE`], then the others in the order given. The API key and
    /// `-H` headers go only to a source on the benchmarked server's origin.
    pub fn metrics(&self, t: &TargetSettings) -> Result<Vec<Source>, Error> {
        let Some(m) = &t.metrics else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if m.engine {
            let url = match &m.url {
                Some(u) => reqwest::Url::parse(u)
                    .map_err(|e| Error::Input(format!("--metrics-url {u}: not a URL ({e})")))?,
                None => self
                    .endpoint
                    .root
                    .join("metrics")
                    .map_err(|e| Error::Input(format!("--metrics-url: {e}")))?,
            };
            out.push(self.source(ENGINE, url, &m.names, m.interval)?);
        }
        for s in &m.sources {
            let url = reqwest::Url::parse(&s.url).map_err(|e| {
                Error::Input(format!(
                    "--metrics-url {}={}: not a URL ({e})",
                    s.name, s.url
                ))
            })?;
            out.push(self.source(&s.name, url, &s.names, m.interval)?);
        }
        Ok(out)
    }

    fn source(
        &self,
        name: &str,
        url: reqwest::Url,
        names: &str,
        interval: std::time::Duration,
    ) -> Result<Source, Error> {
        // Each message names its flag (--metrics, --metrics-url or --metrics-interval).
        let spec = MetricsSpec::new(url.clone(), names, interval).map_err(Error::Input)?;
        let same = same_origin(&url, &self.endpoint.url);
        let auth = same.then(|| self.client.auth_header()).flatten();
        let mut scraper = Scraper::new(auth, DEFAULT_TIMEOUT).map_err(Error::Server)?;
        // `-H` headers, like the key, go only to the benchmarked server.
        if same {
            scraper = scraper.with_headers(self.client.extra_headers());
        }
        Ok(Source {
            name: name.to_string(),
            scraper,
            spec,
        })
    }

    /// Where `--tokenizer server` asks: the server root, the model, the key.
    pub fn tokenizer_spec(&self) -> crate::workload::server_tok::ServerSpec {
        crate::workload::server_tok::ServerSpec {
            root: self.endpoint.server_root.clone(),
            model: self.model.clone(),
            auth: self.client.auth_header(),
            headers: self.client.extra_headers(),
            insecure: self.client.insecure(),
        }
    }

    /// `fut` on the session's runtime, abandoned at a signal (`Error::Interrupted`).
    pub fn block_unless_stopped<T>(&self, fut: impl Future<Output = T>) -> Result<T, Error> {
        self.rt.block_on(self.shutdown.unless_stopped(fut))
    }

    /// Empty the server's prefix cache (`cache_reset`: a preset or a URL), warning
    /// loudly when it fails: a round meant to start cold would then measure a warm cache.
    pub fn reset_cache(&self, given: &str) {
        let reset = super::cache_reset::reset(&self.client, &self.endpoint.server_root, given);
        let result = match self.block_unless_stopped(reset) {
            Ok(done) => done,
            // A signal: no run follows to warn about.
            Err(_) => return,
        };
        if let Err(e) = result {
            errln!(
                "WARNING: the cache reset ({given}) failed: {}; the next round may start with a warm cache",
                printable(&e)
            );
        }
    }
}

/// The given endpoint, or the embedded default: the simulator, in-process (serving a
/// `--model` mix's names: the first as its base model, the others as LoRA adapters).
fn endpoint(
    t: &TargetSettings,
    mix: Option<&crate::workload::models::ModelMix>,
) -> Result<(Endpoint, Option<SimServer>), Error> {
    let Some(e) = &t.endpoint else {
        let mut config = SimConfig {
            reasoning_tokens: t.sim_reasoning_tokens,
            image_tokens: t
                .sim_image_tokens
                .unwrap_or(crate::sim::DEFAULT_IMAGE_TOKENS),
            ignore_ignore_eos: t.sim_ignore_ignore_eos,
            ..SimConfig::default()
        };
        if let Some((base, adapters)) = mix.and_then(|m| m.names().split_first()) {
            config.model = base.to_string();
            config.lora_modules = adapters.iter().map(|a| LoraModule::named(a)).collect();
        }
        let sim = SimServer::start(config, ([127, 0, 0, 1], 0).into())
            .map_err(|e| Error::Server(format!("cannot start the built-in simulator: {e}")))?;
        errln!(
            "No --endpoint given: benchmarking the built-in simulator at {} (see `servescope sim --help`).",
            sim.url()
        );
        let endpoint = Endpoint::parse(&sim.url(), t.api)?;
        return Ok((endpoint, Some(sim)));
    };
    Ok((Endpoint::parse(e, t.api)?, None))
}

async fn first_model(client: &HttpClient, endpoint: &Endpoint) -> Result<String, Error> {
    let doc = client.get_json(&endpoint.models_url).await.map_err(|e| {
        Error::Server(format!(
            "cannot list models at {} ({}); give --model",
            endpoint.models_url,
            printable(&e)
        ))
    })?;
    doc["data"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Server(format!(
                "{} lists no model (expected {{\"data\": [{{\"id\": ...}}]}}); give --model",
                endpoint.models_url
            ))
        })
}

/// One short request before the run, as bench_simple does: a server that cannot answer
/// it is reported now, not as hundreds of failed requests.
pub(super) async fn connection_test(
    client: &HttpClient,
    endpoint: &Endpoint,
    opts: &BodyOptions,
) -> Result<(), Error> {
    let body = build_body(opts, PromptBody::Text("Hello"), 4);
    // One input, whatever --batch-inputs says.
    let one = (opts.api == Api::Embeddings).then(|| client.clone().for_embeddings(1));
    let out = one
        .as_ref()
        .unwrap_or(client)
        .execute(
            &endpoint.url,
            body.into(),
            &RunClock::start(),
            &Live::default(),
        )
        .await;
    match out.failure {
        None => Ok(()),
        Some((kind, msg)) => Err(Error::Server(format!(
            "connection test to {} failed ({}): {}",
            endpoint.url,
            kind.as_str(),
            printable(&msg)
        ))),
    }
}
