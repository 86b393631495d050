use serde_json::{Value, json};

use super::*;
use crate::client::openai::{Api, BodyOptions, PromptBody, build_body, build_body_with_tools};

fn weather() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "search"}}
    ])
}

#[test]
fn a_valid_list_is_kept_as_sent() {
    let t = ToolSet::from_value(&weather()).unwrap();
    assert_eq!(t.names(), ["get_weather", "search"]);
    assert!(t.has("search") && !t.has("nope"));
    let back: Value = serde_json::from_str(t.json()).unwrap();
    assert_eq!(back, weather());
}

#[test]
fn each_bad_entry_is_named_with_what_was_expected() {
    let cases = [
        (json!({"type": "function"}), "expected a JSON array"),
        (json!([]), "non-empty array"),
        (json!([1]), "tool 0: expected an object"),
        (
            json!([{"type": "function", "function": {"name": "a"}}, {"type": "code", "function": {"name": "b"}}]),
            "tool 1: expected \"type\": \"function\", found \"code\"",
        ),
        (
            json!([{"type": "function"}]),
            "tool 0: expected a \"function\" object",
        ),
        (
            json!([{"type": "function", "function": {"name": ""}}]),
            "tool 0: expected \"function\": {\"name\": a non-empty string}, found an empty string",
        ),
        (
            json!([{"type": "function", "function": {"name": "a", "parameters": []}}]),
            "tool 0: function \"a\": \"parameters\" must be a JSON Schema object, found an empty list",
        ),
        (
            json!([{"type": "function", "function": {"name": "a", "description": 3}}]),
            "\"description\" must be a string, found 3",
        ),
        (
            json!([{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "a"}}]),
            "tool 1: the name \"a\" is used twice",
        ),
    ];
    for (v, want) in cases {
        let err = ToolSet::from_value(&v).unwrap_err();
        assert!(err.contains(want), "{v}: {err}");
    }
}

#[test]
fn a_tools_file_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tools.json");
    std::fs::write(&path, "[{\"type\": \"function\"").unwrap();
    let err = ToolSet::load(&path).unwrap_err();
    assert!(
        err.starts_with(&format!("--tools {}: not valid JSON", path.display())),
        "{err}"
    );
    std::fs::write(
        &path,
        r#"[{"type":"function","function":{"name":"a"}}, {}]"#,
    )
    .unwrap();
    let err = ToolSet::load(&path).unwrap_err();
    assert!(
        err.contains("tools.json: tool 1: expected \"type\""),
        "{err}"
    );
    let err = ToolSet::load(&dir.path().join("missing.json")).unwrap_err();
    assert!(err.contains("missing.json: cannot read"), "{err}");
}

#[test]
fn tool_choice_values_and_names() {
    let t = ToolSet::from_value(&weather()).unwrap();
    assert_eq!(ToolChoice::parse("auto").unwrap().to_json(), json!("auto"));
    assert_eq!(ToolChoice::parse("none").unwrap().to_json(), json!("none"));
    assert_eq!(
        ToolChoice::parse("required").unwrap().to_json(),
        json!("required")
    );
    let named = ToolChoice::parse("search").unwrap();
    assert_eq!(
        named.to_json(),
        json!({"type": "function", "function": {"name": "search"}})
    );
    named.check(&t, "--tools f").unwrap();
    let err = ToolChoice::parse("serch")
        .unwrap()
        .check(&t, "--tools f")
        .unwrap_err();
    assert_eq!(
        err,
        "--tool-choice serch: --tools f has no tool of that name (it has get_weather, search)"
    );
    assert!(ToolChoice::parse("").is_err());
}

fn opts(api: Api, choice: Option<ToolChoice>) -> BodyOptions {
    BodyOptions {
        batch_inputs: 1,
        api,
        model: "m".into(),
        ignore_eos: true,
        extra: Default::default(),
        tools: BodyTools::new(
            Some(ToolSet::from_value(&weather()).unwrap()),
            choice.as_ref(),
        ),
    }
}

fn body(o: &BodyOptions, own: Option<&ToolSet>) -> Value {
    serde_json::from_slice(&build_body_with_tools(o, PromptBody::Text("hi"), 8, own)).unwrap()
}

#[test]
fn the_run_s_tools_go_with_every_chat_body_and_an_entry_s_replace_them() {
    let o = opts(Api::Chat, Some(ToolChoice::Required));
    let b = body(&o, None);
    assert_eq!(b["tools"], weather());
    assert_eq!(b["tool_choice"], "required");
    assert_eq!(b["messages"][0]["content"], "hi");
    let own =
        ToolSet::from_value(&json!([{"type": "function", "function": {"name": "x"}}])).unwrap();
    let b = body(&o, Some(&own));
    assert_eq!(b["tools"][0]["function"]["name"], "x");
    assert_eq!(b["tools"].as_array().unwrap().len(), 1);
    // No tools, no choice: nothing is added.
    let plain = BodyOptions {
        batch_inputs: 1,
        tools: BodyTools::default(),
        ..o.clone()
    };
    let b: Value = serde_json::from_slice(&build_body(&plain, PromptBody::Text("hi"), 8)).unwrap();
    assert!(b.get("tools").is_none() && b.get("tool_choice").is_none());
    // A choice without tools (a dataset entry without any) is not sent either.
    let choice_only = BodyOptions {
        batch_inputs: 1,
        tools: BodyTools::new(None, Some(&ToolChoice::Auto)),
        ..o.clone()
    };
    assert!(body(&choice_only, None).get("tool_choice").is_none());
    assert_eq!(body(&choice_only, Some(&own))["tool_choice"], "auto");
}

#[test]
fn extra_body_overrides_tools_and_completions_take_none() {
    let mut o = opts(Api::Chat, Some(ToolChoice::Auto));
    o.extra.insert("tool_choice".into(), json!("none"));
    let b = body(&o, None);
    assert_eq!(b["tool_choice"], "none", "--extra-body wins");
    assert_eq!(b["tools"], weather());
    o.extra.insert("tools".into(), json!([]));
    assert_eq!(body(&o, None)["tools"], json!([]));
    let c = opts(Api::Completions, Some(ToolChoice::Auto));
    let b = body(&c, None);
    assert!(b.get("tools").is_none() && b.get("tool_choice").is_none());
    assert_eq!(b["prompt"], "hi");
}

#[test]
fn the_run_s_tools_are_shared_not_copied() {
    let o = opts(Api::Chat, None);
    let copy = o.clone();
    let (a, b) = (o.tools.run.unwrap(), copy.tools.run.unwrap());
    assert!(std::ptr::eq(a.json().as_ptr(), b.json().as_ptr()));
}

#[test]
fn responses_shape_moves_the_function_up() {
    let flat = responses_tools(&weather());
    assert_eq!(
        flat,
        json!([
            {"type": "function", "name": "get_weather", "description": "Weather",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"type": "function", "name": "search"}
        ])
    );
    let odd = json!([{"type": "web_search"}, {"type": "function", "function": {"name": "a"}, "strict": true}]);
    assert_eq!(
        responses_tools(&odd),
        json!([{"type": "web_search"}, {"type": "function", "name": "a", "strict": true}])
    );
    assert_eq!(
        responses_tool_choice(&ToolChoice::Named("a".into())),
        json!({"type": "function", "name": "a"})
    );
    assert_eq!(
        responses_tool_choice(&ToolChoice::Required),
        json!("required")
    );
}

#[test]
fn entries_are_checked_against_the_named_choice() {
    use super::super::dataset::{DatasetEntry, PromptContent};
    let entry = |loc: &str, tools: Option<Value>| DatasetEntry {
        location: loc.into(),
        content: PromptContent::Text("t".into()),
        output_len: None,
        tools: tools.map(|v| ToolSet::from_value(&v).unwrap()),
    };
    let entries = vec![
        entry("d:1", None),
        entry("d:2", Some(weather())),
        entry(
            "d:3",
            Some(json!([{"type": "function", "function": {"name": "other"}}])),
        ),
    ];
    check_entries(&entries, false, &ToolChoice::Required).unwrap();
    let err = check_entries(&entries, false, &ToolChoice::Named("search".into())).unwrap_err();
    assert!(
        err.starts_with("--tool-choice search: d:3: \"tools\" has no tool"),
        "{err}"
    );
    let none = vec![entry("d:1", None)];
    assert!(
        check_entries(&none, false, &ToolChoice::Auto)
            .unwrap_err()
            .contains("needs tools")
    );
    check_entries(&none, true, &ToolChoice::Auto).unwrap();
}
