//! `servebench sim` as users start it: `--port 0` picks a free port and prints it, and
//! the flags reach the latency model.

mod common;

use std::io::{Read, Write};

use servebench::{Outcome, run_args};

#[test]
fn sim_subcommand_prints_its_port_and_serves() {
    let sim = common::SimProcess::start(&[
        "--ideal",
        "--model",
        "tiny",
        "--ttft-ms",
        "30",
        "--tpot-ms",
        "2",
        "--prefill-ms-per-token",
        "0",
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

    // The flags set the timing: TTFT 30 ms (+1 ms for the second token of the first
    // chunk), two tokens per event.
    let out = match run_args([
        "servebench",
        "batch",
        "--endpoint",
        &url,
        "--batch-sizes",
        "2",
        "--input-len",
        "20",
        "--output-len",
        "6",
        "--quiet",
    ]) {
        Ok(Outcome::Session(s)) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(out.model, "tiny");
    let s = &out.runs[0].1;
    assert_eq!(s.tokens_per_event, Some(2.0));
    let ttft = s.ttft_ms.as_ref().unwrap().mean;
    assert!((32.0..38.0).contains(&ttft), "TTFT {ttft}");
}
