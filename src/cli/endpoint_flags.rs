//! The flags that say where and how requests go: `--model` (and its mix), `-H`
//! headers, `--api-key`, checked once for `Settings`.

use crate::client::headers::{ExtraHeaders, Header};
use crate::error::Error;
use crate::workload::models::ModelMix;

/// `--model a,b` and `--model-weights`: the model (the first name) and, for several
/// names, their mix. One name is a plain `--model`, as without a mix.
pub(super) fn model_mix(
    model: Option<&str>,
    weights: Option<&str>,
) -> Result<(Option<String>, Option<std::sync::Arc<ModelMix>>), Error> {
    let Some(model) = model else {
        return Ok((None, None));
    };
    let names: Vec<String> = model.split(',').map(|n| n.trim().to_string()).collect();
    if let Some(empty) = names.iter().position(String::is_empty) {
        return Err(Error::Input(format!(
            "--model {model:?}: name {} is empty (expected NAME or NAME,NAME,...)",
            empty + 1
        )));
    }
    let weights = match weights {
        Some(w) => Some(
            w.split(',')
                .map(|x| {
                    x.trim().parse::<f64>().map_err(|_| {
                        Error::Input(format!(
                            "--model-weights {w}: {:?} is not a number (expected one share per --model name, e.g. 0.7,0.3)",
                            x.trim()
                        ))
                    })
                })
                .collect::<Result<Vec<f64>, Error>>()?,
        ),
        None => None,
    };
    let mix = ModelMix::new(names, weights).map_err(|e| Error::Input(e.to_string()))?;
    let first = mix.names()[0].to_string();
    Ok((Some(first), mix.is_mix().then(|| std::sync::Arc::new(mix))))
}

/// `-H 'Name: value'`, each checked; an Authorization header and --api-key would
/// both set it.
pub(super) fn headers(given: &[String], api_key: bool) -> Result<ExtraHeaders, Error> {
    let list = given
        .iter()
        .map(|h| Header::parse(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Input)?;
    let headers = ExtraHeaders::new(list).map_err(Error::Input)?;
    if api_key && headers.has("authorization") {
        return Err(Error::Input(
            "-H/--header Authorization and --api-key (or OPENAI_API_KEY) both set the Authorization header; give one".into(),
        ));
    }
    Ok(headers)
}

/// A key goes into the Authorization header, which cannot hold a control character:
/// a CR or LF (a key file's line end) would end the header early, or be refused by the
/// client later with a message naming no flag. Only the position is named, never the key.
pub(super) fn api_key(key: Option<String>) -> Result<Option<String>, Error> {
    let bad = key
        .as_deref()
        .and_then(|k| k.chars().enumerate().find(|(_, c)| c.is_control()));
    match bad {
        None => Ok(key),
        Some((at, c)) => Err(Error::Input(format!(
            "--api-key (or OPENAI_API_KEY): control character U+{:04X} at character {}; an HTTP \
             header cannot carry it (a line end copied from a file?): expected printable characters only",
            c as u32,
            at + 1
        ))),
    }
}
