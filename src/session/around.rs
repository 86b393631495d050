//! What watches a run from just before its first request to just after its last: the
//! server's metrics scrapes (and, as they are added, the profiler window, the client's
//! own CPU use). The runner starts an `Around` when sending begins and hands it the
//! finished summary, which it completes with what it saw.

use std::time::Duration;

use super::profile::{Profiler, Profiling};
use super::target::Target;
use crate::clock::RunClock;
use crate::console::printable;
use crate::metrics::Summary;
use crate::metrics::server::{MetricsSpec, RunningScrape, Scraper, ServerMetrics};
use crate::shutdown::Shutdown;

/// What `Around::start` needs, borrowed from the session.
pub struct AroundSpec<'a> {
    pub target: &'a Target,
    pub metrics: Option<&'a (Scraper, MetricsSpec)>,
    /// `--profile`: the profiler's routes.
    pub profiler: Option<&'a Profiler>,
}

/// Watchers running while a run sends.
pub struct Around {
    scrape: Option<RunningScrape>,
    profiling: Option<Profiling>,
    /// The run's clock, once it started (times in results.json are on it).
    clock: Option<RunClock>,
}

impl Around {
    /// Start every watcher the session asked for, right before the run's first request.
    pub fn start(spec: &AroundSpec<'_>) -> Around {
        Around {
            scrape: start_scrape(spec),
            // Last: the profiler's start is the closest to the first request.
            profiling: spec.profiler.map(|p| Profiling::start(p, spec.target)),
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

    /// Stop the watchers once the last request ended and add what they saw to `summary`.
    pub fn finish(self, target: &Target, label: &str, summary: &mut Summary) {
        // First: a profiler left running slows the server down for anyone else.
        if let Some(p) = self.profiling {
            p.finish(target, self.clock, summary);
        }
        if let Some(running) = self.scrape {
            match target.rt.block_on(finish_scrape(running, &target.shutdown)) {
                Ok(m) => summary.server_metrics = Some(m.to_saved(&summary.percentiles)),
                Err(e) => errln!(
                    "WARNING: the server's metrics after {label} are unusable: {}",
                    printable(&target.client.mask(e))
                ),
            }
        }
    }
}

fn start_scrape(spec: &AroundSpec<'_>) -> Option<RunningScrape> {
    let (scraper, m) = spec.metrics?;
    let target = spec.target;
    match target.block_unless_stopped(scraper.start(m)) {
        Ok(Ok(running)) => Some(running),
        // A signal: the run will not start.
        Err(_) => None,
        Ok(Err(e)) => {
            errln!(
                "WARNING: cannot scrape the server's metrics ({}); this run has none",
                printable(&target.client.mask(e))
            );
            None
        }
    }
}

/// The last scrape of the server's metrics, given at most a second after a signal (a
/// stalled /metrics would hold the exit back by its timeout).
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
