//! Where prompts come from (synthetic, a dataset, shared-prefix groups, sessions, a
//! trace) and the flags that conflict with each, checked once for `Settings`.

use super::load::LoadArgs;
use super::load_modes::PromptMode;
use crate::error::Error;
use crate::settings::Prompts;
use crate::workload::synthetic::LengthSpec;

/// `--max-input-length`: at least 1, and only where prompts come from a dataset.
pub(super) fn max_input_length(a: &LoadArgs, prompts: &Prompts) -> Result<Option<usize>, Error> {
    match (a.max_input_length, prompts) {
        (None, _) => Ok(None),
        (Some(0), _) => Err(Error::Input(
            "--max-input-length 0: expected a number of tokens ≥ 1".into(),
        )),
        (Some(n), Prompts::Dataset { .. }) => Ok(Some(n)),
        (Some(n), _) => Err(Error::Input(format!(
            "--max-input-length {n} cuts --dataset prompts; synthetic and trace prompts have the lengths asked for (--input-len, the trace)"
        ))),
    }
}

/// The prompt source and max_tokens, with the flags that conflict with them.
pub(super) fn prompts(a: &LoadArgs, mode: PromptMode) -> Result<(Prompts, LengthSpec), Error> {
    match mode {
        PromptMode::Trace { sessions } => {
            if sessions && a.prompt_token_ids {
                return Err(Error::Input(
                    "--sessions sends chat histories as text: it cannot be combined with --prompt-token-ids".into(),
                ));
            }
            if sessions && a.images.is_some() {
                return Err(Error::Input(
                    "--images adds images to each request's own prompt; trace --sessions builds later turns from the history at send time, without them: give one of the two".into(),
                ));
            }
            for (given, flag) in [
                (a.dataset.is_some(), "--dataset"),
                (a.num_requests.is_some(), "--num-requests (use --limit)"),
                (a.shared_prefix.is_some(), "--shared-prefix"),
                (a.synthetic_prompts.is_some(), "--synthetic-prompts"),
            ] {
                if given {
                    return Err(Error::Input(format!(
                        "{flag} does not apply to trace replay: the trace gives every request (--input-len and --output-len replace its lengths)"
                    )));
                }
            }
            Ok((Prompts::Trace, LengthSpec::Fixed(1)))
        }
        PromptMode::Flags(d) => {
            let kind = a
                .synthetic_prompts
                .unwrap_or(crate::workload::synthetic::SyntheticKind::Words);
            if let Some(spec) = super::sessions::check(a)? {
                let prompts = Prompts::Sessions {
                    kind,
                    input_len: a.input_len.unwrap_or(d.input_len),
                    spec,
                };
                return Ok((prompts, a.output_len.unwrap_or(d.output_len)));
            }
            if a.synthetic_prompts.is_some() && a.dataset.is_some() {
                return Err(not_synthetic(a));
            }
            let prompts = match &a.dataset {
                Some(path) => {
                    if a.input_len.is_some() {
                        return Err(Error::Input(
                            "--input-len does not apply with --dataset (prompts come from the file)"
                                .into(),
                        ));
                    }
                    Prompts::Dataset {
                        path: path.clone(),
                        expand_turns: d.expand_turns,
                    }
                }
                None if let Some(sp) = a.shared_prefix => {
                    if a.synthetic_prompts.is_some() {
                        return Err(not_synthetic(a));
                    }
                    Prompts::SharedPrefix(sp)
                }
                None => Prompts::Synthetic {
                    kind,
                    input_len: a.input_len.unwrap_or(d.input_len),
                },
            };
            Ok((prompts, a.output_len.unwrap_or(d.output_len)))
        }
    }
}

/// `--synthetic-prompts` beside prompts that are not synthetic: refused, not ignored.
fn not_synthetic(a: &LoadArgs) -> Error {
    let source = match a.dataset {
        Some(_) => "--dataset gives its own prompts",
        None => "--shared-prefix builds its prompts from one-token words",
    };
    Error::Input(format!(
        "--synthetic-prompts shapes synthetic prompts; {source}: drop one of the two"
    ))
}
