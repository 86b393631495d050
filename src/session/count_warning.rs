//! The warning when output tokens were counted with a tokenizer nobody chose: a server
//! that sends no usage leaves the count to the client, and the built-in default is not
//! the served model's tokenizer (cl100k counted 25 tokens for 16 a llama.cpp model
//! generated, so TPOT read 6.5 ms for a true 10 ms). Said once per run on stderr, and
//! kept in results.json (`output_tokens_counted_with`).

use super::target::Target;
use crate::metrics::Summary;
use crate::report::document::{CountedWith, ResultsDoc};
use crate::settings::SessionSettings;
use crate::workload::server_tok::ServerTokenizer;

/// Whether the endpoint can tokenize, asked at most once per session.
#[derive(Default)]
pub struct CountWarning {
    server_can_tokenize: Option<bool>,
}

impl CountWarning {
    /// After run `label`: warns when some of its output was counted with the default.
    pub fn after_run(
        &mut self,
        s: &SessionSettings,
        target: &Target,
        (label, summary): (&str, &Summary),
        doc: &mut ResultsDoc,
    ) {
        let counted = summary.tokens.source_tokenizer;
        if s.workload.tokenizer.is_some() || counted == 0 {
            return;
        }
        // Probed after the run, only now that it matters: one tokenize exchange.
        let can = *self
            .server_can_tokenize
            .get_or_insert_with(|| ServerTokenizer::available(target.tokenizer_spec()));
        let tokenizer = doc.tokenizer.clone().unwrap_or_default();
        let warning = message(label, counted, summary.total, &tokenizer, can);
        errln!("{warning}");
        let entry = doc
            .output_tokens_counted_with
            .get_or_insert_with(|| CountedWith {
                tokenizer,
                server_can_tokenize: can,
                ..CountedWith::default()
            });
        entry.runs.push(label.to_string());
        entry.warning = warning;
    }
}

fn message(label: &str, counted: u64, total: u64, tokenizer: &str, can: bool) -> String {
    let fix = match can {
        true => {
            "give --tokenizer server (this endpoint can tokenize), or --tokenizer PATH|ORG/NAME for the served model's tokenizer.json"
        }
        false => "give --tokenizer PATH|ORG/NAME for the served model's tokenizer.json",
    };
    format!(
        "WARNING: {label}: the server sent no usage, so the output tokens of {counted} of {total} requests were counted with {tokenizer}, the built-in default, not the served model's tokenizer: output token counts, TPOT and output tok/s may be off; {fix}"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_message_names_the_flag_and_server_only_when_it_can() {
        let m = super::message("c=1", 3, 4, "builtin:cl100k", true);
        assert!(
            m.contains("--tokenizer server") && m.contains("3 of 4"),
            "{m}"
        );
        let m = super::message("c=1", 3, 4, "builtin:cl100k", false);
        assert!(!m.contains("--tokenizer server") && m.contains("--tokenizer PATH"));
    }
}
