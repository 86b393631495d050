use serde_json::json;

use super::*;

fn entry(content: PromptContent) -> DatasetEntry {
    DatasetEntry {
        location: "hand:1".into(),
        content,
        output_len: None,
        tools: None,
    }
}

fn words(n: usize) -> String {
    // " alpha" is one cl100k token: n words are n tokens.
    " alpha".repeat(n)
}

#[test]
fn long_texts_are_cut_to_n_tokens_and_short_ones_kept() {
    let tok = Tokenizer::builtin();
    let mut entries = vec![
        entry(PromptContent::Text(words(50))),
        entry(PromptContent::Text(words(10))),
        entry(PromptContent::Text(
            "Ünïcödé text, with punctuation! ".repeat(40),
        )),
    ];
    let cut = truncate_all(&mut entries, &tok, 20).unwrap();
    assert_eq!(cut, 2);
    for (e, want) in entries.iter().zip([Some(20), Some(10), None]) {
        let PromptContent::Text(t) = &e.content else {
            panic!()
        };
        let n = tok.count(t);
        match want {
            Some(w) => assert_eq!(n, w, "{t:?}"),
            None => assert!((15..=20).contains(&n), "{n} tokens: {t:?}"),
        }
    }
}

#[test]
fn chat_entries_lose_their_oldest_turns_first() {
    let tok = Tokenizer::builtin();
    let messages = json!([
        {"role": "system", "content": words(5)},
        {"role": "user", "content": words(30)},
        {"role": "assistant", "content": words(30)},
        {"role": "user", "content": words(10)},
    ]);
    let mut entries = vec![entry(PromptContent::Messages(messages))];
    assert_eq!(truncate_all(&mut entries, &tok, 20).unwrap(), 1);
    let PromptContent::Messages(m) = &entries[0].content else {
        panic!()
    };
    // The system prompt and the question stay whole; the old turns went.
    assert_eq!(
        m,
        &json!([
            {"role": "system", "content": words(5)},
            {"role": "user", "content": words(10)},
        ])
    );
}

#[test]
fn a_last_turn_too_long_alone_is_cut() {
    let tok = Tokenizer::builtin();
    let messages = json!([
        {"role": "system", "content": words(5)},
        {"role": "user", "content": words(40)},
    ]);
    let mut entries = vec![entry(PromptContent::Messages(messages))];
    assert_eq!(truncate_all(&mut entries, &tok, 20).unwrap(), 1);
    let PromptContent::Messages(m) = &entries[0].content else {
        panic!()
    };
    assert_eq!(m[0]["content"], json!(words(5)));
    assert_eq!(m[1]["content"], json!(words(15)));
}

#[test]
fn a_dropped_tool_call_takes_its_results_with_it() {
    let tok = Tokenizer::builtin();
    let call = json!([{"id": "c1", "type": "function",
        "function": {"name": "f", "arguments": words(8)}}]);
    let messages = json!([
        {"role": "user", "content": words(10)},
        {"role": "assistant", "content": words(2), "tool_calls": call},
        {"role": "tool", "tool_call_id": "c1", "content": words(3)},
        {"role": "assistant", "content": words(4)},
        {"role": "user", "content": words(10)},
    ]);
    // 10 + (2 + 8 arguments) + 3 + 4 + 10 = 37 tokens: dropping the first turn (27 left)
    // and the call (with its result: 14 left) fits 20.
    let mut entries = vec![entry(PromptContent::Messages(messages))];
    assert_eq!(truncate_all(&mut entries, &tok, 20).unwrap(), 1);
    let PromptContent::Messages(m) = &entries[0].content else {
        panic!()
    };
    assert_eq!(
        m,
        &json!([
            {"role": "assistant", "content": words(4)},
            {"role": "user", "content": words(10)},
        ]),
        "no orphaned tool message"
    );
}
