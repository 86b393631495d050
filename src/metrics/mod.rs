//! What is measured: statistics over exact samples, and the per-run summary.

pub mod prometheus;
pub mod server;
pub mod slo;
pub mod stats;
pub mod summary;

pub use stats::Stats;
pub use summary::{RunData, Summary, summarize};
