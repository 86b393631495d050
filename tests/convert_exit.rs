//! `servescope convert`'s exit status, as the README's "Exit status" states it: 1 when
//! the converted dataset cannot be written, 2 when the input is wrong; the message names
//! the file either way.

use std::path::Path;
use std::process::{Command, Output};

fn convert(input: &Path, output: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_servescope"))
        .args(["convert", "longbench"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .unwrap()
}

fn entry(i: u32) -> String {
    serde_json::json!({
        "input": format!("Which city is mentioned in passage {i}?"),
        "context": format!("Passage {i}: The committee met in Lisbon. ").repeat(10),
        "answers": ["Lisbon"], "length": 100, "dataset": "hotpotqa",
        "language": "en", "_id": format!("id{i}")
    })
    .to_string()
        + "\n"
}

#[test]
fn a_failed_write_exits_1_and_bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hotpotqa.jsonl");
    std::fs::write(&input, entry(0) + &entry(1)).unwrap();

    // Under a regular file: no directory can be made there, even as root.
    let out = dir.path().join("hotpotqa.jsonl/out.jsonl");
    let r = convert(&input, &out);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write") && err.contains(&out.display().to_string()),
        "{err}"
    );
    assert!(!out.exists());

    // To a writable path, the same input converts: only the write failed above.
    let ok = dir.path().join("out.jsonl");
    let r = convert(&input, &ok);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(std::fs::read_to_string(&ok).unwrap().lines().count(), 2);

    // Input that is not JSON: 2, naming the input file.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "not json\n").unwrap();
    let r = convert(&bad, &dir.path().join("never.jsonl"));
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");

    // An input that does not exist: 2 as well.
    let missing = dir.path().join("missing.jsonl");
    let r = convert(&missing, &dir.path().join("never.jsonl"));
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
}
