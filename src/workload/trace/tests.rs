use super::*;
use std::io::Cursor;
use std::time::Instant;

const MOONCAKE: &str = "\
{\"timestamp\": 0, \"input_length\": 1100, \"output_length\": 6, \"hash_ids\": [0, 1, 2]}
{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 4, \"hash_ids\": [3, 4]}

{\"timestamp\": 40, \"input_length\": 13, \"output_length\": 3, \"hash_ids\": [0]}
";

const QWEN: &str = "\
{\"chat_id\": 159, \"parent_chat_id\": -1, \"timestamp\": 61.114, \"input_length\": 40, \"output_length\": 12, \"type\": \"text\", \"turn\": 1, \"hash_ids\": [0, 1, 2]}
{\"chat_id\": 160, \"parent_chat_id\": 159, \"timestamp\": 62.5, \"input_length\": 70, \"output_length\": 30, \"type\": \"search\", \"turn\": 2, \"hash_ids\": [0, 1, 2, 3, 4]}
{\"chat_id\": 161, \"parent_chat_id\": -1, \"timestamp\": 63, \"input_length\": 5, \"output_length\": 1, \"type\": \"image\", \"turn\": 1, \"hash_ids\": [9]}
";

fn reader(
    text: &str,
    format: Option<TraceFormat>,
) -> Result<TraceReader<Cursor<Vec<u8>>>, TraceError> {
    TraceReader::from_reader(Cursor::new(text.as_bytes().to_vec()), "t.jsonl", format)
}

fn read_all(
    text: &str,
    format: Option<TraceFormat>,
) -> Result<(TraceFormat, Vec<TraceRequest>), TraceError> {
    let r = reader(text, format)?;
    let f = r.format();
    Ok((f, r.collect::<Result<Vec<_>, _>>()?))
}

/// The error message of reading `text`, which must fail.
fn error(text: &str, format: Option<TraceFormat>) -> String {
    match read_all(text, format) {
        Ok(r) => panic!("expected an error, read {r:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mooncake_is_recognised_and_converted_exactly() {
    let (format, reqs) = read_all(MOONCAKE, None).unwrap();
    assert_eq!(format, TraceFormat::Mooncake);
    assert_eq!(format.block_size(), 512);
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        reqs[0],
        TraceRequest {
            line: 1,
            timestamp_us: 0,
            input_len: 1100,
            output_len: 6,
            hash_ids: vec![0, 1, 2],
            chat_id: None,
            parent_chat_id: None,
            turn: None,
            kind: None,
            replaced: Default::default(),
        }
    );
    // The blank line 3 is skipped but still counted.
    assert_eq!(reqs[2].line, 4);
    assert_eq!(reqs[2].timestamp_us, 40_000);
    assert_eq!(reqs[2].hash_ids, vec![0]);
}

#[test]
fn qwen_is_recognised_and_converted_exactly() {
    let (format, reqs) = read_all(QWEN, None).unwrap();
    assert_eq!(format, TraceFormat::Qwen);
    assert_eq!(format.block_size(), 16);
    assert_eq!(reqs.len(), 3);
    let r = &reqs[0];
    assert_eq!(r.timestamp_us, 61_114_000);
    assert_eq!((r.input_len, r.output_len), (40, 12));
    assert_eq!(r.chat_id, Some(159));
    assert_eq!(r.parent_chat_id, Some(-1));
    assert_eq!(r.turn, Some(1));
    assert_eq!(r.kind.as_deref(), Some("text"));
    assert_eq!(reqs[1].parent_chat_id, Some(159));
    assert_eq!(reqs[1].timestamp_us, 62_500_000);
    assert_eq!(reqs[1].kind.as_deref(), Some("search"));
    // An integer number of seconds is fine too.
    assert_eq!(reqs[2].timestamp_us, 63_000_000);
}

#[test]
fn qwen_seconds_round_to_the_nearest_microsecond() {
    for (secs, us) in [
        ("0.0000004", 0),
        ("0.0000006", 1),
        ("1.000001", 1_000_001),
        ("7199.999999", 7_199_999_999),
    ] {
        let line = QWEN.lines().next().unwrap().replace("61.114", secs);
        let (_, reqs) = read_all(&line, None).unwrap();
        assert_eq!(reqs[0].timestamp_us, us, "{secs}");
    }
}

#[test]
fn forced_formats() {
    // A Qwen line holds every Mooncake field, but its seconds are not whole ms.
    let (f, reqs) = read_all(MOONCAKE, Some(TraceFormat::Mooncake)).unwrap();
    assert_eq!((f, reqs.len()), (TraceFormat::Mooncake, 3));
    let (f, reqs) = read_all(QWEN, Some(TraceFormat::Qwen)).unwrap();
    assert_eq!((f, reqs.len()), (TraceFormat::Qwen, 3));

    let e = error(MOONCAKE, Some(TraceFormat::Qwen));
    assert!(
        e.starts_with("trace t.jsonl:1: missing field `chat_id`"),
        "{e}"
    );
    assert!(e.contains("every qwen trace line needs"), "{e}");
    let e = error(QWEN, Some(TraceFormat::Mooncake));
    assert_eq!(
        e,
        "trace t.jsonl:1: field `timestamp`: expected whole milliseconds ≥ 0 (Qwen traces use float seconds), found 61.114"
    );
}

#[test]
fn a_later_line_missing_a_field_names_it() {
    let text = format!(
        "{}{{\"timestamp\": 50, \"input_length\": 3, \"hash_ids\": []}}\n",
        MOONCAKE
    );
    assert_eq!(
        error(&text, None),
        "trace t.jsonl:5: missing field `output_length`; every mooncake trace line needs timestamp, input_length, output_length, hash_ids"
    );
    let mut lines: Vec<String> = QWEN.lines().map(String::from).collect();
    lines[2] = lines[2].replace("\"turn\": 1, ", "");
    let e = error(&lines.join("\n"), None);
    assert!(
        e.starts_with("trace t.jsonl:3: missing field `turn`"),
        "{e}"
    );
}

#[test]
fn limit_stops_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jsonl");
    // Line 3 is broken, but a limit of 2 never reads it.
    std::fs::write(
        &path,
        "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}\n\
             {\"timestamp\": 1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [1]}\n\
             not json\n",
    )
    .unwrap();
    let (f, reqs) = read_trace(&path, None, Some(2)).unwrap();
    assert_eq!((f, reqs.len()), (TraceFormat::Mooncake, 2));
    assert_eq!(read_trace(&path, None, Some(1)).unwrap().1.len(), 1);
    let e = read_trace(&path, None, None).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("trace {}:3: not valid JSON", path.display())),
        "{e}"
    );
    let e = read_trace(&path, None, Some(0)).unwrap_err().to_string();
    assert!(e.contains("limit of 0"), "{e}");
    let e = read_trace(&dir.path().join("none.jsonl"), None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("none.jsonl: cannot open"), "{e}");
}

#[test]
fn empty_traces_are_errors() {
    for text in ["", "\n", "  \n\r\n\t\n"] {
        assert_eq!(
            error(text, None),
            "trace t.jsonl: holds no requests (every line is blank)"
        );
    }
}

#[test]
fn every_bad_field_is_named_with_its_line() {
    let ok = "{\"timestamp\": 5, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [7]}";
    let cases: &[(&str, &str, &str)] = &[
        (
            "\"input_length\": 10",
            "\"input_length\": -4",
            "field `input_length`: expected a whole number of prompt tokens ≥ 1, found -4",
        ),
        (
            "\"input_length\": 10",
            "\"input_length\": 2.5",
            "field `input_length`: expected a whole number of prompt tokens ≥ 1, found 2.5",
        ),
        (
            "\"input_length\": 10",
            "\"input_length\": 0",
            "field `input_length`: expected a whole number of prompt tokens ≥ 1, found 0",
        ),
        (
            "\"input_length\": 10",
            "\"input_length\": \"10\"",
            "field `input_length`: expected a whole number of prompt tokens ≥ 1, found the string \"10\"",
        ),
        (
            "\"input_length\": 10",
            "\"input_length\": 4294967296",
            "field `input_length`: expected a whole number of prompt tokens ≥ 1, found 4294967296",
        ),
        (
            "\"output_length\": 2",
            "\"output_length\": 0",
            "field `output_length`: expected a whole number ≥ 1 (a request must generate at least 1 token), found 0",
        ),
        (
            "\"output_length\": 2",
            "\"output_length\": null",
            "field `output_length`: expected a whole number ≥ 1 (a request must generate at least 1 token), found null",
        ),
        (
            "\"timestamp\": 5",
            "\"timestamp\": -5",
            "field `timestamp`: expected whole milliseconds ≥ 0 (Qwen traces use float seconds), found -5",
        ),
        (
            "\"timestamp\": 5",
            "\"timestamp\": 18446744073709552",
            "field `timestamp`: expected whole milliseconds ≥ 0 (Qwen traces use float seconds), found 18446744073709552",
        ),
        (
            "\"hash_ids\": [7]",
            "\"hash_ids\": [7, -1]",
            "field `hash_ids`: expected a list of whole numbers ≥ 0, found -1 at index 1",
        ),
        (
            "\"hash_ids\": [7]",
            "\"hash_ids\": [7, 8, 1.5, -2]",
            "field `hash_ids`: expected a list of whole numbers ≥ 0, found 1.5 at index 2",
        ),
        (
            "\"hash_ids\": [7]",
            "\"hash_ids\": [[7]]",
            "field `hash_ids`: expected a list of whole numbers ≥ 0, found a list at index 0",
        ),
        (
            "\"hash_ids\": [7]",
            "\"hash_ids\": {\"a\": 1}",
            "field `hash_ids`: expected a list of whole numbers ≥ 0, found an object",
        ),
        (
            "\"hash_ids\": [7]",
            "\"hash_ids\": \"7\"",
            "field `hash_ids`: expected a list of whole numbers ≥ 0, found the string \"7\"",
        ),
        (
            "\"hash_ids\": [7]",
            "\"hash_ids\": true",
            "field `hash_ids`: expected a list of whole numbers ≥ 0, found true",
        ),
    ];
    for &(from, to, msg) in cases {
        let bad = ok.replace(from, to);
        assert_ne!(bad, ok);
        // On the first line (where the format is recognised) and on a later one.
        assert_eq!(
            error(&bad, None),
            format!("trace t.jsonl:1: {msg}"),
            "{bad}"
        );
        let text = format!("{ok}\n\n{bad}\n{ok}\n");
        assert_eq!(
            error(&text, None),
            format!("trace t.jsonl:3: {msg}"),
            "{bad}"
        );
    }
}

#[test]
fn every_bad_qwen_field_is_named_with_its_line() {
    let ok = QWEN.lines().next().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "61.114",
            "-0.5",
            "field `timestamp`: expected seconds ≥ 0 (a number), found -0.5",
        ),
        (
            "61.114",
            "-0.0000001",
            "field `timestamp`: expected seconds ≥ 0 (a number), found -1e-7",
        ),
        (
            "61.114",
            "\"61\"",
            "field `timestamp`: expected seconds ≥ 0 (a number), found the string \"61\"",
        ),
        (
            "61.114",
            "1e300",
            "field `timestamp`: expected seconds ≥ 0 (a number), found 1e300",
        ),
        (
            "\"chat_id\": 159",
            "\"chat_id\": 1.5",
            "field `chat_id`: expected an integer, found 1.5",
        ),
        (
            "\"parent_chat_id\": -1",
            "\"parent_chat_id\": -2",
            "field `parent_chat_id`: expected an integer (-1 for a first turn), found -2",
        ),
        (
            "\"turn\": 1",
            "\"turn\": -1",
            "field `turn`: expected a whole number ≥ 0, found -1",
        ),
        (
            "\"type\": \"text\"",
            "\"type\": 3",
            "field `type`: expected a string (text, search, image or file), found 3",
        ),
        (
            "\"type\": \"text\", ",
            "",
            "missing field `type`; every qwen trace line needs chat_id, parent_chat_id, timestamp, input_length, output_length, type, turn, hash_ids",
        ),
    ];
    for &(from, to, msg) in cases {
        let bad = ok.replace(from, to);
        assert_ne!(bad, ok);
        let text = format!("{ok}\n{bad}\n");
        assert_eq!(
            error(&text, None),
            format!("trace t.jsonl:2: {msg}"),
            "{bad}"
        );
    }
}

#[test]
fn lines_that_are_not_objects() {
    let ok = "{\"timestamp\": 5, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [7]}";
    for (line, msg) in [
        ("[5, 10, 2, [7]]", "expected a JSON object, found a list"),
        ("42", "expected a JSON object, found a number"),
        ("\"x\"", "expected a JSON object, found a string"),
        ("null", "expected a JSON object, found null"),
    ] {
        assert_eq!(
            error(&format!("{ok}\n{line}\n"), None),
            format!("trace t.jsonl:2: {msg}")
        );
    }
    for line in [
        "{\"timestamp\": 5,",
        "hello",
        "{\"timestamp\": 5} x",
        "\u{0}",
    ] {
        let e = error(&format!("{ok}\n{line}\n"), None);
        assert!(e.starts_with("trace t.jsonl:2: not valid JSON ("), "{e}");
    }
    assert_eq!(
        error(
            &format!("{ok}\n{{\"timestamp\": 5, \"timestamp\": 6}}\n"),
            None
        ),
        "trace t.jsonl:2: not valid JSON (duplicate field `timestamp` at column 28); expected one JSON object per line"
    );
    // Invalid UTF-8 is reported, not a panic.
    let mut bytes = format!("{ok}\n").into_bytes();
    bytes.extend_from_slice(b"{\"type\": \"\xFF\"}\n");
    let r = TraceReader::from_reader(Cursor::new(bytes), "t.jsonl", None).unwrap();
    let e = r.collect::<Result<Vec<_>, _>>().unwrap_err().to_string();
    assert!(e.starts_with("trace t.jsonl:2: not valid JSON"), "{e}");
    // Neither format's fields.
    assert_eq!(
        error("{\"prompt\": \"hi\"}\n", None),
        format!(
            "trace t.jsonl:1: not a request trace line: expected the Qwen fields ({QWEN_FIELDS}) or the Mooncake fields ({MOONCAKE_FIELDS})"
        )
    );
}

#[test]
fn timestamps_must_not_go_back() {
    let text = "\
{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}
{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}

{\"timestamp\": 4, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}
";
    assert_eq!(
        error(text, None),
        "trace t.jsonl:4: timestamp 4000 µs comes before 5000 µs on line 2; a trace must be sorted by timestamp"
    );
    // Nothing follows an error.
    let mut r = reader(&format!("{text}{}", MOONCAKE.lines().next().unwrap()), None).unwrap();
    assert!(r.next().unwrap().is_ok());
    assert!(r.next().unwrap().is_ok());
    assert!(r.next().unwrap().is_err());
    assert!(r.next().is_none());
}

#[test]
fn extras_are_tolerated() {
    // Unknown fields, CRLF line ends, a byte-order mark, empty hash ids, 40.0 ms.
    let text = "\u{feff}{\"timestamp\": 40.0, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": [], \"note\": {\"a\": [1]}}\r\n\r\n";
    let (f, reqs) = read_all(text, None).unwrap();
    assert_eq!(f, TraceFormat::Mooncake);
    assert_eq!(reqs[0].timestamp_us, 40_000);
    assert!(reqs[0].hash_ids.is_empty());
    // An escaped string in `type` is not borrowed from the line, and still read.
    let line = QWEN
        .lines()
        .next()
        .unwrap()
        .replace("\"text\"", "\"te\\u0078t\"");
    let (_, reqs) = read_all(&line, None).unwrap();
    assert_eq!(reqs[0].kind.as_deref(), Some("text"));
}

/// The real Mooncake file, when present: counts from its README, and parse speed.
#[test]
fn real_mooncake_trace() {
    let path = Path::new("/work/shared/traces/mooncake_synthetic_trace.jsonl");
    if !path.exists() {
        eprintln!("skipped: {} is not here", path.display());
        return;
    }
    let start = Instant::now();
    let (format, reqs) = read_trace(path, None, None).unwrap();
    let took = start.elapsed();
    eprintln!("parsed {} requests in {took:?}", reqs.len());
    assert_eq!(format, TraceFormat::Mooncake);
    assert_eq!(reqs.len(), 3993);
    let input: u64 = reqs.iter().map(|r| u64::from(r.input_len)).sum();
    let output: u64 = reqs.iter().map(|r| u64::from(r.output_len)).sum();
    let blocks: usize = reqs.iter().map(|r| r.hash_ids.len()).sum();
    assert_eq!((input, output, blocks), (61_194_628, 595_432, 121_877));
    assert_eq!(reqs.last().unwrap().timestamp_us, 1_022_025_000);
    assert!(
        reqs.iter()
            .all(|r| r.hash_ids.len() == (r.input_len as usize).div_ceil(512))
    );
}
