//! Injected faults: the decision, the flags, and each kind on the wire (raw HTTP/1.1,
//! and reqwest where what matters is what an HTTP client makes of it).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::engine::EngineConfig;
use super::faults::fault_point;
use super::tests::{header, read_response, request, send, start};
use super::{FaultConfig, FaultKind, SimConfig, SimServer};
use crate::cli::sim::SimModelArgs;

fn fast(faults: FaultConfig) -> SimConfig {
    SimConfig {
        ttft_base_ms: 2.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 1.0,
        faults,
        ..SimConfig::ideal()
    }
}

/// One seat and 0.5 ms steps: a request that keeps its seat blocks the next one.
fn one_seat(faults: FaultConfig) -> SimConfig {
    SimConfig {
        engine: Some(EngineConfig {
            max_num_seqs: 1,
            step_base_ms: 0.5,
            prefill_ms_per_token: 0.0,
            decode_ms_per_seq: 0.0,
            kv_read_ms_per_1k_tokens: 0.0,
            ..EngineConfig::default()
        }),
        faults,
        ..SimConfig::default()
    }
}

/// `kind` on these ordinals.
fn at(kind: FaultKind, ordinals: &[u64]) -> FaultConfig {
    let mut f = FaultConfig::default();
    f.spec_mut(kind).at = ordinals.iter().copied().collect();
    f
}

fn chat(max_tokens: u32, stream: bool) -> String {
    json!({
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": max_tokens,
        "stream": stream,
        "stream_options": {"include_usage": true},
        "ignore_eos": true,
    })
    .to_string()
}

/// A chat request on a fresh `Connection: close` connection.
async fn open(sim: &SimServer, max_tokens: u32, stream: bool) -> TcpStream {
    let mut conn = TcpStream::connect(sim.addr()).await.unwrap();
    send(
        &mut conn,
        "POST",
        "/v1/chat/completions",
        &chat(max_tokens, stream),
        true,
    )
    .await;
    conn
}

#[derive(Debug, PartialEq)]
enum End {
    /// The server closed the connection (or it broke).
    Closed,
    /// `stop` said enough.
    Stopped,
    /// No byte for the given time.
    Silent,
}

/// Reads into `buf` until `stop(buf)`, the end of the connection, or `silence`.
async fn read_raw(
    conn: &mut TcpStream,
    buf: &mut Vec<u8>,
    silence: Duration,
    stop: impl Fn(&[u8]) -> bool,
) -> End {
    let mut tmp = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(silence, conn.read(&mut tmp)).await {
            Err(_) => return End::Silent,
            Ok(Ok(0) | Err(_)) => return End::Closed,
            Ok(Ok(n)) => buf.extend_from_slice(&tmp[..n]),
        }
        if stop(buf) {
            return End::Stopped;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A raw chunked response: head, the body's chunks joined, and whether the
/// terminating zero-length chunk came.
fn dechunk(raw: &[u8]) -> (String, Vec<u8>, bool) {
    let head_end = find(raw, b"\r\n\r\n").expect("no complete head") + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    assert_eq!(
        header(&head, "transfer-encoding"),
        Some("chunked"),
        "{head}"
    );
    let mut rest = &raw[head_end..];
    let mut body = Vec::new();
    while let Some(eol) = find(rest, b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            return (head, body, true);
        }
        let Some(chunk) = rest.get(eol + 2..eol + 2 + size) else {
            break;
        };
        body.extend_from_slice(chunk);
        rest = &rest[(eol + 4 + size).min(rest.len())..];
    }
    (head, body, false)
}

/// SSE `data:` payloads of a body.
fn events(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

fn is_content(event: &str) -> bool {
    serde_json::from_str::<Value>(event)
        .ok()
        .and_then(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(|s| !s.is_empty())
        })
        .unwrap_or(false)
}

/// Content chunks in a raw body so far, by the simulator's own rendering (cheap enough
/// to run after every read of a long stream; the role chunk's content is empty).
fn content_events(body: &[u8]) -> usize {
    let needle = br#""delta":{"content":""#;
    body.windows(needle.len()).filter(|w| w == needle).count()
}

fn http_client() -> reqwest::Client {
    crate::client::init_tls();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn chat_url(sim: &SimServer) -> String {
    format!("{}/v1/chat/completions", sim.url())
}

#[test]
fn the_decision_is_deterministic_and_rates_hold() {
    let off = FaultConfig::default();
    assert!(off.is_off());
    assert!((0..10_000).all(|o| off.decide(o).is_none()));

    let mut f = FaultConfig {
        seed: 42,
        ..FaultConfig::default()
    };
    f.http_500.rate = 0.1;
    f.cut.rate = 0.05;
    f.stall.rate = 0.2;
    let run = |f: &FaultConfig| (0..10_000).map(|o| f.decide(o)).collect::<Vec<_>>();
    let draws = run(&f);
    assert_eq!(draws, run(&f.clone()), "a pure function of the settings");
    let mut counts: BTreeMap<Option<FaultKind>, u32> = BTreeMap::new();
    for d in &draws {
        *counts.entry(*d).or_default() += 1;
    }
    for (kind, rate) in [
        (FaultKind::Http500, 0.1_f64),
        (FaultKind::Cut, 0.05),
        (FaultKind::Stall, 0.2),
    ] {
        let n = f64::from(counts.get(&Some(kind)).copied().unwrap_or(0));
        // Four standard deviations of a binomial(10,000, rate).
        let tolerance = 4.0 * (10_000.0 * rate * (1.0 - rate)).sqrt();
        assert!(
            (n - 10_000.0 * rate).abs() < tolerance,
            "{kind}: {n} of 10000 at rate {rate}"
        );
    }
    assert_eq!(
        counts.len(),
        4,
        "only the kinds with a rate, and none: {counts:?}"
    );

    // Another seed faults other requests, at the same rates.
    let other = run(&FaultConfig {
        seed: 43,
        ..f.clone()
    });
    assert_ne!(draws, other);
    let cuts = other.iter().filter(|d| **d == Some(FaultKind::Cut)).count();
    assert!((400..600).contains(&cuts), "{cuts}");

    // Pinned, so that a change of the hash (which would fault other requests for the
    // same seed) is noticed.
    let mut half = FaultConfig::default();
    half.drop.rate = 0.5;
    let pinned: String = (0..32)
        .map(|o| if half.decide(o).is_some() { 'x' } else { '.' })
        .collect();
    assert_eq!(pinned, PINNED);

    // Rates adding up to 1 fault every request, each kind on its own share.
    let mut all = FaultConfig::default();
    all.malformed.rate = 0.7;
    all.drop.rate = 0.3;
    let draws = run(&all);
    assert!(draws.iter().all(Option::is_some));
    let drops = draws
        .iter()
        .filter(|d| **d == Some(FaultKind::Drop))
        .count();
    assert!((2800..3200).contains(&drops), "{drops}");
}

const PINNED: &str = "..xx.x.xxx..xxxx.....xxxxxxx.x..";

#[test]
fn schedules_fire_exactly_and_priority_decides() {
    let mut f = at(FaultKind::Cut, &[1, 5, 999]);
    f.stall.at = [2, 5].into();
    f.drop.at = [5].into();
    let fired: Vec<(u64, FaultKind)> = (0..2000)
        .filter_map(|o| f.decide(o).map(|k| (o, k)))
        .collect();
    assert_eq!(
        fired,
        [
            (1, FaultKind::Cut),
            (2, FaultKind::Stall),
            (5, FaultKind::Drop),
            (999, FaultKind::Cut)
        ]
    );
    // A schedule beats the rates; the rates fill in everywhere else.
    f.http_500.rate = 1.0;
    assert_eq!(f.decide(1), Some(FaultKind::Cut));
    assert_eq!(f.decide(0), Some(FaultKind::Http500));
    assert_eq!(f.decide(3), Some(FaultKind::Http500));
    // The priority order is the declaration order.
    let mut sorted = FaultKind::ALL;
    sorted.sort();
    assert_eq!(sorted, FaultKind::ALL);
}

#[test]
fn rates_are_checked() {
    let mut f = FaultConfig::default();
    f.cut.rate = 1.5;
    assert!(f.validate().unwrap_err().contains("cut"));
    f.cut.rate = f64::NAN;
    assert!(f.validate().is_err());
    f.cut.rate = 0.6;
    f.stall.rate = 0.6;
    let err = f.validate().unwrap_err();
    assert!(
        err.contains("cut 0.6") && err.contains("stall 0.6"),
        "{err}"
    );
    let cfg = fast(f);
    let err = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .err()
        .unwrap();
    assert!(err.to_string().contains("add up to"), "{err}");
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimModelArgs,
}

fn parse(args: &[&str]) -> Result<SimConfig, String> {
    let argv = std::iter::once("sim").chain(args.iter().copied());
    Cli::try_parse_from(argv)
        .map_err(|e| e.to_string())?
        .sim
        .into_config()
}

#[test]
fn flags_and_the_config_file_set_faults() {
    assert_eq!(parse(&[]).unwrap().faults, FaultConfig::default());
    let c = parse(&[
        "--ideal",
        "--fault-http-500",
        "0.1",
        "--fault-cut-at",
        "3,7",
        "--fault-drop-at",
        "0",
        "--fault-retry-after",
        "5",
        "--fault-stall-ms",
        "50",
        "--fault-seed",
        "9",
    ])
    .unwrap();
    let f = &c.faults;
    assert_eq!(f.http_500.rate, 0.1);
    assert_eq!(f.cut.at, [3, 7].into());
    assert_eq!(f.drop.at, [0].into());
    assert_eq!(
        (f.retry_after_s, f.stall_ms, f.seed, f.slow_headers_ms),
        (5, Some(50), 9, 2000)
    );
    let err = parse(&["--fault-cut", "2"]).unwrap_err();
    assert!(
        err.contains("--fault-cut") && err.contains("probability"),
        "{err}"
    );
    let err = parse(&["--fault-cut", "0.6", "--fault-stall", "0.5"]).unwrap_err();
    assert!(
        err.contains("--fault-cut 0.6") && err.contains("--fault-stall 0.5"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    let file = path.to_str().unwrap();
    let write = |s: &str| std::fs::write(&path, s).unwrap();
    write(
        r#"{"faults": {"seed": 4, "cut": {"rate": 0.2, "at": [1]}, "malformed": {"at": [2]},
            "slow_headers_ms": 300, "stall_ms": 10}}"#,
    );
    let c = parse(&[
        "--config",
        file,
        "--fault-cut-at",
        "8",
        "--fault-stall-ms",
        "20",
    ])
    .unwrap();
    let f = &c.faults;
    assert_eq!((f.seed, f.cut.rate, f.slow_headers_ms), (4, 0.2, 300));
    assert_eq!(f.cut.at, [8].into(), "a flag replaces the file's schedule");
    assert_eq!(f.malformed.at, [2].into());
    assert_eq!(f.stall_ms, Some(20));
    write(r#"{"faults": {"cut": {"rate": 0.7}, "stall": {"rate": 0.7}}}"#);
    let err = parse(&["--config", file]).unwrap_err();
    assert!(
        err.contains(&format!("\"faults.cut\" in {file}")) && err.contains("add up to"),
        "{err}"
    );
    write(r#"{"faults": {"cutt": {"rate": 0.1}}}"#);
    let err = parse(&["--config", file]).unwrap_err();
    assert!(err.contains("cutt"), "{err}");
    // Files from before faults existed still load.
    write(r#"{"model": "m", "engine": null}"#);
    assert_eq!(
        parse(&["--config", file]).unwrap().faults,
        FaultConfig::default()
    );
}

#[tokio::test]
async fn http_500_and_429_carry_json_errors_and_keep_the_connection() {
    let mut f = at(FaultKind::Http500, &[0]);
    f.http_429.at = [1].into();
    f.retry_after_s = 3;
    let sim = start(fast(f));
    // All three on one keep-alive connection.
    let mut conn = TcpStream::connect(sim.addr()).await.unwrap();
    let mut buf = Vec::new();
    let path = "/v1/chat/completions";
    send(&mut conn, "POST", path, &chat(4, true), false).await;
    let r = read_response(&mut conn, &mut buf).await;
    assert_eq!(r.status, 500);
    assert_eq!(header(&r.headers, "content-type"), Some("application/json"));
    let e = &r.json()["error"];
    assert_eq!(
        (e["type"].as_str(), e["code"].as_u64()),
        (Some("server_error"), Some(500))
    );
    assert!(e["message"].as_str().unwrap().contains("injected"), "{e}");

    send(&mut conn, "POST", path, &chat(4, true), false).await;
    let r = read_response(&mut conn, &mut buf).await;
    assert_eq!(r.status, 429);
    assert_eq!(header(&r.headers, "retry-after"), Some("3"));
    assert_eq!(r.json()["error"]["code"], 429);

    send(&mut conn, "POST", path, &chat(4, true), false).await;
    let r = read_response(&mut conn, &mut buf).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.events.last().unwrap().1, "[DONE]");

    let st = sim.stats();
    assert_eq!(
        (st.requests, st.completed),
        (1, 1),
        "faulted ones never reach generation"
    );
    assert_eq!(
        (st.faults_injected.http_500, st.faults_injected.http_429),
        (1, 1)
    );
    assert_eq!(st.faults_injected.total(), 2);
}

#[tokio::test]
async fn a_cut_stream_ends_without_terminator_after_half_the_tokens() {
    let sim = start(fast(at(FaultKind::Cut, &[0, 1])));
    let mut conn = open(&sim, 10, true).await;
    let mut raw = Vec::new();
    let end = read_raw(&mut conn, &mut raw, Duration::from_secs(5), |_| false).await;
    assert_eq!(end, End::Closed);
    let (head, body, terminated) = dechunk(&raw);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!terminated, "no zero-length chunk after a cut");
    let ev = events(&body);
    assert_eq!(content_events(&body), 5, "{ev:?}");
    assert_eq!(ev.len(), 1 + 5, "role, then half the tokens: {ev:?}");
    assert!(!ev.iter().any(|e| e == "[DONE]"));

    // What an HTTP client sees: a 200 whose body breaks.
    let resp = http_client()
        .post(chat_url(&sim))
        .header("content-type", "application/json")
        .body(chat(10, true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err(), "the body must not end cleanly");

    let st = sim.stats();
    assert_eq!(
        (st.requests, st.completed, st.faults_injected.cut),
        (2, 0, 2)
    );
}

#[tokio::test]
async fn an_error_event_ends_the_stream_after_half_the_tokens() {
    let sim = start(fast(at(FaultKind::ErrorEvent, &[0])));
    let mut conn = open(&sim, 7, true).await;
    // `read_response` needs the terminating chunk: the body ends cleanly.
    let r = read_response(&mut conn, &mut Vec::new()).await;
    assert_eq!(r.status, 200);
    let ev: Vec<&str> = r.events.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(ev.len(), 1 + 3 + 1, "role, 3 tokens, the error: {ev:?}");
    assert_eq!(ev.iter().filter(|e| is_content(e)).count(), 3);
    let err: Value = serde_json::from_str(ev.last().unwrap()).unwrap();
    assert_eq!(err["error"]["type"], "server_error");
    assert_eq!(err["error"]["code"], 500);
    assert!(err["error"]["message"].is_string());
    let st = sim.stats();
    assert_eq!((st.completed, st.faults_injected.error_event), (0, 1));
}

#[tokio::test]
async fn a_malformed_event_comes_after_half_the_tokens_and_the_stream_goes_on() {
    let sim = start(fast(at(FaultKind::Malformed, &[0])));
    let mut conn = open(&sim, 4, true).await;
    let r = read_response(&mut conn, &mut Vec::new()).await;
    let ev: Vec<&str> = r.events.iter().map(|(_, e)| e.as_str()).collect();
    // role, 2 tokens, the malformed event, 2 tokens, finish, usage, [DONE]
    assert_eq!(ev.len(), 9, "{ev:?}");
    assert_eq!(ev[3], r#"{"choices": ["#);
    assert!(serde_json::from_str::<Value>(ev[3]).is_err());
    assert!(
        ev[..3]
            .iter()
            .chain(&ev[4..8])
            .all(|e| serde_json::from_str::<Value>(e).is_ok())
    );
    assert_eq!(ev.iter().filter(|e| is_content(e)).count(), 4);
    assert_eq!(ev[8], "[DONE]");
    let st = sim.stats();
    assert_eq!(
        (st.requests, st.completed, st.faults_injected.malformed),
        (1, 0, 1),
        "a client cannot accept it, so it is not completed"
    );
}

#[tokio::test]
async fn a_stall_holds_back_the_second_half_then_resumes() {
    let mut f = at(FaultKind::Stall, &[0]);
    f.stall_ms = Some(300);
    // 40 ms apart: paced, the five tokens after the stall would take 160 ms.
    let sim = start(SimConfig {
        tpot_ms: 40.0,
        ..fast(f)
    });
    let t_send = Instant::now();
    let mut conn = open(&sim, 10, true).await;
    let r = read_response(&mut conn, &mut Vec::new()).await;
    let content: Vec<Duration> = r
        .events
        .iter()
        .filter(|(_, e)| is_content(e))
        .map(|(t, _)| *t - t_send)
        .collect();
    assert_eq!(content.len(), 10);
    // Token 4 (the fifth) is due at 2 + 4 × 40 = 162 ms; the stall starts once it is
    // sent, so token 5 comes no earlier than 462 ms. Counted from the send, as a
    // late read of token 4 would shorten the gap between the two.
    let ms = Duration::from_millis;
    assert!(content[5] >= ms(462), "{content:?}");
    // Catch a stall twice too long (762 ms), or one before token 4 (which would then
    // come at ≥ 422 ms), with 250 ms of slack for a loaded machine.
    assert!(content[5] < ms(462 + 250), "{content:?}");
    assert!(content[4] < ms(162 + 250), "{content:?}");
    // The tokens produced during the stall come out together, not paced (160 ms).
    let rest = content[9] - content[5];
    assert!(rest < ms(100), "{rest:?}");
    assert_eq!(r.events.last().unwrap().1, "[DONE]");
    let st = sim.stats();
    assert_eq!((st.completed, st.faults_injected.stall), (1, 1));
}

#[tokio::test]
async fn a_stall_without_end_lasts_until_the_client_leaves() {
    let sim = start(fast(at(FaultKind::Stall, &[0])));
    let mut conn = open(&sim, 6, true).await;
    let mut raw = Vec::new();
    let three = |b: &[u8]| content_events(b) == 3;
    let end = read_raw(&mut conn, &mut raw, Duration::from_secs(5), three).await;
    assert_eq!(end, End::Stopped);
    let end = read_raw(&mut conn, &mut raw, Duration::from_millis(300), |_| true).await;
    assert_eq!(end, End::Silent, "no byte during the stall");
    assert_eq!(running(&sim).await, 1.0, "the stalled request is in flight");
    drop(conn);
    // Once the simulator has seen the client leave, the request has ended: only then
    // does "not completed" say something (a fixed pause could check it too early).
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(&sim).await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the stall outlived its client by 5 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let st = sim.stats();
    assert_eq!((st.completed, st.faults_injected.stall), (0, 1));
}

/// `vllm:num_requests_running` from the simulator's /metrics.
async fn running(sim: &SimServer) -> f64 {
    let text = String::from_utf8(request(sim, "GET", "/metrics", "").await.body).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("vllm:num_requests_running{"))
        .unwrap_or_else(|| panic!("no running gauge in {text}"));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

#[tokio::test]
async fn slow_headers_come_late_and_the_response_is_whole() {
    let mut f = at(FaultKind::SlowHeaders, &[0]);
    f.slow_headers_ms = 300;
    let sim = start(fast(f));
    let t = Instant::now();
    let mut conn = open(&sim, 3, true).await;
    let mut raw = Vec::new();
    let head = |b: &[u8]| find(b, b"\r\n\r\n").is_some();
    assert_eq!(
        read_raw(&mut conn, &mut raw, Duration::from_secs(5), head).await,
        End::Stopped
    );
    let late = t.elapsed();
    assert!(late >= Duration::from_millis(300), "{late:?}");
    // Catches a delay counted twice (600 ms), with 300 ms of slack for a loaded machine.
    assert!(
        late < Duration::from_millis(600),
        "counted from arrival: {late:?}"
    );
    read_raw(&mut conn, &mut raw, Duration::from_secs(5), |_| false).await;
    let (_, body, terminated) = dechunk(&raw);
    assert!(terminated);
    assert_eq!(content_events(&body), 3);
    assert_eq!(events(&body).last().unwrap(), "[DONE]");
    let st = sim.stats();
    assert_eq!((st.completed, st.faults_injected.slow_headers), (1, 1));
}

#[tokio::test]
async fn a_dropped_connection_gets_no_response() {
    let sim = start(fast(at(FaultKind::Drop, &[0, 1])));
    let mut conn = open(&sim, 3, true).await;
    let mut raw = Vec::new();
    let end = read_raw(&mut conn, &mut raw, Duration::from_secs(5), |_| false).await;
    assert_eq!(end, End::Closed);
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));

    // An HTTP client connected, sent, and then lost the connection: not a connect
    // error (servescope records it as stream_cut).
    let err = http_client()
        .post(chat_url(&sim))
        .header("content-type", "application/json")
        .body(chat(3, true))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_connect(), "{err:?}");
    // The server is fine: ordinal 2 is answered.
    let resp = http_client()
        .post(chat_url(&sim))
        .header("content-type", "application/json")
        .body(chat(3, true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    let st = sim.stats();
    assert_eq!(
        (st.requests, st.completed, st.faults_injected.drop),
        (1, 1, 2)
    );
}

#[tokio::test]
async fn non_streamed_responses_fault_too() {
    let mut f = at(FaultKind::ErrorEvent, &[0]);
    f.malformed.at = [1].into();
    f.cut.at = [2].into();
    let sim = start(fast(f));
    let r = read_response(&mut open(&sim, 4, false).await, &mut Vec::new()).await;
    assert_eq!((r.status, &r.json()["error"]["code"]), (200, &json!(500)));
    let r = read_response(&mut open(&sim, 4, false).await, &mut Vec::new()).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    let mut conn = open(&sim, 4, false).await;
    let mut raw = Vec::new();
    let end = read_raw(&mut conn, &mut raw, Duration::from_secs(5), |_| false).await;
    assert_eq!(end, End::Closed);
    let (_, body, terminated) = dechunk(&raw);
    assert!(!terminated && !body.is_empty());
    assert!(
        serde_json::from_slice::<Value>(&body).is_err(),
        "half a document"
    );
    let st = sim.stats();
    assert_eq!((st.completed, st.faults_injected.total()), (0, 3));
}

/// Every kind once, in both modes: the counters say exactly what was injected.
#[tokio::test]
async fn every_kind_is_counted_once() {
    for engine in [false, true] {
        let mut f = FaultConfig::default();
        for (i, kind) in FaultKind::ALL.into_iter().enumerate() {
            f.spec_mut(kind).at = [i as u64 * 2 + 1].into();
        }
        f.stall_ms = Some(20);
        f.slow_headers_ms = 20;
        let sim = start(if engine { one_seat(f) } else { fast(f) });
        let client = http_client();
        let mut outcomes = Vec::new();
        for _ in 0..2 * FaultKind::ALL.len() + 1 {
            let sent = client
                .post(chat_url(&sim))
                .header("content-type", "application/json")
                .body(chat(6, true))
                .send()
                .await;
            let outcome = match sent {
                Err(_) => "no response".to_string(),
                Ok(r) if !r.status().is_success() => r.status().to_string(),
                Ok(r) => match r.text().await {
                    Err(_) => "cut".to_string(),
                    Ok(t) if t.contains(r#""error""#) => "error event".to_string(),
                    Ok(t) if t.contains(r#"{"choices": ["#) => "malformed".to_string(),
                    Ok(t) if t.ends_with("data: [DONE]\n\n") => "ok".to_string(),
                    Ok(t) => panic!("unexpected body {t}"),
                },
            };
            outcomes.push(outcome);
        }
        let faulted: Vec<&str> = outcomes
            .iter()
            .skip(1)
            .step_by(2)
            .map(String::as_str)
            .collect();
        assert_eq!(
            faulted,
            [
                "no response",
                "500 Internal Server Error",
                "429 Too Many Requests",
                "ok",
                "cut",
                "error event",
                "malformed",
                "ok"
            ],
            "engine {engine}"
        );
        assert!(
            outcomes.iter().step_by(2).all(|o| o == "ok"),
            "{outcomes:?}"
        );
        let st = sim.stats();
        for kind in FaultKind::ALL {
            assert_eq!(st.faults_injected.get(kind), 1, "{kind}, engine {engine}");
        }
        assert_eq!(st.faults_injected.total(), 8);
        // 17 sent; drop, 500 and 429 never reach generation; cut, error event and
        // malformed cannot be accepted.
        assert_eq!((st.requests, st.completed), (14, 11), "engine {engine}");
    }
}

/// With one seat, `first` (faulted on ordinal 0) must give it up when its fault ends
/// it; `leave` closes its connection once `first` has shown half its tokens.
async fn the_next_request_gets_the_seat(kind: FaultKind, leave: bool) {
    let sim = start(one_seat(at(kind, &[0])));
    // 2000 tokens of 0.5 ms: the fault comes at ~0.5 s, the end would be at ~1 s.
    let n = 2000;
    let mut first = open(&sim, n, true).await;
    // The second is sent once the first holds the seat (its first token came), not after
    // a fixed pause: under load the second could take the seat first and check nothing.
    let mut raw = Vec::new();
    let started = read_raw(&mut first, &mut raw, Duration::from_secs(5), |b| {
        content_events(b) >= 1
    })
    .await;
    assert_eq!(
        started,
        End::Stopped,
        "{kind}: the first request never began"
    );
    let mut second = open(&sim, 2, true).await;
    let half = fault_point(n) as usize;
    let end = read_raw(&mut first, &mut raw, Duration::from_secs(5), |b| {
        !leave && find(b, b"\"error\"").is_some() || content_events(b) >= half
    })
    .await;
    assert_ne!(end, End::Silent, "{kind}");
    let t_fault = Instant::now();
    if leave {
        drop(first);
    }
    let r = read_response(&mut second, &mut Vec::new()).await;
    assert_eq!(r.events.last().unwrap().1, "[DONE]");
    let waited = t_fault.elapsed();
    // Kept from the seat, it would wait for `first`'s last 1000 tokens: ≥ 500 ms.
    assert!(
        waited < Duration::from_millis(300),
        "{kind}: the next request waited {waited:?} after the fault"
    );
}

#[tokio::test]
async fn engine_mode_a_cut_frees_the_seat() {
    the_next_request_gets_the_seat(FaultKind::Cut, false).await;
}

#[tokio::test]
async fn engine_mode_an_error_event_frees_the_seat() {
    the_next_request_gets_the_seat(FaultKind::ErrorEvent, false).await;
}

#[tokio::test]
async fn engine_mode_a_stalled_client_that_leaves_frees_the_seat() {
    the_next_request_gets_the_seat(FaultKind::Stall, true).await;
}
