//! `--api embeddings` against the other flags: what does not apply to a request that
//! generates nothing is refused by name, before any server is reached.

use super::load::LoadArgs;
use super::load_modes::PromptMode;
use crate::client::openai::Api;
use crate::error::Error;
use crate::metrics::slo::Slo;

/// `--batch-inputs` (1 unless given), once the flags are checked against the API.
pub(super) fn check(a: &LoadArgs, mode: &PromptMode, slo: Option<&Slo>) -> Result<u32, Error> {
    let refuse = |msg: String| Err(Error::Input(msg));
    if !embeddings(a) {
        if a.batch_inputs.is_some() {
            return refuse(
                "--batch-inputs applies to --api embeddings only (the other APIs send one prompt per request)".into(),
            );
        }
        return Ok(1);
    }
    let batch = a.batch_inputs.unwrap_or(1);
    let unsent = [
        (a.output_len.is_some(), "--output-len"),
        (a.temperature.is_some(), "--temperature"),
        (a.top_p.is_some(), "--top-p"),
        (a.no_ignore_eos, "--no-ignore-eos"),
        (a.count_output_text, "--count-output-text"),
    ];
    if let Some((_, flag)) = unsent.iter().find(|(given, _)| *given) {
        return refuse(format!(
            "{flag} does not apply to --api embeddings: an embeddings request generates no output"
        ));
    }
    match mode {
        PromptMode::Trace { sessions: true } => {
            return refuse(
                "--sessions sends chat histories that grow with each answer: it does not apply to --api embeddings".into(),
            );
        }
        PromptMode::Trace { .. } if batch > 1 => {
            return refuse(format!(
                "--batch-inputs {batch} with a trace: each trace request is one embeddings request with its own timestamp and prompt; leave --batch-inputs at 1"
            ));
        }
        _ => {}
    }
    if let Some(slo) = slo {
        let bounds = [
            (slo.ttft_ms.is_some(), "ttft_ms"),
            (slo.ttfa_ms.is_some(), "ttfa_ms"),
            (slo.tpot_ms.is_some(), "tpot_ms"),
            (slo.min_output_tok_s.is_some(), "min_output_tok_s"),
        ];
        if let Some((_, key)) = bounds.iter().find(|(given, _)| *given) {
            return refuse(format!(
                "--slo {key}: an embeddings request has no output tokens to time; bound its latency with e2e_ms"
            ));
        }
    }
    Ok(batch)
}

/// `--api embeddings`, or no `--api` and an `--endpoint` that is the embeddings route.
fn embeddings(a: &LoadArgs) -> bool {
    match a.api {
        Some(api) => api == Api::Embeddings,
        None => a.endpoint.as_deref().is_some_and(|e| {
            reqwest::Url::parse(e)
                .is_ok_and(|u| u.path().trim_end_matches('/').ends_with("/embeddings"))
        }),
    }
}
