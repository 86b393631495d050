//! The workload of a session, resolved once before anything is sent: the tokenizer,
//! where prompts come from, and (trace `--sessions`) which turn continues which.

use std::sync::Arc;

use super::Source;
use crate::error::Error;
use crate::report::document::TruncatedPrompts;
use crate::settings::{Prompts, WorkloadSettings};
use crate::shard::{Pick, Shard, conversation_roots};
use crate::shutdown::Shutdown;
use crate::workload::Tokenizer;
use crate::workload::blocks::BlockPrompts;
use crate::workload::chat::SyntheticSessions;
use crate::workload::dataset::dataset_prompts;
use crate::workload::prepare::{PromptSource, WorkloadSpec};
use crate::workload::server_tok::ServerSpec;
use crate::workload::sessions::link_parents;
use crate::workload::synthetic::SyntheticPrompts;
use crate::workload::tools::check_entries;
use crate::workload::trace_file::TraceFile;
use crate::workload::truncate::{prewarm, truncate_all};

/// What every run of the session draws its requests from.
pub struct Inputs {
    pub workload: WorkloadSpec,
    pub tokenizer: Tokenizer,
    /// `--sessions`: each turn's parent turn, for the whole trace.
    pub sessions: Option<Arc<Vec<Option<u32>>>>,
    /// `--max-input-length`: how many dataset prompts were cut.
    pub truncated: Option<TruncatedPrompts>,
}

impl Inputs {
    /// A signal ends this early with `Error::Interrupted` (a dataset or tokenizer being
    /// parsed is not watched; the signal listener ends a process stuck there).
    /// `server`: where `--tokenizer server` finds the tokenize routes (the session
    /// connects to the target first in that case).
    pub fn resolve(
        w: &WorkloadSettings,
        source: &Source,
        shutdown: &Shutdown,
        server: Option<ServerSpec>,
    ) -> Result<Inputs, Error> {
        let tokenizer = match server {
            Some(spec) if w.tokenizer.as_deref() == Some("server") => {
                let t = Tokenizer::server(spec)?;
                errln!("--tokenizer server: counting with {}", t.name());
                t
            }
            _ => Tokenizer::load(w.tokenizer.as_deref())?,
        };
        let mut truncated = None;
        let (source, output_len, sessions) = match source {
            Source::Trace {
                file,
                block_size,
                sessions,
            } => {
                let (source, links) =
                    trace_source(w, &tokenizer, file, *block_size, *sessions, shutdown)?;
                (source, w.output_len, links)
            }
            Source::Prompts => {
                let (source, cut) = prompt_source(w, &tokenizer)?;
                truncated = cut;
                (source, w.output_len, None)
            }
        };
        shutdown.check()?;
        if let (PromptSource::Dataset(entries), Some(choice)) = (&source, &w.tool_choice) {
            check_entries(entries, w.tools.is_some(), choice).map_err(Error::Input)?;
        }
        Ok(Inputs {
            workload: WorkloadSpec {
                source,
                output_len,
                seed: w.seed,
                token_ids: w.prompt_token_ids,
                models: w.models.clone(),
                images: w.images,
            },
            tokenizer,
            sessions,
            truncated,
        })
    }

    /// Requests carry images (`--images`, or dataset entries' image parts): the client
    /// counts only their text, so input tokens come from the server's usage.
    pub fn sends_images(&self) -> bool {
        self.workload.images.is_some()
            || matches!(&self.workload.source, PromptSource::Dataset(entries)
                if entries.iter().any(|e| matches!(&e.content,
                    crate::workload::dataset::PromptContent::Messages(m)
                        if crate::workload::images::has_images(m))))
    }

    /// Some dataset entry carries tools of its own.
    pub fn entry_tools(&self) -> bool {
        matches!(&self.workload.source, PromptSource::Dataset(entries)
            if entries.iter().any(|e| e.tools.is_some()))
    }

    /// Whether preparing a request asks the tokenizer (a server's: every prompt is then
    /// built before the run, so no tokenize call falls inside it).
    pub fn prepares_with_server(&self) -> bool {
        use crate::workload::prepare::PromptSource;
        use crate::workload::synthetic::SyntheticPrompts;
        self.tokenizer.is_server()
            && matches!(
                self.workload.source,
                PromptSource::Synthetic {
                    prompts: SyntheticPrompts::RandomIds,
                    ..
                }
            )
    }

    /// Which requests this process sends: a shard of trace sessions goes by whole
    /// conversations.
    pub fn pick(&self, shard: Shard) -> Pick {
        match &self.sessions {
            Some(parents) if !shard.is_whole() => Pick::ByRoot {
                shard,
                roots: Arc::new(conversation_roots(parents)),
            },
            _ => Pick::Every(shard),
        }
    }
}

type Links = Option<Arc<Vec<Option<u32>>>>;

fn trace_source(
    w: &WorkloadSettings,
    tokenizer: &Tokenizer,
    file: &Arc<TraceFile>,
    block_size: usize,
    sessions: bool,
    shutdown: &Shutdown,
) -> Result<(PromptSource, Links), Error> {
    let blocks = BlockPrompts::new(tokenizer, block_size, w.seed)
        .map_err(|e| Error::Input(e.to_string()))?;
    let links = if sessions {
        let turns = file
            .requests()
            .map_err(|e| Error::Input(e.to_string()))?
            .take_while(|_| shutdown.requested().is_none())
            .map(|r| r.map(|t| (t.chat_id, t.parent_chat_id)));
        let links = link_parents(turns).map_err(|e| Error::Input(e.to_string()))?;
        // Linked only up to the signal.
        shutdown.check()?;
        errln!(
            "--sessions: {} of {} turns continue an earlier turn's conversation",
            links.iter().flatten().count(),
            links.len()
        );
        Some(Arc::new(links))
    } else {
        None
    };
    let source = PromptSource::Trace {
        file: file.clone(),
        blocks: Arc::new(blocks),
    };
    Ok((source, links))
}

/// The prompts, and how many `--max-input-length` cut.
fn prompt_source(
    w: &WorkloadSettings,
    tokenizer: &Tokenizer,
) -> Result<(PromptSource, Option<TruncatedPrompts>), Error> {
    let tok_err = |e: String| Error::Input(format!("tokenizer {}: {e}", tokenizer.name()));
    match &w.prompts {
        Prompts::Dataset {
            path,
            expand_turns: expand,
        } => {
            let mut entries = dataset_prompts(path, *expand)?;
            let cut = match w.max_input_length {
                Some(n) => {
                    let cut = truncate_all(&mut entries, tokenizer, n).map_err(tok_err)?;
                    errln!(
                        "--max-input-length {n}: {cut} of {} prompts cut to {n} tokens ({})",
                        entries.len(),
                        tokenizer.name()
                    );
                    Some(TruncatedPrompts {
                        max_input_length: n as u64,
                        truncated: cut as u64,
                        prompts: entries.len() as u64,
                    })
                }
                None => None,
            };
            prewarm(&entries, tokenizer, w.prompt_token_ids).map_err(tok_err)?;
            Ok((PromptSource::Dataset(Arc::new(entries)), cut))
        }
        Prompts::Synthetic { kind, input_len } => {
            let (prompts, fallback) = SyntheticPrompts::resolve(*kind, tokenizer);
            if let Some(why) = fallback {
                errln!("note: synthetic prompts use random token ids instead: {why}");
            }
            let source = PromptSource::Synthetic {
                input_len: *input_len,
                prompts,
            };
            Ok((source, None))
        }
        Prompts::SharedPrefix(spec) => {
            let sp = crate::workload::shared_prefix::SharedPrefix::new(*spec, tokenizer)
                .map_err(Error::Input)?;
            Ok((PromptSource::SharedPrefix(Arc::new(sp)), None))
        }
        Prompts::Sessions {
            kind,
            input_len,
            spec,
        } => {
            let (prompts, fallback) = SyntheticPrompts::resolve(*kind, tokenizer);
            if let Some(why) = fallback {
                errln!("note: synthetic prompts use random token ids instead: {why}");
            }
            let sessions =
                SyntheticSessions::new(spec.clone(), *input_len, prompts, tokenizer, w.seed)
                    .map_err(|e| Error::Input(e.to_string()))?;
            Ok((PromptSource::Sessions(Arc::new(sessions)), None))
        }
        // The command reads the trace and hands it over as `Source::Trace`.
        Prompts::Trace => Err(Error::Input(
            "trace prompts need a trace as the prompt source".into(),
        )),
    }
}
