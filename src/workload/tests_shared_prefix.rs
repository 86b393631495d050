use std::collections::HashSet;
use std::sync::Arc;

use super::*;
use crate::client::openai::{Api, BodyOptions};
use crate::shard::Pick;
use crate::workload::prepare::{PromptSource, WorkloadSpec, prepare_ids, prepare_range};
use crate::workload::synthetic::LengthSpec;

fn spec(g: u32, p: u32, s: u32, q: u32) -> SharedPrefixSpec {
    SharedPrefixSpec {
        groups: g,
        prompts: p,
        system_len: s,
        question_len: q,
    }
}

fn source(sp: SharedPrefixSpec) -> SharedPrefix {
    SharedPrefix::new(sp, &Tokenizer::builtin()).unwrap()
}

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

fn workload(sp: SharedPrefixSpec, seed: u64, token_ids: bool) -> WorkloadSpec {
    WorkloadSpec {
        source: PromptSource::SharedPrefix(Arc::new(source(sp))),
        output_len: LengthSpec::Fixed(8),
        seed,
        token_ids,
        models: None,
        images: None,
    }
}

#[test]
fn the_flag_parses_and_names_the_key_at_fault() {
    let sp: SharedPrefixSpec = "groups=4,prompts=8,system-len=512,question-len=64"
        .parse()
        .unwrap();
    assert_eq!(sp, spec(4, 8, 512, 64));
    assert_eq!(sp.requests(), 32);
    assert_eq!(sp.to_string().parse::<SharedPrefixSpec>(), Ok(sp));
    // Any order, spaces around the parts.
    let any: SharedPrefixSpec = "question-len=2, system-len=3,prompts=1,groups=9"
        .parse()
        .unwrap();
    assert_eq!(any, spec(9, 1, 3, 2));
    for (bad, says) in [
        (
            "groups=4,prompts=8,system-len=512",
            "question-len is missing",
        ),
        (
            "groups=0,prompts=8,system-len=5,question-len=6",
            "groups=\"0\"",
        ),
        (
            "groups=4,prompts=x,system-len=5,question-len=6",
            "prompts=\"x\"",
        ),
        (
            "groups=4,prompts=8,sys=5,question-len=6",
            "unknown key \"sys\"",
        ),
        (
            "groups=4,groups=8,system-len=5,question-len=6",
            "groups is given twice",
        ),
        ("groups,prompts=8", "\"groups\" is not KEY=N"),
        (
            "groups=-1,prompts=8,system-len=5,question-len=6",
            "whole number ≥ 1",
        ),
        (
            "groups=100000,prompts=100000,system-len=5,question-len=6",
            "groups × prompts",
        ),
    ] {
        let err = bad.parse::<SharedPrefixSpec>().unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn each_pass_sends_every_question_once_shuffled() {
    let sp = source(spec(5, 7, 4, 2));
    let n = 35u64;
    let slots: Vec<Slot> = (0..n).map(|i| sp.slot(3, 0, i)).collect();
    let set: HashSet<(u32, u32)> = slots.iter().map(|s| (s.group, s.question)).collect();
    assert_eq!(set.len(), 35, "every (group, question) once");
    assert!(slots.iter().all(|s| s.pass == 0));
    let in_order = slots
        .windows(2)
        .all(|w| (w[0].group, w[0].question) < (w[1].group, w[1].question));
    assert!(!in_order, "shuffled, not in order");
    // The next pass: the same slots again, in another order.
    let next: Vec<Slot> = (n..2 * n).map(|i| sp.slot(3, 0, i)).collect();
    assert!(next.iter().all(|s| s.pass == 1));
    let pairs = |v: &[Slot]| v.iter().map(|s| (s.group, s.question)).collect::<Vec<_>>();
    assert_ne!(pairs(&slots), pairs(&next));
    assert_eq!(
        next.iter()
            .map(|s| (s.group, s.question))
            .collect::<HashSet<_>>(),
        set
    );
    // The seed decides the order.
    assert_eq!(sp.slot(3, 0, 11), slots[11]);
    let other: Vec<Slot> = (0..n).map(|i| sp.slot(4, 0, i)).collect();
    assert_ne!(pairs(&slots), pairs(&other));
}

#[test]
fn prompts_are_exact_and_share_their_group_system_prompt() {
    let tok = Tokenizer::builtin();
    let sp = source(spec(3, 4, 37, 11));
    let mut systems: Vec<Option<String>> = vec![None; 3];
    let mut questions = HashSet::new();
    for i in 0..24u64 {
        let slot = sp.slot(1, 0, i);
        let p = sp.prompt(1, 0, i);
        assert_eq!(tok.encode(&p.system).len(), 37);
        assert_eq!(tok.encode(&p.question).len(), 11);
        let joined = format!("{}{}", p.system, p.question);
        assert_eq!(tok.encode(&joined), p.ids, "the join is exact, request {i}");
        assert_eq!(p.ids.len(), 48);
        let seen = &mut systems[slot.group as usize];
        match seen {
            Some(s) => assert_eq!(*s, p.system, "group {}", slot.group),
            None => *seen = Some(p.system.clone()),
        }
        // A second pass asks new questions.
        assert!(
            questions.insert(p.question),
            "request {i}'s question repeats"
        );
    }
    let distinct: HashSet<_> = systems.iter().flatten().collect();
    assert_eq!(distinct.len(), 3);
    // Another run (another prompt set) has other system prompts.
    assert_ne!(sp.prompt(1, 1, 0).system, sp.prompt(1, 0, 0).system);
    assert_eq!(sp.prompt(1, 0, 5), sp.prompt(1, 0, 5));
}

#[test]
fn bodies_are_deterministic_sharded_and_shaped_per_api() {
    let tok = Tokenizer::builtin();
    let w = workload(spec(2, 3, 20, 5), 9, false);
    let chat = opts(Api::Chat);
    let all = prepare_range(&w, &chat, &tok, 0, 0..12).unwrap();
    let again = prepare_range(&w, &chat, &tok, 0, 0..12).unwrap();
    for (a, b) in all.iter().zip(&again) {
        assert_eq!(a.body, b.body);
        assert_eq!(a.input_tokens, 25);
    }
    // Shard 1/3's requests are the whole run's, under the same ids.
    let ids: Vec<u64> = Pick::Every("1/3".parse().unwrap()).ids().take(4).collect();
    let shard = prepare_ids(&w, &chat, &tok, 0, &ids, &|| false).unwrap();
    for r in &shard {
        assert_eq!(r.body, all[r.id as usize].body, "request {}", r.id);
    }
    // Chat: a system message and a user message.
    let v: serde_json::Value = serde_json::from_slice(&all[0].body).unwrap();
    let p = source(spec(2, 3, 20, 5)).prompt(9, 0, 0);
    assert_eq!(v["messages"][0]["role"], "system");
    assert_eq!(v["messages"][0]["content"], p.system.as_str());
    assert_eq!(v["messages"][1]["role"], "user");
    assert_eq!(v["messages"][1]["content"], p.question.as_str());
    // Completions: one text, exactly S+Q tokens.
    let one = prepare_range(&w, &opts(Api::Completions), &tok, 0, 0..1).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&one[0].body).unwrap();
    let text = v["prompt"].as_str().unwrap();
    assert_eq!(text, format!("{}{}", p.system, p.question));
    assert_eq!(tok.encode(text).len(), 25);
    // Token ids: the same ids.
    let w = workload(spec(2, 3, 20, 5), 9, true);
    let ids = prepare_range(&w, &opts(Api::Completions), &tok, 0, 0..1).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&ids[0].body).unwrap();
    let got: Vec<u32> = serde_json::from_value(v["prompt"].clone()).unwrap();
    assert_eq!(got, p.ids);
}
