//! Synthetic sessions (`--sessions`) against what a server really does: the history of
//! each turn carries the answers the server generated (a relay in front of the
//! simulator keeps each prompt and answer), the simulator's prefix cache serves later
//! turns, a failed turn ends its session, and a signal during a think time stops the
//! run keeping every finished turn.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use servescope::sim::{SimConfig, SimServer};

use crate::common::{records, session};
use crate::server::{Reply, Request, chat_stream, json, models, serve};

/// The messages of a chat request body.
fn messages(body: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(body).unwrap();
    v["messages"].as_array().cloned().unwrap_or_default()
}

/// `body` sent to the simulator unstreamed (one plain request on a connection of its
/// own); its JSON answer.
fn ask_sim(addr: &str, body: &str) -> Value {
    let mut v: Value = serde_json::from_str(body).unwrap();
    v["stream"] = json!(false);
    v.as_object_mut().unwrap().remove("stream_options");
    let body = v.to_string();
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(rest).unwrap_or_else(|e| panic!("{e}: {rest}"))
}

/// The answer as a client's stream: the text in one event, then the simulator's usage.
fn as_stream(answer: &Value) -> Reply {
    let text = &answer["choices"][0]["message"]["content"];
    let events = vec![
        format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{text}}}}}]}}\n\n"),
        format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"length\"}}],\"usage\":{}}}\n\n",
            answer["usage"]
        ),
        "data: [DONE]\n\n".into(),
    ];
    Reply::Stream {
        events,
        gap: Duration::ZERO,
    }
}

type Exchanges = Arc<Mutex<Vec<(Vec<Value>, String)>>>;

#[test]
fn each_turn_resends_the_simulators_answers_and_hits_its_prefix_cache() {
    let sim = SimServer::start(SimConfig::default(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = sim.url().trim_start_matches("http://").to_string();
    let seen: Exchanges = Arc::default();
    let log = seen.clone();
    let relay = serve(move |r: &Request| match r.path.as_str() {
        "/v1/models" => models("\"servescope-sim\""),
        _ => {
            let answer = ask_sim(&addr, &r.body);
            let text = answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string();
            log.lock().unwrap().push((messages(&r.body), text));
            as_stream(&answer)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    session(&[
        "concurrency",
        "--endpoint",
        &relay.url(),
        "--concurrency",
        "2",
        "--sessions",
        "--num-requests",
        "3",
        "--turns",
        "4",
        "--system-prompt-len",
        "64",
        "--input-len",
        "40",
        "--output-len",
        "12",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let seen = seen.lock().unwrap().clone();
    // Each session's turns, by their first user input; turn k has 2 + 2k messages.
    let mut sessions: std::collections::HashMap<String, Vec<(Vec<Value>, String)>> =
        Default::default();
    for (m, answer) in seen.iter().filter(|(m, _)| m.len() >= 2) {
        let key = m[1]["content"].as_str().unwrap().to_string();
        sessions
            .entry(key)
            .or_default()
            .push((m.clone(), answer.clone()));
    }
    assert_eq!(sessions.len(), 3);
    for turns in sessions.values_mut() {
        turns.sort_by_key(|(m, _)| m.len());
        assert_eq!(turns.len(), 4);
        for (k, pair) in turns.windows(2).enumerate() {
            let (before, answer) = &pair[0];
            let (now, _) = &pair[1];
            assert_eq!(now.len(), before.len() + 2, "turn {}", k + 1);
            assert_eq!(&now[..before.len()], &before[..], "the history is resent");
            assert_eq!(now[before.len()]["role"], "assistant");
            assert_eq!(
                now[before.len()]["content"].as_str(),
                Some(answer.as_str()),
                "turn {} carries the answer the simulator generated to turn {k}",
                k + 1
            );
            assert_eq!(now.last().unwrap()["role"], "user");
        }
        assert_eq!(turns[0].0[0]["role"], "system");
    }
    // Later turns find their history in the simulator's prefix cache, more each turn;
    // the client's count of the whole history is the simulator's.
    let recs = records(dir.path());
    assert_eq!(recs.len(), 12);
    for s in 0..3u64 {
        let mut turns: Vec<&Value> = recs.iter().filter(|r| r["session"] == s).collect();
        turns.sort_by_key(|r| r["turn"].as_u64());
        let cached: Vec<u64> = turns
            .iter()
            .map(|r| r["cached_tokens"].as_u64().unwrap_or(0))
            .collect();
        assert!(cached.windows(2).all(|w| w[0] < w[1]), "{cached:?}");
        for r in &turns {
            assert_eq!(r["prompt_tokens"], r["input_tokens"], "{r}");
        }
    }
}

#[test]
fn a_failed_turn_ends_its_session_and_the_others_go_on() {
    // The first turn 1 to come (3 messages: user, assistant, user) fails.
    let failed = Arc::new(AtomicUsize::new(0));
    let f = failed.clone();
    let srv = serve(move |r: &Request| match r.path.as_str() {
        "/v1/models" => models("\"m\""),
        _ if messages(&r.body).len() == 3 && f.fetch_add(1, Ordering::SeqCst) == 0 => {
            json(500, "{\"error\":{\"message\":\"overloaded\"}}")
        }
        _ => chat_stream(3, Duration::ZERO),
    });
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "concurrency",
        "--endpoint",
        &srv.url(),
        "--concurrency",
        "1",
        "--sessions",
        "--num-requests",
        "3",
        "--turns",
        "3",
        "--input-len",
        "5",
        "--output-len",
        "3",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    assert_eq!(
        (s.succeeded, s.total),
        (7, 8),
        "2 whole sessions and 1 turn of the third"
    );
    let recs = records(dir.path());
    let turns = |session: u64| -> Vec<(u64, String)> {
        let mut t: Vec<(u64, String)> = recs
            .iter()
            .filter(|r| r["session"] == session)
            .map(|r| {
                let status = r["status"].as_str().unwrap().to_string();
                (r["turn"].as_u64().unwrap(), status)
            })
            .collect();
        t.sort();
        t
    };
    assert_eq!(
        turns(0),
        [(0, "ok".to_string()), (1, "http_status".to_string())],
        "the user gave up after the failed turn"
    );
    for s in [1, 2] {
        assert_eq!(turns(s).len(), 3, "session {s} goes on: {:?}", turns(s));
    }
}

#[test]
fn a_signal_during_a_think_time_stops_the_run_and_keeps_the_finished_turns() {
    let chats = Arc::new(AtomicUsize::new(0));
    let c = chats.clone();
    let srv = serve(move |r: &Request| match r.path.as_str() {
        "/v1/models" => models("\"m\""),
        _ => {
            c.fetch_add(1, Ordering::SeqCst);
            chat_stream(2, Duration::ZERO)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let child = crate::child::start(&[
        "concurrency",
        "--endpoint",
        &srv.url(),
        "--concurrency",
        "3",
        "--sessions",
        "--num-requests",
        "6",
        "--turns",
        "3",
        "--think-time-ms",
        "60000",
        "--input-len",
        "5",
        "--output-len",
        "2",
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    // The connection test and the 3 users' first turns; then they think for a minute.
    let start = Instant::now();
    while chats.load(Ordering::SeqCst) < 4 {
        assert!(start.elapsed() < Duration::from_secs(60), "never reached");
        std::thread::sleep(Duration::from_millis(20));
    }
    let requests = dir.path().join("requests.jsonl");
    while std::fs::read_to_string(&requests).map_or(0, |t| t.lines().count()) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "turns not recorded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = Instant::now();
    child.signal("-INT");
    let end = child.finish(Duration::from_secs(10));
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "a think time does not hold the stop back"
    );
    assert_eq!(end.code, Some(130), "{}", end.stderr);
    let recs = records(dir.path());
    assert_eq!(recs.len(), 3, "the finished first turns, and nothing after");
    assert!(recs.iter().all(|r| r["status"] == "ok" && r["turn"] == 0));
    assert_eq!(
        chats.load(Ordering::SeqCst),
        4,
        "no turn started after the signal"
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    let run = &doc["runs"][0];
    assert_eq!(run["complete"], false);
    assert_eq!(
        (&run["requests_planned"], &run["requests_sent"]),
        (&json!(18), &json!(3)),
        "planned: every turn of the 6 sessions"
    );
}
