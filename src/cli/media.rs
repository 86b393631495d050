//! `--shared-prefix` and `--images`: the request count a shared-prefix workload
//! defaults to, and the image flags checked against the API and each other.

use super::load::LoadArgs;
use super::{Cli, Command};
use crate::client::openai::Api;
use crate::error::Error;
use crate::workload::images::{ImageFormat, ImageSpec};

/// `--shared-prefix` without `--num-requests`: one pass over every group's questions,
/// G×P requests, where the mode counts requests (not batch, whose sizes are its counts,
/// nor a run bounded by `--duration` alone).
pub(super) fn default_count(mut cli: Cli) -> Cli {
    let (load, duration) = match &mut cli.command {
        Command::Throughput(a) => (&mut a.load, None),
        Command::Concurrency(a) => (&mut a.load, None),
        Command::Rate(a) => (&mut a.load, a.duration),
        Command::DualRound(a) => (&mut a.load, None),
        Command::Capacity(a) => (&mut a.load, a.duration),
        Command::Sweep(a) => (&mut a.load, a.duration),
        _ => return cli,
    };
    if let (Some(sp), None, None) = (load.shared_prefix, load.num_requests, duration) {
        load.num_requests = Some(usize::try_from(sp.requests()).unwrap_or(usize::MAX));
    }
    cli
}

/// `--images N` with its size and format; images go in chat content parts, so the
/// completions and embeddings APIs (and token-id prompts) are refused.
pub(super) fn images(a: &LoadArgs) -> Result<Option<ImageSpec>, Error> {
    if a.sim_image_tokens.is_some() && a.endpoint.is_some() {
        return Err(Error::Input(
            "--sim-image-tokens sets the built-in simulator, which --endpoint replaces: give one of them".into(),
        ));
    }
    let Some(count) = a.images else {
        for (given, flag) in [
            (a.image_size.is_some(), "--image-size"),
            (a.image_format.is_some(), "--image-format"),
        ] {
            if given {
                return Err(Error::Input(format!(
                    "{flag} describes the images --images N adds: give --images too"
                )));
            }
        }
        return Ok(None);
    };
    if let Some(api) = a.api {
        refuse_api(api)?;
    }
    if a.prompt_token_ids {
        return Err(Error::Input(
            "--images goes in chat content parts: it cannot be combined with --prompt-token-ids"
                .into(),
        ));
    }
    let (width, height) = a.image_size.unwrap_or((512, 512));
    Ok(Some(ImageSpec {
        count,
        width,
        height,
        format: a.image_format.unwrap_or(ImageFormat::Jpeg),
    }))
}

/// Images need an API whose prompts are chat content (chat, Responses).
pub fn refuse_api(api: Api) -> Result<(), Error> {
    match api {
        Api::Chat | Api::Responses => Ok(()),
        other => Err(Error::Input(format!(
            "--images needs the chat or responses API: the {} API takes no images (drop --api {}, or --images)",
            other.as_str(),
            other.as_str()
        ))),
    }
}
