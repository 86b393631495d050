//! End-to-end tests over raw HTTP/1.1, so the wire format itself is what is checked.
//! These use the ideal timetable; `tests_engine.rs` tests the engine model.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::http::parse;
use super::stream::{Kind, Prompt, WORDS};
use super::{SimConfig, SimServer, SimStats};
use crate::workload::Tokenizer;

pub(super) fn start(config: SimConfig) -> SimServer {
    SimServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// Fast settings so tests take a few ms per request.
fn fast() -> SimConfig {
    SimConfig {
        ttft_base_ms: 2.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 1.0,
        ..SimConfig::ideal()
    }
}

pub(super) struct Resp {
    pub(super) status: u16,
    pub(super) headers: String,
    pub(super) body: Vec<u8>,
    /// SSE `data:` payloads with the time the event was fully received.
    pub(super) events: Vec<(Instant, String)>,
}

impl Resp {
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Every event except `[DONE]`, parsed.
    pub(super) fn chunks(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|(_, e)| e != "[DONE]")
            .map(|(_, e)| serde_json::from_str(e).unwrap())
            .collect()
    }
}

pub(super) async fn send(conn: &mut TcpStream, method: &str, path: &str, body: &str, close: bool) {
    let connection = if close { "close" } else { "keep-alive" };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.unwrap();
}

/// Reads one response (length-delimited, chunked, or to EOF), leaving any excess in `buf`.
pub(super) async fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Resp {
    let mut at = Instant::now();
    let more = async |conn: &mut TcpStream, buf: &mut Vec<u8>, at: &mut Instant| {
        let mut tmp = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut tmp))
            .await
            .expect("response timed out")
            .unwrap();
        *at = Instant::now();
        buf.extend_from_slice(&tmp[..n]);
        n
    };
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        assert!(more(conn, buf, &mut at).await > 0, "EOF before headers");
    };
    let head = String::from_utf8(buf.drain(..head_end + 4).collect()).unwrap();
    let status = head[9..12].parse().unwrap();
    let headers = head.to_ascii_lowercase();
    let mut body = Vec::new();
    let mut events = Vec::new();
    if let Some(len) = header(&headers, "content-length") {
        let len: usize = len.parse().unwrap();
        while buf.len() < len {
            assert!(more(conn, buf, &mut at).await > 0, "EOF in body");
        }
        body.extend(buf.drain(..len));
        take_events(&body, &mut 0, at, &mut events);
    } else if header(&headers, "transfer-encoding") == Some("chunked") {
        let mut scanned = 0;
        loop {
            let Some(line_end) = find(buf, b"\r\n") else {
                assert!(more(conn, buf, &mut at).await > 0, "EOF in chunked body");
                continue;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
            if buf.len() < line_end + 2 + size + 2 {
                assert!(more(conn, buf, &mut at).await > 0, "EOF in chunk");
                continue;
            }
            let chunk: Vec<u8> = buf.drain(..line_end + 2 + size + 2).collect();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[line_end + 2..line_end + 2 + size]);
            take_events(&body, &mut scanned, at, &mut events);
        }
    } else {
        while more(conn, buf, &mut at).await > 0 {}
        body.append(buf);
    }
    Resp {
        status,
        headers,
        body,
        events,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// Appends the SSE events completed in `body[*scanned..]`, stamped with `at`.
fn take_events(body: &[u8], scanned: &mut usize, at: Instant, out: &mut Vec<(Instant, String)>) {
    while let Some(i) = find(&body[*scanned..], b"\n\n") {
        let event = std::str::from_utf8(&body[*scanned..*scanned + i]).unwrap();
        if let Some(data) = event.strip_prefix("data: ") {
            out.push((at, data.to_string()));
        }
        *scanned += i + 2;
    }
}

/// One request on a fresh `Connection: close` connection.
pub(super) async fn request(sim: &SimServer, method: &str, path: &str, body: &str) -> Resp {
    let mut conn = TcpStream::connect(sim.addr()).await.unwrap();
    send(&mut conn, method, path, body, true).await;
    read_response(&mut conn, &mut Vec::new()).await
}

pub(super) async fn post(sim: &SimServer, path: &str, body: Value) -> Resp {
    request(sim, "POST", path, &body.to_string()).await
}

pub(super) fn chat_body(text: &str, max_tokens: u32, stream: bool) -> Value {
    json!({
        "model": "servescope-sim",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens,
        "stream": stream,
        "stream_options": {"include_usage": true},
        "ignore_eos": true,
        "temperature": 0.0,
    })
}

/// Number of output words (= tokens) in a chunk's text.
pub(super) fn words(text: &str) -> usize {
    text.matches(' ').count()
}

#[tokio::test]
async fn models_and_health() {
    let sim = start(SimConfig {
        model: "m1".into(),
        ..fast()
    });
    let resp = request(&sim, "GET", "/v1/models", "").await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json(),
        json!({"object": "list", "data": [
            {"id": "m1", "object": "model", "created": 0, "owned_by": "servescope"}
        ]})
    );
    assert_eq!(request(&sim, "GET", "/health", "").await.status, 200);
    assert!(sim.url().starts_with("http://127.0.0.1:"));
    assert_eq!(sim.stats(), SimStats::default());
}

#[tokio::test]
async fn streaming_chat_has_role_content_finish_usage_done() {
    let sim = start(fast());
    let prompt = "Tell me about benchmarks, please.";
    let resp = post(&sim, "/v1/chat/completions", chat_body(prompt, 5, true)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        header(&resp.headers, "content-type"),
        Some("text/event-stream")
    );
    assert_eq!(resp.events.last().unwrap().1, "[DONE]");

    let chunks = resp.chunks();
    assert_eq!(chunks.len(), 1 + 5 + 1 + 1, "role, 5 tokens, finish, usage");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "servescope-sim");
        assert_eq!(c["id"], chunks[0]["id"]);
        assert!(c["id"].as_str().unwrap().starts_with("chatcmpl-"));
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let mut text = String::new();
    for c in &chunks[1..6] {
        let content = c["choices"][0]["delta"]["content"].as_str().unwrap();
        assert_eq!(words(content), 1);
        assert!(c["choices"][0]["finish_reason"].is_null());
        text += content;
    }
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "length");
    let p = Tokenizer::builtin().count(prompt) as u64;
    assert_eq!(chunks[7]["choices"], json!([]));
    assert_eq!(
        chunks[7]["usage"],
        json!({"prompt_tokens": p, "completion_tokens": 5, "total_tokens": p + 5})
    );
    // Re-tokenizing the output gives back the token count.
    assert_eq!(Tokenizer::builtin().count(&text), 5);
    let expected = SimStats {
        requests: 1,
        completed: 1,
        prompt_tokens: p,
        output_tokens: 5,
        ..SimStats::default()
    };
    assert_eq!(sim.stats(), expected);
}

#[tokio::test]
async fn tokens_per_chunk_groups_tokens() {
    let sim = start(SimConfig {
        tokens_per_chunk: 2,
        model: "needs \"escaping\"".into(),
        ..fast()
    });
    let resp = post(&sim, "/v1/chat/completions", chat_body("hi", 5, true)).await;
    assert_eq!(resp.chunks()[0]["model"], "needs \"escaping\"");
    let sizes: Vec<usize> = resp
        .chunks()
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .filter(|s| !s.is_empty())
        .map(words)
        .collect();
    assert_eq!(sizes, [2, 2, 1]);
}

#[tokio::test]
async fn completions_with_token_ids() {
    let sim = start(fast());
    let ids: Vec<u32> = (0..37).collect();
    let body = json!({"prompt": ids, "max_tokens": 3, "ignore_eos": true, "stream": true,
                      "stream_options": {"include_usage": true}});
    let chunks = post(&sim, "/v1/completions", body).await.chunks();
    assert_eq!(chunks.len(), 3 + 1 + 1, "no role chunk for completions");
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert!(chunks[0]["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(words(chunks[0]["choices"][0]["text"].as_str().unwrap()), 1);
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[4]["usage"]["prompt_tokens"], 37);

    // Non-streaming, prompt as a list of strings.
    let body = json!({"prompt": ["one two three", "ignored"], "max_tokens": 4, "ignore_eos": true});
    let resp = post(&sim, "/v1/completions", body).await.json();
    assert_eq!(resp["object"], "text_completion");
    assert_eq!(words(resp["choices"][0]["text"].as_str().unwrap()), 4);
    assert_eq!(resp["usage"]["prompt_tokens"], 3);
    assert_eq!(resp["usage"]["total_tokens"], 7);
    assert_eq!(sim.stats().output_tokens, 7);
}

#[tokio::test]
async fn non_streaming_chat() {
    let sim = start(fast());
    let body = json!({
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello there"},
                                         {"type": "image_url", "image_url": {"url": "x"}}]},
        ],
        "max_completion_tokens": 6,
        "ignore_eos": true,
    });
    let resp = post(&sim, "/v1/chat/completions", body).await;
    assert_eq!(
        header(&resp.headers, "content-type"),
        Some("application/json")
    );
    let resp = resp.json();
    assert_eq!(resp["object"], "chat.completion");
    assert_eq!(resp["choices"][0]["message"]["role"], "assistant");
    let text = resp["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(words(text), 6);
    assert_eq!(resp["choices"][0]["finish_reason"], "length");
    let tok = Tokenizer::builtin();
    // The image part costs the configured image tokens.
    let p = tok.count("Be brief.") + tok.count("Hello there") + fast().image_tokens as usize;
    assert_eq!(resp["usage"]["prompt_tokens"], p);
    assert_eq!(resp["usage"]["completion_tokens"], 6);
}

#[tokio::test]
async fn first_token_waits_for_ttft_and_prefill() {
    // Times large against a loaded machine's delays: the lower bounds are exact (never
    // early), the upper ones leave 200 ms for scheduling delays and a stalled process.
    let sim = start(SimConfig {
        ttft_base_ms: 250.0,
        prefill_ms_per_token: 0.8,
        tpot_ms: 1.0,
        ..SimConfig::ideal()
    });
    let ids: Vec<u32> = vec![1; 250]; // 250 × 0.8 = 200 ms of prefill
    let body = json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 3,
                      "ignore_eos": true, "stream": true});
    // Chat for the role chunk; prefill comes from a second request with token ids.
    let t0 = Instant::now();
    let resp = post(&sim, "/v1/chat/completions", body).await;
    let role_at = resp.events[0].0 - t0;
    let first_at = resp.events[1].0 - t0;
    // Not held back until the first token (≥ 250 ms).
    assert!(
        role_at < Duration::from_millis(200),
        "role chunk at {role_at:?}"
    );
    // One prompt token: 250.8 ms. The upper bound catches a TTFT counted twice.
    let min = Duration::from_micros(250_800);
    let slack = Duration::from_millis(200);
    assert!(first_at >= min && first_at < min + slack, "{first_at:?}");

    let body = json!({"prompt": ids, "max_tokens": 3, "ignore_eos": true, "stream": true});
    let t0 = Instant::now();
    let resp = post(&sim, "/v1/completions", body).await;
    let first_at = resp.events[0].0 - t0;
    // The upper bound catches prefill counted twice (650 ms).
    let min = Duration::from_millis(450);
    assert!(first_at >= min && first_at < min + slack, "{first_at:?}");
    // Later tokens follow 1 ms apart, from absolute deadlines.
    let last_at = resp.events[2].0 - t0;
    assert!(last_at >= min + Duration::from_millis(2), "{last_at:?}");
}

#[tokio::test]
async fn bad_requests_get_400_with_error_object() {
    let sim = start(fast());
    let cases = [
        ("/v1/chat/completions", "{not json"),
        ("/v1/chat/completions", r#"{"prompt": "hi"}"#),
        ("/v1/completions", r#"{"messages": []}"#),
        ("/v1/completions", r#"{"prompt": "hi", "max_tokens": 0}"#),
    ];
    for (path, body) in cases {
        let resp = request(&sim, "POST", path, body).await;
        assert_eq!(resp.status, 400, "{body}");
        let err = &resp.json()["error"];
        assert_eq!(err["type"], "invalid_request_error");
        assert_eq!(err["code"], 400);
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(sim.stats(), SimStats::default());
}

#[tokio::test]
async fn keep_alive_serves_sequential_requests_and_stats_add_up() {
    let sim = start(fast());
    let mut conn = TcpStream::connect(sim.addr()).await.unwrap();
    let mut buf = Vec::new();
    let mut prompt_tokens = 0;
    for i in 0..6u32 {
        let body = chat_body(&format!("request number {i}"), i + 1, i % 2 == 0);
        send(
            &mut conn,
            "POST",
            "/v1/chat/completions",
            &body.to_string(),
            false,
        )
        .await;
        let resp = read_response(&mut conn, &mut buf).await;
        assert_eq!(resp.status, 200);
        let usage = if i % 2 == 0 {
            resp.chunks().last().unwrap()["usage"].clone()
        } else {
            resp.json()["usage"].clone()
        };
        assert_eq!(usage["completion_tokens"], i + 1);
        prompt_tokens += usage["prompt_tokens"].as_u64().unwrap();
    }
    let expected = SimStats {
        requests: 6,
        completed: 6,
        prompt_tokens,
        output_tokens: (1..=6).sum(),
        ..SimStats::default()
    };
    assert_eq!(sim.stats(), expected);
    // Drop must not hang on the idle keep-alive connection.
    let t = std::time::Instant::now();
    drop(sim);
    assert!(t.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn output_length_without_ignore_eos_is_deterministic() {
    let sim = start(SimConfig {
        tpot_ms: 0.0,
        ..fast()
    });
    let mut lengths = Vec::new();
    for i in 0..8 {
        let body = json!({"prompt": format!("prompt {i}"), "max_tokens": 50});
        let a = post(&sim, "/v1/completions", body.clone()).await.json();
        let b = post(&sim, "/v1/completions", body).await.json();
        assert_eq!(a["choices"], b["choices"]);
        let n = a["usage"]["completion_tokens"].as_u64().unwrap();
        assert!((1..=50).contains(&n));
        let finish = if n == 50 { "length" } else { "stop" };
        assert_eq!(a["choices"][0]["finish_reason"], finish);
        lengths.push(n);
    }
    lengths.dedup();
    assert!(lengths.len() > 1, "lengths should vary with the prompt");
}

#[test]
fn output_words_are_one_token_each() {
    let tok = Tokenizer::builtin();
    for w in WORDS {
        assert_eq!(tok.count(w), 1, "{w:?}");
    }
    let text: String = WORDS
        .iter()
        .cycle()
        .take(3 * WORDS.len() + 5)
        .copied()
        .collect();
    assert_eq!(tok.count(&text), 3 * WORDS.len() + 5);
}

#[test]
fn parse_accepts_nulls_and_unknown_fields() {
    let body = br#"{"messages":[{"role":"assistant","content":null},{"role":"user","content":"x"}],
                    "max_tokens":null,"stream":null,"ignore_eos":null,"top_k":5}"#;
    let p = parse(Kind::Chat, body).unwrap();
    assert_eq!(p.max_tokens, 16);
    assert!(!p.stream && !p.ignore_eos && !p.include_usage);
    assert!(matches!(p.prompt, Prompt::Texts(ref t) if t == &["x"]));
    let p = parse(Kind::Completion, br#"{"prompt":[[5,6,7]]}"#).unwrap();
    assert!(matches!(p.prompt, Prompt::Ids(ref ids) if ids == &[5, 6, 7]));
    assert!(parse(Kind::Completion, br#"{"prompt":"x","max_tokens":-3}"#).is_err());
}
