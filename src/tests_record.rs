use super::*;

fn sample() -> RequestRecord {
    RequestRecord {
        run: Arc::from("concurrency 8"),
        id: 7,
        scheduled_at: None,
        queue_wait: None,
        started_at: 1_000_001,
        ended_at: 1_250_000,
        events: vec![1_100_000, 1_120_500, 1_249_999],
        phases: None,
        input_tokens: 128,
        prompt_tokens: Some(135),
        cached_tokens: None,
        output_tokens: 3,
        output_tokens_source: TokenSource::Usage,
        text_tokens: Some(4),
        failure: None,
        error: None,
        http_status: Some(200),
        retries: 0,
        warmup: false,
        inputs: None,
        tag: RequestTag::default(),
        server_timings: None,
        expected_output_tokens: None,
    }
}

#[test]
fn server_timings_are_written_only_when_set_and_round_trip() {
    let mut r = sample();
    let mut line = String::new();
    r.write_json_line(&mut line);
    assert!(!line.contains("server_timings"), "omitted: {line}");
    r.server_timings = Some(crate::server_timings::ServerTimings {
        prompt_ms: Some(12.5),
        predicted_ms: Some(40.0),
        prompt_n: Some(7),
        cache_n: Some(128),
        predicted_n: Some(3),
    });
    line.clear();
    r.write_json_line(&mut line);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["server_timings"]["cache_n"], 128, "{line}");
    assert_eq!(RequestRecord::parse_json_line(&line).unwrap(), r);
}

#[test]
fn embeddings_inputs_are_written_only_when_set_and_round_trip() {
    let mut r = sample();
    let mut line = String::new();
    r.write_json_line(&mut line);
    assert!(!line.contains("inputs"), "omitted for generation: {line}");
    r.inputs = Some(16);
    r.events.clear();
    line.clear();
    r.write_json_line(&mut line);
    assert!(line.ends_with(",\"inputs\":16}\n"), "{line}");
    assert_eq!(RequestRecord::parse_json_line(&line).unwrap(), r);
}

#[test]
fn expected_output_is_written_only_when_set_and_round_trips() {
    let mut r = sample();
    let mut line = String::new();
    r.write_json_line(&mut line);
    assert!(
        !line.contains("expected_output"),
        "omitted without ignore_eos: {line}"
    );
    r.expected_output_tokens = Some(256);
    line.clear();
    r.write_json_line(&mut line);
    assert!(
        line.ends_with(",\"expected_output_tokens\":256}\n"),
        "{line}"
    );
    assert_eq!(RequestRecord::parse_json_line(&line).unwrap(), r);
}

#[test]
fn json_line_has_spec_fields_and_round_trips() {
    let r = sample();
    let mut line = String::new();
    r.write_json_line(&mut line);
    assert!(line.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["run"], "concurrency 8");
    assert_eq!(v["started_at"].as_f64().unwrap(), 1.000001);
    assert_eq!(v["first_token_at"].as_f64().unwrap(), 1.1);
    assert!(v["scheduled_at"].is_null());
    assert_eq!(v["events"].as_array().unwrap().len(), 3);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["output_tokens_source"], "usage");
    assert_eq!(RequestRecord::parse_json_line(&line).unwrap(), r);
    assert!(!line.contains("warmup"), "omitted when false: {line}");
}

#[test]
fn warmup_flag_is_written_only_when_set_and_round_trips() {
    let mut r = sample();
    r.warmup = true;
    let mut line = String::new();
    r.write_json_line(&mut line);
    assert!(line.ends_with(",\"warmup\":true}\n"), "{line}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["warmup"], true);
    assert_eq!(RequestRecord::parse_json_line(&line).unwrap(), r);
}

#[test]
fn phases_are_written_only_when_present_and_round_trip() {
    let plain = sample();
    assert_eq!(plain.phases().first_answer_at, Some(1_100_000));
    assert_eq!(plain.phases().answer_events, 3);
    let mut r = sample();
    r.phases = Some(Phases {
        first_reasoning_at: Some(1_100_000),
        last_reasoning_at: Some(1_120_500),
        first_answer_at: Some(1_249_999),
        first_tool_at: None,
        reasoning_events: 2,
        answer_events: 1,
        tool_events: 0,
        usage_reasoning_tokens: Some(2),
    });
    let mut line = String::new();
    r.write_json_line(&mut line);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["first_answer_at"].as_f64().unwrap(), 1.249999);
    assert!(v["first_tool_at"].is_null());
    assert_eq!(v["reasoning_tokens"], 2);
    assert_eq!(RequestRecord::parse_json_line(&line).unwrap(), r);
    let mut bare = String::new();
    sample().write_json_line(&mut bare);
    assert!(!bare.contains("answer_events"), "{bare}");
    let outside = line.replace("\"first_answer_at\":1.249999", "\"first_answer_at\":9.0");
    assert!(
        RequestRecord::parse_json_line(&outside)
            .unwrap_err()
            .contains("first_answer_at")
    );
}

#[test]
fn failed_record_round_trips_with_escaped_message() {
    let mut r = sample();
    r.failure = Some(FailureKind::HttpStatus);
    r.error = Some("HTTP 500: \"boom\"\nline2 ünï".into());
    r.events.clear();
    r.http_status = Some(500);
    r.output_tokens_source = TokenSource::Events;
    r.output_tokens = 0;
    let mut line = String::new();
    r.write_json_line(&mut line);
    assert_eq!(line.matches('\n').count(), 1, "one line per record");
    let back = RequestRecord::parse_json_line(&line).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.status(), "http_status");
}

#[test]
fn bad_lines_are_rejected_with_reason() {
    assert!(RequestRecord::parse_json_line("{").is_err());
    let mut line = String::new();
    sample().write_json_line(&mut line);
    let bad = line.replace("\"ok\"", "\"weird\"");
    assert!(
        RequestRecord::parse_json_line(&bad)
            .unwrap_err()
            .contains("weird")
    );
    let early_end = line.replace("\"ended_at\":1.250000", "\"ended_at\":0.5");
    assert!(
        RequestRecord::parse_json_line(&early_end)
            .unwrap_err()
            .contains("out of order")
    );
    let unsorted = line.replace("1.120500", "1.050000");
    assert!(RequestRecord::parse_json_line(&unsorted).is_err());
}

#[test]
fn session_turn_and_model_are_written_only_when_set_and_round_trip() {
    let mut r = sample();
    let mut line = String::new();
    r.write_json_line(&mut line);
    for f in [
        "session",
        "turn",
        "model",
        "trace_input_len",
        "trace_output_len",
    ] {
        assert!(!line.contains(&format!("\"{f}\"")), "omitted: {line}");
    }
    r.tag = RequestTag {
        session: Some(12),
        turn: Some(3),
        model: Some(Arc::from("lora-\"a\"")),
        ..RequestTag::default()
    };
    line.clear();
    r.write_json_line(&mut line);
    assert!(
        line.ends_with(",\"session\":12,\"turn\":3,\"model\":\"lora-\\\"a\\\"\"}\n"),
        "{line}"
    );
    assert_eq!(RequestRecord::parse_json_line(line.trim_end()).unwrap(), r);
}

#[test]
fn a_traces_replaced_lengths_are_written_each_only_when_replaced_and_round_trip() {
    let mut r = sample();
    r.tag.trace = crate::record::TraceLengths {
        input_len: Some(40160),
        output_len: None,
    };
    let mut line = String::new();
    r.write_json_line(&mut line);
    assert!(line.contains(",\"trace_input_len\":40160"), "{line}");
    assert!(!line.contains("trace_output_len"), "{line}");
    assert_eq!(RequestRecord::parse_json_line(line.trim_end()).unwrap(), r);
    r.tag.trace.output_len = Some(6);
    line.clear();
    r.write_json_line(&mut line);
    assert!(
        line.contains(",\"trace_input_len\":40160,\"trace_output_len\":6"),
        "{line}"
    );
    assert_eq!(RequestRecord::parse_json_line(line.trim_end()).unwrap(), r);
    assert!(r.tag.is_ungrouped(), "the trace's lengths group nothing");
}
