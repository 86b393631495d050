//! What people see: terminal tables, results.json and summary.csv, and re-analysis of
//! saved results.

pub mod reanalyze;
pub mod results;
pub mod rounds;
pub mod table;
