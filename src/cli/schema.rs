//! `servescope schema KIND`: print a JSON Schema of one of the tool's files.

use clap::{Args, ValueEnum};

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// Which file's schema to print
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemaKind {
    /// results.json, as the load commands and `merge` write it (also in docs/results.schema.json)
    Results,
}

impl From<SchemaKind> for crate::settings::SchemaDoc {
    fn from(k: SchemaKind) -> Self {
        match k {
            SchemaKind::Results => crate::settings::SchemaDoc::Results,
        }
    }
}
