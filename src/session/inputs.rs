//! The workload of a session, resolved once before anything is sent: the tokenizer,
//! where prompts come from, and (trace `--sessions`) which turn continues which.

use std::sync::Arc;

use super::Source;
use crate::error::Error;
use crate::settings::{Prompts, WorkloadSettings};
use crate::shard::{Pick, Shard, conversation_roots};
use crate::shutdown::Shutdown;
use crate::workload::Tokenizer;
use crate::workload::blocks::BlockPrompts;
use crate::workload::dataset::dataset_prompts;
use crate::workload::prepare::{PromptSource, WorkloadSpec};
use crate::workload::sessions::link_parents;
use crate::workload::synthetic::SyntheticPrompts;
use crate::workload::tools::check_entries;
use crate::workload::trace_file::TraceFile;

/// What every run of the session draws its requests from.
pub struct Inputs {
    pub workload: WorkloadSpec,
    pub tokenizer: Tokenizer,
    /// `--sessions`: each turn's parent turn, for the whole trace.
    pub sessions: Option<Arc<Vec<Option<u32>>>>,
}

impl Inputs {
    /// A signal ends this early with `Error::Interrupted` (a dataset or tokenizer being
    /// parsed is not watched; the signal listener ends a process stuck there).
    pub fn resolve(
        w: &WorkloadSettings,
        source: &Source,
        shutdown: &Shutdown,
    ) -> Result<Inputs, Error> {
        let tokenizer = Tokenizer::load(w.tokenizer.as_deref())?;
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
            Source::Prompts => (prompt_source(&w.prompts, &tokenizer)?, w.output_len, None),
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
            },
            tokenizer,
            sessions,
        })
    }

    /// Some dataset entry carries tools of its own.
    pub fn entry_tools(&self) -> bool {
        matches!(&self.workload.source, PromptSource::Dataset(entries)
            if entries.iter().any(|e| e.tools.is_some()))
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

fn prompt_source(prompts: &Prompts, tokenizer: &Tokenizer) -> Result<PromptSource, Error> {
    match prompts {
        Prompts::Dataset {
            path,
            expand_turns: expand,
        } => {
            let entries = dataset_prompts(path, *expand)?;
            Ok(PromptSource::Dataset(Arc::new(entries)))
        }
        Prompts::Synthetic { kind, input_len } => {
            let (prompts, fallback) = SyntheticPrompts::resolve(*kind, tokenizer);
            if let Some(why) = fallback {
                errln!("note: synthetic prompts use random token ids instead: {why}");
            }
            Ok(PromptSource::Synthetic {
                input_len: *input_len,
                prompts,
            })
        }
        // The command reads the trace and hands it over as `Source::Trace`.
        Prompts::Trace => Err(Error::Input(
            "trace prompts need a trace as the prompt source".into(),
        )),
    }
}
