//! LoRA adapters served beside the base model, as vLLM's `--lora-modules NAME=PATH`:
//! each is listed in `/v1/models` (with its base as `parent`), answers under its own
//! name, and may cost extra time before each of its requests starts (`cost_ms`: an
//! adapter swapped into GPU memory, its own matmuls), so a by-model breakdown shows a
//! difference in TTFT. A simulator serving adapters
//! routes by the body's `model`, so it refuses a name it does not serve with vLLM's 404;
//! one serving a single model answers any name, as before.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::SimConfig;

/// One adapter: `NAME`, `NAME=PATH` (the path is only shown, as `root`), with an
/// optional `@MS` extra time before each of its requests starts.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoraModule {
    pub name: String,
    #[serde(default)]
    pub path: Option<String>,
    /// Extra ms before each of this adapter's requests starts.
    #[serde(default)]
    pub cost_ms: f64,
}

impl LoraModule {
    pub fn named(name: &str) -> LoraModule {
        LoraModule {
            name: name.to_string(),
            path: None,
            cost_ms: 0.0,
        }
    }

    /// `NAME[=PATH][@MS]`, as `--lora-modules` takes each (comma-separated) item.
    pub fn parse(s: &str) -> Result<LoraModule, String> {
        let (rest, cost_ms) = match s.rsplit_once('@') {
            Some((rest, ms)) => {
                let ms: f64 = ms.trim().parse().ok().filter(|m: &f64| m.is_finite() && *m >= 0.0).ok_or_else(|| {
                    format!("--lora-modules {s:?}: {ms:?} is not a number of ms ≥ 0 (expected NAME[=PATH][@MS])")
                })?;
                (rest, ms)
            }
            None => (s, 0.0),
        };
        let (name, path) = match rest.split_once('=') {
            Some((n, p)) => (n.trim(), Some(p.trim().to_string())),
            None => (rest.trim(), None),
        };
        if name.is_empty() {
            return Err(format!(
                "--lora-modules {s:?}: the adapter has no name (expected NAME[=PATH][@MS])"
            ));
        }
        Ok(LoraModule {
            name: name.to_string(),
            path,
            cost_ms,
        })
    }
}

/// Every name the simulator serves: its model, then its adapters.
fn served(cfg: &SimConfig) -> impl Iterator<Item = &str> {
    std::iter::once(cfg.model.as_str()).chain(cfg.lora_modules.iter().map(|l| l.name.as_str()))
}

/// Each name served once (an adapter named as the model, or twice, could not be told
/// apart).
pub fn check_served(cfg: &SimConfig) -> Result<(), String> {
    let names: Vec<&str> = served(cfg).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(format!(
                "--lora-modules: {n:?} is served twice (the model and each adapter need names of their own)"
            ));
        }
    }
    Ok(())
}

/// `/v1/models`: the base model, then each adapter with its base as parent.
pub(super) fn models_list(cfg: &SimConfig) -> serde_json::Value {
    let mut data = vec![json!({
        "id": cfg.model,
        "object": "model",
        "created": 0,
        "owned_by": "servescope",
    })];
    for l in &cfg.lora_modules {
        data.push(json!({
            "id": l.name,
            "object": "model",
            "created": 0,
            "owned_by": "servescope",
            "root": l.path.as_deref().unwrap_or(&l.name),
            "parent": cfg.model,
        }));
    }
    json!({"object": "list", "data": data})
}

/// The body's `model`, read alone.
#[derive(Deserialize)]
struct ModelOnly {
    model: Option<String>,
}

/// With adapters: the adapter a request names (None: the base model, or no name), or
/// the name not served (answered with [`not_found`]). Without adapters: always None (any name goes).
/// A body that is not JSON is left to the route's own parser and its 400.
pub(super) fn route(cfg: &SimConfig, body: &[u8]) -> Result<Option<LoraModule>, String> {
    if cfg.lora_modules.is_empty() {
        return Ok(None);
    }
    let Ok(ModelOnly { model: Some(name) }) = serde_json::from_slice::<ModelOnly>(body) else {
        return Ok(None);
    };
    if name == cfg.model {
        return Ok(None);
    }
    match cfg.lora_modules.iter().find(|l| l.name == name) {
        Some(l) => Ok(Some(l.clone())),
        None => Err(name),
    }
}

/// vLLM's answer to a model it does not serve.
pub(super) fn not_found(name: &str) -> Response {
    let body = json!({
        "error": {
            "message": format!("The model `{name}` does not exist."),
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_parse_as_vllm_names_them() {
        assert_eq!(LoraModule::parse("sql").unwrap(), LoraModule::named("sql"));
        let l = LoraModule::parse("sql=/loras/sql@2.5").unwrap();
        assert_eq!(
            (l.name.as_str(), l.path.as_deref(), l.cost_ms),
            ("sql", Some("/loras/sql"), 2.5)
        );
        assert!(LoraModule::parse("=/p").unwrap_err().contains("no name"));
        assert!(
            LoraModule::parse("a@x")
                .unwrap_err()
                .contains("--lora-modules")
        );
    }

    #[test]
    fn only_a_served_name_is_routed() {
        let cfg = SimConfig {
            model: "base".into(),
            lora_modules: vec![LoraModule::named("sql")],
            ..SimConfig::ideal()
        };
        assert_eq!(route(&cfg, br#"{"model":"base"}"#).unwrap(), None);
        assert_eq!(route(&cfg, br#"{"prompt":"x"}"#).unwrap(), None);
        assert_eq!(
            route(&cfg, br#"{"model":"sql"}"#).unwrap(),
            Some(LoraModule::named("sql"))
        );
        assert_eq!(route(&cfg, br#"{"model":"nope"}"#).unwrap_err(), "nope");
        assert_eq!(not_found("nope").status(), StatusCode::NOT_FOUND);
        let plain = SimConfig::ideal();
        assert_eq!(route(&plain, br#"{"model":"anything"}"#).unwrap(), None);
        let names: Vec<&str> = served(&cfg).collect();
        assert_eq!(names, ["base", "sql"]);
    }
}
