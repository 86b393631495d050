//! The terminal's by-turn, sessions and by-model section.

use std::sync::Arc;

use crate::metrics::{RunData, summarize};
use crate::record::{RequestRecord, RequestTag};
use crate::report::table::render;

fn turns(n: u32, model: &str) -> RunData {
    let mut d = RunData::default();
    for t in 0..n {
        let start = u64::from(t) * 1000;
        let mut r = RequestRecord::ok_for_test(
            "t",
            start,
            vec![start + 100, start + 200],
            start + 300,
            10,
            2,
        );
        r.tag = RequestTag {
            session: Some(1),
            turn: Some(t),
            model: Some(Arc::from(model)),
            ..RequestTag::default()
        };
        d.push(&r);
    }
    d
}

#[test]
fn the_section_follows_the_main_figures_only_for_tagged_runs() {
    let text = render("c 1", &summarize(&turns(3, "m"), &[]));
    let by_turn = text.find("by turn").expect(&text);
    assert!(text.find("throughput").unwrap() < by_turn, "{text}");
    assert!(
        text.contains("sessions   1 (1 completed: every turn ok) · 3.00 turns each"),
        "{text}"
    );
    assert!(text.contains("by model"), "{text}");
    let mut d = RunData::default();
    d.push(&RequestRecord::ok_for_test("t", 0, vec![100], 200, 10, 1));
    let plain = render("c 1", &summarize(&d, &[]));
    assert!(
        !plain.contains("by turn") && !plain.contains("sessions") && !plain.contains("by model")
    );
}

#[test]
fn a_model_name_cannot_drive_the_terminal() {
    let text = render("c 1", &summarize(&turns(1, "evil\u{1b}]0;pwned\u{7}"), &[]));
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
}

#[test]
fn many_turns_are_cut_with_a_pointer_to_the_rest() {
    let text = render("c 1", &summarize(&turns(40, "m"), &[]));
    assert!(
        text.contains("17 more turns (to turn 39): results.json by_turn, turns.csv"),
        "{text}"
    );
    assert!(text.contains("│ 22 ") && !text.contains("│ 23 "), "{text}");
}
