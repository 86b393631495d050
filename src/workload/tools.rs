//! Tool definitions sent with chat requests (`--tools FILE`, a dataset entry's `tools`)
//! and `--tool-choice`. A set is checked once, when it is read, and kept serialised: a
//! run-wide set is spliced into every body as the same bytes, never copied as JSON.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::dataset_entry::describe;

/// A checked list of tool definitions (OpenAI chat shape), serialised once.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSet {
    names: Vec<String>,
    /// The JSON array, as sent.
    json: Arc<str>,
}

const SHAPE: &str =
    r#"{"type": "function", "function": {"name": ..., "description": ..., "parameters": {...}}}"#;

impl ToolSet {
    /// Check `value` as a tool list; errors say which entry (from 0) and what was expected.
    pub fn from_value(value: &Value) -> Result<ToolSet, String> {
        let Value::Array(list) = value else {
            return Err(format!(
                "expected a JSON array of tool definitions {SHAPE}, found {}",
                describe(value)
            ));
        };
        if list.is_empty() {
            return Err(format!(
                "expected a non-empty array of tool definitions {SHAPE}"
            ));
        }
        let mut names = Vec::with_capacity(list.len());
        for (i, tool) in list.iter().enumerate() {
            let name = check_tool(tool).map_err(|e| format!("tool {i}: {e}"))?;
            if names.contains(&name) {
                return Err(format!("tool {i}: the name {name:?} is used twice"));
            }
            names.push(name);
        }
        Ok(ToolSet {
            names,
            json: Arc::from(value.to_string()),
        })
    }

    /// `--tools FILE`: a JSON array of tool definitions.
    pub fn load(path: &Path) -> Result<ToolSet, String> {
        let bad = |why: String| format!("--tools {}: {why}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read ({e})")))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not valid JSON ({e}); expected an array {SHAPE}")))?;
        ToolSet::from_value(&value).map_err(bad)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The array as sent.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// One definition: `{"type": "function", "function": {"name": NAME, ...}}`; its name.
fn check_tool(tool: &Value) -> Result<String, String> {
    let Value::Object(map) = tool else {
        return Err(format!(
            "expected an object {SHAPE}, found {}",
            describe(tool)
        ));
    };
    match map.get("type") {
        Some(Value::String(t)) if t == "function" => {}
        other => {
            return Err(format!(
                "expected \"type\": \"function\", found {}",
                other.map_or_else(|| "none".into(), |v| v.to_string())
            ));
        }
    }
    let Some(Value::Object(f)) = map.get("function") else {
        return Err(format!(
            "expected a \"function\" object {{\"name\": ..., \"parameters\": {{...}}}}, found {}",
            map.get("function").map_or_else(|| "none".into(), describe)
        ));
    };
    let name = match f.get("name") {
        Some(Value::String(n)) if !n.is_empty() => n.clone(),
        other => {
            return Err(format!(
                "expected \"function\": {{\"name\": a non-empty string}}, found {}",
                other.map_or_else(|| "none".into(), describe)
            ));
        }
    };
    for (field, ok) in [
        (
            "description",
            f.get("description").is_none_or(Value::is_string),
        ),
        (
            "parameters",
            f.get("parameters").is_none_or(Value::is_object),
        ),
    ] {
        if !ok {
            let expected = if field == "parameters" {
                "a JSON Schema object"
            } else {
                "a string"
            };
            return Err(format!(
                "function {name:?}: \"{field}\" must be {expected}, found {}",
                describe(&f[field])
            ));
        }
    }
    Ok(name)
}

/// `--tool-choice`: what the model may do with the tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    /// Call this tool.
    Named(String),
}

impl ToolChoice {
    pub fn parse(s: &str) -> Result<ToolChoice, String> {
        Ok(match s {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            "" => {
                return Err("--tool-choice: expected auto, none, required or a tool's name".into());
            }
            name => ToolChoice::Named(name.to_string()),
        })
    }

    /// The `tool_choice` value of a chat body.
    pub fn to_json(&self) -> Value {
        match self {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(n) => json!({"type": "function", "function": {"name": n}}),
        }
    }

    /// A named choice must name a tool of every set it goes with.
    pub fn check(&self, tools: &ToolSet, what: &str) -> Result<(), String> {
        match self {
            ToolChoice::Named(n) if !tools.has(n) => Err(format!(
                "--tool-choice {n}: {what} has no tool of that name (it has {})",
                tools.names().join(", ")
            )),
            _ => Ok(()),
        }
    }
}

/// The tools of a request body: its own set (a dataset entry's) or the run's, and the
/// choice, serialised once for the run.
#[derive(Clone, Debug, Default)]
pub struct BodyTools {
    /// `--tools`, sent with every request that has no set of its own.
    pub run: Option<ToolSet>,
    /// `--tool-choice` as JSON text; sent only with requests that carry tools.
    pub choice: Option<Arc<str>>,
}

impl BodyTools {
    pub fn new(run: Option<ToolSet>, choice: Option<&ToolChoice>) -> BodyTools {
        BodyTools {
            run,
            choice: choice.map(|c| Arc::from(c.to_json().to_string())),
        }
    }

    /// Append `,"tools":…,"tool_choice":…` to a body's members (`body` is a JSON object
    /// missing its closing brace); `own` replaces the run's set. Keys the body already
    /// has (from `--extra-body`, which overrides everything) are left alone.
    pub fn splice(
        &self,
        body: &mut Vec<u8>,
        own: Option<&ToolSet>,
        has_key: impl Fn(&str) -> bool,
    ) {
        let Some(tools) = own.or(self.run.as_ref()) else {
            return;
        };
        if !has_key("tools") {
            body.extend_from_slice(b",\"tools\":");
            body.extend_from_slice(tools.json().as_bytes());
        }
        if let Some(choice) = &self.choice
            && !has_key("tool_choice")
        {
            body.extend_from_slice(b",\"tool_choice\":");
            body.extend_from_slice(choice.as_bytes());
        }
    }
}

/// A dataset's entries against `--tool-choice`: a named tool must be in every entry's
/// own tools, and a choice needs some tools to go with (`run`: `--tools` was given).
pub fn check_entries(
    entries: &[super::dataset::DatasetEntry],
    run: bool,
    choice: &ToolChoice,
) -> Result<(), String> {
    let mut any = run;
    for e in entries {
        if let Some(t) = &e.tools {
            any = true;
            choice.check(t, &format!("{}: \"tools\"", e.location))?;
        }
    }
    if !any {
        return Err(
            "--tool-choice needs tools: give --tools FILE, or \"tools\" in the dataset's entries (none has any)"
                .into(),
        );
    }
    Ok(())
}

/// Chat-shape tools as the Responses API takes them: `{"type": "function", "name", "description",
/// "parameters"}` (the `function` object's members moved up). Anything not in the chat
/// shape is passed through unchanged.
pub fn responses_tools(tools: &Value) -> Value {
    let Value::Array(list) = tools else {
        return tools.clone();
    };
    let flat = list
        .iter()
        .map(|t| match (t.get("type"), t.get("function")) {
            (Some(Value::String(ty)), Some(Value::Object(f))) if ty == "function" => {
                let mut out = serde_json::Map::new();
                out.insert("type".into(), json!("function"));
                for (k, v) in f {
                    out.insert(k.clone(), v.clone());
                }
                // Members beside "function" (e.g. "strict" at the top) are kept.
                for (k, v) in t.as_object().into_iter().flatten() {
                    if k != "type" && k != "function" {
                        out.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
                Value::Object(out)
            }
            _ => t.clone(),
        })
        .collect();
    Value::Array(flat)
}

/// `--tool-choice` as the Responses API takes it (a named choice is flattened too).
pub fn responses_tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Named(n) => json!({"type": "function", "name": n}),
        other => other.to_json(),
    }
}

#[cfg(test)]
#[path = "tests_tools.rs"]
mod tests;
