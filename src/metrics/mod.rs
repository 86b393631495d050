//! What is measured: statistics over exact samples, and the per-run summary.

pub mod by_model;
pub mod by_turn;
pub mod catalogue;
pub mod client_use;
pub mod cold_round;
pub mod confidence;
pub mod embeddings;
pub mod ordered_map;
pub mod phases;
pub mod profile_record;
pub mod prometheus;
pub mod run_checks;
pub mod server;
pub mod server_saved;
pub mod server_timing;
pub mod slices;
pub mod slo;
pub mod stats;
pub mod steady;
pub mod summary;
mod summary_json;
pub mod tags;
pub mod tools;
pub mod validity;

pub use stats::Stats;
pub use summary::{RunData, Summary, summarize};
