//! The metrics sources of a session: the engine's own `/metrics` and any others named
//! by `--metrics-url NAME=URL` (a DCGM exporter, a node exporter), each with its own
//! names and its own scraper (the API key only for the benchmarked server's origin).

use super::{MetricsSpec, Scraper};

/// The name of the benchmarked server's own source (a plain `--metrics-url URL`); its
/// metrics stay in `summary.server_metrics`, the others go to `summary.metric_sources`.
pub const ENGINE: &str = "engine";

/// One source scraped around every run.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub scraper: Scraper,
    pub spec: MetricsSpec,
}

impl Source {
    pub fn is_engine(&self) -> bool {
        self.name == ENGINE
    }
}
