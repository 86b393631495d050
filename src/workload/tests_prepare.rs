use super::*;
use crate::client::openai::{Api, BodyOptions};
use crate::workload::synthetic::SyntheticKind;

fn opts(api: Api) -> BodyOptions {
    BodyOptions {
        api,
        model: "m".into(),
        ignore_eos: true,
        extra: Default::default(),
        tools: Default::default(),
        batch_inputs: 1,
    }
}

fn spec(input: LengthSpec, output: LengthSpec, seed: u64) -> WorkloadSpec {
    WorkloadSpec {
        source: PromptSource::Synthetic {
            input_len: input,
            prompts: SyntheticPrompts::resolve(SyntheticKind::Words, &Tokenizer::builtin()).0,
        },
        output_len: output,
        seed,
        token_ids: false,
        models: None,
        images: None,
    }
}

#[test]
fn synthetic_requests_are_exact_and_deterministic() {
    let tok = Tokenizer::builtin();
    let s = spec(
        LengthSpec::Range { lo: 5, hi: 60 },
        LengthSpec::Fixed(7),
        42,
    );
    let a = prepare(&s, &opts(Api::Chat), &tok, 0, 9).unwrap();
    let b = prepare(&s, &opts(Api::Chat), &tok, 0, 9).unwrap();
    assert_eq!(a.len(), 9);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.body, y.body, "same seed, same requests");
    }
    for (i, r) in a.iter().enumerate() {
        assert_eq!(r.id, i as u64);
        assert_eq!(r.max_tokens, 7);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let text = v["messages"][0]["content"].as_str().unwrap();
        assert_eq!(tok.count(text) as u32, r.input_tokens);
        assert!((5..=60).contains(&r.input_tokens));
    }
    let other_run = prepare(&s, &opts(Api::Chat), &tok, 1, 9).unwrap();
    assert_ne!(a[0].body, other_run[0].body, "runs get their own prompts");
}

#[test]
fn token_id_prompts_on_completions() {
    let tok = Tokenizer::builtin();
    let mut s = spec(LengthSpec::Fixed(33), LengthSpec::Fixed(3), 1);
    s.token_ids = true;
    let r = &prepare(&s, &opts(Api::Completions), &tok, 0, 1).unwrap()[0];
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["prompt"].as_array().unwrap().len(), 33);
    assert_eq!(r.input_tokens, 33);
}

#[test]
fn dataset_entries_cycle_and_keep_their_output_length() {
    let tok = Tokenizer::builtin();
    let entries = vec![
        DatasetEntry {
            location: "d:1".into(),
            content: PromptContent::Text("hello there".into()),
            output_len: Some(5),
            tools: None,
        },
        DatasetEntry {
            location: "d:2".into(),
            content: PromptContent::Messages(serde_json::json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"}
            ])),
            output_len: None,
            tools: None,
        },
    ];
    let s = WorkloadSpec {
        source: PromptSource::Dataset(Arc::new(entries)),
        output_len: LengthSpec::Fixed(9),
        seed: 0,
        token_ids: false,
        models: None,
        images: None,
    };
    let r = prepare(&s, &opts(Api::Chat), &tok, 0, 3).unwrap();
    assert_eq!(r[0].max_tokens, 5);
    assert_eq!(r[1].max_tokens, 9);
    assert_eq!(r[2].max_tokens, 5, "entries cycle");
    assert_eq!(r[0].input_tokens as usize, tok.count("hello there"));
    assert_eq!(
        r[1].input_tokens as usize,
        tok.count("be brief") + tok.count("hi")
    );
    let v: serde_json::Value = serde_json::from_slice(&r[1].body).unwrap();
    assert_eq!(v["messages"][0]["role"], "system");
}

#[test]
fn trace_prompts_share_exactly_their_common_hash_prefix() {
    let tok = Tokenizer::builtin();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let line = |ids: &str| {
        format!(
            r#"{{"timestamp": 0, "input_length": 48, "output_length": 2, "hash_ids": [{ids}]}}"#
        )
    };
    std::fs::write(
        &path,
        [line("1, 2, 3"), line("1, 2, 9"), line("5, 6, 7")].join("\n"),
    )
    .unwrap();
    let file = TraceFile::scan(&path, &Default::default(), &|| false)
        .unwrap()
        .unwrap();
    let spec = WorkloadSpec {
        source: PromptSource::Trace {
            file: Arc::new(file),
            blocks: Arc::new(BlockPrompts::new(&tok, 16, 0).unwrap()),
        },
        output_len: LengthSpec::Fixed(1),
        seed: 0,
        token_ids: false,
        models: None,
        images: None,
    };
    // The prompt as the server would see it: the body's text, tokenized.
    let tokens = |run: u64, i: u64| {
        let r = prepare_one(&spec, &opts(Api::Chat), &tok, run, i).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let ids = tok.encode(v["messages"][0]["content"].as_str().unwrap());
        assert_eq!(ids.len(), 48, "exact length");
        assert_eq!(r.input_tokens, 48);
        ids
    };
    for run in [0, 1] {
        let (a, b, c) = (tokens(run, 0), tokens(run, 1), tokens(run, 2));
        assert_eq!(a[..32], b[..32], "two shared blocks = 32 shared tokens");
        assert_ne!(a[32..], b[32..], "the third block differs");
        assert_ne!(a[..16], c[..16], "no shared hash id, no shared block");
    }
    assert_ne!(
        tokens(0, 0),
        tokens(1, 0),
        "each replay has its own contents"
    );
    let streamed: Vec<_> = RequestStream::new(&spec, &opts(Api::Chat), &tok, 1)
        .unwrap()
        .map(|p| p.unwrap())
        .collect();
    assert_eq!(streamed.len(), 3, "a trace's stream ends with the file");
    for (i, p) in streamed.iter().enumerate() {
        let one = prepare_one(&spec, &opts(Api::Chat), &tok, 1, i as u64).unwrap();
        assert_eq!(p.req.body, one.body, "streamed = one by one");
        assert_eq!(p.trace.as_ref().unwrap().line, i + 1);
    }
    let e = prepare_one(&spec, &opts(Api::Chat), &tok, 1, 3).unwrap_err();
    assert!(e.to_string().contains("no request 3"), "{e}");
}

/// A chat history sent as token ids is the completions prompt it flattens to, not text.
#[test]
fn messages_as_token_ids_on_completions() {
    let tok = Tokenizer::builtin();
    let msgs = serde_json::json!([
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "how are you"}
    ]);
    let mut s = spec(LengthSpec::Fixed(1), LengthSpec::Fixed(3), 1);
    s.source = PromptSource::Dataset(Arc::new(vec![DatasetEntry {
        location: "d:1".into(),
        content: PromptContent::Messages(msgs.clone()),
        output_len: None,
        tools: None,
    }]));
    s.token_ids = true;
    let r = &prepare(&s, &opts(Api::Completions), &tok, 0, 1).unwrap()[0];
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let ids: Vec<u32> = serde_json::from_value(v["prompt"].clone()).unwrap();
    assert_eq!(ids, tok.encode("hello there\nhi\nhow are you"));
    assert_eq!(r.input_tokens as usize, ids.len());
}
