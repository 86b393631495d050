use super::*;
use crate::workload::dataset::{Conversation, PromptContent, read_dataset};
use clap::Parser;
use serde_json::{Value, json};

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
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    /// Error text with the temp directory removed.
    fn clean(&self, msg: String) -> String {
        msg.replace(&format!("{}/", self.0.path().display()), "")
    }
}

/// The job as the command line gives it, so flag names are tested too.
fn args(files: &Files, argv: &[&str]) -> ConvertJob {
    let argv: Vec<String> = ["servescope", "convert"]
        .into_iter()
        .map(String::from)
        .chain(argv.iter().map(|a| {
            // Bare file names live in the temp directory.
            if a.ends_with(".jsonl") || a.ends_with(".json") {
                files.path(a).display().to_string()
            } else {
                a.to_string()
            }
        }))
        .collect();
    match crate::cli::Cli::try_parse_from(argv).unwrap().command {
        crate::cli::Command::Convert(a) => a.into_job(),
        other => panic!("not convert: {other:?}"),
    }
}

fn convert(files: &Files, argv: &[&str]) -> Result<ConvertReport, String> {
    run(args(files, argv)).map_err(|e| files.clean(e.to_string()))
}

/// The written file, read back as a run would.
fn texts(files: &Files, out: &str) -> Vec<String> {
    read_dataset(&files.path(out), Conversation::FirstTurn)
        .unwrap()
        .into_iter()
        .map(|e| match e.content {
            PromptContent::Text(t) => t,
            PromptContent::Messages(m) => panic!("expected text, got {m}"),
        })
        .collect()
}

fn lb(id: Option<&str>, dataset: Option<&str>, context: &str, input: &str) -> String {
    let mut v = json!({
        "input": input, "context": context, "answers": ["a"], "length": 3,
        "language": "en", "all_classes": null,
    });
    if let Some(id) = id {
        v["_id"] = json!(id);
    }
    if let Some(d) = dataset {
        v["dataset"] = json!(d);
    }
    v.to_string()
}

#[test]
fn each_format_on_a_fixture() {
    let files = Files::new();
    let body = format!(
        "{}\n{}\n",
        lb(Some("1"), Some("hotpotqa"), "C1 \"q\"\tü", "Q1"),
        lb(Some("2"), Some("hotpotqa"), "C2", "Q2"),
    );
    files.write("hotpotqa.jsonl", &body);
    let want: [(&str, [&str; 2]); 4] = [
        (
            "context_question",
            ["C1 \"q\"\tü\n\nQuestion: Q1", "C2\n\nQuestion: Q2"],
        ),
        ("context_only", ["C1 \"q\"\tü", "C2"]),
        ("question_only", ["Q1", "Q2"]),
        ("concatenate", ["C1 \"q\"\tü\nQ1", "C2\nQ2"]),
    ];
    for (format, texts_want) in want {
        let r = convert(
            &files,
            &[
                "longbench",
                "hotpotqa.jsonl",
                "-o",
                "out.jsonl",
                "--format",
                format,
            ],
        )
        .unwrap();
        assert_eq!((r.read, r.written, r.duplicates, r.skipped), (2, 2, 0, 0));
        assert_eq!(texts(&files, "out.jsonl"), texts_want, "{format}");
    }
    // UTF-8 as is, escapes where JSON needs them; no temp file left behind.
    let raw = std::fs::read_to_string(files.path("out.jsonl")).unwrap();
    assert_eq!(raw.lines().next().unwrap(), r#"{"text":"C1 \"q\"\tü\nQ1"}"#);
    assert!(!files.path("out.jsonl.part").exists());
}

#[test]
fn auto_picks_per_subset_from_field_or_file_name() {
    let cases = [
        ("narrativeqa", LongbenchFormat::ContextQuestion),
        ("multifieldqa_zh", LongbenchFormat::ContextQuestion),
        ("2wikimqa", LongbenchFormat::ContextQuestion),
        ("dureader", LongbenchFormat::ContextQuestion),
        ("gov_report", LongbenchFormat::ContextOnly),
        ("vcsum", LongbenchFormat::ContextOnly),
        ("multi_news_e", LongbenchFormat::ContextOnly),
        ("trec", LongbenchFormat::Concatenate),
        ("lsht", LongbenchFormat::Concatenate),
        ("passage_retrieval_zh", LongbenchFormat::Concatenate),
        ("passage_count", LongbenchFormat::Concatenate),
        ("lcc", LongbenchFormat::Concatenate),
        ("repobench-p_e", LongbenchFormat::Concatenate),
        ("HotpotQA_E", LongbenchFormat::ContextQuestion),
    ];
    for (subset, want) in cases {
        assert_eq!(LongbenchFormat::for_subset(subset), Some(want), "{subset}");
    }
    // Unknown, and subsets LongBench-E does not have.
    for subset in ["something_new", "narrativeqa_e", "dureader_e", ""] {
        assert_eq!(LongbenchFormat::for_subset(subset), None, "{subset}");
    }

    let files = Files::new();
    // The `dataset` field wins over the file name; without it, the file name counts.
    files.write(
        "mixed.jsonl",
        &format!(
            "{}\n{}\n",
            lb(Some("a"), Some("gov_report"), "report", ""),
            lb(Some("b"), Some("qasper"), "paper", "why?"),
        ),
    );
    files.write(
        "trec.jsonl",
        &lb(Some("c"), None, "examples", "Question: x"),
    );
    let r = convert(
        &files,
        &["longbench", "mixed.jsonl", "trec.jsonl", "-o", "out.jsonl"],
    )
    .unwrap();
    assert_eq!(
        texts(&files, "out.jsonl"),
        ["report", "paper\n\nQuestion: why?", "examples\nQuestion: x"]
    );
    assert_eq!(
        r.subsets,
        [
            ("gov_report".to_string(), LongbenchFormat::ContextOnly, 1),
            ("qasper".to_string(), LongbenchFormat::ContextQuestion, 1),
            ("trec".to_string(), LongbenchFormat::Concatenate, 1),
        ]
    );
    let shown = files.clean(r.to_string());
    assert_eq!(
        shown,
        "read 3 entries: 0 duplicates, 0 skipped; wrote 3 to out.jsonl\n  gov_report: 1 as context_only\n  qasper: 1 as context_question\n  trec: 1 as concatenate"
    );
}

#[test]
fn question_label_is_in_the_subsets_language() {
    let files = Files::new();
    let zh = |id: &str, subset: &str| {
        let mut v: Value = serde_json::from_str(&lb(Some(id), Some(subset), "C", "Q")).unwrap();
        v["language"] = json!("zh");
        v.to_string()
    };
    let body = [
        lb(Some("1"), Some("hotpotqa"), "C", "Q"),
        lb(Some("2"), Some("multifieldqa_en_e"), "C", "Q"),
        zh("3", "multifieldqa_zh"),
        zh("4", "dureader"),
    ];
    files.write("mixed.jsonl", &body.join("\n"));
    convert(&files, &["longbench", "mixed.jsonl", "-o", "o.jsonl"]).unwrap();
    assert_eq!(
        texts(&files, "o.jsonl"),
        [
            "C\n\nQuestion: Q",
            "C\n\nQuestion: Q",
            "C\n\n问题: Q",
            "C\n\n问题: Q"
        ]
    );
    // With --format given, a subset outside the table is read in its `language`.
    let body = [lb(Some("1"), Some("mine"), "C", "Q"), zh("2", "mine_zh")];
    files.write("own.jsonl", &body.join("\n"));
    let argv = [
        "longbench",
        "own.jsonl",
        "-o",
        "p.jsonl",
        "--format",
        "context_question",
    ];
    convert(&files, &argv).unwrap();
    assert_eq!(
        texts(&files, "p.jsonl"),
        ["C\n\nQuestion: Q", "C\n\n问题: Q"]
    );
}

#[test]
fn an_unknown_subset_with_auto_names_the_accepted_ones() {
    let files = Files::new();
    files.write("mine.jsonl", &lb(Some("1"), None, "C", "Q"));
    let e = convert(&files, &["longbench", "mine.jsonl", "-o", "o.jsonl"]).unwrap_err();
    assert!(
        e.starts_with("mine.jsonl:1: unknown LongBench subset \"mine\" (from the file name)"),
        "{e}"
    );
    for part in [
        "narrativeqa",
        "repobench-p",
        "LongBench-E",
        "_e",
        "--format",
    ] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    files.write("x.jsonl", &lb(Some("1"), Some("hotpot"), "C", "Q"));
    let e = convert(&files, &["longbench", "x.jsonl", "-o", "o.jsonl"]).unwrap_err();
    assert!(e.contains("\"hotpot\" (from its \"dataset\" field)"), "{e}");
    assert!(!files.path("o.jsonl").exists());
}

#[test]
fn dedup_by_id_else_by_leading_characters() {
    let files = Files::new();
    let long_a = format!("{}A", "x".repeat(100));
    let long_b = format!("{}B", "x".repeat(100));
    let lines = [
        lb(Some("1"), Some("qasper"), "c", "q"),
        // Same id, other text: a duplicate.
        lb(Some("1"), Some("qasper"), "other", "q2"),
        // Same text, other id: kept.
        lb(Some("2"), Some("qasper"), "c", "q"),
        // No id: the first 100 characters of context and input decide.
        lb(None, Some("qasper"), &long_a, "q"),
        lb(None, Some("qasper"), &long_b, "q"),
        lb(None, Some("qasper"), &long_a, "q!"),
        lb(None, Some("qasper"), "ü".repeat(100).as_str(), "q"),
        lb(None, Some("qasper"), &format!("{}é", "ü".repeat(100)), "q"),
    ];
    files.write("a.jsonl", &lines.join("\n"));
    // Across files too.
    files.write("b.jsonl", &lb(Some("2"), Some("qasper"), "z", "z"));
    let r = convert(
        &files,
        &["longbench", "a.jsonl", "b.jsonl", "-o", "o.jsonl"],
    )
    .unwrap();
    assert_eq!((r.read, r.duplicates, r.written), (9, 4, 5));
    let got = texts(&files, "o.jsonl");
    assert_eq!(got[0], "c\n\nQuestion: q");
    assert_eq!(got[1], "c\n\nQuestion: q");
    assert!(got[2].starts_with(&long_a) && got[2].ends_with("Question: q"));
    assert!(got[3].ends_with("Question: q!"));
    assert!(got[4].starts_with('ü'));
}

#[test]
fn num_samples_is_seeded_and_keeps_file_order() {
    let files = Files::new();
    let body: Vec<String> = (0..50)
        .map(|i| lb(Some(&i.to_string()), Some("qasper"), &format!("c{i}"), "q"))
        .collect();
    files.write("in.jsonl", &body.join("\n"));
    let pick = |seed: &str, out: &str| {
        let argv = [
            "longbench",
            "in.jsonl",
            "-o",
            out,
            "--format",
            "context_only",
            "--num-samples",
            "10",
            "--seed",
            seed,
        ];
        let r = convert(&files, &argv).unwrap();
        assert_eq!((r.usable, r.written), (50, 10));
        texts(&files, out)
    };
    let a = pick("7", "a.jsonl");
    assert_eq!(a, pick("7", "b.jsonl"));
    assert_ne!(a, pick("8", "c.jsonl"));
    let index = |t: &String| t[1..].parse::<u32>().unwrap();
    assert!(a.windows(2).all(|w| index(&w[0]) < index(&w[1])), "{a:?}");
    // More than there are: all of them.
    let r = convert(
        &files,
        &[
            "longbench",
            "in.jsonl",
            "-o",
            "d.jsonl",
            "--num-samples",
            "99",
        ],
    )
    .unwrap();
    assert_eq!(r.written, 50);
    assert!(
        crate::cli::Cli::try_parse_from([
            "servescope",
            "convert",
            "longbench",
            "x",
            "-o",
            "y",
            "--num-samples",
            "0"
        ])
        .is_err()
    );
}

#[test]
fn empty_prompts_are_skipped_and_counted() {
    let files = Files::new();
    files.write(
        "gov_report.jsonl",
        &format!(
            "{}\n{}\n",
            lb(Some("1"), None, "report", ""),
            lb(Some("2"), None, "report 2", "  ")
        ),
    );
    let r = convert(
        &files,
        &[
            "longbench",
            "gov_report.jsonl",
            "-o",
            "o.jsonl",
            "--format",
            "context_only",
        ],
    )
    .unwrap();
    assert_eq!((r.written, r.skipped), (2, 0));
    let msg = convert(
        &files,
        &[
            "longbench",
            "gov_report.jsonl",
            "-o",
            "o.jsonl",
            "--format",
            "question_only",
        ],
    )
    .unwrap_err();
    assert_eq!(
        msg,
        "nothing to write to o.jsonl: all 2 entries read were duplicates (0) or skipped (2); first: gov_report.jsonl:1: empty prompt as question_only (the fields it uses are empty)"
    );
}

#[test]
fn longbench_errors_name_file_and_line() {
    let files = Files::new();
    let ok = lb(Some("1"), Some("qasper"), "c", "q");
    let cases = [
        (
            format!("{ok}\n\n{{\"context\": \"c\"\n"),
            "in.jsonl:3: not valid JSON (expected one LongBench entry per line): EOF while parsing an object at column 15",
        ),
        (
            format!("{ok}\n[1]\n"),
            "in.jsonl:2: expected a JSON object (a LongBench entry), found a list",
        ),
        (
            "{\"input\": \"q\"}".to_string(),
            "in.jsonl:1: \"context\" must be a string, found none (expected a LongBench entry with \"context\" and \"input\" strings)",
        ),
        (
            "{\"input\": 3, \"context\": \"c\"}".to_string(),
            "in.jsonl:1: \"input\" must be a string, found 3 (expected a LongBench entry with \"context\" and \"input\" strings)",
        ),
        (
            "{\"input\": \"q\", \"context\": \"c\", \"_id\": 7}".to_string(),
            "in.jsonl:1: \"_id\" must be a non-empty string when present, found 7 (expected a LongBench entry with \"context\" and \"input\" strings)",
        ),
        (
            " \n\n".to_string(),
            "in.jsonl: no entries (expected one LongBench entry per line)",
        ),
    ];
    for (body, want) in cases {
        files.write("in.jsonl", &body);
        let got = convert(&files, &["longbench", "in.jsonl", "-o", "o.jsonl"]).unwrap_err();
        assert_eq!(got, want, "{body}");
    }
    let got = convert(&files, &["longbench", "missing.jsonl", "-o", "o.jsonl"]).unwrap_err();
    assert!(got.starts_with("cannot read missing.jsonl: "), "{got}");
    // Nothing is written when an input is bad.
    assert!(!files.path("o.jsonl").exists());
}

const SHAREGPT: &str = r#"[
  {"id": "a", "conversations": [
    {"from": "human", "value": "q1"}, {"from": "gpt", "value": "a1"},
    {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a2"}]},
  {"id": "b", "conversations": [
    {"from": "gpt", "value": "orphan answer"},
    {"from": "human", "value": "q3"}, {"from": "gpt", "value": "a3"}]},
  {"id": "c", "conversations": []},
  {"id": "d", "conversations": [{"from": "gpt", "value": "only answers"}]},
  {"id": "e", "conversations": [{"from": "human", "value": " "}, {"from": "gpt", "value": "x"}]},
  {"id": "f", "conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "x"}]},
  {"id": "g"},
  {"id": "h", "conversations": [
    {"from": "system", "value": "sys"}, {"from": "human", "value": "q4"},
    {"from": "human", "value": "q5"}]},
  {"id": "i", "conversations": [
    {"from": "system", "value": "sys"}, {"from": "user", "value": "q6"},
    {"from": "chatgpt", "value": "a6"}, {"from": "human", "value": "q7"}]}
]"#;

#[test]
fn sharegpt_first_turn() {
    let files = Files::new();
    files.write("sg.json", SHAREGPT);
    let r = convert(&files, &["sharegpt", "sg.json", "-o", "o.jsonl"]).unwrap();
    assert_eq!((r.read, r.written, r.skipped, r.duplicates), (9, 4, 5, 0));
    assert_eq!(texts(&files, "o.jsonl"), ["q1", "q3", "q4", "q6"]);
    assert_eq!(
            files.clean(r.skip_examples.join("\n")),
            [
                "sg.json: entry 3: \"conversations\" must be a non-empty list, found an empty list",
                "sg.json: entry 4: no human turn",
                "sg.json: entry 5: turn 1: the first human turn is empty",
                "sg.json: entry 6: turn 2: unknown speaker \"bot\" (expected human, user, gpt, assistant, chatgpt, bing, bard or system)",
                "sg.json: entry 7: \"conversations\" must be a non-empty list, found none",
            ]
            .join("\n")
        );
}

#[test]
fn sharegpt_multi_turn_ends_each_history_with_a_question() {
    let files = Files::new();
    files.write("sg.json", SHAREGPT);
    let r = convert(
        &files,
        &["sharegpt", "sg.json", "-o", "o.jsonl", "--multi-turn"],
    )
    .unwrap();
    assert_eq!((r.read, r.written, r.skipped), (9, 3, 6));
    assert!(
        r.skip_examples.iter().all(|e| !e.contains("entry 8")),
        "only the first five are kept"
    );
    let got: Vec<Value> = read_dataset(&files.path("o.jsonl"), Conversation::FirstTurn)
        .unwrap()
        .into_iter()
        .map(|e| match e.content {
            PromptContent::Messages(m) => m,
            PromptContent::Text(t) => panic!("expected messages, got {t}"),
        })
        .collect();
    let m = |role: &str, content: &str| json!({"role": role, "content": content});
    assert_eq!(
        got,
        [
            json!([m("user", "q1"), m("assistant", "a1"), m("user", "q2")]),
            json!([m("user", "q3")]),
            json!([
                m("system", "sys"),
                m("user", "q6"),
                m("assistant", "a6"),
                m("user", "q7")
            ]),
        ]
    );
}

#[test]
fn sharegpt_json_lines_sampling_and_errors() {
    let files = Files::new();
    let body: Vec<String> = (0..20)
        .map(|i| {
            json!({"id": i, "conversations": [{"from": "human", "value": format!("q{i}")}]})
                .to_string()
        })
        .collect();
    files.write("sg.jsonl", &body.join("\n"));
    let argv = [
        "sharegpt",
        "sg.jsonl",
        "-o",
        "o.jsonl",
        "--num-samples",
        "5",
        "--seed",
        "3",
    ];
    let r = convert(&files, &argv).unwrap();
    assert_eq!((r.read, r.usable, r.written), (20, 20, 5));
    let first = texts(&files, "o.jsonl");
    convert(&files, &argv).unwrap();
    assert_eq!(texts(&files, "o.jsonl"), first);

    let cases = [
        (
            "sg.json",
            "[\n  {\"conversations\": []},\n  {oops}\n]",
            "sg.json:3:4: not valid JSON (expected a JSON list of {\"id\", \"conversations\": [{\"from\", \"value\"}]} objects, or one per line): key must be a string",
        ),
        (
            "sg.json",
            "{\"id\": 1}\n{\"id\": 2",
            "sg.json:2: not valid JSON (expected a JSON list of {\"id\", \"conversations\": [{\"from\", \"value\"}]} objects, or one per line): EOF while parsing an object at column 8",
        ),
        (
            "sg.json",
            "[]",
            "sg.json: no entries (expected a JSON list of {\"id\", \"conversations\": [{\"from\", \"value\"}]} objects, or one per line)",
        ),
        (
            "sg.json",
            "[1, {\"id\": 2}]",
            "nothing to write to o.jsonl: all 2 entries read were duplicates (0) or skipped (2); first: sg.json: entry 1: not an object but 1",
        ),
    ];
    for (name, body, want) in cases {
        files.write(name, body);
        let got = convert(&files, &["sharegpt", name, "-o", "o.jsonl"]).unwrap_err();
        assert_eq!(got, want, "{body}");
    }
}
