//! A `--model a,b` mix checked before any run: every name must be one the server
//! serves (a LoRA adapter is listed in /v1/models beside its base, as vLLM's
//! `--lora-modules` lists it), so a misspelt adapter is one clear error now, not a
//! share of the run's requests failing with 404.

use super::target::connection_test;
use crate::client::HttpClient;
use crate::client::endpoint::Endpoint;
use crate::client::openai::{Api, BodyOptions};
use crate::console::printable;
use crate::error::Error;
use crate::workload::models::ModelMix;

/// The ids a /v1/models answer lists; None when it lists none in OpenAI's shape.
pub fn listed_ids(doc: &serde_json::Value) -> Option<Vec<String>> {
    let ids: Vec<String> = doc["data"]
        .as_array()?
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    (!ids.is_empty()).then_some(ids)
}

/// The mix's names the server does not list, as an error naming them and the served
/// ones; `Ok` when all are listed.
pub fn check_listed(mix: &ModelMix, served: &[String], url: &str) -> Result<(), Error> {
    let missing: Vec<&str> = mix
        .names()
        .iter()
        .map(|n| &**n)
        .filter(|n| !served.iter().any(|s| s == n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let quote = |v: &mut dyn Iterator<Item = &str>| {
        v.map(|n| format!("{:?}", printable(n).into_owned()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let verb = if missing.len() == 1 { "is" } else { "are" };
    Err(Error::Input(format!(
        "--model: {} {verb} not served by {url}, which lists {} (a LoRA adapter must be loaded, e.g. vLLM's --lora-modules NAME=PATH)",
        quote(&mut missing.into_iter()),
        quote(&mut served.iter().map(String::as_str)),
    )))
}

/// Check the mix against the server's list, when it gives one (a server that lists
/// nothing is trusted; each name's connection test still catches a refusal).
async fn check_mix(client: &HttpClient, endpoint: &Endpoint, mix: &ModelMix) -> Result<(), Error> {
    let Ok(doc) = client.get_json(&endpoint.models_url).await else {
        return Ok(());
    };
    match listed_ids(&doc) {
        Some(served) => check_listed(mix, &served, endpoint.models_url.as_str()),
        None => Ok(()),
    }
}

/// The connection test, of each model of a mix (a listed adapter can still fail to
/// load) after checking the mix against the server's list.
pub async fn connection_tests(
    client: &HttpClient,
    endpoint: &Endpoint,
    body: &BodyOptions,
    mix: Option<&ModelMix>,
) -> Result<(), Error> {
    let Some(mix) = mix else {
        return connection_test(client, endpoint, body).await;
    };
    if endpoint.api == Api::Embeddings {
        return Err(Error::Input(
            "--model with several names mixes generation requests; --api embeddings sends one model (give one --model)".into(),
        ));
    }
    check_mix(client, endpoint, mix).await?;
    for name in mix.names() {
        let one = BodyOptions {
            model: name.to_string(),
            ..body.clone()
        };
        connection_test(client, endpoint, &one).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_name_is_named_with_the_served_ones() {
        let mix = ModelMix::new(vec!["base".into(), "sql-lora".into()], None).unwrap();
        let doc = serde_json::json!({"data": [{"id": "base"}, {"id": "chat-lora"}]});
        let served = listed_ids(&doc).unwrap();
        let e = check_listed(&mix, &served, "http://h/v1/models").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(
            msg.contains("\"sql-lora\" is not served by http://h/v1/models, which lists \"base\", \"chat-lora\""),
            "{msg}"
        );
        let ok = ModelMix::new(vec!["chat-lora".into(), "base".into()], None).unwrap();
        assert!(check_listed(&ok, &served, "u").is_ok());
        assert_eq!(listed_ids(&serde_json::json!({"data": []})), None);
    }
}
