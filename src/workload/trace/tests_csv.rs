//! The CSV traces: Azure and BurstGPT, recognised from their header, read row by row.

use super::*;
use std::io::Cursor;

const AZURE: &str = "\
TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951690,396,109

2023-11-16 18:15:51.2224675,879,55
";

const BURST: &str = "\
Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
5,ChatGPT,472,18,490,Conversation log
45.5,ChatGPT,1087,230,1317,Conversation log
118,GPT-4,417,276,693,API log
120,GPT-4,300,0,300,API log
121,gpt-4,12,3,15,Conversation log
";

fn reader(text: &str, format: Option<TraceFormat>) -> TraceReader<Cursor<Vec<u8>>> {
    TraceReader::from_reader(Cursor::new(text.as_bytes().to_vec()), "t.csv", format).unwrap()
}

fn read(text: &str, format: Option<TraceFormat>) -> Result<Vec<TraceRequest>, TraceError> {
    reader(text, format).collect()
}

fn error(text: &str, format: Option<TraceFormat>) -> String {
    match TraceReader::from_reader(Cursor::new(text.as_bytes().to_vec()), "t.csv", format) {
        Err(e) => e.to_string(),
        Ok(r) => r
            .collect::<Result<Vec<_>, _>>()
            .expect_err("expected an error")
            .to_string(),
    }
}

/// µs since 1970 of a UTC time, for the expected values.
const NOV16_18_15_46: u64 = 1_700_158_546_000_000;

#[test]
fn azure_is_recognised_and_converted_exactly() {
    let r = reader(AZURE, None);
    assert_eq!(r.format(), TraceFormat::Azure);
    let reqs: Vec<_> = r.map(Result::unwrap).collect();
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        reqs[0],
        TraceRequest {
            line: 2,
            timestamp_us: NOV16_18_15_46 + 680_590,
            input_len: 374,
            output_len: 44,
            hash_ids: vec![],
            chat_id: None,
            parent_chat_id: None,
            turn: None,
            kind: None,
            replaced: Default::default(),
        }
    );
    // 7 fractional digits round to the µs; the blank line still counts as a line.
    assert_eq!(reqs[2].timestamp_us, NOV16_18_15_46 + 5_222_468);
    assert_eq!(reqs[2].line, 5);
    // The last row's line without a line end, and after CRLF blank lines.
    let text = AZURE.trim_end().replace('\n', "\r\n\r\n");
    let lines: Vec<_> = read(&text, None).unwrap().iter().map(|r| r.line).collect();
    assert_eq!(lines, [3, 5, 9]);
    assert_eq!((reqs[1].input_len, reqs[1].output_len), (396, 109));
}

#[test]
fn wall_clock_forms() {
    use csv_trace::wall_clock_us;
    let base = NOV16_18_15_46;
    for (text, us) in [
        ("2023-11-16 18:15:46", base),
        ("2023-11-16T18:15:46.5", base + 500_000),
        ("2023-11-16 18:15:46.0000004", base),
        ("2023-11-16 18:15:46.0000005", base + 1),
        ("2023-11-16 18:15:46.680590+00:00", base + 680_590),
        ("2023-11-16 18:15:46Z", base),
        ("2023-11-16 19:15:46+01:00", base),
        ("1970-01-01 00:00:00", 0),
        ("2024-02-29 00:00:00", 1_709_164_800_000_000),
    ] {
        assert_eq!(wall_clock_us(text), Some(us), "{text}");
    }
    for bad in [
        "",
        "2023-11-16",
        "2023/11/16 18:15:46",
        "2023-13-16 18:15:46",
        "2023-11-16 24:00:00",
        "2023-11-16 18:15:46.",
        "2023-11-16 18:15:46 PST",
        "1969-12-31 23:59:59",
        "2023-11-16 18:15:4x",
    ] {
        assert_eq!(wall_clock_us(bad), None, "{bad}");
    }
}

#[test]
fn burstgpt_leaves_out_failures_and_filters_models() {
    let mut r = reader(BURST, None);
    assert_eq!(r.format(), TraceFormat::BurstGpt);
    let all: Vec<_> = r.by_ref().map(Result::unwrap).collect();
    // The 0-token response (a failed request) is not replayed.
    assert_eq!(all.len(), 4);
    assert_eq!(
        r.left_out(),
        LeftOut {
            empty: 1,
            other_model: 0
        }
    );
    assert_eq!(r.models_seen(), ["ChatGPT", "GPT-4", "gpt-4"]);
    assert_eq!(all[1].timestamp_us, 45_500_000);
    assert_eq!((all[1].input_len, all[1].output_len), (1087, 230));
    assert!(all.iter().all(|r| r.hash_ids.is_empty()));

    let mut r = reader(BURST, None);
    r.filter_model(Some("GPT-4".into()));
    let gpt4: Vec<_> = r.by_ref().map(Result::unwrap).collect();
    // Case is ignored: `gpt-4` is the same model.
    assert_eq!(
        gpt4.iter().map(|r| r.line).collect::<Vec<_>>(),
        [4, 6],
        "lines of the GPT-4 rows with output"
    );
    assert_eq!(
        r.left_out(),
        LeftOut {
            empty: 1,
            other_model: 2
        }
    );
}

#[test]
fn columns_are_found_by_name() {
    // BurstGPT's later release: session and elapsed time columns, another order.
    let text = "\
Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type
0.25,abc,3.1,ChatGPT,10,2,12,Conversation log
";
    let reqs = read(text, None).unwrap();
    assert_eq!(
        (reqs[0].timestamp_us, reqs[0].input_len, reqs[0].output_len),
        (250_000, 10, 2)
    );
    // A byte-order mark, CRLF line ends, spaces and a different case.
    let text =
        "\u{feff}timestamp, contexttokens ,GENERATEDTOKENS\r\n2023-11-16 18:15:46 , 7 ,3\r\n";
    let reqs = read(text, None).unwrap();
    assert_eq!((reqs[0].input_len, reqs[0].output_len), (7, 3));
}

#[test]
fn forced_formats_check_the_header() {
    assert_eq!(read(AZURE, Some(TraceFormat::Azure)).unwrap().len(), 3);
    assert_eq!(
        error(AZURE, Some(TraceFormat::BurstGpt)),
        format!(
            "trace t.csv:1: the header `TIMESTAMP,ContextTokens,GeneratedTokens` has no column `Request tokens`; a burstgpt trace starts with `{BURSTGPT_HEADER}` (columns in any order)"
        )
    );
    // A CSV forced to a JSON format is read as JSON lines, and fails as such.
    let e = error(AZURE, Some(TraceFormat::Mooncake));
    assert!(e.starts_with("trace t.csv:1: not valid JSON"), "{e}");
    // A JSON trace forced to a CSV format.
    let e = error(
        "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": []}\n",
        Some(TraceFormat::Azure),
    );
    assert!(e.contains("has no column `TIMESTAMP`"), "{e}");
}

#[test]
fn an_unknown_header_names_the_file_what_it_found_and_what_was_expected() {
    let e = error("time,prompt,completion\n1,2,3\n", None);
    assert_eq!(
        e,
        format!(
            "trace t.csv:1: not a known trace format: `time,prompt,completion`; expected a CSV header `{AZURE_HEADER}` (Azure) or `{BURSTGPT_HEADER}` (BurstGPT), or JSON lines with the Qwen fields ({QWEN_FIELDS}) or the Mooncake fields ({MOONCAKE_FIELDS})"
        )
    );
    // Azure's columns but one: still unknown, the message shows the header.
    let e = error("\n\nTIMESTAMP,ContextTokens\n", None);
    assert!(
        e.starts_with("trace t.csv:3: not a known trace format: `TIMESTAMP,ContextTokens`;"),
        "{e}"
    );
}

#[test]
fn bad_rows_name_the_file_line_and_column() {
    let head = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,5,1\n";
    for (row, msg) in [
        (
            "2023-11-16 18:15:47,x,1",
            "trace t.csv:3: field `ContextTokens`: expected a whole number of tokens ≥ 0, found \"x\"",
        ),
        (
            "2023-11-16 18:15:47,5,-1",
            "trace t.csv:3: field `GeneratedTokens`: expected a whole number of tokens ≥ 0, found \"-1\"",
        ),
        (
            "2023-11-16 18:15:47,5,",
            "trace t.csv:3: field `GeneratedTokens`: expected a whole number of tokens ≥ 0, found nothing",
        ),
        (
            "yesterday,5,1",
            "trace t.csv:3: field `TIMESTAMP`: expected a time like 2023-11-16 18:15:46.6805900 (optionally +HH:MM or Z), found \"yesterday\"",
        ),
        (
            "2023-11-16 18:15:47,5",
            "trace t.csv:3: 2 fields, expected 3 as in the header (`TIMESTAMP,ContextTokens,GeneratedTokens`)",
        ),
        (
            "2023-11-16 18:15:45,5,1",
            "trace t.csv:3: timestamp 1700158545000000 µs comes before 1700158546000000 µs on line 2; a trace must be sorted by timestamp",
        ),
    ] {
        assert_eq!(error(&format!("{head}{row}\n"), None), msg);
    }
    let e = error(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n-3,ChatGPT,1,1,2,API log\n",
        None,
    );
    assert_eq!(
        e,
        "trace t.csv:2: field `Timestamp`: expected seconds ≥ 0 from the trace's start, found \"-3\""
    );
    let e = error(
        &format!("{head}\"2023-11-16 18:15:47,5,1\n2023-11-16 18:15:48,5,1\n"),
        None,
    );
    assert_eq!(
        e,
        "trace t.csv:3: cannot read: a quoted field is not closed on its line"
    );
    // Quoted cells are read as CSV.
    let quoted = format!("{head}\"2023-11-16 18:15:47\",\"6\",1\n");
    assert_eq!(read(&quoted, None).unwrap()[1].input_len, 6);
    // 12.0 tokens is a whole number; a header alone is no request.
    assert_eq!(
        read(&format!("{head}2023-11-16 18:15:47,12.0,2\n"), None).unwrap()[1].input_len,
        12
    );
    assert!(
        read("TIMESTAMP,ContextTokens,GeneratedTokens\n", None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_row_without_line_ends_cannot_fill_memory() {
    let mut text = b"TIMESTAMP,ContextTokens,GeneratedTokens\n".to_vec();
    text.extend(std::iter::repeat_n(b'7', MAX_LINE_BYTES + 10));
    let r = TraceReader::from_reader(Cursor::new(text), "t.csv", None).unwrap();
    let e = r.collect::<Result<Vec<_>, _>>().unwrap_err().to_string();
    assert!(e.starts_with("trace t.csv:2: cannot read"), "{e}");
    assert!(e.contains("longer than 16 MiB"), "{e}");
    // The csv parser never sees more than one line.
}

/// The real Azure conversation trace: counts from its README.
#[test]
fn real_azure_trace() {
    let path = Path::new("/work/shared/traces/azure_llm_inference_conv_2023.csv");
    if !path.exists() {
        eprintln!("skipped: {} is not here", path.display());
        return;
    }
    let (format, reqs) = read_trace(path, None, None).unwrap();
    assert_eq!(format, TraceFormat::Azure);
    assert_eq!(reqs.len(), 19_366);
    let input: u64 = reqs.iter().map(|r| u64::from(r.input_len)).sum();
    let output: u64 = reqs.iter().map(|r| u64::from(r.output_len)).sum();
    let max_in = reqs.iter().map(|r| r.input_len).max().unwrap();
    let max_out = reqs.iter().map(|r| r.output_len).max().unwrap();
    assert_eq!((max_in, max_out), (14_050, 1_000));
    // Means 1,154.7 and 211.1 tokens.
    assert_eq!((input, output), (22_361_870, 4_088_665));
    let span = reqs.last().unwrap().timestamp_us - reqs[0].timestamp_us;
    assert_eq!(span / 100_000, 35_017, "3,501.7 s");
}
