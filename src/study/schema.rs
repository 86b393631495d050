//! The study file's JSON Schema (draft 2020-12). Load, workload, target, metrics and
//! output keys come from the load subcommands' clap definitions (`keys.rs`): their
//! names, help and how they take values, so the schema cannot drift from the flags.
//! The few keys that are not flags are described here.

use clap::CommandFactory;
use serde_json::{Map, Value, json};

use super::flags::{Flag, MODES, Takes};
use super::keys::{self, Key, Section};

/// The schema `servescope schema study` prints and docs/study.schema.json holds.
pub fn study() -> Value {
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "servescope study",
        "description": "A whole benchmark study: `servescope run STUDY.yaml [LOAD FLAGS...]`. Every key of target, workload, metrics, output and loads is a load flag (its long name; `input_len` and `input-len` are the same key); flags typed after the file override the file for every load that takes them. A null value leaves a key unset. Relative paths are read from the working directory, as on the command line.",
        "type": "object",
        "additionalProperties": false,
        "required": ["loads"],
        "properties": {
            "description": {"type": "string", "description": "Free text about the study; not used."},
            "target": target(),
            "workload": {
                "description": "What every load sends and how (each load may override a key for itself).",
                "type": ["object", "null"],
                "$ref": "#/$defs/workload",
                "unevaluatedProperties": false,
            },
            "loads": loads(),
            "slo": slo(),
            "metrics": section("Server metrics scraped around each run.", &keys::section(Section::Metrics), Map::new(), "#/properties/metrics/properties"),
            "output": output(),
            "server": Value::Null,
        },
        "$defs": {
            // Defined once: the workload section and every load take these keys.
            "workload": {
                "type": "object",
                "properties": props(&keys::section(Section::Workload), Map::new(), "#/$defs/workload/properties"),
            }
        }
    });
    server(&mut schema);
    schema
}

/// The `server:` section's schema, derived from the type serde reads it into (its
/// definitions join the study's `$defs`, where its references point).
fn server(study: &mut Value) {
    let mut server =
        serde_json::to_value(schemars::schema_for!(super::servers::ServerSpec)).unwrap_or_default();
    if let (Some(Value::Object(defs)), Some(Value::Object(study_defs))) = (
        server.as_object_mut().and_then(|o| o.remove("$defs")),
        study.get_mut("$defs"),
    ) {
        study_defs.extend(defs);
    }
    if let Some(o) = server.as_object_mut() {
        o.remove("$schema");
        o.remove("title");
        o.insert(
            "description".into(),
            "A server to start once per configuration: each configuration's loads run against it, their results under OUT/<label>/, study.json indexing them.".into(),
        );
    }
    study["properties"]["server"] = server;
}

fn target() -> Value {
    let mut extra = Map::new();
    extra.insert(
        "api_key_env".into(),
        json!({"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description": "The NAME of the environment variable holding the API key (sent as a bearer token, never printed or saved). A key itself is never written in a study: `api_key` is refused."}),
    );
    extra.insert(
        "sim".into(),
        section(
            "Without an endpoint: settings of the built-in simulator.",
            &keys::section(Section::Sim),
            Map::new(),
            "#/properties/target/properties/sim/properties",
        ),
    );
    section(
        "The server: an endpoint (omitted: the built-in simulator, in-process), model, tokenizer, API and headers.",
        &keys::section(Section::Target),
        extra,
        "#/properties/target/properties",
    )
}

fn output() -> Value {
    let mut extra = Map::new();
    extra.insert(
        "dir".into(),
        json!({"type": "string", "description": "The study's output directory: each load's results go in DIR/<load name>/ (a result directory that report, compare and merge read). Required here or as --output-dir after the study file."}),
    );
    extra.insert(
        "html".into(),
        json!({"type": "boolean", "description": "Also write each load's HTML report as DIR/<load name>/report.html."}),
    );
    section(
        "Where results go and how they are reported.",
        &keys::section(Section::Output),
        extra,
        "#/properties/output/properties",
    )
}

fn slo() -> Value {
    let bound =
        |d: &str| json!({"type": ["number", "null"], "exclusiveMinimum": 0, "description": d});
    json!({
        "description": "Service-level objective for goodput (and capacity's search): bounds inline, or the path of an --slo YAML file.",
        "oneOf": [
            {"type": "null"},
            {"type": "string", "description": "An SLO file (`slo: {ttft_ms: 500}`)."},
            {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "ttft_ms": bound("Time to first token, at most this many ms."),
                    "tpot_ms": bound("Time per output token after the first, at most this many ms."),
                    "itl_ms": bound("Same as tpot_ms (the dual-round tool's name)."),
                    "e2e_ms": bound("End-to-end latency, at most this many ms."),
                    "latency_ms": bound("Same as e2e_ms."),
                    "min_output_tok_s": bound("Each request's output tokens / E2E, at least this many per second."),
                    "ttfa_ms": bound("Time to the first answer token (after reasoning), at most this many ms."),
                }
            }
        ]
    })
}

fn loads() -> Value {
    let cli = crate::Cli::command();
    let variants: Vec<Value> = MODES
        .into_iter()
        .enumerate()
        .map(|(i, mode)| {
            let about = cli
                .find_subcommand(mode)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default();
            let mut extra = Map::new();
            extra.insert("mode".into(), json!({"const": mode, "description": "The load subcommand."}));
            extra.insert(
                "name".into(),
                json!({"type": "string", "pattern": "^[A-Za-z0-9._-]+$", "description": "The load's name and its results' directory [default: the mode, numbered when repeated]."}),
            );
            let own: Vec<Key> = super::flags::own(mode)
                .unwrap_or_default()
                .into_iter()
                .map(|flag| Key {
                    name: flag.long.clone(),
                    flag,
                })
                .collect();
            let base = format!("#/properties/loads/items/oneOf/{i}/properties");
            json!({
                "title": mode,
                "description": about,
                "type": "object",
                "required": ["mode"],
                "properties": props(&own, extra, &base),
                "$ref": "#/$defs/workload",
                "unevaluatedProperties": false,
            })
        })
        .collect();
    json!({
        "description": "The loads, run one after another; each is a load subcommand (`mode`) with its levels and any workload key overridden for itself.",
        "type": "array",
        "minItems": 1,
        "items": {"oneOf": variants}
    })
}

/// An object whose keys are flags (plus `extra`), no others; `base` is the JSON
/// pointer of its `properties`, which the underscore spellings refer to.
fn section(description: &str, keys: &[Key], extra: Map<String, Value>, base: &str) -> Value {
    json!({
        "description": description,
        "type": ["object", "null"],
        "additionalProperties": false,
        "properties": props(keys, extra, base),
    })
}

/// Each key's schema, and its underscore spelling as a reference to it.
fn props(keys: &[Key], extra: Map<String, Value>, base: &str) -> Map<String, Value> {
    let mut props = extra;
    for k in keys {
        props.insert(k.name.clone(), value(&k.flag));
        if k.name.contains('-') {
            let alias = json!({"$ref": format!("{base}/{}", k.name), "description": format!("Same as `{}`.", k.name)});
            props.insert(k.name.replace('-', "_"), alias);
        }
    }
    props
}

/// A flag's value: its type from how it takes values, its help as the description.
fn value(f: &Flag) -> Value {
    let scalar = match f.choices.is_empty() {
        true => json!({"type": ["string", "number"]}),
        false => json!({"enum": f.choices}),
    };
    let mut v = match f.takes {
        Takes::Switch => json!({"type": "boolean"}),
        Takes::One => scalar,
        Takes::Positional => json!({"type": "string"}),
        Takes::List => {
            json!({"anyOf": [scalar, {"type": "array", "minItems": 1, "items": scalar}]})
        }
        Takes::Repeat => json!({"anyOf": [
            {"type": "string"},
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": {"type": ["string", "number"]}}
        ]}),
    };
    let flag = match f.takes {
        Takes::Positional => format!("the <{}> argument", f.long.to_uppercase()),
        _ => format!("--{}", f.long),
    };
    let default = match f.default.as_slice() {
        [] => String::new(),
        d => format!(" [default: {}]", d.join(",")),
    };
    let default = if f.help.contains("[default") {
        String::new()
    } else {
        default
    };
    v["description"] = json!(format!("{}{default} (flag {flag})", f.help));
    v
}
