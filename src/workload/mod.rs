//! What is sent: prompts (synthetic, from a dataset) and their token counts.

pub mod dataset;
pub mod prepare;
pub mod synthetic;
pub mod tokenizer;

pub use tokenizer::{Tokenizer, TokenizerError};
