//! The error a command ends with, and its exit status: 2 for input the user must fix
//! (flags, files), 1 for a run that could not be done or produced nothing.

use crate::client::ClientError;
use crate::client::endpoint::EndpointError;
use crate::workload::TokenizerError;
use crate::workload::dataset::DatasetError;
use crate::workload::prepare::PrepareError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or input file is wrong; the message names it and what was expected.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server could not be reached or used (connection test, model list).
    #[error("{0}")]
    Server(String),
    /// Writing results failed.
    #[error("{0}")]
    Output(String),
    /// Every request of a run failed.
    #[error("{0}")]
    AllFailed(String),
    /// Stopped by SIGINT (2) or SIGTERM (15); what finished was saved.
    #[error("{}", interrupted(*signal, *runs))]
    Interrupted { signal: i32, runs: usize },
}

fn interrupted(signal: i32, runs: usize) -> String {
    match runs {
        0 => format!("interrupted by signal {signal} before any run ended; nothing to save"),
        n => format!(
            "interrupted by signal {signal}; {n} run(s) saved with every request that finished"
        ),
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_)
            | Error::Tokenizer(_)
            | Error::Dataset(_)
            | Error::Endpoint(_)
            | Error::Prepare(_) => 2,
            Error::Client(_) | Error::Server(_) | Error::Output(_) | Error::AllFailed(_) => 1,
            // The shell's convention: 128 + the signal (130 for Ctrl-C, 143 for SIGTERM).
            Error::Interrupted { signal, .. } => 128 + signal,
        }
    }
}
