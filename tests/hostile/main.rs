//! A hostile first hour, kept fixed: scripted loopback servers that stall, echo
//! credentials and send control characters, closed pipes, signals in every phase, torn
//! files, results in the way. Each module is one kind of trouble.

mod child;
#[path = "../common/mod.rs"]
mod common;
mod server;

mod capacity;
mod credentials;
mod embeddings;
mod interrupted;
mod limits;
mod llama_like;
mod models;
mod outdir;
mod phases;
mod pipes;
mod profile;
mod responses;
mod sessions;
mod signals;
mod small;
mod smoke;
mod sources;
mod terminal;
mod tokenize;
mod tools;
mod trace_url;
mod warmup;
