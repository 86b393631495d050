//! Reading requests.jsonl: a torn last line is dropped with a warning, a bad line
//! anywhere else is an error naming the file and line; runs keep their completeness.

use super::*;

fn line(run: &str, id: u64) -> String {
    let mut out = String::new();
    RequestRecord {
        id,
        ..RequestRecord::ok_for_test(run, 0, vec![10, 20], 30, 4, 2)
    }
    .write_json_line(&mut out);
    out
}

type Read = (
    Result<Option<String>, Error>,
    Vec<u64>,
    std::path::PathBuf,
    tempfile::TempDir,
);

/// The ids read from `text` as requests.jsonl, the warning given, the file.
fn read(text: &str) -> Read {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    std::fs::write(&path, text).unwrap();
    let mut ids = Vec::new();
    let result = read_each_record(&path, |r| {
        ids.push(r.id);
        Ok(())
    });
    (result, ids, path, dir)
}

#[test]
fn a_torn_last_line_is_dropped_with_a_warning_naming_it() {
    let whole = format!("{}{}", line("r", 0), line("r", 1));
    let third = line("r", 2);
    // Cut inside the record, and inside a string.
    let cuts = [
        format!("{whole}{}", &third[..third.len() / 2]),
        format!("{whole}{{\"run\":\"caf\u{e9}"),
    ];
    for text in &cuts {
        let (result, ids, path, _dir) = read(text);
        let warning = result.unwrap().expect("a warning");
        assert_eq!(ids, [0, 1], "the whole records are kept");
        assert!(
            warning.contains(&format!("{}:3:", path.display())) && warning.contains("cut short"),
            "{warning}"
        );
    }
    // Cut in the middle of a UTF-8 character: still only the torn line is dropped.
    let mut bytes = whole.clone().into_bytes();
    bytes.extend_from_slice(&"{\"run\":\"é".as_bytes()[..10]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    std::fs::write(&path, &bytes).unwrap();
    let mut n = 0;
    let warning = read_each_record(&path, |_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!((n, warning.is_some()), (2, true));
    // A last record whole but for its newline is a record.
    let (result, ids, _, _dir) = read(&format!("{whole}{}", third.trim_end()));
    assert_eq!((result.unwrap(), ids), (None, vec![0, 1, 2]));
}

#[test]
fn a_bad_line_before_the_last_is_an_error_naming_file_and_line() {
    let third = line("r", 2);
    let text = format!("{}{{\"run\":\n{third}", line("r", 0));
    let (result, _, path, _dir) = read(&text);
    let msg = result.unwrap_err().to_string();
    assert!(msg.contains(&format!("{}:2:", path.display())), "{msg}");
    // A bad last line that ends with its newline was written whole: an error too.
    let (result, _, _, _dir) = read(&format!("{}not json\n", line("r", 0)));
    assert!(result.unwrap_err().to_string().contains(":2:"));
}

#[test]
fn a_run_results_json_does_not_list_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("requests.jsonl"),
        format!("{}{}{}", line("a", 0), line("b", 0), line("b", 1)),
    )
    .unwrap();
    // Saved after run "a" ended; the process died during "b".
    let doc = serde_json::json!({"runs": [{"label": "a", "mode": "concurrency",
        "complete": true, "requests_planned": 1, "requests_sent": 1, "summary": {}}]});
    std::fs::write(dir.path().join("results.json"), doc.to_string()).unwrap();
    let loaded = load(dir.path(), Reanalysis::default()).unwrap();
    let (a, b) = (&loaded.runs[0].saved, &loaded.runs[1].saved);
    assert!(a.is_complete() && a.incomplete_note().is_none());
    assert!(!b.is_complete());
    let note = b.incomplete_note().unwrap();
    assert!(
        note.starts_with("INCOMPLETE: the process ended") && note.contains("2 requests recorded"),
        "{note}"
    );
    assert!(crate::report::table::render_saved(b).contains(&note));
}
