//! `servescope sim` as users start it: `--port 0` picks a free port and prints it, and
//! the flags reach the latency model.

mod common;

use std::io::{Read, Write};

use servescope::{Outcome, run_args};

#[test]
fn sim_subcommand_prints_its_port_and_serves() {
    let sim = common::SimProcess::start(&[
        "--ideal",
        "--model",
        "tiny",
        "--ttft-ms",
        "100",
        "--tpot-ms",
        "50",
        "--prefill-ms-per-token",
        "5",
        "--tokens-per-chunk",
        "2",
    ]);
    let url = sim.url.clone();
    assert!(!url.ends_with(":0"), "a real port is printed: {url}");

    // /v1/models names the model given with --model.
    let hostport = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    write!(
        s,
        "GET /v1/models HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"tiny\""), "{resp}");

    // The flags set the timing: TTFT 100 ms + 5 ms × 20 prompt tokens + 50 ms for the
    // second token of the first chunk = 250 ms, two tokens per event. Without any one
    // flag (defaults: TTFT 15 ms, 0.04 ms per prompt token, 10 ms per token, one token
    // per chunk) the first event would come at most 210 ms in, and the simulator never
    // sends early, so no TTFT below 250 ms is allowed. The upper bound catches a wrong
    // time unit and leaves 400 ms for a loaded machine (the batch is delayed together).
    let out = match run_args([
        "servescope",
        "batch",
        "--endpoint",
        &url,
        "--batch-sizes",
        "2",
        "--input-len",
        "20",
        "--output-len",
        "4",
        "--quiet",
    ]) {
        Ok(Outcome::Session(s)) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(out.model, "tiny");
    let s = &out.runs[0].1;
    assert_eq!(s.tokens_per_event, Some(2.0));
    let ttft = s.ttft_ms.as_ref().unwrap();
    // 1 µs: the client keeps whole µs.
    assert!(ttft.min >= 250.0 - 0.001, "min TTFT {}", ttft.min);
    assert!(ttft.mean < 650.0, "mean TTFT {}", ttft.mean);
}
