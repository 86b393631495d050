//! The pieces of `--append`: unique labels and a torn last line.

use super::*;
use crate::report::document::SavedRun;

fn saved(label: &str) -> SavedRun {
    SavedRun {
        label: label.into(),
        mode: RunMode::Concurrency,
        params: Default::default(),
        started: String::new(),
        started_unix: 0.0,
        summary: crate::metrics::summarize(&Default::default(), &[]),
        complete: None,
        incomplete_reason: None,
        requests_planned: None,
        requests_sent: None,
    }
}

#[test]
fn a_label_already_there_gets_the_next_free_suffix() {
    let doc = ResultsDoc {
        runs: vec![saved("c 1"), saved("c 1 #2"), saved("c 2")],
        ..ResultsDoc::new()
    };
    let mut plans: Vec<RunPlan> = ["c 1", "c 2", "c 3"]
        .iter()
        .map(|l| RunPlan {
            label: l.to_string(),
            ..RunPlan::default()
        })
        .collect();
    let mut labels = Labels::of(&Prior::Append(Box::new(doc)));
    for plan in &mut plans {
        labels.make_unique(plan);
    }
    let got: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(got, ["c 1 #3", "c 2 #2", "c 3"]);
}

#[test]
fn a_torn_last_line_is_cut_and_whole_lines_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("requests.jsonl");
    for (text, kept, dropped) in [
        ("{\"a\":1}\n{\"b\":2}\n", "{\"a\":1}\n{\"b\":2}\n", None),
        ("{\"a\":1}\n{\"b\"", "{\"a\":1}\n", Some(4)),
        ("{\"b\"", "", Some(4)),
        ("", "", None),
    ] {
        std::fs::write(&p, text).unwrap();
        assert_eq!(trim_torn_tail(&p).unwrap(), dropped, "{text:?}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), kept);
    }
    // A torn line longer than the chunk read backwards.
    let long = format!("{{\"a\":1}}\n{}", "x".repeat(200_000));
    std::fs::write(&p, &long).unwrap();
    assert_eq!(trim_torn_tail(&p).unwrap(), Some(200_000));
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"a\":1}\n");
    assert_eq!(trim_torn_tail(&dir.path().join("none")).unwrap(), None);
}

#[test]
fn the_header_is_the_first_sessions_and_lists_the_appended_one() {
    let old = ResultsDoc {
        command: Some(vec!["first".into()]),
        model: Some("m".into()),
        runs: vec![saved("c 1")],
        ..ResultsDoc::default()
    };
    let fresh = ResultsDoc {
        command: Some(vec!["second".into()]),
        started: Some("t".into()),
        model: Some("m".into()),
        ..ResultsDoc::new()
    };
    let doc = header(Prior::Append(Box::new(old)), fresh);
    assert_eq!(doc.command, Some(vec!["first".to_string()]));
    assert_eq!(doc.runs.len(), 1);
    let appended = doc.appended.unwrap();
    assert_eq!(appended.len(), 1);
    assert_eq!(appended[0].command, Some(vec!["second".to_string()]));
    assert_eq!(appended[0].started.as_deref(), Some("t"));
}

#[test]
fn an_appended_session_supplies_the_gpus_label_the_first_lacked() {
    let with = |gpus| ResultsDoc {
        gpus,
        ..ResultsDoc::new()
    };
    let doc = header(Prior::Append(Box::new(with(None))), with(Some(4)));
    assert_eq!(doc.gpus, Some(4));
    // The first session's label stays when both have one.
    let doc = header(Prior::Append(Box::new(with(Some(2)))), with(Some(4)));
    assert_eq!(doc.gpus, Some(2));
}
