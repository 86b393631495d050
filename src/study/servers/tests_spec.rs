use super::*;

fn spec(yaml: &str) -> ServerSpec {
    serde_saphyr::from_str(yaml).unwrap()
}

#[test]
fn a_matrix_gives_every_combination_with_stable_labels_and_words() {
    let s = spec(
        "command: \"srv --port {port} {config} --quiet\"\nmatrix: {max_num_seqs: [1, 8], enforce-eager: [true, false]}\n",
    );
    let c = s.check().unwrap();
    let labels: Vec<&str> = c.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "enforce-eager=true,max_num_seqs=1",
            "enforce-eager=true,max_num_seqs=8",
            "enforce-eager=false,max_num_seqs=1",
            "enforce-eager=false,max_num_seqs=8",
        ]
    );
    assert_eq!(
        s.argv(&c[2], 4321).unwrap(),
        [
            "srv",
            "--port",
            "4321",
            "--no-enforce-eager",
            "--max-num-seqs",
            "1",
            "--quiet"
        ]
    );
    assert_eq!(
        s.urls(4321).unwrap(),
        (
            "http://127.0.0.1:4321/health".into(),
            "http://127.0.0.1:4321".into()
        )
    );
}

#[test]
fn configs_append_without_a_placeholder_and_combine_with_a_matrix() {
    let s = spec(
        "command: \"llama-server -m 'my model.gguf' --port {port}\"\nconfigs: [{parallel: 1}, {-np: 4, ctx: 'a b'}]\nmatrix: {temp: [0.5]}\nready_url: \"http://127.0.0.1:{port}/v1/models\"\n",
    );
    let c = s.check().unwrap();
    assert_eq!(c[0].label, "parallel=1,temp=0.5");
    assert_eq!(
        c[1].label, "np=4,ctx=a_b,temp=0.5",
        "dashes dropped, unsafe characters _"
    );
    assert_eq!(
        s.argv(&c[1], 9).unwrap(),
        [
            "llama-server",
            "-m",
            "my model.gguf",
            "--port",
            "9",
            "-np",
            "4",
            "--ctx",
            "a b",
            "--temp",
            "0.5"
        ]
    );
    assert_eq!(s.urls(9).unwrap().1, "http://127.0.0.1:9");
}

#[test]
fn bad_sections_name_the_key() {
    for (yaml, says) in [
        (
            "command: x\nready_timeout_s: 0\n",
            "server.ready_timeout_s: 0",
        ),
        ("command: \"a 'b\"\n", "server.command: unbalanced quotes"),
        (
            "command: \"a {config} {config}\"\n",
            "server.command: {config} must be",
        ),
        (
            "command: \"a --x={config}\"\n",
            "server.command: {config} must be",
        ),
        (
            "command: a\nready_url: \"https://h/health\"\n",
            "server.ready_url",
        ),
        (
            "command: a\nconfigs: []\n",
            "server.configs: the list is empty",
        ),
        (
            "command: a\nconfigs: [{a: 1}, {a: 1}]\n",
            "two configurations have the label \"a=1\"",
        ),
        (
            "command: a\nmatrix: {a: []}\n",
            "server.matrix: a: no values",
        ),
        (
            "command: a\nconfigs: [{api-key: x}]\n",
            "put it in server.env",
        ),
    ] {
        let e = spec(yaml).check().unwrap_err().to_string();
        assert!(e.contains(says), "{yaml}: {e}");
    }
    let e = serde_saphyr::from_str::<ServerSpec>("command: a\nready_timout_s: 5\n").unwrap_err();
    assert!(
        e.to_string().contains("ready_timout_s"),
        "unknown keys are errors: {e}"
    );
}

#[test]
fn credential_flags_are_masked_in_saved_commands() {
    let argv: Vec<String> = [
        "vllm",
        "serve",
        "--api-key",
        "sk-1",
        "--hf-token=abc",
        "--max-num-batched-tokens",
        "8192",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        index::masked(&argv),
        [
            "vllm",
            "serve",
            "--api-key",
            "***",
            "--hf-token=***",
            "--max-num-batched-tokens",
            "8192"
        ]
    );
}

#[test]
fn the_schema_documents_every_key() {
    let schema = serde_json::to_value(schemars::schema_for!(ServerSpec)).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "command",
        "ready_url",
        "endpoint",
        "ready_timeout_s",
        "stop_timeout_s",
        "env",
        "configs",
        "matrix",
    ] {
        let d = props[key]["description"].as_str().unwrap_or_default();
        assert!(d.len() > 20, "{key}: {d:?}");
    }
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys refused"
    );
    assert_eq!(schema["required"], serde_json::json!(["command"]));
}
