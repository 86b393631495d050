//! A `--model` mix: each request's body names its picked model, the weights hold over
//! many requests, a seed repeats its picks, and a shard picks what the whole run does,
//! for synthetic, dataset and trace sources alike.

use std::sync::Arc;

use crate::client::openai::{Api, BodyOptions};
use crate::shard::{Pick, Shard};
use crate::workload::Tokenizer;
use crate::workload::blocks::BlockPrompts;
use crate::workload::dataset::{DatasetEntry, PromptContent};
use crate::workload::models::ModelMix;
use crate::workload::prepare::{
    PreparedRequest, PromptSource, RequestStream, WorkloadSpec, prepare, prepare_ids,
};
use crate::workload::synthetic::{LengthSpec, SyntheticKind, SyntheticPrompts};
use crate::workload::trace_file::TraceFile;

fn opts() -> BodyOptions {
    BodyOptions {
        api: Api::Chat,
        model: "base".into(),
        ignore_eos: true,
        extra: Default::default(),
        tools: Default::default(),
        batch_inputs: 1,
    }
}

fn mix(weights: Option<Vec<f64>>) -> Option<Arc<ModelMix>> {
    Some(Arc::new(
        ModelMix::new(vec!["base".into(), "sql-lora".into()], weights).unwrap(),
    ))
}

fn synthetic(seed: u64, models: Option<Arc<ModelMix>>) -> WorkloadSpec {
    WorkloadSpec {
        source: PromptSource::Synthetic {
            input_len: LengthSpec::Fixed(4),
            prompts: SyntheticPrompts::resolve(SyntheticKind::Words, &Tokenizer::builtin()).0,
        },
        output_len: LengthSpec::Fixed(2),
        seed,
        token_ids: false,
        models,
        images: None,
    }
}

/// The body's model and the tag's, which must agree.
fn model(r: &PreparedRequest) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let sent = v["model"].as_str().unwrap().to_string();
    assert_eq!(r.tag.model.as_deref(), Some(sent.as_str()), "tag = body");
    sent
}

#[test]
fn bodies_carry_the_picked_model_in_the_weighted_shares() {
    let tok = Tokenizer::builtin();
    let s = synthetic(3, mix(Some(vec![0.7, 0.3])));
    let reqs = prepare(&s, &opts(), &tok, 0, 4000).unwrap();
    let base = reqs.iter().filter(|r| model(r) == "base").count() as f64;
    let share = base / reqs.len() as f64;
    assert!(
        (share - 0.7).abs() < 0.03,
        "base got {share} of the requests"
    );
    // Same seed, same picks; another seed, other picks.
    let again = prepare(&s, &opts(), &tok, 0, 200).unwrap();
    let picks = |r: &[PreparedRequest]| r.iter().map(model).collect::<Vec<_>>();
    assert_eq!(picks(&reqs[..200]), picks(&again));
    let other = prepare(
        &synthetic(4, mix(Some(vec![0.7, 0.3]))),
        &opts(),
        &tok,
        0,
        200,
    );
    assert_ne!(picks(&reqs[..200]), picks(&other.unwrap()));
}

#[test]
fn a_shard_picks_what_the_whole_run_picks() {
    let tok = Tokenizer::builtin();
    let s = synthetic(9, mix(None));
    let whole = prepare(&s, &opts(), &tok, 0, 60).unwrap();
    for index in 0..3 {
        let pick = Pick::Every(Shard { index, count: 3 });
        let ids: Vec<u64> = pick.ids().take(20).collect();
        let part = prepare_ids(&s, &opts(), &tok, 0, &ids, &|| false).unwrap();
        for r in &part {
            assert_eq!(model(r), model(&whole[r.id as usize]), "request {}", r.id);
        }
        // The streamed path (prepared ahead of sending) picks the same.
        let streamed: Vec<_> = RequestStream::new(&s, &opts(), &tok, 0)
            .unwrap()
            .picking(pick)
            .take(20)
            .map(|r| r.unwrap().req)
            .collect();
        for r in &streamed {
            assert_eq!(model(r), model(&whole[r.id as usize]));
        }
    }
}

#[test]
fn dataset_and_trace_requests_are_mixed_too() {
    let tok = Tokenizer::builtin();
    let entry = DatasetEntry {
        location: "d:1".into(),
        content: PromptContent::Text("hello there".into()),
        output_len: Some(3),
        tools: None,
    };
    let data = WorkloadSpec {
        source: PromptSource::Dataset(Arc::new(vec![entry])),
        ..synthetic(1, mix(None))
    };
    let reqs = prepare(&data, &opts(), &tok, 0, 40).unwrap();
    let names: std::collections::HashSet<String> = reqs.iter().map(model).collect();
    assert_eq!(names.len(), 2, "both models: {names:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let line = r#"{"timestamp": 0, "input_length": 20, "output_length": 2, "hash_ids": [1]}"#;
    std::fs::write(&path, vec![line; 40].join("\n")).unwrap();
    let file = TraceFile::scan(&path, &Default::default(), &|| false)
        .unwrap()
        .unwrap();
    let trace = WorkloadSpec {
        source: PromptSource::Trace {
            file: Arc::new(file),
            blocks: Arc::new(BlockPrompts::new(&tok, 16, 0).unwrap()),
        },
        ..synthetic(1, mix(None))
    };
    let treqs = prepare(&trace, &opts(), &tok, 0, 40).unwrap();
    // The pick is the request's, whatever the source.
    for (d, t) in reqs.iter().zip(&treqs) {
        assert_eq!(model(d), model(t));
    }
}

#[test]
fn one_model_leaves_bodies_and_tags_as_they_were() {
    let tok = Tokenizer::builtin();
    let plain = prepare(&synthetic(5, None), &opts(), &tok, 0, 5).unwrap();
    let one = Some(Arc::new(ModelMix::new(vec!["base".into()], None).unwrap()));
    let single = prepare(&synthetic(5, one), &opts(), &tok, 0, 5).unwrap();
    for (a, b) in plain.iter().zip(&single) {
        assert_eq!(a.body, b.body);
        assert!(a.tag.is_ungrouped() && b.tag.is_ungrouped());
    }
}
