//! What is measured: statistics over exact samples, and the per-run summary.

pub mod stats;
pub mod summary;

pub use stats::Stats;
pub use summary::{RunData, Summary, summarize};
