//! `servescope schema KIND`: print the JSON Schema of a file servescope reads or writes.

use clap::{Args, ValueEnum};

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Which file's schema to print
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

/// The files whose schema is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// A study file (`servescope run STUDY.yaml`)
    Study,
}
