//! What watches a run from just before its first request to just after its last: the
//! server's metrics scrapes (and, as they are added, the profiler window, the client's
//! own CPU use). The runner starts an `Around` when sending begins and hands it the
//! finished summary, which it completes with what it saw.

use std::time::Duration;

use super::client_meter::ClientWatch;
use super::target::Target;
use crate::console::printable;
use crate::metrics::Summary;
use crate::metrics::server::{MetricsSpec, RunningScrape, Scraper, ServerMetrics};
use crate::shutdown::Shutdown;

/// What `Around::start` needs, borrowed from the session.
pub struct AroundSpec<'a> {
    pub target: &'a Target,
    pub metrics: Option<&'a (Scraper, MetricsSpec)>,
    /// The connections the run's load holds at most, when it fixes them.
    pub connections: Option<u64>,
}

/// Watchers running while a run sends.
pub struct Around {
    scrape: Option<RunningScrape>,
    /// The client's own use: its CPU meter (until `sending_over`) and its limits.
    client: ClientWatch,
}

impl Around {
    /// Start every watcher the session asked for, right before the run's first request.
    pub fn start(spec: &AroundSpec<'_>) -> Around {
        Around {
            client: ClientWatch::start(spec),
            scrape: start_scrape(spec),
        }
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
