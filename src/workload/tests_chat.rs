use super::*;
use crate::client::openai::{Api, BodyOptions};
use crate::shard::{Pick, Shard};
use crate::workload::models::ModelMix;
use crate::workload::prepare::{PromptSource, RequestStream, prepare_range};
use crate::workload::synthetic::SyntheticKind;

fn opts() -> BodyOptions {
    BodyOptions {
        api: Api::Chat,
        model: "m".into(),
        ignore_eos: true,
        extra: Default::default(),
        tools: Default::default(),
        batch_inputs: 1,
    }
}

fn session_spec(turns: LengthSpec, think: &str, dist: ThinkDist) -> SessionSpec {
    SessionSpec {
        turns,
        think_ms: think.parse().unwrap(),
        think_dist: dist,
        system_prompt_len: Some(37),
    }
}

fn workload(s: SessionSpec, seed: u64) -> WorkloadSpec {
    let tok = Tokenizer::builtin();
    let prompts = SyntheticPrompts::resolve(SyntheticKind::Words, &tok).0;
    let sessions = SyntheticSessions::new(s, LengthSpec::Fixed(23), prompts, &tok, seed).unwrap();
    WorkloadSpec {
        source: PromptSource::Sessions(Arc::new(sessions)),
        output_len: LengthSpec::Range { lo: 4, hi: 9 },
        seed,
        token_ids: false,
        models: None,
        images: None,
    }
}

fn messages(r: &PreparedRequest) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["messages"].as_array().unwrap().clone()
}

#[test]
fn sessions_are_exact_and_the_same_for_a_seed() {
    let tok = Tokenizer::builtin();
    let w = workload(
        session_spec(
            LengthSpec::Range { lo: 1, hi: 6 },
            "10:30",
            ThinkDist::Fixed,
        ),
        5,
    );
    let a = prepare_range(&w, &opts(), &tok, 0, 0..40).unwrap();
    let b = prepare_range(&w, &opts(), &tok, 0, 0..40).unwrap();
    let mut ids = std::collections::HashSet::new();
    let mut turn_counts = std::collections::HashSet::new();
    for (s, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            (&x.body, &x.chat),
            (&y.body, &y.chat),
            "same seed, same session"
        );
        let plan = x.chat.as_ref().unwrap();
        assert_eq!((x.id, plan.session), (s as u64, s as u64));
        assert_eq!(
            (x.tag.session, x.tag.turn, &x.tag.model),
            (Some(s as u64), Some(0), &None)
        );
        // [system], user₀: the system prompt and every input exactly as long as asked.
        let m = messages(x);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0]["role"].as_str(), m[1]["role"].as_str()),
            (Some("system"), Some("user"))
        );
        assert_eq!(tok.count(m[0]["content"].as_str().unwrap()), 37);
        assert_eq!(tok.count(m[1]["content"].as_str().unwrap()), 23);
        assert_eq!(x.input_tokens, 37 + 23);
        assert!((4..=9).contains(&x.max_tokens));
        assert!((1..=6).contains(&plan.turns()));
        turn_counts.insert(plan.turns());
        let PromptSource::Sessions(chat) = &w.source else {
            unreachable!()
        };
        assert_eq!(chat.turns_of(5, 0, s as u64) as usize, plan.turns());
        for t in &plan.later {
            assert_eq!((tok.count(&t.input), t.tokens), (23, 23));
            assert!((10_000..=30_000).contains(&t.think_us), "{}", t.think_us);
            assert!((4..=9).contains(&t.max_tokens));
        }
        for k in 0..plan.turns() as u64 {
            assert!(
                ids.insert(plan.first_id + k),
                "turn ids are unique in the run"
            );
        }
    }
    assert!(
        turn_counts.len() > 3,
        "turns drawn per session: {turn_counts:?}"
    );
    assert_eq!(
        messages(&a[0])[0],
        messages(&a[1])[0],
        "one system prompt for every session"
    );
    assert_ne!(messages(&a[0])[1], messages(&a[1])[1]);
    let other = prepare_range(&w, &opts(), &tok, 1, 0..1).unwrap();
    assert_ne!(a[0].body, other[0].body, "another run, other inputs");
    let other_seed = workload(
        session_spec(
            LengthSpec::Range { lo: 1, hi: 6 },
            "10:30",
            ThinkDist::Fixed,
        ),
        6,
    );
    let c = prepare_range(&other_seed, &opts(), &tok, 0, 0..1).unwrap();
    assert_ne!(a[0].body, c[0].body, "another seed, other sessions");
}

#[test]
fn think_times_follow_their_distribution() {
    let mut rng = StdRng::seed_from_u64(1);
    let fixed = session_spec(LengthSpec::Fixed(2), "250", ThinkDist::Fixed);
    assert!((0..100).all(|_| fixed.think_us(&mut rng) == 250_000));
    let none = session_spec(LengthSpec::Fixed(2), "0", ThinkDist::Exponential);
    assert_eq!(none.think_us(&mut rng), 0);
    let exp = session_spec(LengthSpec::Fixed(2), "200", ThinkDist::Exponential);
    let n = 40_000;
    let draws: Vec<f64> = (0..n).map(|_| exp.think_us(&mut rng) as f64).collect();
    let mean = draws.iter().sum::<f64>() / n as f64;
    assert!((mean - 200_000.0).abs() < 200_000.0 * 0.03, "mean {mean}");
    // An exponential's median is ln 2 × its mean; its share above the mean is 1/e.
    let above = draws.iter().filter(|&&d| d > 200_000.0).count() as f64 / n as f64;
    assert!((above - (-1f64).exp()).abs() < 0.01, "{above}");
    assert!(draws.iter().all(|&d| d >= 0.0));
}

#[test]
fn the_think_time_leaves_the_inputs_unchanged() {
    let tok = Tokenizer::builtin();
    let plan = |think: &str| {
        let w = workload(
            session_spec(LengthSpec::Fixed(3), think, ThinkDist::Fixed),
            9,
        );
        let r = prepare_range(&w, &opts(), &tok, 0, 2..3).unwrap().remove(0);
        (r.body, r.chat.unwrap())
    };
    let (a, pa) = plan("0");
    let (b, pb) = plan("100:900");
    assert_eq!(a, b);
    let inputs = |p: &SessionPlan| p.later.iter().map(|t| t.input.clone()).collect::<Vec<_>>();
    assert_eq!(inputs(&pa), inputs(&pb));
    assert_eq!(pa.later[0].think_us, 0);
}

#[test]
fn a_shard_builds_its_sessions_whole_as_one_process_would() {
    let tok = Tokenizer::builtin();
    let w = workload(
        session_spec(LengthSpec::Range { lo: 2, hi: 5 }, "0", ThinkDist::Fixed),
        3,
    );
    let body = opts();
    let whole = prepare_range(&w, &body, &tok, 0, 0..12).unwrap();
    let mut union = Vec::new();
    for i in 0..3 {
        let pick = Pick::Every(Shard { index: i, count: 3 });
        let part: Vec<PreparedRequest> = RequestStream::new(&w, &body, &tok, 0)
            .unwrap()
            .picking(pick)
            .take(4)
            .map(|p| p.unwrap().req)
            .collect();
        for r in &part {
            assert_eq!(r.id % 3, u64::from(i), "sessions dealt by index");
        }
        union.extend(part);
    }
    union.sort_by_key(|r| r.id);
    for (a, b) in union.iter().zip(&whole) {
        assert_eq!((a.id, &a.body, &a.chat), (b.id, &b.body, &b.chat));
    }
    assert_eq!(union.len(), 12);
}

#[test]
fn a_session_keeps_its_model_for_every_turn() {
    let tok = Tokenizer::builtin();
    let mut w = workload(session_spec(LengthSpec::Fixed(2), "0", ThinkDist::Fixed), 4);
    let mix = ModelMix::new(vec!["a".into(), "b".into()], None).unwrap();
    w.models = Some(Arc::new(mix.clone()));
    let reqs = prepare_range(&w, &opts(), &tok, 0, 0..20).unwrap();
    let mut seen = std::collections::HashSet::new();
    for r in &reqs {
        let model = r.tag.model.clone().expect("a mix tags the session's model");
        assert_eq!(&model, mix.pick(4, r.id));
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["model"].as_str(), Some(&*model));
        seen.insert(model);
    }
    assert_eq!(seen.len(), 2);
}

#[test]
fn think_time_values_are_checked() {
    assert_eq!(
        "5".parse::<MillisSpec>().unwrap(),
        MillisSpec { lo: 5, hi: 5 }
    );
    assert_eq!(
        "0:70".parse::<MillisSpec>().unwrap(),
        MillisSpec { lo: 0, hi: 70 }
    );
    for bad in ["", "-1", "9:3", "1.5", "x", "1:", "99999999999"] {
        assert!(bad.parse::<MillisSpec>().is_err(), "{bad:?}");
    }
    assert_eq!(MillisSpec { lo: 2, hi: 9 }.to_string(), "2:9");
}

#[test]
fn the_prepare_ahead_budget_counts_the_planned_turns() {
    let tok = Tokenizer::builtin();
    let prompts = SyntheticPrompts::resolve(SyntheticKind::Words, &tok).0;
    let spec = session_spec(LengthSpec::Fixed(8), "0", ThinkDist::Fixed);
    let sessions = SyntheticSessions::new(spec, LengthSpec::Fixed(200), prompts, &tok, 1).unwrap();
    let w = WorkloadSpec {
        source: PromptSource::Sessions(Arc::new(sessions)),
        output_len: LengthSpec::Fixed(4),
        seed: 1,
        token_ids: false,
        models: None,
        images: None,
    };
    let body = opts();
    let feeder = crate::feed::Feeder {
        workload: &w,
        body: &body,
        tokenizer: &tok,
        run: 0,
        keep_turns: false,
        pick: &Pick::default(),
    };
    // A session's later inputs are ~6 times its first turn: counted, they keep the
    // whole built ahead within the 1 MB budget plus one session.
    let upfront = feeder.upfront(1000, 1 << 20, &|| false).unwrap();
    let held = |r: &crate::workload::prepare::PreparedRequest| {
        r.body.len() + r.chat.as_ref().map_or(0, |c| c.bytes())
    };
    let first: usize = upfront.iter().map(|r| r.body.len()).sum();
    let all: usize = upfront.iter().map(held).sum();
    let largest = upfront.iter().map(held).max().unwrap();
    assert!(first < 1 << 19, "{first}");
    assert!(
        all <= (1 << 20) + largest,
        "{} sessions, {all} bytes",
        upfront.len()
    );
    assert!(all >= 1 << 20, "{all} bytes: the budget is used");
}
