//! The benchmark's own HTTP/1.1 client against servers doing what HTTP allows: the
//! request it writes, kept-alive connections reused (and not when the server says
//! `Connection: close`, closes them or frames a body by closing), interim responses,
//! bodies larger than the read buffer both ways, and heads or framing it must refuse.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use servescope::client::{ApiKey, ClientConfig, DRAIN_AFTER_DONE, HttpClient, Outcome};
use servescope::clock::RunClock;
use servescope::progress::Live;
use servescope::record::FailureKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A piece of an answer: bytes written at once, or a pause.
enum Part {
    Bytes(Vec<u8>),
    Pause(u64),
}

/// One connection's part: the answer to each request read, then how long the socket
/// stays open before the server closes it.
struct Script {
    answers: Vec<Vec<Part>>,
    hold_ms: u64,
}

/// Answers written whole, then the connection closed.
fn answers(answers: Vec<Vec<u8>>) -> Script {
    Script {
        answers: answers.into_iter().map(|a| vec![Part::Bytes(a)]).collect(),
        hold_ms: 0,
    }
}

struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// Serves one script per connection, in the order they are opened, each on its own task.
async fn server(scripts: Vec<Script>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (count, log) = (accepted.clone(), requests.clone());
    tokio::spawn(async move {
        for script in scripts {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let log = log.clone();
            tokio::spawn(async move {
                for answer in script.answers {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    log.lock().unwrap().push(req);
                    for part in answer {
                        match part {
                            Part::Bytes(b) => {
                                if sock.write_all(&b).await.is_err() {
                                    return;
                                }
                            }
                            Part::Pause(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(script.hold_ms)).await;
            });
        }
    });
    Server {
        addr,
        accepted,
        requests,
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    loop {
        if common::request_len(&buf).is_some_and(|len| buf.len() >= len) {
            return Some(buf);
        }
        let n = sock.read(&mut tmp).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn client(key: Option<&str>) -> HttpClient {
    client_draining(key, DRAIN_AFTER_DONE)
}

/// A client that reads up to `drain` past `[DONE]` for the end of the body.
fn client_draining(key: Option<&str>, drain: Duration) -> HttpClient {
    HttpClient::new(&ClientConfig {
        api_key: key.map(|k| ApiKey::new(k.into())),
        timeout: Some(Duration::from_secs(2)),
        idle_timeout: None,
        retries: 0,
        insecure: false,
        drain_after_done: drain,
    })
    .unwrap()
}

async fn send(client: &HttpClient, addr: SocketAddr, body: &[u8]) -> Outcome {
    let url = format!("http://{addr}/v1/chat/completions?x=1")
        .parse()
        .unwrap();
    client
        .execute(
            &url,
            body.to_vec().into(),
            &RunClock::start(),
            &Live::default(),
        )
        .await
}

fn events(texts: &[&str]) -> String {
    let mut s = String::new();
    for t in texts {
        s += &format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":{}}}}}]}}\n\n",
            serde_json::to_string(t).unwrap()
        );
    }
    s + "data: [DONE]\n\n"
}

/// A whole chunked SSE response (one chunk, then the last chunk).
fn chunked(texts: &[&str]) -> Vec<u8> {
    let body = events(texts);
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
    .into_bytes()
}

/// A whole SSE response framed by Content-Length, with extra header lines.
fn with_length(texts: &[&str], headers: &str) -> Vec<u8> {
    let body = events(texts);
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n{headers}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[track_caller]
fn assert_ok(o: &Outcome, text: &str) {
    assert!(o.failure.is_none(), "{:?}", o.failure);
    assert_eq!((o.text.as_str(), o.retries), (text, 0));
}

#[tokio::test]
async fn the_request_is_written_as_specified() {
    let s = server(vec![answers(vec![chunked(&["a"])])]).await;
    let o = send(&client(Some("sk-test-1")), s.addr, b"{\"k\":1}").await;
    assert_ok(&o, "a");
    let req = String::from_utf8(s.requests.lock().unwrap()[0].clone()).unwrap();
    let (head, body) = req.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("POST /v1/chat/completions?x=1 HTTP/1.1"));
    let mut fields: Vec<&str> = lines.collect();
    fields.sort_unstable();
    let version = env!("CARGO_PKG_VERSION");
    let mut expected = vec![
        "Accept: text/event-stream".to_string(),
        "Authorization: Bearer sk-test-1".into(),
        "Content-Length: 7".into(),
        "Content-Type: application/json".into(),
        format!("Host: {}", s.addr),
        format!("User-Agent: servescope/{version}"),
    ];
    expected.sort_unstable();
    assert_eq!(fields, expected);
    assert_eq!(body, "{\"k\":1}");
}

#[tokio::test]
async fn a_kept_alive_connection_is_reused() {
    // Chunked with the last chunk late (read after [DONE]), a body framed by its
    // length, an error status with its body, then chunked again: one connection. The
    // drain window is long so that a busy machine delaying the last chunk past the
    // default 50 ms does not drop the connection (the server takes only one).
    let mut early = chunked(&["a"]);
    let last = early.split_off(early.len() - 5);
    let e500 = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops".to_vec();
    let s = server(vec![Script {
        answers: vec![
            vec![Part::Bytes(early), Part::Pause(20), Part::Bytes(last)],
            vec![Part::Bytes(with_length(&["b"], ""))],
            vec![Part::Bytes(e500)],
            vec![Part::Bytes(chunked(&["c"]))],
        ],
        hold_ms: 3000,
    }])
    .await;
    let c = client_draining(None, Duration::from_secs(2));
    assert_ok(&send(&c, s.addr, b"{}").await, "a");
    assert_ok(&send(&c, s.addr, b"{}").await, "b");
    let o = send(&c, s.addr, b"{}").await;
    assert_eq!(
        o.failure,
        Some((FailureKind::HttpStatus, "HTTP 500: oops".into()))
    );
    assert_ok(&send(&c, s.addr, b"{}").await, "c");
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connection_close_is_honoured() {
    // The first connection says close but stays open: a request sent on it again would
    // never be answered (the client's 2 s timeout).
    let s = server(vec![
        Script {
            answers: vec![vec![Part::Bytes(with_length(
                &["a"],
                "Connection: close\r\n",
            ))]],
            hold_ms: 3000,
        },
        answers(vec![chunked(&["b"])]),
    ])
    .await;
    let c = client(None);
    assert_ok(&send(&c, s.addr, b"{}").await, "a");
    assert_ok(&send(&c, s.addr, b"{}").await, "b");
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn http_1_0_bodies_that_end_with_the_connection() {
    let head = "HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
    let one = |t: &str| format!("{head}{}", events(&[t])).into_bytes();
    let s = server(vec![answers(vec![one("a")]), answers(vec![one("b")])]).await;
    let c = client(None);
    assert_ok(&send(&c, s.addr, b"{}").await, "a");
    assert_ok(&send(&c, s.addr, b"{}").await, "b");
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_not_used() {
    let s = server(vec![
        Script {
            answers: vec![vec![Part::Bytes(chunked(&["a"]))]],
            hold_ms: 20,
        },
        answers(vec![chunked(&["b"])]),
    ])
    .await;
    let c = client(None);
    assert_ok(&send(&c, s.addr, b"{}").await, "a");
    // Long after the server's close (20 ms), so that a stalled machine still has it
    // seen closed before the next request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Seen closed before sending: no resend needed (retries 0).
    assert_ok(&send(&c, s.addr, b"{}").await, "b");
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn bodies_larger_than_the_buffers() {
    // A 1 MB request body and a 100 kB event in one chunk.
    let big = "x".repeat(100_000);
    let s = server(vec![answers(vec![chunked(&[&big, "y"])])]).await;
    let body = vec![b' '; 1 << 20];
    let o = send(&client(None), s.addr, &body).await;
    assert_ok(&o, &(big.clone() + "y"));
    assert_eq!(o.events.len(), 2);
    assert!(s.requests.lock().unwrap()[0].len() > 1 << 20);
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let mut answer =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n".to_vec();
    answer.extend_from_slice(&chunked(&["a"]));
    let s = server(vec![answers(vec![answer])]).await;
    assert_ok(&send(&client(None), s.addr, b"{}").await, "a");
}

#[tokio::test]
async fn a_long_head_is_read_and_an_endless_one_refused() {
    let long = format!("X-Long: {}\r\n", "v".repeat(20_000));
    let s = server(vec![answers(vec![with_length(&["a"], &long)])]).await;
    assert_ok(&send(&client(None), s.addr, b"{}").await, "a");

    let endless = format!("X-Long: {}\r\n", "v".repeat(70_000));
    let s = server(vec![answers(vec![with_length(&["a"], &endless)])]).await;
    let (kind, msg) = send(&client(None), s.addr, b"{}").await.failure.unwrap();
    assert_eq!(kind, FailureKind::InvalidResponse);
    assert!(msg.contains("64 KiB"), "{msg}");
}

#[tokio::test]
async fn malformed_framing_is_an_invalid_response() {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    let bad_size = format!("{head}zz\r\n{}", events(&["a"]));
    let s = server(vec![answers(vec![bad_size.into_bytes()])]).await;
    let (kind, msg) = send(&client(None), s.addr, b"{}").await.failure.unwrap();
    assert_eq!(kind, FailureKind::InvalidResponse);
    assert!(msg.contains("malformed chunked body"), "{msg}");

    let s = server(vec![answers(vec![b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec()])]).await;
    let (kind, msg) = send(&client(None), s.addr, b"{}").await.failure.unwrap();
    assert_eq!(kind, FailureKind::InvalidResponse);
    assert!(msg.contains("not HTTP/1"), "{msg}");

    let two_lengths = with_length(&["a"], "content-length: 1\r\n");
    let s = server(vec![answers(vec![two_lengths])]).await;
    let (kind, msg) = send(&client(None), s.addr, b"{}").await.failure.unwrap();
    assert_eq!(kind, FailureKind::InvalidResponse);
    assert!(msg.contains("Content-Length"), "{msg}");
}

#[tokio::test]
async fn a_body_cut_short_of_its_length_is_a_cut_stream() {
    let mut answer = with_length(&["a", "b"], "");
    answer.truncate(answer.len() - 10);
    let s = server(vec![answers(vec![answer])]).await;
    let o = send(&client(None), s.addr, b"{}").await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::StreamCut);
    assert!(msg.contains("after 2 output events"), "{msg}");
}

/// Every open stream holds its request's future: 10,000 streams in 150 MB leave ~13 KB
/// each for it, the connection's 4 KB buffer and the parsers. Connecting (a TLS
/// handshake's state above all) is boxed so that it does not stay in it.
#[test]
fn a_request_future_stays_small() {
    let c = client(None);
    let url = "http://127.0.0.1:1/v1/chat/completions".parse().unwrap();
    let (clock, live) = (RunClock::start(), Live::default());
    let fut = c.execute(&url, bytes::Bytes::new(), &clock, &live);
    let size = std::mem::size_of_val(&fut);
    // Unoptimised builds lay futures out far less tightly.
    if !cfg!(debug_assertions) {
        assert!(size <= 2560, "the request future takes {size} bytes");
    }
}
