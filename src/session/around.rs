//! What watches a run from just before its first request to just after its last: the
//! metrics scrapes of every source (and, as they are added, the profiler window, the
//! client's own CPU use). The runner starts an `Around` when sending begins and hands
//! it the finished summary, which it completes with what it saw.

use std::time::Duration;

use futures_util::future::join_all;

use super::client_meter::ClientWatch;
use super::profile::{Profiler, Profiling};
use super::target::Target;
use crate::clock::RunClock;
use crate::console::printable;
use crate::metrics::Summary;
use crate::metrics::server::{RunningScrape, ServerMetrics, Source, energy, spec_decode};
use crate::shutdown::Shutdown;

/// What `Around::start` needs, borrowed from the session.
pub struct AroundSpec<'a> {
    pub target: &'a Target,
    /// Every metrics source, the server's own first (`Target::metrics`).
    pub metrics: &'a [Source],
    /// `--profile`: the profiler's routes.
    pub profiler: Option<&'a Profiler>,
    /// The connections the run's load holds at most, when it fixes them.
    pub connections: Option<u64>,
}

/// Watchers running while a run sends.
pub struct Around {
    /// (source, its running scrape) for each source whose first scrape worked.
    scrapes: Vec<(String, RunningScrape)>,
    profiling: Option<Profiling>,
    /// The run's clock, once it started (times in results.json are on it).
    clock: Option<RunClock>,
    /// The client's own use: its CPU meter (until `sending_over`) and its limits.
    client: ClientWatch,
}

impl Around {
    /// Start every watcher the session asked for, right before the run's first request.
    pub fn start(spec: &AroundSpec<'_>) -> Around {
        // The profiler's start (which may take a while) comes before the scrapes, so the
        // metrics' window and the client's meter hold the run alone.
        let profiling = spec.profiler.map(|p| Profiling::start(p, spec.target));
        let scrapes = start_scrapes(spec);
        Around {
            client: ClientWatch::start(spec),
            scrapes,
            profiling,
            clock: None,
        }
    }

    /// What the schedule must tell of the run's measured requests (a profiler window).
    pub fn watch(&self) -> Option<std::sync::Arc<dyn crate::schedule::MeasuredWatch>> {
        self.profiling.as_ref()?.watch()
    }

    /// The run's clock, once sending is over.
    pub fn set_clock(&mut self, clock: RunClock) {
        self.clock = Some(clock);
    }

    /// The last request ended: stop what measures the sending alone (not the summary's
    /// own computing).
    pub fn sending_over(&mut self) {
        self.client.stop();
    }

    /// Stop the watchers once the last request ended and add what they saw to `summary`.
    pub fn finish(mut self, target: &Target, label: &str, summary: &mut Summary) {
        self.client.stop();
        self.client.judge(target, summary);
        let had_scrapes = !self.scrapes.is_empty();
        let (names, running): (Vec<String>, Vec<RunningScrape>) = self.scrapes.into_iter().unzip();
        let finished = target.rt.block_on(join_all(
            running
                .into_iter()
                .map(|r| finish_scrape(r, &target.shutdown)),
        ));
        for (name, result) in names.into_iter().zip(finished) {
            match result {
                Ok(m) => {
                    // Drafts are counted by the engine, but an exporter of its own works.
                    if summary.spec_decode.is_none() {
                        summary.spec_decode = spec_decode(&m);
                    }
                    let saved = m.to_saved(&summary.percentiles);
                    if name == crate::metrics::server::ENGINE {
                        summary.server_metrics = Some(saved);
                    } else {
                        summary.metric_sources.insert(name, saved);
                    }
                }
                Err(e) => errln!(
                    "WARNING: {} after {label} are unusable: {}",
                    whose(&name),
                    printable(&target.client.mask(e))
                ),
            }
        }
        if had_scrapes {
            summary.energy = energy::of_summary(summary);
        }
        // After the last scrapes (a stop can take minutes while the trace is written,
        // which must not dilute the run's energy and rates), before anything else.
        if let Some(p) = self.profiling {
            p.finish(target, self.clock, summary);
        }
    }
}

/// "the server's metrics" or "the metrics of source `dcgm`", for warnings.
fn whose(name: &str) -> String {
    if name == crate::metrics::server::ENGINE {
        "the server's metrics".into()
    } else {
        format!("the metrics of source `{}`", printable(name))
    }
}

/// Every source's first scrape, side by side so a slow exporter does not delay the
/// others; a source that fails is warned about by name and left out of this run.
fn start_scrapes(spec: &AroundSpec<'_>) -> Vec<(String, RunningScrape)> {
    if spec.metrics.is_empty() {
        return Vec::new();
    }
    let target = spec.target;
    let firsts = join_all(spec.metrics.iter().map(|s| s.scraper.start(&s.spec)));
    // A signal: the run will not start.
    let Ok(started) = target.block_unless_stopped(firsts) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (source, result) in spec.metrics.iter().zip(started) {
        match result {
            Ok(running) => out.push((source.name.clone(), running)),
            Err(e) => errln!(
                "WARNING: cannot scrape {} ({}); this run has none",
                whose(&source.name),
                printable(&target.client.mask(e))
            ),
        }
    }
    out
}

/// The last scrape of a source, given at most a second after a signal (a stalled
/// /metrics would hold the exit back by its timeout).
async fn finish_scrape(
    running: RunningScrape,
    shutdown: &Shutdown,
) -> Result<ServerMetrics, String> {
    tokio::select! {
        m = running.finish() => m,
        () = async {
            shutdown.wait().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        } => Err("not read before the process stopped (a signal)".into()),
    }
}
