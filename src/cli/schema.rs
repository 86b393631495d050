//! `servescope schema KIND`: print the JSON Schema of a file servescope reads or writes.

use clap::{Args, ValueEnum};

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Which file's schema to print
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

/// The files whose schema is published.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaKind {
    /// A study file (`servescope run STUDY.yaml`; also in docs/study.schema.json)
    Study,
    /// results.json, as the load commands and `merge` write it (also in
    /// docs/results.schema.json)
    Results,
}

impl From<SchemaKind> for crate::settings::SchemaDoc {
    fn from(k: SchemaKind) -> Self {
        match k {
            SchemaKind::Study => crate::settings::SchemaDoc::Study,
            SchemaKind::Results => crate::settings::SchemaDoc::Results,
        }
    }
}
