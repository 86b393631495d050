//! `servescope run STUDY.yaml [FLAGS...]`: a whole study from one file.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The study: a YAML file naming the target, the workload, a list of loads, the
    /// SLO, metrics sources and outputs (`servescope schema study` prints its keys)
    #[arg(value_name = "STUDY.yaml")]
    pub file: PathBuf,
    /// Load flags that override the file's values for every load that takes them, e.g.
    /// --endpoint URL --num-requests 10; --output-dir DIR replaces output.dir
    #[arg(
        value_name = "FLAGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub overrides: Vec<String>,
}
