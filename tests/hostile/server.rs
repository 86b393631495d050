//! A scripted loopback server: each request is answered by a function of the request,
//! with stalls, raw bytes and hand-made streams, so a test can play a hostile or broken
//! server exactly. Blocking threads, one per connection; every answer closes its
//! connection (the client must cope with that anyway).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case, values as sent (decoded as Latin-1, byte for byte).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer.
pub enum Reply {
    /// Never answer; hold the connection open until the server is dropped.
    Stall,
    /// Sleep, then answer.
    After(Duration, Box<Reply>),
    /// These exact bytes, then close.
    Raw(Vec<u8>),
    /// A complete response: status, content type, body.
    Full(u16, &'static str, Vec<u8>),
    /// A 200 event stream: each item is sent as one chunk, `gap` apart.
    Stream { events: Vec<String>, gap: Duration },
    /// A 200 event stream that sends these events, then nothing, holding the connection
    /// open until the server is dropped (a server that hangs mid-answer).
    StallAfter(Vec<String>),
}

/// `{"data":[{"id": ID}]}`, the model listing, with `id` as given (raw JSON text, so a
/// test can put escapes in it).
pub fn models(id_json: &str) -> Reply {
    Reply::Full(
        200,
        "application/json",
        format!("{{\"object\":\"list\",\"data\":[{{\"id\":{id_json}}}]}}").into_bytes(),
    )
}

/// A JSON answer with the given status.
pub fn json(status: u16, body: &str) -> Reply {
    Reply::Full(status, "application/json", body.as_bytes().to_vec())
}

/// A chat-completions stream of `tokens` one-word deltas, with usage, then `[DONE]`.
pub fn chat_stream(tokens: usize, gap: Duration) -> Reply {
    let mut events = Vec::new();
    for i in 0..tokens {
        events.push(format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}}}}]}}\n\n"
        ));
    }
    events.push(format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"length\"}}],\"usage\":{{\"prompt_tokens\":8,\"completion_tokens\":{tokens}}}}}\n\n"
    ));
    events.push("data: [DONE]\n\n".into());
    Reply::Stream { events, gap }
}

/// A chat-completions stream that sends `tokens` one-word deltas and then hangs.
pub fn chat_stream_stalling(tokens: usize) -> Reply {
    let events = (0..tokens)
        .map(|i| {
            format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}}}}]}}\n\n"
            )
        })
        .collect();
    Reply::StallAfter(events)
}

/// A running scripted server; stops accepting (and releases stalled connections) when
/// dropped.
pub struct Scripted {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Scripted {
    /// The base URL, as `--endpoint` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serve on a free loopback port, answering each request with `answer(request)`.
pub fn serve(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Scripted {
    serve_listener(TcpListener::bind("127.0.0.1:0").unwrap(), answer)
}

/// `serve` on a given loopback port, for a test whose URL must outlive one server: the
/// port of a server just dropped is bound again once its accept loop has let it go.
pub fn serve_on(port: u16, answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Scripted {
    let mut tries = 0;
    let listener = loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => break l,
            Err(e) if tries < 200 => {
                tries += 1;
                let _ = e;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("cannot bind port {port} again: {e}"),
        }
    };
    serve_listener(listener, answer)
}

fn serve_listener(
    listener: TcpListener,
    answer: impl Fn(&Request) -> Reply + Send + Sync + 'static,
) -> Scripted {
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answer = Arc::new(answer);
    let stopping = stop.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stopping.load(Ordering::SeqCst) {
                return;
            }
            let Ok(conn) = conn else { continue };
            let (answer, stopping) = (answer.clone(), stopping.clone());
            std::thread::spawn(move || handle(conn, &*answer, &stopping));
        }
    });
    Scripted { addr, stop }
}

fn handle(mut conn: TcpStream, answer: &dyn Fn(&Request) -> Reply, stop: &AtomicBool) {
    let _ = conn.set_nodelay(true);
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    let _ = send(&mut conn, answer(&req), stop);
}

fn send(conn: &mut TcpStream, reply: Reply, stop: &AtomicBool) -> std::io::Result<()> {
    match reply {
        Reply::Stall => {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }
        Reply::After(d, then) => {
            std::thread::sleep(d);
            send(conn, *then, stop)
        }
        Reply::Raw(bytes) => conn.write_all(&bytes),
        Reply::Full(status, ctype, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(&body)
        }
        Reply::Stream { events, gap } => {
            conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )?;
            for e in events {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                write!(conn, "{:x}\r\n{e}\r\n", e.len())?;
                conn.flush()?;
                std::thread::sleep(gap);
            }
            conn.write_all(b"0\r\n\r\n")
        }
        Reply::StallAfter(events) => {
            conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )?;
            for e in events {
                write!(conn, "{:x}\r\n{e}\r\n", e.len())?;
            }
            conn.flush()?;
            send(conn, Reply::Stall, stop)
        }
    }
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut tmp).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
    };
    // Latin-1: each byte one char, so a test sees exactly the bytes sent.
    let head: String = buf[..head_end].iter().map(|&b| b as char).collect();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut tmp).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
