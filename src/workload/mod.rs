//! What is sent: prompts (synthetic, from a dataset) and their token counts.

pub mod blocks;
pub mod dataset;
pub mod prepare;
pub mod synthetic;
pub mod tokenizer;
pub mod trace;
pub mod trace_file;
pub mod words;

pub use tokenizer::{Tokenizer, TokenizerError};
