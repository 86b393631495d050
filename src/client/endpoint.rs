//! Where requests go: `--endpoint` may be a server base, an OpenAI `/v1` base, or the
//! full path of a completions, chat, responses or embeddings route.

use reqwest::Url;

use super::openai::Api;

#[derive(Clone, Debug)]
pub struct Endpoint {
    pub api: Api,
    /// The completions or chat-completions URL requests are POSTed to.
    pub url: Url,
    /// `/v1/models` beside it.
    pub models_url: Url,
    /// The server root (scheme, host, port), for `/metrics` and the like.
    pub root: Url,
    /// Where the server's own routes (`/tokenize`) hang: the root, or the path before
    /// `/v1` when a gateway serves the engine under a prefix (`http://gw/llama/v1`).
    pub server_root: Url,
}

#[derive(Debug, thiserror::Error)]
#[error("--endpoint {given}: {reason}")]
pub struct EndpointError {
    given: String,
    reason: String,
}

impl Endpoint {
    /// `api` is the `--api` flag if given; a full path decides it otherwise.
    pub fn parse(given: &str, api: Option<Api>) -> Result<Self, EndpointError> {
        let err = |reason: &str| EndpointError {
            given: given.to_string(),
            reason: reason.to_string(),
        };
        let url = Url::parse(given).map_err(|e| {
            err(&format!(
                "not a URL ({e}); expected e.g. http://127.0.0.1:8000 or https://host/v1"
            ))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(err("expected an http:// or https:// URL"));
        }
        if url.host_str().is_none() {
            return Err(err("the URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(err(
                "credentials in the URL are not supported (they would end up in results); use --api-key or OPENAI_API_KEY",
            ));
        }
        let path = url.path().trim_end_matches('/').to_string();
        let (prefix, from_path) = if let Some(p) = path.strip_suffix("/embeddings") {
            (p.to_string(), Some(Api::Embeddings))
        } else if let Some(p) = path.strip_suffix("/chat/completions") {
            (p.to_string(), Some(Api::Chat))
        } else if let Some(p) = path.strip_suffix("/completions") {
            (p.to_string(), Some(Api::Completions))
        } else if let Some(p) = path.strip_suffix("/responses") {
            (p.to_string(), Some(Api::Responses))
        } else if path.ends_with("/v1") {
            (path.clone(), None)
        } else {
            (format!("{path}/v1"), None)
        };
        let api = match (api, from_path) {
            (Some(a), Some(b)) if a != b => {
                return Err(err(&format!(
                    "the path is the {} route but --api {} was given",
                    b.as_str(),
                    a.as_str()
                )));
            }
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => Api::Chat,
        };
        let with_path = |p: &str| {
            let mut u = url.clone();
            u.set_path(p);
            u.set_query(None);
            u
        };
        let route = match api {
            Api::Chat => "/chat/completions",
            Api::Completions => "/completions",
            Api::Responses => "/responses",
            Api::Embeddings => "/embeddings",
        };
        let url_final = if from_path.is_some() {
            url.clone()
        } else {
            with_path(&format!("{prefix}{route}"))
        };
        Ok(Endpoint {
            api,
            url: url_final,
            models_url: with_path(&format!("{prefix}/models")),
            root: with_path("/"),
            server_root: with_path(&format!("{}/", prefix.strip_suffix("/v1").unwrap_or(""))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_v1_and_full_paths() {
        let e = Endpoint::parse("http://127.0.0.1:8000", None).unwrap();
        assert_eq!(e.url.as_str(), "http://127.0.0.1:8000/v1/chat/completions");
        assert_eq!(e.models_url.as_str(), "http://127.0.0.1:8000/v1/models");
        assert_eq!(e.api, Api::Chat);

        let e = Endpoint::parse("http://h:1/v1/", Some(Api::Completions)).unwrap();
        assert_eq!(e.url.as_str(), "http://h:1/v1/completions");

        let e = Endpoint::parse("https://h/openai/v1/completions", None).unwrap();
        assert_eq!(e.api, Api::Completions);
        assert_eq!(e.url.as_str(), "https://h/openai/v1/completions");
        assert_eq!(e.models_url.as_str(), "https://h/openai/v1/models");
        assert_eq!(e.root.as_str(), "https://h/");
        assert_eq!(e.server_root.as_str(), "https://h/openai/");
        let e = Endpoint::parse("http://h:1", None).unwrap();
        assert_eq!(e.server_root.as_str(), "http://h:1/");

        let e = Endpoint::parse("http://h:1/v1/embeddings", None).unwrap();
        assert_eq!(e.api, Api::Embeddings);
        assert_eq!(e.models_url.as_str(), "http://h:1/v1/models");
        let e = Endpoint::parse("http://h:1", Some(Api::Embeddings)).unwrap();
        assert_eq!(e.url.as_str(), "http://h:1/v1/embeddings");

        let e = Endpoint::parse("http://h/proxy", None).unwrap();
        assert_eq!(e.url.as_str(), "http://h/proxy/v1/chat/completions");

        let e = Endpoint::parse("http://h:1", Some(Api::Responses)).unwrap();
        assert_eq!(e.url.as_str(), "http://h:1/v1/responses");
        let e = Endpoint::parse("http://h:1/v1/responses", None).unwrap();
        assert_eq!(
            (e.api, e.models_url.as_str()),
            (Api::Responses, "http://h:1/v1/models")
        );
        let e = Endpoint::parse("http://h/v1/responses", Some(Api::Chat)).unwrap_err();
        assert!(e.to_string().contains("the responses route"), "{e}");
    }

    #[test]
    fn bad_endpoints_are_explained() {
        for (given, needle) in [
            ("localhost:8000", "http"),
            ("not a url", "not a URL"),
            ("ftp://h/", "http"),
            ("http://u:p@h/", "credentials"),
        ] {
            let e = Endpoint::parse(given, None).unwrap_err().to_string();
            assert!(e.contains(given) && e.contains(needle), "{e}");
        }
        let e = Endpoint::parse("http://h/v1/embeddings", Some(Api::Chat)).unwrap_err();
        assert!(e.to_string().contains("embeddings route"), "{e}");
        let e = Endpoint::parse("http://h/v1/completions", Some(Api::Chat)).unwrap_err();
        assert!(e.to_string().contains("--api chat"));
    }
}
