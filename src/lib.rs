//! servebench: benchmark LLM serving endpoints exactly and cheaply.
//!
//! Data flows one way: workload (what is sent) → schedule (when) → client (how) →
//! record (what happened) → metrics (numbers) → report (what people see). The
//! simulator stands beside it as the server the demo and the tests talk to.

pub mod sim;
pub mod workload;
