//! The client against streams as servers really send them: a scripted TCP server writes
//! exact bytes (split where the test says, with pauses to force separate reads), cuts
//! connections and stalls, and each case checks what the client recorded.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use servescope::client::{ClientConfig, DRAIN_AFTER_DONE, HttpClient, Outcome};
use servescope::clock::RunClock;
use servescope::progress::Live;
use servescope::record::FailureKind;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

enum Step {
    /// Raw bytes, written and flushed as one piece.
    Raw(Vec<u8>),
    /// One HTTP chunk (chunked transfer encoding).
    Chunk(Vec<u8>),
    Sleep(u64),
}
use Step::*;

fn chunk(s: &str) -> Step {
    Chunk(s.as_bytes().to_vec())
}

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
const END: &str = "0\r\n\r\n";

/// Serves `script` to the first connection, then closes it.
async fn scripted(script: Vec<Step>) -> SocketAddr {
    scripted_many(vec![script]).await
}

/// Serves one script per connection, in order.
async fn scripted_many(scripts: Vec<Vec<Step>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for script in scripts {
            let (sock, _) = listener.accept().await.unwrap();
            serve_script(sock, script).await;
        }
    });
    addr
}

async fn serve_script(mut sock: tokio::net::TcpStream, script: Vec<Step>) {
    {
        sock.set_nodelay(true).unwrap();
        common::read_request_async(&mut sock).await;
        for step in script {
            let r = match step {
                Raw(b) => sock.write_all(&b).await,
                Chunk(b) => {
                    let mut framed = format!("{:x}\r\n", b.len()).into_bytes();
                    framed.extend_from_slice(&b);
                    framed.extend_from_slice(b"\r\n");
                    sock.write_all(&framed).await
                }
                Sleep(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(())
                }
            };
            if r.is_err() {
                return;
            }
            let _ = sock.flush().await;
        }
    }
}

async fn run(script: Vec<Step>, timeout_ms: Option<u64>) -> Outcome {
    let addr = scripted(script).await;
    run_at(addr, timeout_ms).await
}

async fn run_at(addr: SocketAddr, timeout_ms: Option<u64>) -> Outcome {
    run_with_key(addr, timeout_ms, None).await
}

async fn run_with_key(addr: SocketAddr, timeout_ms: Option<u64>, key: Option<&str>) -> Outcome {
    execute_with(
        addr,
        ClientConfig {
            api_key: key.map(|k| servescope::client::ApiKey::new(k.into())),
            timeout: timeout_ms.map(Duration::from_millis),
            idle_timeout: None,
            retries: 0,
            insecure: false,
            drain_after_done: DRAIN_AFTER_DONE,
        },
    )
    .await
}

/// One request to the scripted server at `addr` with a client built from `cfg`.
async fn execute_with(addr: SocketAddr, cfg: ClientConfig) -> Outcome {
    let client = HttpClient::new(&cfg).unwrap();
    let url = format!("http://{addr}/v1/chat/completions")
        .parse()
        .unwrap();
    client
        .execute(
            &url,
            b"{}".to_vec().into(),
            &RunClock::start(),
            &Live::default(),
        )
        .await
}

fn content(text: &str) -> String {
    format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
        serde_json::to_string(text).unwrap()
    )
}

const ROLE: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
const FINISH: &str =
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n";
const DONE: &str = "data: [DONE]\n\n";

fn usage(prompt: u32, completion: u32) -> String {
    format!(
        "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\"total_tokens\":{}}}}}\n\n",
        prompt + completion
    )
}

fn assert_ok(o: &Outcome) {
    assert!(o.failure.is_none(), "unexpected failure: {:?}", o.failure);
}

#[tokio::test]
async fn complete_stream_with_role_chunk_and_usage() {
    let o = run(
        vec![
            Raw(SSE_HEAD.into()),
            chunk(ROLE),
            Sleep(20),
            chunk(&content("Hello")),
            Sleep(5),
            chunk(&content(" world")),
            chunk(&content("!")),
            chunk(FINISH),
            chunk(&usage(7, 3)),
            chunk(DONE),
            Raw(END.into()),
        ],
        None,
    )
    .await;
    assert_ok(&o);
    assert_eq!(
        o.events.len(),
        3,
        "the role-only chunk is not an output event"
    );
    assert_eq!(o.text, "Hello world!");
    let u = o.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(7), Some(3)));
    // First output event after the 20 ms pause, not at the role chunk.
    assert!(o.events[0] - o.started_at >= 20_000, "{:?}", o.events);
    assert!(o.ended_at >= *o.events.last().unwrap());
    assert_eq!(o.http_status, Some(200));
}

#[tokio::test]
async fn events_split_across_reads_and_inside_utf8() {
    let ev = content("héllo 世界");
    let bytes = ev.as_bytes();
    // Split inside the 3-byte '世' and inside "data:".
    let cut1 = ev.find('世').unwrap() + 1;
    let mut script = vec![Raw(SSE_HEAD.into()), Chunk(b"da".to_vec()), Sleep(5)];
    script.push(Chunk(bytes[2..cut1].to_vec()));
    script.push(Sleep(5));
    script.push(Chunk(bytes[cut1..].to_vec()));
    script.push(Sleep(5));
    script.push(chunk(&(content("a") + &content("b") + FINISH + DONE)));
    script.push(Raw(END.into()));
    let o = run(script, None).await;
    assert_ok(&o);
    assert_eq!(o.text, "héllo 世界ab");
    assert_eq!(
        o.events.len(),
        3,
        "several events in one read are each counted"
    );
}

#[tokio::test]
async fn crlf_comments_keepalives_and_multiline_data() {
    let body = ": keep-alive\r\n\r\n".to_string()
        + &content("x").replace("\n", "\r\n")
        + ":ping\n\n"
        + "data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"y\"}}]}\n\n"
        + FINISH
        + DONE;
    let o = run(
        vec![Raw(SSE_HEAD.into()), chunk(&body), Raw(END.into())],
        None,
    )
    .await;
    assert_ok(&o);
    assert_eq!(o.text, "xy");
    assert_eq!(o.events.len(), 2);
}

#[tokio::test]
async fn reasoning_deltas_count_and_empty_deltas_do_not() {
    let body = ROLE.to_string()
        + "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"think\"}}]}\n\n"
        + "data: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n\n"
        + "data: {\"choices\":[{\"delta\":{\"reasoning\":\"more\"}}]}\n\n"
        + &content("answer")
        + FINISH
        + DONE;
    let o = run(
        vec![Raw(SSE_HEAD.into()), chunk(&body), Raw(END.into())],
        None,
    )
    .await;
    assert_ok(&o);
    assert_eq!(o.events.len(), 3);
}

#[tokio::test]
async fn several_tokens_per_chunk_keep_usage_count() {
    let body = content("a b") + &content("c d e") + FINISH + &usage(4, 5) + DONE;
    let o = run(
        vec![Raw(SSE_HEAD.into()), chunk(&body), Raw(END.into())],
        None,
    )
    .await;
    assert_ok(&o);
    assert_eq!(o.events.len(), 2);
    assert_eq!(o.usage.unwrap().completion_tokens, Some(5));
}

#[tokio::test]
async fn error_event_mid_stream() {
    let body = content("a")
        + "data: {\"error\":{\"message\":\"KV cache exhausted\",\"type\":\"server_error\",\"code\":500}}\n\n";
    let o = run(
        vec![
            Raw(SSE_HEAD.into()),
            chunk(&body),
            Sleep(5),
            chunk(&content("never")),
            Raw(END.into()),
        ],
        None,
    )
    .await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::ErrorEvent);
    assert_eq!(msg, "KV cache exhausted");
    assert_eq!(o.events.len(), 1, "output before the error is kept");
}

#[tokio::test]
async fn http_error_status_with_json_body() {
    let body = r#"{"error":{"message":"This model's maximum context length is 4096 tokens","type":"BadRequestError","code":400}}"#;
    let resp = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let o = run(vec![Raw(resp.into_bytes())], None).await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::HttpStatus);
    assert_eq!(o.http_status, Some(400));
    assert_eq!(
        msg,
        "HTTP 400: This model's maximum context length is 4096 tokens"
    );
}

#[tokio::test]
async fn http_429_with_text_body() {
    let resp =
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 9\r\n\r\nslow down";
    let o = run(vec![Raw(resp.into())], None).await;
    assert_eq!(
        o.failure.unwrap(),
        (FailureKind::HttpStatus, "HTTP 429: slow down".into())
    );
}

#[tokio::test]
async fn connection_cut_mid_chunked_stream() {
    let o = run(
        vec![Raw(SSE_HEAD.into()), chunk(&(content("a") + &content("b")))],
        None,
    )
    .await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::StreamCut, "{msg}");
    assert_eq!(o.events.len(), 2);
}

#[tokio::test]
async fn connection_closed_without_done_or_finish() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    let o = run(vec![Raw(head.into()), Raw(content("a").into_bytes())], None).await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::StreamCut);
    assert!(msg.contains("no [DONE]"), "{msg}");
}

#[tokio::test]
async fn connection_closed_mid_event() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    let o = run(
        vec![
            Raw(head.into()),
            Raw((content("a") + "data: {\"choi").into_bytes()),
        ],
        None,
    )
    .await;
    assert_eq!(o.failure.unwrap().0, FailureKind::StreamCut);
}

#[tokio::test]
async fn finish_reason_then_close_is_complete() {
    // Some servers end the response without [DONE] (and without a final blank line).
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    let body = content("a") + &content("b") + FINISH.trim_end();
    let o = run(vec![Raw(head.into()), Raw(body.into_bytes())], None).await;
    assert_ok(&o);
    assert_eq!(o.events.len(), 2);
}

#[tokio::test]
async fn timeout_keeps_what_arrived() {
    // The timeout is long enough for the first event to beat it on a stalled machine.
    let o = run(
        vec![
            Raw(SSE_HEAD.into()),
            chunk(&content("a")),
            Sleep(5_000),
            chunk(DONE),
        ],
        Some(800),
    )
    .await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::Timeout, "{msg}");
    assert_eq!(o.events.len(), 1);
    let elapsed = o.ended_at - o.started_at;
    // Never before the timeout; well before the rest of the stream would come.
    assert!(
        (800_000..3_000_000).contains(&elapsed),
        "ended after {elapsed} µs"
    );
}

#[tokio::test]
async fn connection_refused() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let o = run_at(addr, Some(2_000)).await;
    assert_eq!(o.failure.unwrap().0, FailureKind::ConnectError);
}

#[tokio::test]
async fn invalid_json_event() {
    let body = content("a") + "data: {not json}\n\n";
    let o = run(
        vec![Raw(SSE_HEAD.into()), chunk(&body), Raw(END.into())],
        None,
    )
    .await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::InvalidResponse);
    assert!(
        msg.contains("not valid JSON") && msg.contains("{not json}"),
        "{msg}"
    );
}

#[tokio::test]
async fn non_streaming_json_answer() {
    let body = r#"{"choices":[{"message":{"content":"hi"}}]}"#;
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let o = run(vec![Raw(resp.into_bytes())], None).await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::InvalidResponse);
    assert!(msg.contains("stream"), "{msg}");
}

#[tokio::test]
async fn stream_without_output_is_a_failure() {
    let body = ROLE.to_string() + FINISH + DONE;
    let o = run(
        vec![Raw(SSE_HEAD.into()), chunk(&body), Raw(END.into())],
        None,
    )
    .await;
    assert_eq!(o.failure.unwrap().0, FailureKind::InvalidResponse);
}

#[tokio::test]
async fn stream_held_open_after_done_is_still_complete() {
    // A proxy that keeps the connection open (with pings) after [DONE] must not turn a
    // complete answer into a timeout.
    let body = content("a") + DONE;
    let o = run(
        vec![
            Raw(SSE_HEAD.into()),
            chunk(&body),
            Sleep(1_200),
            chunk(": ping\n\n"),
            Sleep(5_000),
        ],
        Some(1_000),
    )
    .await;
    assert_ok(&o);
    assert!(o.complete);
    // The timeout (1 s) would end it at 1 s, the ping at 1.2 s.
    assert!(
        o.ended_at - o.started_at < 800_000,
        "ended at [DONE], not at the drain"
    );
}

#[tokio::test]
async fn html_page_with_200_is_an_invalid_response() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n";
    let o = run(
        vec![Raw(head.into()), Raw(b"<html>proxy login</html>".to_vec())],
        None,
    )
    .await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::InvalidResponse);
    assert!(
        msg.contains("text/html") && msg.contains("proxy login"),
        "{msg}"
    );
}

#[tokio::test]
async fn json_error_with_200_keeps_the_servers_message() {
    let body = r#"{"error":{"message":"model overloaded"}}"#;
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let o = run(vec![Raw(resp.into_bytes())], None).await;
    assert_eq!(
        o.failure.unwrap(),
        (FailureKind::ErrorEvent, "model overloaded".into())
    );
}

#[tokio::test]
async fn empty_data_heartbeats_are_ignored() {
    let body = "data:\n\n".to_string() + &content("a") + "data: \n\n" + FINISH + DONE;
    let o = run(
        vec![Raw(SSE_HEAD.into()), chunk(&body), Raw(END.into())],
        None,
    )
    .await;
    assert_ok(&o);
    assert_eq!(o.events.len(), 1);
}

#[tokio::test]
async fn an_echoed_api_key_is_masked() {
    let key = "sk-echo-7a6b5c";
    let body = format!(r#"{{"error":{{"message":"invalid key {key}"}}}}"#);
    let resp = format!(
        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let addr = scripted(vec![Raw(resp.into_bytes())]).await;
    let client = HttpClient::new(&ClientConfig {
        api_key: Some(servescope::client::ApiKey::new(key.into())),
        timeout: None,
        idle_timeout: None,
        retries: 0,
        insecure: false,
        drain_after_done: DRAIN_AFTER_DONE,
    })
    .unwrap();
    let url = format!("http://{addr}/v1/chat/completions")
        .parse()
        .unwrap();
    let o = client
        .execute(
            &url,
            b"{}".to_vec().into(),
            &RunClock::start(),
            &Live::default(),
        )
        .await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::HttpStatus);
    assert_eq!(msg, "HTTP 401: invalid key ***");
}

async fn run_idle(script: Vec<Step>, idle_ms: u64) -> Outcome {
    let addr = scripted(script).await;
    execute_with(
        addr,
        ClientConfig {
            api_key: None,
            timeout: Some(Duration::from_secs(20)),
            idle_timeout: Some(Duration::from_millis(idle_ms)),
            retries: 0,
            insecure: false,
            drain_after_done: DRAIN_AFTER_DONE,
        },
    )
    .await
}

#[tokio::test]
async fn a_stalled_stream_is_an_idle_timeout() {
    // A limit the first event beats even on a stalled machine.
    let o = run_idle(
        vec![Raw(SSE_HEAD.into()), chunk(&content("a")), Sleep(5_000)],
        600,
    )
    .await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::IdleTimeout, "{msg}");
    assert!(msg.contains("silent"), "{msg}");
    assert_eq!(o.events.len(), 1);
    assert!(
        o.ended_at - o.started_at < 2_000_000,
        "caught long before the total timeout"
    );
}

#[tokio::test]
async fn headers_that_never_come_are_an_idle_timeout() {
    let o = run_idle(vec![Sleep(5_000)], 150).await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!(kind, FailureKind::IdleTimeout);
    assert!(msg.contains("headers"), "{msg}");
}

#[tokio::test]
async fn slow_but_steady_streams_are_not_idle() {
    // Events every 25 ms for 1.5 s: silence never reaches the 1 s limit (even when a
    // busy machine pauses the process for several hundred ms), while the stream lasts
    // well over it: a timer that each event does not restart would fire.
    let mut script = vec![Raw(SSE_HEAD.into())];
    for _ in 0..60 {
        script.push(chunk(&content("x")));
        script.push(Sleep(25));
    }
    script.push(chunk(&(FINISH.to_string() + DONE)));
    script.push(Raw(END.into()));
    let o = run_idle(script, 1_000).await;
    assert_ok(&o);
    assert_eq!(o.events.len(), 60);
}

async fn run_retrying(scripts: Vec<Vec<Step>>, retries: u32) -> Outcome {
    let addr = scripted_many(scripts).await;
    execute_with(
        addr,
        ClientConfig {
            api_key: None,
            timeout: Some(Duration::from_secs(10)),
            idle_timeout: None,
            retries,
            insecure: false,
            drain_after_done: DRAIN_AFTER_DONE,
        },
    )
    .await
}

const TOO_MANY: &str = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 0.2\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy";

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_latency_counts_from_the_first_try() {
    let ok = vec![
        Raw(SSE_HEAD.into()),
        chunk(&(content("a") + FINISH + DONE)),
        Raw(END.into()),
    ];
    let o = run_retrying(vec![vec![Raw(TOO_MANY.into())], ok], 2).await;
    assert_ok(&o);
    assert_eq!(o.retries, 1);
    assert!(
        o.events[0] - o.started_at >= 200_000,
        "TTFT includes the wait"
    );
    // Without retries the 429 stands.
    let o = run_retrying(vec![vec![Raw(TOO_MANY.into())]], 0).await;
    assert_eq!(o.failure.unwrap().0, FailureKind::HttpStatus);
    assert_eq!(o.retries, 0);
}

#[tokio::test]
async fn retries_run_out() {
    let o = run_retrying(
        vec![
            vec![Raw(TOO_MANY.into())],
            vec![Raw(TOO_MANY.into())],
            vec![Raw(TOO_MANY.into())],
        ],
        2,
    )
    .await;
    let (kind, msg) = o.failure.unwrap();
    assert_eq!((kind, o.retries), (FailureKind::HttpStatus, 2));
    assert!(msg.contains("429"), "{msg}");
}

#[tokio::test]
async fn other_http_errors_are_not_retried() {
    let e500 =
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops";
    let o = run_retrying(vec![vec![Raw(e500.into())]], 3).await;
    assert_eq!(
        (o.failure.unwrap().0, o.retries),
        (FailureKind::HttpStatus, 0)
    );
}

fn full_response() -> Vec<u8> {
    let body = content("a") + &content("b") + FINISH + DONE;
    format!("{SSE_HEAD}{:x}\r\n{body}\r\n{END}", body.len()).into_bytes()
}

/// llama-server closes some kept-alive connections right after a streamed response,
/// without `Connection: close`: the next request sent on one gets no answer at all. It
/// is sent again once, on a new connection, and the record counts the retry.
#[tokio::test]
async fn a_kept_alive_connection_closed_unanswered_is_resent_once() {
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Connection 1 answers request A, reads request B, then closes.
        let (mut sock, _) = listener.accept().await.unwrap();
        common::read_request_async(&mut sock).await;
        sock.write_all(&full_response()).await.unwrap();
        common::read_request_async(&mut sock).await;
        drop(sock);
        // Connection 2 answers B.
        let (mut sock, _) = listener.accept().await.unwrap();
        common::read_request_async(&mut sock).await;
        sock.write_all(&full_response()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let client = HttpClient::new(&ClientConfig {
        api_key: None,
        timeout: Some(Duration::from_secs(5)),
        idle_timeout: None,
        retries: 0,
        insecure: false,
        drain_after_done: DRAIN_AFTER_DONE,
    })
    .unwrap();
    let url = format!("http://{addr}/v1/chat/completions")
        .parse()
        .unwrap();
    let (clock, live) = (RunClock::start(), Live::default());
    let send = || client.execute(&url, b"{}".to_vec().into(), &clock, &live);
    let a = send().await;
    assert_ok(&a);
    assert_eq!(a.retries, 0);
    let b = send().await;
    assert_ok(&b);
    assert_eq!(
        (b.events.len(), b.retries),
        (2, 1),
        "resent once, and counted"
    );
}

/// A new connection closed unanswered is the server's answer: recorded, not resent.
#[tokio::test]
async fn a_new_connection_closed_unanswered_is_a_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            common::read_request_async(&mut sock).await;
        }
    });
    let o = run_at(addr, Some(5000)).await;
    let (kind, _) = o.failure.unwrap();
    assert_eq!((kind, o.retries), (FailureKind::StreamCut, 0));
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}
