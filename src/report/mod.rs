//! What people see: terminal tables, results.json and summary.csv, re-analysis of
//! saved results, the HTML report, comparisons of two result sets and merging of
//! result directories.

pub mod axis;
pub mod breakdown;
mod breakdown_html;
pub mod charts;
pub mod compare;
pub mod compare_page;
pub mod compare_repeats;
pub mod document;
mod embeddings;
pub mod energy;
pub mod findings;
pub mod html;
pub mod load_curves;
pub mod merge;
mod merge_inputs;
pub mod page;
pub mod pareto;
pub mod reanalyze;
pub mod repeats;
pub mod results;
pub mod rounds;
pub mod run_params;
pub mod schema;
pub mod slices;
pub mod spec_decode;
pub mod study_compare;
pub mod study_report;
pub mod study_set;
pub mod svg;
pub mod table;
pub mod timelines;
mod validity_html;
