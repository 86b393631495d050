//! `--metadata KEY=VALUE`: saved in results.json, kept by `report --rewrite` and
//! `merge`, shown in each run's table heading and the HTML report's header (escaped);
//! credential-like keys and values holding the API key are input errors.

mod common;

use std::path::Path;

use servescope::report::document::ResultsDoc;
use servescope::{Error, Outcome, run_args};

fn run(args: &[&str]) -> Result<Outcome, Error> {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    run_args(argv)
}

fn metadata(dir: &Path) -> Vec<(String, String)> {
    let doc = ResultsDoc::read(&dir.join("results.json")).unwrap();
    doc.metadata.map(|m| m.0).unwrap_or_default()
}

#[test]
fn labels_are_saved_kept_and_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, merged) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("m"),
    );
    for dir in [&a, &b] {
        common::session(&[
            "concurrency",
            "--concurrency",
            "2",
            "--num-requests",
            "4",
            "--input-len",
            "16",
            "--output-len",
            "4",
            "--metadata",
            "config=max-num-seqs=8",
            "--metadata",
            "note=<b>&x",
            "--output-dir",
            dir.to_str().unwrap(),
            "-q",
        ]);
    }
    let want = vec![
        ("config".to_string(), "max-num-seqs=8".to_string()),
        ("note".to_string(), "<b>&x".to_string()),
    ];
    assert_eq!(metadata(&a), want);

    run(&["report", a.to_str().unwrap(), "--rewrite"]).unwrap();
    assert_eq!(metadata(&a), want, "report --rewrite keeps the labels");

    run(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(metadata(&merged), want, "merge keeps the labels");

    let doc = ResultsDoc::read(&a.join("results.json")).unwrap();
    let heading = servescope::report::table::render_saved_in(&doc.runs[0], doc.metadata.as_ref());
    assert!(
        heading.starts_with("── concurrency 2 · config=max-num-seqs=8 · note=<b>&x ──\n"),
        "{heading}"
    );

    let html = tmp.path().join("r.html");
    run(&[
        "report",
        a.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ])
    .unwrap();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains(
            "<dt>metadata</dt><dd><code>config=max-num-seqs=8, note=&lt;b&gt;&amp;x</code></dd>"
        ),
        "the header row, escaped"
    );
    assert!(!page.contains("<b>&x"), "never raw");
}

#[test]
fn credential_like_labels_are_input_errors() {
    for (args, says) in [
        (
            vec!["--metadata", "auth_header=x"],
            "looks like a credential",
        ),
        (
            vec![
                "--api-key",
                "sk-test-0123456789",
                "--metadata",
                "note=sk-test-0123456789",
            ],
            "holds the API key",
        ),
        (vec!["--metadata", "novalue"], "expected KEY=VALUE"),
    ] {
        let mut argv = vec!["concurrency", "--concurrency", "1", "--num-requests", "1"];
        argv.extend(args);
        match run(&argv) {
            Err(e @ Error::Input(_)) => {
                let m = e.to_string();
                assert!(m.contains(says) && !m.contains("0123456789"), "{m}");
            }
            other => panic!("{argv:?}: {other:?}"),
        }
    }
}
