use super::*;

fn parse(s: &str) -> (ChunkInfo, String) {
    let mut text = String::new();
    let info = parse_chunk(s.as_bytes(), &mut text).unwrap();
    (info, text)
}

#[test]
fn role_only_and_empty_deltas_are_not_output() {
    let (i, t) = parse(
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
    );
    assert!(!i.kinds.any() && !i.finished && t.is_empty());
    let (i, _) = parse(r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}"#);
    assert!(!i.kinds.any());
    let (i, _) = parse(r#"{"choices":[{"index":0,"delta":{}}]}"#);
    assert!(!i.kinds.any());
}

#[test]
fn content_reasoning_text_and_tool_arguments_are_output() {
    let (i, t) = parse(r#"{"choices":[{"delta":{"content":"Hi\n\"there\""}}]}"#);
    assert_eq!(i.kinds, EventKinds::ANSWER);
    assert_eq!(t, "Hi\n\"there\"");
    let (i, t) = parse(r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#);
    assert!(i.kinds == EventKinds::REASONING && t == "think");
    let (i, _) = parse(r#"{"choices":[{"delta":{"reasoning":"hmm"}}]}"#);
    assert_eq!(i.kinds, EventKinds::REASONING);
    let (i, t) = parse(r#"{"choices":[{"index":0,"text":" world","finish_reason":null}]}"#);
    assert!(i.kinds == EventKinds::ANSWER && t == " world");
    let (i, _) = parse(r#"{"choices":[{"delta":{"reasoning_content":"a","content":"b"}}]}"#);
    assert!(i.kinds.has(EventKinds::REASONING) && i.kinds.has(EventKinds::ANSWER));
    let (i, t) = parse(
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"x\""}}]}}]}"#,
    );
    assert!(i.kinds == EventKinds::TOOL && t == "{\"x\"");
}

#[test]
fn finish_and_usage_only_chunks() {
    let (i, _) = parse(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#);
    assert!(i.finished && !i.kinds.any());
    let (i, _) = parse(
        r#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":8}}}"#,
    );
    assert!(!i.kinds.any());
    let u = i.usage.unwrap();
    assert_eq!(u.prompt_tokens, Some(12));
    assert_eq!(u.completion_tokens, Some(5));
    assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, Some(8));
    let (i, _) = parse(r#"{"choices":[],"usage":null}"#);
    assert!(i.usage.is_none());
    let (i, _) = parse(
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":null,"prompt_tokens_details":null}}"#,
    );
    assert_eq!(i.usage.unwrap().completion_tokens, None);
}

#[test]
fn error_events_in_both_shapes() {
    let (i, _) =
        parse(r#"{"error":{"message":"out of KV cache","type":"server_error","code":500}}"#);
    assert_eq!(i.error.as_deref(), Some("out of KV cache"));
    let (i, _) = parse(r#"{"error":"boom"}"#);
    assert_eq!(i.error.as_deref(), Some("boom"));
    let (i, _) = parse(r#"{"object":"error","message":"bad request","code":400}"#);
    assert_eq!(i.error.as_deref(), Some("bad request"));
}

#[test]
fn invalid_json_is_an_error() {
    let mut t = String::new();
    assert!(parse_chunk(b"{\"choices\":[", &mut t).is_err());
    assert!(parse_chunk(b"not json", &mut t).is_err());
}

#[test]
fn http_error_bodies() {
    assert_eq!(
        http_error_message(400, br#"{"error":{"message":"max_tokens too large"}}"#),
        "HTTP 400: max_tokens too large"
    );
    assert_eq!(
        http_error_message(422, br#"{"detail":"field required"}"#),
        "HTTP 422: field required"
    );
    assert_eq!(
        http_error_message(502, b"Bad Gateway\n"),
        "HTTP 502: Bad Gateway"
    );
    assert_eq!(http_error_message(503, b""), "HTTP 503");
}

#[test]
fn body_has_required_fields_and_extra_body_wins() {
    let mut extra = Map::new();
    extra.insert("top_k".into(), json!(1));
    extra.insert("temperature".into(), json!(0.7));
    let opts = BodyOptions {
        api: Api::Chat,
        model: "m".into(),
        ignore_eos: true,
        extra,
        tools: Default::default(),
        batch_inputs: 1,
    };
    let b: Value = serde_json::from_slice(&build_body(&opts, PromptBody::Text("hi"), 32)).unwrap();
    assert_eq!(b["messages"][0]["content"], "hi");
    assert_eq!(b["messages"][0]["role"], "user");
    assert_eq!(b["max_tokens"], 32);
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"]["include_usage"], true);
    assert_eq!(b["ignore_eos"], true);
    assert_eq!(b["top_k"], 1);
    assert_eq!(b["temperature"], 0.7);

    let opts = BodyOptions {
        api: Api::Completions,
        model: "m".into(),
        ignore_eos: false,
        extra: Map::new(),
        tools: Default::default(),
        batch_inputs: 1,
    };
    let b: Value =
        serde_json::from_slice(&build_body(&opts, PromptBody::TokenIds(&[1, 2, 3]), 4)).unwrap();
    assert_eq!(b["prompt"], json!([1, 2, 3]));
    assert_eq!(b["temperature"], 0);
    assert!(b.get("ignore_eos").is_none());
}

#[test]
fn exact_lengths_are_asked_unless_extra_body_overrides_them() {
    let opts = |api, ignore_eos, extra: &[&str]| BodyOptions {
        api,
        model: "m".into(),
        ignore_eos,
        extra: extra
            .iter()
            .map(|k| (k.to_string(), json!(false)))
            .collect(),
        tools: Default::default(),
        batch_inputs: 1,
    };
    assert!(opts(Api::Chat, true, &["top_k"]).asks_exact_lengths());
    assert!(!opts(Api::Chat, false, &[]).asks_exact_lengths());
    assert!(!opts(Api::Embeddings, true, &[]).asks_exact_lengths());
    for k in ["ignore_eos", "max_tokens", "stop"] {
        assert!(
            !opts(Api::Completions, true, &[k]).asks_exact_lengths(),
            "{k}"
        );
    }
}

/// Chunks as real servers send them must take the fast path (and agree with serde).
#[test]
fn real_server_chunks_take_the_fast_path() {
    let chunks = [
        // vLLM chat
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" tok"},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length","stop_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":128,"total_tokens":384,"completion_tokens":256,"prompt_tokens_details":{"cached_tokens":64}}}"#,
        // vLLM completions
        r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" a\nb \"q\" \u00e9","logprobs":null,"finish_reason":null,"stop_reason":null}]}"#,
        // SGLang, reasoning
        r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":null,"content":null,"reasoning_content":"think","tool_calls":null},"logprobs":null,"finish_reason":null,"matched_stop":null}],"usage":null}"#,
        // llama.cpp
        r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hi"}}],"created":1,"id":"chatcmpl-x","model":"m","system_fingerprint":"b1","object":"chat.completion.chunk","timings":{"prompt_n":5,"predicted_ms":1.5}}"#,
        // tool call arguments
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"f","arguments":"{\"x\":"}}]}}]}"#,
        // errors
        r#"{"error":{"message":"out of memory","type":"InternalServerError","code":500}}"#,
        r#"{"object":"error","message":"too long","type":"BadRequestError","code":400}"#,
    ];
    for c in chunks {
        let mut fast = String::new();
        let got = scan_chunk(c, &mut fast, &mut ChunkMemo::default())
            .unwrap_or_else(|| panic!("slow path: {c}"));
        let mut slow = String::new();
        assert_eq!(got, parse_chunk_reference(c, &mut slow).unwrap(), "{c}");
        assert_eq!(fast, slow, "{c}");
    }
    // Too deep for the scanner: serde_json decides, as it would alone.
    let deep = format!(
        r#"{{"x":{}{},"choices":[{{"text":"a"}}]}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert!(scan_chunk(&deep, &mut String::new(), &mut ChunkMemo::default()).is_none());
    assert!(parse(&deep).0.kinds.any());
    let (info, text) = parse(chunks[4]);
    assert_eq!(text, " a\nb \"q\" é");
    assert!(info.kinds.any());
    let t = parse(chunks[6])
        .0
        .timings
        .expect("llama.cpp's timings read");
    assert_eq!((t.prompt_n, t.predicted_ms), (Some(5), Some(1.5)));
    assert_eq!(parse(chunks[8]).0.error.as_deref(), Some("out of memory"));
    assert_eq!(parse(chunks[9]).0.error.as_deref(), Some("too long"));
}

/// Events of one stream share their members before `choices`: the scanner skips them
/// after the first and must read exactly what it reads without the memo.
#[test]
fn a_stream_resumes_at_choices_and_reads_the_same() {
    let head = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","#;
    let events = [
        format!(
            r#"{head}"choices":[{{"index":0,"delta":{{"content":"a"}},"finish_reason":null}}]}}"#
        ),
        format!(
            r#"{head}"choices":[{{"index":0,"delta":{{"content":"bc"}},"finish_reason":null}}]}}"#
        ),
        format!(r#"{head}"choices":[{{"index":0,"delta":{{}},"finish_reason":"length"}}]}}"#),
        format!(r#"{head}"choices":[],"usage":{{"prompt_tokens":3,"completion_tokens":2}}}}"#),
        format!(r#"{head}"choices":[],"error":{{"message":"late"}}}}"#),
        // Another head: the memo is dropped, then rebuilt.
        r#"{"id":"c2","object":"chat.completion.chunk","choices":[{"delta":{"content":"d"}}]}"#
            .to_string(),
        r#"{"id":"c2","object":"chat.completion.chunk","choices":[{"delta":{"content":"e"}}]}"#
            .to_string(),
        // A prefix that is not a whole member any more: the walk fails, serde decides.
        r#"{"id":"c2","object":"chat.completion.chunk","choices"]"#.to_string(),
        r#"{"id":"c2","object":"chat.completion.chunk","choices":[{"delta":{"content":"f"}}]}"#
            .to_string(),
    ];
    let mut memo = ChunkMemo::default();
    let (mut fast, mut slow) = (String::new(), String::new());
    for (i, e) in events.iter().enumerate() {
        let resumed = !memo.prefix.is_empty() && e.as_bytes().starts_with(&memo.prefix);
        let got = parse_chunk_in_stream(e.as_bytes(), &mut fast, &mut memo);
        let want = parse_chunk_reference(e, &mut slow);
        match (got, want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w, "event {i}"),
            (Err(_), Err(_)) => {}
            (g, w) => panic!("event {i}: {g:?} vs {w:?}"),
        }
        assert_eq!(fast, slow, "event {i}");
        // The second event of each head takes the shortcut.
        if i == 1 || i == 6 {
            assert!(resumed, "event {i} resumed at choices");
        }
    }
    assert_eq!(fast, "abcdef");
    // A non-error `object` may come before `choices`; an error one may not be skipped.
    let mut memo = ChunkMemo::default();
    let e = r#"{"object":"error","choices":[],"message":"boom"}"#;
    assert!(
        parse_chunk_in_stream(e.as_bytes(), &mut String::new(), &mut memo)
            .unwrap()
            .error
            .is_some()
    );
    assert!(memo.prefix.is_empty());
}

#[test]
fn usage_reasoning_tokens_are_read() {
    let (i, _) = parse(
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":50,"completion_tokens_details":{"reasoning_tokens":42}}}"#,
    );
    let u = i.usage.unwrap();
    assert_eq!(
        (u.completion_tokens, u.reasoning_tokens()),
        (Some(50), Some(42))
    );
    let (i, _) =
        parse(r#"{"choices":[],"usage":{"completion_tokens":5,"completion_tokens_details":null}}"#);
    assert_eq!(i.usage.unwrap().reasoning_tokens(), None);
}

#[test]
fn a_mixed_model_replaces_the_runs_in_every_api() {
    use crate::workload::EncodeBody;
    for api in [Api::Chat, Api::Completions, Api::Responses, Api::Embeddings] {
        let opts = BodyOptions {
            api,
            model: "base".into(),
            ignore_eos: false,
            extra: Map::new(),
            tools: Default::default(),
            batch_inputs: 1,
        };
        let b = opts.encode_as("lora-a", PromptBody::Text("hi"), 4, None);
        let b: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(b["model"], "lora-a", "{api:?}");
        let same = opts.encode_as("base", PromptBody::Text("hi"), 4, None);
        assert_eq!(same, opts.encode(PromptBody::Text("hi"), 4), "{api:?}");
    }
}
