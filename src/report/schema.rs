//! results.json's JSON Schema, generated from the typed document (`ResultsDoc` and
//! everything it holds), so the published schema cannot drift from what is written.
//! Most types derive `JsonSchema`; the few with a hand-written `Serialize` (ordered
//! maps, STATS objects, server metrics, run modes) get their schema here, matching what
//! they serialise.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::document::{ResultsDoc, RunMode};
use crate::metrics::ordered_map::OrderedMap;
use crate::metrics::server_saved::{Series, ServerMetrics};
use crate::metrics::stats::SavedStats;

/// The schema of results.json, as pretty JSON (what `servescope schema results` prints
/// and `docs/results.schema.json` holds), ending in a newline.
pub fn results_schema() -> String {
    let mut schema = schemars::schema_for!(ResultsDoc);
    schema.insert("title".into(), "servescope results.json".into());
    schema.insert(
        "description".into(),
        "One benchmark session's results: the header, then `runs` (one per load level), \
         each with its `params` and `summary`. Written by `servescope run`/`merge`; \
         fields may be absent in files from older versions."
            .into(),
    );
    // Serialising a Value-backed schema cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// A JSON object with keys in file order (keys are strings).
impl<K, V: JsonSchema> JsonSchema for OrderedMap<K, V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<V>(),
        })
    }
}

/// A STATS object: `mean`, one `pNN` key per percentile (the defaults p50, p90, p99
/// always), `min`, `max`, `std` (all null without samples), `count`, and `ci95` when
/// bootstrap intervals were computed.
impl JsonSchema for SavedStats {
    fn schema_name() -> Cow<'static, str> {
        "Stats".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let number = json_schema!({"type": ["number", "null"]});
        json_schema!({
            "type": "object",
            "description": "Statistics over a run's samples; the numbers are null when there were none.",
            "properties": {
                "mean": number.clone(),
                "p50": number.clone(),
                "p90": number.clone(),
                "p99": number.clone(),
                "min": number.clone(),
                "max": number.clone(),
                "std": number.clone(),
                "count": {"type": "integer", "minimum": 0},
                "ci95": {
                    "type": "object",
                    "description": "95 % bootstrap interval [low, high] of each percentile (`--ci`).",
                    "additionalProperties": {
                        "type": "array",
                        "items": {"type": "number"},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                },
            },
            "patternProperties": {
                "^p[0-9]+(\\.[0-9]+)?$": number,
            },
            "required": ["mean", "count"],
        })
    }
}

/// `summary.server_metrics`: each series under its Prometheus name (with labels),
/// then `derived`, `missing` and `failed_samples`.
impl JsonSchema for ServerMetrics {
    fn schema_name() -> Cow<'static, str> {
        "ServerMetrics".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "The server's metrics over one run: each series by its Prometheus name (a counter or a gauge), then derived values.",
            "properties": {
                "derived": generator.subschema_for::<OrderedMap<String, Option<f64>>>(),
                "missing": {"type": "array", "items": {"type": "string"}},
                "failed_samples": {"type": "integer", "minimum": 0},
            },
            "additionalProperties": generator.subschema_for::<Series>(),
        })
    }
}

/// The mode as its results-spec string; a newer writer's unknown mode is kept as
/// written, so any string is valid.
impl JsonSchema for RunMode {
    fn schema_name() -> Cow<'static, str> {
        "RunMode".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "How the run sent its requests: batch, throughput, concurrency, rate, trace, dual-round or sweep (a newer version may write others).",
            "examples": ["batch", "throughput", "concurrency", "rate", "trace", "dual-round", "sweep"],
        })
    }
}
