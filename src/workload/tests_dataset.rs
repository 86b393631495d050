use super::*;
use serde_json::json;
use std::path::PathBuf;

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Files(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}

fn read(name: &str, body: &str) -> Result<Vec<DatasetEntry>, DatasetError> {
    read_conv(name, body, Conversation::FirstTurn)
}

fn read_conv(
    name: &str,
    body: &str,
    conv: Conversation,
) -> Result<Vec<DatasetEntry>, DatasetError> {
    let files = Files::new();
    let p = files.write(name, body);
    read_dataset(&p, conv)
}

/// The error message with the temp directory removed, so tests can compare it whole.
fn err(name: &str, body: &str) -> String {
    err_conv(name, body, Conversation::FirstTurn)
}

fn err_conv(name: &str, body: &str, conv: Conversation) -> String {
    let files = Files::new();
    let p = files.write(name, body);
    let msg = read_dataset(&p, conv).unwrap_err().to_string();
    let dir = format!("{}/", files.0.path().display());
    msg.replace(&dir, "")
}

fn text(e: &DatasetEntry) -> &str {
    match &e.content {
        PromptContent::Text(t) => t,
        PromptContent::Messages(m) => panic!("expected text, got {m}"),
    }
}

#[test]
fn jsonl_lines_with_locations_and_blank_lines_skipped() {
    let files = Files::new();
    let p = files.write(
            "d.jsonl",
            "{\"text\": \"a\"}\n\n   \n{\"prompt\": \"b\", \"max_tokens\": 12}\r\n{\"content\": \"c\", \"output_length\": 3}",
        );
    let got = read_dataset(&p, Conversation::FirstTurn).unwrap();
    let file = p.display().to_string();
    assert_eq!(
        got,
        vec![
            DatasetEntry {
                location: format!("{file}:1"),
                content: PromptContent::Text("a".into()),
                output_len: None,
                tools: None
            },
            DatasetEntry {
                location: format!("{file}:4"),
                content: PromptContent::Text("b".into()),
                output_len: Some(12),
                tools: None
            },
            DatasetEntry {
                location: format!("{file}:5"),
                content: PromptContent::Text("c".into()),
                output_len: Some(3),
                tools: None
            },
        ]
    );
}

#[test]
fn json_list_and_data_object() {
    let files = Files::new();
    let p = files.write("d.json", r#"[{"text": "a"}, {"prompt": "b"}]"#);
    let got = read_dataset(&p, Conversation::FirstTurn).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].location, format!("{}: entry 2", p.display()));
    assert_eq!(text(&got[1]), "b");

    let got = read(
            "d.json",
            r#"{"version": 1, "meta": {"x": [1, 2]}, "data": [{"text": "x"}], "data": [{"text": "dup"}]}"#,
        )
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(text(&got[0]), "x");
}

#[test]
fn list_is_detected_by_content_whatever_the_extension() {
    let got = read("d.jsonl", "\n  [{\"text\": \"a\"},\n {\"text\": \"b\"}]\n").unwrap();
    assert_eq!(got.len(), 2);
    assert!(got[1].location.ends_with("d.jsonl: entry 2"));
    let got = read("d.txt", "\u{feff}[{\"text\": \"bom\"}]").unwrap();
    assert_eq!(text(&got[0]), "bom");
}

#[test]
fn mislabelled_formats_fall_back() {
    // JSON Lines named .json.
    let got = read("d.json", "{\"text\": \"a\"}\n{\"text\": \"b\"}\n").unwrap();
    assert_eq!(got.len(), 2);
    assert!(got[1].location.ends_with("d.json:2"));
    // A pretty-printed data object named .jsonl.
    let got = read(
        "d.jsonl",
        "{\n  \"data\": [\n    {\"text\": \"a\"}\n  ]\n}\n",
    )
    .unwrap();
    assert_eq!(text(&got[0]), "a");
    // Neither format: the error is the one for the file's own format.
    assert!(err("d.jsonl", "{\n \"text\": \"a\"\n}\n").starts_with(
            "d.jsonl:1: not valid JSON (expected one JSON object per line): EOF while parsing an object at column 1"
        ));
    assert_eq!(
        err("d.json", "{\"text\": \"a\"}\n{oops\n"),
        "d.json: not valid JSON (expected a list of objects or an object with a \"data\" list): trailing characters at line 2 column 1"
    );
}

#[test]
fn first_present_field_wins() {
    let got = read(
        "d.jsonl",
        r#"{"prompt": "p", "text": "t", "messages": [{"role": "user", "content": "m"}]}
{"content": "c", "messages": [{"role": "user", "content": "m"}]}
{"text": null, "prompt": null, "content": "c2"}"#,
    )
    .unwrap();
    assert_eq!(text(&got[0]), "t");
    assert_eq!(text(&got[1]), "c");
    assert_eq!(text(&got[2]), "c2");
}

#[test]
fn messages_are_kept_as_is() {
    let msgs = json!([
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    ]);
    let body = json!({"messages": msgs, "max_tokens": 5}).to_string();
    for conv in [Conversation::FirstTurn, Conversation::WholeConversation] {
        let got = read_conv("d.jsonl", &body, conv).unwrap();
        assert_eq!(got[0].content, PromptContent::Messages(msgs.clone()));
        assert_eq!(got[0].output_len, Some(5));
    }
}

const SHAREGPT: &str = r#"[{"id": "x", "conversations": [
        {"from": "system", "value": "sys"},
        {"from": "human", "value": "q1"},
        {"from": "gpt", "value": "a1"},
        {"from": "user", "value": "q2"},
        {"from": "chatgpt", "value": "a2"},
        {"from": "assistant", "value": "a3"}
    ]}]"#;

#[test]
fn sharegpt_first_turn() {
    let got = read("sg.json", SHAREGPT).unwrap();
    assert_eq!(got[0].content, PromptContent::Text("q1".into()));
    assert_eq!(got[0].output_len, None);
}

#[test]
fn sharegpt_whole_conversation_drops_trailing_answers() {
    let got = read_conv("sg.json", SHAREGPT, Conversation::WholeConversation).unwrap();
    assert_eq!(
        got[0].content,
        PromptContent::Messages(json!([
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
        ]))
    );
    // OpenAI names inside a ShareGPT list are understood too.
    let got = read_conv(
            "d.jsonl",
            r#"{"conversations": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
            Conversation::WholeConversation,
        )
        .unwrap();
    assert_eq!(
        got[0].content,
        PromptContent::Messages(json!([{"role": "user", "content": "q"}]))
    );
}

#[test]
fn sharegpt_errors() {
    let cases = [
        (
            r#"{"conversations": []}"#,
            "d.jsonl:1: \"conversations\" must be a non-empty list of {\"from\": ..., \"value\": ...} turns, found an empty list",
        ),
        (
            r#"{"conversations": "hi"}"#,
            "d.jsonl:1: \"conversations\" must be a non-empty list of {\"from\": ..., \"value\": ...} turns, found a string",
        ),
        (
            r#"{"conversations": [3]}"#,
            "d.jsonl:1: \"conversations\" must be a non-empty list of {\"from\": ..., \"value\": ...} turns; turn 1 is 3",
        ),
        (
            r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]}"#,
            "d.jsonl:1: \"conversations\" turn 2: unknown speaker \"bot\" (expected human, user, gpt, assistant, chatgpt, bing, bard or system)",
        ),
        (
            r#"{"conversations": [{"value": "q"}]}"#,
            "d.jsonl:1: \"conversations\" turn 1: expected a \"from\" string, found none",
        ),
        (
            r#"{"conversations": [{"from": "human", "value": 5}]}"#,
            "d.jsonl:1: \"conversations\" turn 1: expected a \"value\" string, found 5",
        ),
        (
            r#"{"conversations": [{"from": "gpt", "value": "a"}]}"#,
            "d.jsonl:1: \"conversations\" has no human/user turn to prompt with",
        ),
        (
            r#"{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": ""}]}"#,
            "d.jsonl:1: \"conversations\" turn 2: the human/user turn is empty",
        ),
    ];
    for (body, want) in cases {
        for conv in [Conversation::FirstTurn, Conversation::WholeConversation] {
            assert_eq!(err_conv("d.jsonl", body, conv), want, "{body}");
        }
    }
}

#[test]
fn entry_errors_name_the_line_or_entry() {
    let cases = [
        (
            "d.jsonl",
            "{\"text\": \"a\"}\n\n{\"text\": \"b\"\n",
            "d.jsonl:3: not valid JSON (expected one JSON object per line): EOF while parsing an object at column 12",
        ),
        (
            "d.jsonl",
            "{\"text\": \"a\"}\n{\"id\": 1}\n",
            "d.jsonl:2: no usable text (expected a non-empty \"text\", \"prompt\" or \"content\" string, a \"messages\" list or a \"conversations\" list)",
        ),
        (
            "d.jsonl",
            "{\"text\": \"a\"}\n[1, 2]\n",
            "d.jsonl:2: expected a JSON object, found a list",
        ),
        (
            "d.jsonl",
            "{\"text\": \"\"}",
            "d.jsonl:1: \"text\" must be a non-empty string, found an empty string",
        ),
        (
            "d.jsonl",
            "{\"prompt\": 5}",
            "d.jsonl:1: \"prompt\" must be a non-empty string, found 5",
        ),
        (
            "d.jsonl",
            "{\"messages\": []}",
            "d.jsonl:1: \"messages\" must be a non-empty list of {\"role\": ..., \"content\": ...} messages, found an empty list",
        ),
        (
            "d.jsonl",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"content\": \"y\"}]}",
            "d.jsonl:1: \"messages\" must be a non-empty list of {\"role\": ..., \"content\": ...} messages; message 2 has no \"role\" string",
        ),
        (
            "d.jsonl",
            "{\"text\": \"a\"}\n{\"text\": \"a\"}\n{\"text\": \"a\"}\n\n\n\n{\"text\": \"a\", \"max_tokens\": 0}",
            "d.jsonl:7: \"max_tokens\" must be a positive integer, found 0",
        ),
        (
            "d.jsonl",
            "{\"text\": \"a\", \"output_length\": -3}",
            "d.jsonl:1: \"output_length\" must be a positive integer, found -3",
        ),
        (
            "d.jsonl",
            "{\"text\": \"a\", \"max_tokens\": 1.5}",
            "d.jsonl:1: \"max_tokens\" must be a positive integer, found 1.5",
        ),
        (
            "d.jsonl",
            "{\"text\": \"a\", \"max_tokens\": \"64\"}",
            "d.jsonl:1: \"max_tokens\" must be a positive integer, found a string",
        ),
        (
            "d.jsonl",
            "{\"text\": \"a\", \"max_tokens\": 5000000000}",
            "d.jsonl:1: \"max_tokens\" must be a positive integer (at most 4294967295), found 5000000000",
        ),
        (
            "d.json",
            "[{\"text\": \"a\"}, {\"text\": \"b\", \"output_length\": true}]",
            "d.json: entry 2: \"output_length\" must be a positive integer, found true",
        ),
        (
            "d.json",
            "{\"data\": [{\"text\": \"a\"}, \"b\"]}",
            "d.json: entry 2: expected a JSON object, found a string",
        ),
    ];
    for (name, body, want) in cases {
        assert_eq!(err(name, body), want, "{body}");
    }
}

#[test]
fn output_length_wins_over_max_tokens_and_null_is_absent() {
    let got = read(
            "d.jsonl",
            "{\"text\": \"a\", \"max_tokens\": 9, \"output_length\": 4}\n{\"text\": \"a\", \"output_length\": null, \"max_tokens\": 9}\n{\"text\": \"a\", \"max_tokens\": null}",
        )
        .unwrap();
    let lens: Vec<_> = got.iter().map(|e| e.output_len).collect();
    assert_eq!(lens, [Some(4), Some(9), None]);
}

#[test]
fn whole_file_errors() {
    assert_eq!(
        err("d.json", "[{\"text\": \"a\"},\n {\"text\": }]"),
        "d.json: not valid JSON (expected a list of objects or an object with a \"data\" list): expected value at line 2 column 11"
    );
    assert_eq!(
        err("d.json", "\"hello\""),
        "d.json: invalid type: string \"hello\", expected a list of objects or an object with a \"data\" list at line 1 column 7"
    );
    assert_eq!(
        err("d.json", "{\"data\": {\"text\": \"a\"}}"),
        "d.json: invalid type: map, expected a \"data\" list of objects at line 1 column 9"
    );
    assert_eq!(
        err("d.json", "{\"rows\": [1],\n \"n\": 1\n}"),
        "d.json: a JSON object without a \"data\" list (expected a list of objects or an object with a \"data\" list)"
    );
    let empty = "no entries (expected one JSON object per line, or a JSON file holding a list of objects or an object with a \"data\" list)";
    for (name, body) in [
        ("d.jsonl", ""),
        ("d.jsonl", "\n  \n\r\n"),
        ("d.json", "[]"),
        ("d.json", "{\"data\": []}"),
    ] {
        assert_eq!(err(name, body), format!("{name}: {empty}"), "{body:?}");
    }
}

#[test]
fn unreadable_file_names_path_and_os_error() {
    let files = Files::new();
    let p = files.0.path().join("missing.jsonl");
    let msg = read_dataset(&p, Conversation::FirstTurn)
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with(&format!("cannot read dataset {}: ", p.display())));
    assert!(msg.contains("os error"), "{msg}");
    let msg = read_dataset(files.0.path(), Conversation::FirstTurn)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("os error"), "{msg}");
}

#[test]
fn hostile_input_never_panics() {
    let deep = "[".repeat(10_000);
    let bodies = [
        deep.as_str(),
        "\u{0}\u{1}",
        "{\"text\": \"\\ud800\"}",
        "[{\"text\": \"a\"}",
        "{{{{",
        "]",
        "null",
        "[null, 1]",
        "{\"data\": null}",
    ];
    for body in bodies {
        for name in ["d.json", "d.jsonl", "d"] {
            let _ = read(name, body);
        }
    }
    let files = Files::new();
    let p = files.0.path().join("bin.jsonl");
    std::fs::write(&p, [0xff, 0xfe, b'{', 0x80, b'}', b'\n']).unwrap();
    assert!(read_dataset(&p, Conversation::FirstTurn).is_err());
}

/// `expand_turns` alone.
mod expand_tests {
    use super::*;

    #[test]
    fn conversations_become_growing_histories() {
        let msgs = serde_json::json!([
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "u2"}
        ]);
        let e = DatasetEntry {
            location: "d:1".into(),
            content: PromptContent::Messages(msgs),
            output_len: Some(3),
            tools: None,
        };
        let single = DatasetEntry {
            location: "d:2".into(),
            content: PromptContent::Text("t".into()),
            output_len: None,
            tools: None,
        };
        let out = expand_turns(vec![e, single.clone()]);
        assert_eq!(out.len(), 3);
        let len = |e: &DatasetEntry| match &e.content {
            PromptContent::Messages(serde_json::Value::Array(m)) => m.len(),
            _ => 0,
        };
        assert_eq!(
            (len(&out[0]), len(&out[1])),
            (2, 4),
            "history grows, ends on a user turn"
        );
        assert_eq!(out[1].location, "d:1 (turn 2)");
        assert_eq!(out[2], single);
    }
}

/// `--dataset`: a ShareGPT `conversations` entry sends what the `messages` entry with
/// the same turns sends, whole or replayed turn by turn.
#[test]
fn conversations_and_messages_send_the_same_turns() {
    let files = Files::new();
    let conv = json!({"conversations": [
        {"from": "system", "value": "s"},
        {"from": "human", "value": "u1"},
        {"from": "gpt", "value": "a1"},
        {"from": "human", "value": "u2"},
        {"from": "gpt", "value": "the recorded answer"},
    ], "output_length": 5});
    let msgs = json!({"messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
    ], "output_length": 5});
    let p = files.write("d.jsonl", &format!("{conv}\n{msgs}\n"));
    let whole = dataset_prompts(&p, false).unwrap();
    assert_eq!(whole.len(), 2);
    assert_eq!(
        whole[0].content, whole[1].content,
        "one request: every turn"
    );
    assert_eq!(whole[0].output_len, Some(5));
    let replayed = dataset_prompts(&p, true).unwrap();
    assert_eq!(
        replayed.len(),
        4,
        "one request per user turn, for each shape"
    );
    assert_eq!(replayed[0].content, replayed[2].content);
    assert_eq!(replayed[1].content, replayed[3].content);
    assert!(replayed[0].location.ends_with("d.jsonl:1 (turn 1)"));
    let PromptContent::Messages(first) = &replayed[0].content else {
        panic!("{:?}", replayed[0]);
    };
    assert_eq!(
        first.as_array().unwrap().len(),
        2,
        "system and the first user turn"
    );
}
