//! Open-loop runs end to end: trace replay and request rates against the simulator.
//!
//! Lag: no request is ever sent before its time (exact, from the records). The timing
//! thread spins the last 200 µs before each send, so on an idle machine the median lag
//! is tens of µs; a loaded 2-core CI machine starves it (medians of 15 ms, once 58 ms,
//! and maxima up to 270 ms were seen with 8–12 busy loops), so the default bounds only
//! catch a sender far off its timetable: one on the wrong time scale (a lost
//! `--time-scale` lags the trace's middle by 400 ms, its end by 800 ms) or one that
//! waits for earlier requests (falls behind by up to 1 s). Sending early is caught
//! exactly.
//! SERVESCOPE_STRICT_TIMING=1 checks the idle-machine bounds; bench/targets.sh measures
//! the accuracy itself.

mod common;

use common::{records, session};
use std::path::Path;

use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};

/// Bounds on the median and the maximum schedule lag, in ms.
fn lag_bounds() -> (f64, f64) {
    if common::strict_timing() {
        (1.0, 30.0)
    } else {
        (100.0, 500.0)
    }
}

/// Every record with a schedule started at or after it (and after its wait for a
/// slot): µs on the run's clock, so exact whatever the machine's load.
fn never_early(recs: &[Value]) {
    for r in recs {
        let wait = match &r["queue_wait"] {
            Value::Null => 0,
            w => secs_to_us(w),
        };
        assert!(
            secs_to_us(&r["started_at"]) >= secs_to_us(&r["scheduled_at"]) + wait,
            "sent early: {r}"
        );
    }
}

fn ideal_sim() -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 5.0,
        prefill_ms_per_token: 0.001,
        tpot_ms: 1.0,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// 200 Mooncake-format lines: ten "conversations" whose requests share their group's
/// leading blocks, then blocks of their own.
fn write_trace(path: &Path) -> Vec<(u64, u32, u32, Vec<u64>)> {
    let mut lines = String::new();
    let mut rows = Vec::new();
    let mut t_ms = 1_000u64;
    for i in 0..200u64 {
        t_ms += 3 + (i * 7919) % 11; // 3..13 ms apart, irregular
        let group = i % 10;
        let shared = 1 + (i % 3);
        let mut ids: Vec<u64> = (0..shared).map(|k| group * 100 + k).collect();
        ids.push(10_000 + i);
        let input = 16 * ids.len() as u32 - (i % 5) as u32;
        let output = 2 + (i % 4) as u32;
        lines.push_str(&format!(
            "{{\"timestamp\": {t_ms}, \"input_length\": {input}, \"output_length\": {output}, \"hash_ids\": {ids:?}}}\n"
        ));
        rows.push((t_ms, input, output, ids));
    }
    std::fs::write(path, lines).unwrap();
    rows
}

fn secs_to_us(v: &Value) -> u64 {
    (v.as_f64().unwrap() * 1e6).round() as u64
}

fn median_and_max(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

#[test]
fn trace_replay_keeps_the_timeline_and_the_lengths() {
    let server = ideal_sim();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let rows = write_trace(&trace);
    let out_dir = dir.path().join("out");
    let out = session(&[
        "trace",
        trace.to_str().unwrap(),
        "--time-scale",
        "0.5",
        "--block-size",
        "16",
        "--endpoint",
        &server.url(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--quiet",
    ]);
    let (label, s) = &out.runs[0];
    assert_eq!(label, "trace x0.5");
    assert_eq!(
        (s.total, s.succeeded),
        (200, 200),
        "every request sent and answered"
    );
    let recs = records(&out_dir);
    never_early(&recs);
    let t0 = rows[0].0;
    let mut lags = Vec::new();
    for r in &recs {
        let i = r["id"].as_u64().unwrap() as usize;
        let (t_ms, input, output, _) = &rows[i];
        // (t_i − t_min) × scale, to the microsecond.
        assert_eq!(
            secs_to_us(&r["scheduled_at"]),
            (t_ms - t0) * 1000 / 2,
            "request {i}"
        );
        assert_eq!(
            r["output_tokens"].as_u64().unwrap(),
            *output as u64,
            "request {i}"
        );
        assert_eq!(r["output_tokens_source"], "usage");
        assert_eq!(r["input_tokens"].as_u64().unwrap(), *input as u64);
        // The simulator tokenizes the text itself: the prompt is exactly that long.
        assert_eq!(
            r["prompt_tokens"].as_u64().unwrap(),
            *input as u64,
            "request {i}"
        );
        lags.push((secs_to_us(&r["started_at"]) - secs_to_us(&r["scheduled_at"])) as f64 / 1e3);
    }
    let (median, max) = median_and_max(lags);
    let (median_bound, max_bound) = lag_bounds();
    assert!(median < median_bound, "median lag {median} ms");
    assert!(max < max_bound, "max lag {max} ms");
    // The summary's lag is the records' (no slot to wait for here).
    let lag = s.schedule_lag_ms.as_ref().unwrap();
    assert_eq!(lag.count, 200);
    assert!((lag.max - max).abs() < 1e-9, "{lag:?}, records {max} ms");
    // A second scale replays the same requests on a stretched timeline.
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["runs"][0]["params"]["time_scale"], 0.5);
    assert_eq!(results["runs"][0]["params"]["format"], "mooncake");
    assert_eq!(results["runs"][0]["mode"], "trace");
}

#[test]
fn max_context_clips_or_skips() {
    let server = ideal_sim();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    write_trace(&trace);
    // Inputs are 12..64 tokens and outputs 2..5: a 40-token context catches some.
    let out = session(&[
        "trace",
        trace.to_str().unwrap(),
        "--time-scale",
        "0.1",
        "--block-size",
        "16",
        "--max-context",
        "40",
        "--on-overflow",
        "skip",
        "--endpoint",
        &server.url(),
        "--output-dir",
        dir.path().join("o").to_str().unwrap(),
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("o/results.json")).unwrap())
            .unwrap();
    let skipped = results["runs"][0]["params"]["skipped"].as_u64().unwrap();
    assert!(skipped > 0);
    assert_eq!(s.total + skipped, 200);
    let clipped = session(&[
        "trace",
        trace.to_str().unwrap(),
        "--time-scale",
        "0.1",
        "--block-size",
        "16",
        "--max-context",
        "40",
        "--endpoint",
        &server.url(),
        "--quiet",
    ]);
    let c = &clipped.runs[0].1;
    assert_eq!(c.total, 200, "clipping keeps every request");
    assert!(c.tokens.input + c.tokens.output <= 200 * 40);
}

#[test]
fn poisson_rate_with_a_concurrency_cap() {
    let server = ideal_sim();
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "rate",
        "--rates",
        "200,inf",
        "--num-requests",
        "60",
        "--max-concurrency",
        "3",
        "--input-len",
        "32",
        "--output-len",
        "20",
        "--endpoint",
        &server.url(),
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.runs.len(), 2);
    for (label, s) in &out.runs {
        assert_eq!((s.total, s.succeeded), (60, 60), "{label}");
        assert!(s.concurrency.max_in_flight <= 3, "{label}: the cap holds");
        // Requests wait for a slot (≈25 ms each at this load), and the wait is visible
        // in latency counted from the schedule.
        let wait = s.queue_wait_ms.as_ref().unwrap();
        assert!(wait.max > 5.0, "{label}: queue wait {wait:?}");
        let from_sched = s.ttft_from_scheduled_ms.as_ref().unwrap();
        assert!(from_sched.mean > s.ttft_ms.as_ref().unwrap().mean + 1.0);
        // Lag excludes the deliberate wait. (At `inf` every request is due at 0, so one
        // delayed start on a busy machine shifts them all: only the bound applies.)
        let (median_bound, max_bound) = lag_bounds();
        let lag = s.schedule_lag_ms.as_ref().unwrap();
        assert!(lag.max < max_bound, "{label}: {lag:?}");
        if label == "rate 200" {
            assert!(
                lag.percentile(50.0).unwrap() < median_bound,
                "{label}: {lag:?}"
            );
        }
    }
    let recs = records(dir.path());
    // Sent neither before its time nor before its slot's wait was over.
    never_early(&recs);
    let rate200: Vec<&Value> = recs.iter().filter(|r| r["run"] == "rate 200").collect();
    let mut sched: Vec<u64> = rate200
        .iter()
        .map(|r| secs_to_us(&r["scheduled_at"]))
        .collect();
    sched.sort_unstable();
    assert_eq!(sched[0], 0, "the first arrival is at the start");
    assert!(
        sched[59] > 100_000,
        "60 arrivals at 200/s span ~0.3 s: {}",
        sched[59]
    );
    let inf: Vec<u64> = recs
        .iter()
        .filter(|r| r["run"] == "rate inf")
        .map(|r| secs_to_us(&r["scheduled_at"]))
        .collect();
    assert!(
        inf.iter().all(|&t| t == 0),
        "inf schedules everything at once"
    );
}

#[test]
fn rate_without_a_cap_is_open_loop() {
    let server = ideal_sim();
    let dir = tempfile::tempdir().unwrap();
    let out = session(&[
        "rate",
        "--rates",
        "100",
        "--duration",
        "0.5",
        "--input-len",
        "16",
        "--output-len",
        "30",
        "--endpoint",
        &server.url(),
        "--output-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    // ~50 arrivals in 0.5 s; each takes ≥ 35 ms, so several overlap: nobody waits for
    // an earlier request to finish.
    assert!((25..=80).contains(&s.total), "{} arrivals", s.total);
    assert!(s.concurrency.max_in_flight >= 2);
    assert!(s.queue_wait_ms.is_none());
    never_early(&records(dir.path()));
    // Sending one at a time (≥ 35 ms each, 10 ms apart) would fall behind by up to ~1 s.
    let (median_bound, max_bound) = lag_bounds();
    let lag = s.schedule_lag_ms.as_ref().unwrap();
    assert!(
        lag.percentile(50.0).unwrap() < median_bound && lag.max < max_bound,
        "{lag:?}"
    );
}

/// The bundled Mooncake sample against the engine model: the prefix cache must hit about
/// as often as the trace's own hash ids say prompts repeat. Expected share: for each
/// request, its leading hash ids already seen in earlier requests (ids are prefix
/// hashes, so a seen id means its whole prefix was seen) × 512 tokens, over all prompt
/// tokens. The engine reuses whole 16-token blocks only and recomputes a fully cached
/// prompt's last block, so it may hit slightly less; costs are tiny so prefills finish
/// before the next sharing request arrives, and the KV cache holds everything.
#[test]
fn engine_prefix_cache_hits_like_the_trace_repeats() {
    use servescope::sim::EngineConfig;
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/mooncake-sample.jsonl");
    let text = std::fs::read_to_string(&sample).unwrap();
    let mut seen = std::collections::HashSet::new();
    let (mut shared_tokens, mut total_tokens) = (0u64, 0u64);
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let input = v["input_length"].as_u64().unwrap();
        let ids: Vec<u64> = v["hash_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        let lead = ids.iter().take_while(|h| seen.contains(*h)).count() as u64;
        shared_tokens += (lead * 512).min(input);
        total_tokens += input;
        seen.extend(ids);
    }
    let expected = shared_tokens as f64 / total_tokens as f64;

    let cfg = SimConfig {
        prefill_ms_per_token: 0.000_01,
        engine: Some(EngineConfig {
            step_base_ms: 0.2,
            prefill_ms_per_token: 0.000_01,
            decode_ms_per_seq: 0.0,
            kv_read_ms_per_1k_tokens: 0.0,
            kv_capacity_tokens: 16_000_000,
            max_model_len: 200_000,
            max_num_batched_tokens: 1_000_000,
            ..EngineConfig::default()
        }),
        ..SimConfig::default()
    };
    let server = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let out = session(&[
        "trace",
        sample.to_str().unwrap(),
        "--time-scale",
        "0.02",
        "--api",
        "completions",
        "--prompt-token-ids",
        "--endpoint",
        &server.url(),
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    assert_eq!((s.total, s.succeeded), (500, 500));
    let measured = s.tokens.cached.unwrap() as f64 / s.tokens.input as f64;
    assert!(
        measured <= expected + 0.005 && measured >= expected - 0.02,
        "prefix-cache hit share {measured:.4}, trace repeats {expected:.4}"
    );
    assert_eq!(server.stats().cached_tokens, s.tokens.cached.unwrap());
    eprintln!("prefix-cache hit share {measured:.4}, trace repeats {expected:.4}");
}

/// Qwen sessions: turn 2 is due 10 ms after turn 1 starts but must wait for turn 1's
/// answer (5 ms + 29 × 8 ms ≈ 240 ms, long enough that a late start of turn 2 on a busy
/// machine still leaves a wait to record), then carries prompt + answer + new turn; its
/// trace input length (50 + 30 + 20) is met exactly, as the simulator's own count shows.
#[test]
fn qwen_sessions_continue_the_parents_conversation() {
    let cfg = SimConfig {
        ttft_base_ms: 5.0,
        prefill_ms_per_token: 0.001,
        tpot_ms: 8.0,
        ..SimConfig::ideal()
    };
    let server = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("qwen.jsonl");
    let line = |chat: i64, parent: i64, t: f64, input: u32, output: u32, ids: &[u64]| {
        format!(
            "{{\"chat_id\": {chat}, \"parent_chat_id\": {parent}, \"timestamp\": {t}, \"input_length\": {input}, \"output_length\": {output}, \"type\": \"text\", \"turn\": 1, \"hash_ids\": {ids:?}}}\n"
        )
    };
    let text = line(1, -1, 0.0, 50, 30, &[1, 2, 3, 4])
        + &line(2, 1, 0.01, 100, 5, &[1, 2, 3, 4, 5, 6, 7])
        + &line(3, -1, 0.02, 40, 3, &[8, 9, 10])
        + &line(4, 2, 0.3, 115, 4, &[1, 2, 3, 4, 5, 6, 7, 11]);
    std::fs::write(&trace, text).unwrap();
    let out_dir = dir.path().join("out");
    let out = session(&[
        "trace",
        trace.to_str().unwrap(),
        "--sessions",
        "--endpoint",
        &server.url(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.runs[0].1.succeeded, 4);
    let recs = records(&out_dir);
    let by_id = |id: u64| recs.iter().find(|r| r["id"] == id).unwrap();
    let (t1, t2, t4) = (by_id(0), by_id(1), by_id(3));
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap();
    assert!(
        f(t2, "started_at") >= f(t1, "ended_at"),
        "turn 2 waits for turn 1"
    );
    // ≈ 230 ms; a start of turn 2 late by up to 130 ms still leaves over 100 ms.
    assert!(
        f(t2, "queue_wait") > 0.1,
        "the wait is recorded: {}",
        t2["queue_wait"]
    );
    assert!(f(t4, "started_at") >= f(t2, "ended_at"));
    // Each turn is tagged with its conversation (its first request) and depth.
    for (r, session, turn) in [(t1, 0, 0), (t2, 0, 1), (by_id(2), 2, 0), (t4, 0, 2)] {
        assert_eq!(
            (&r["session"], &r["turn"]),
            (&Value::from(session), &Value::from(turn))
        );
    }
    for (r, expected) in [(t1, 50), (t2, 100), (t4, 115)] {
        assert_eq!(r["input_tokens"], expected, "{r}");
        assert_eq!(
            r["prompt_tokens"], expected,
            "the server counts the whole history"
        );
    }
    // Without --sessions every turn stands alone and goes at its own time.
    let alone = session(&[
        "trace",
        trace.to_str().unwrap(),
        "--endpoint",
        &server.url(),
        "--quiet",
    ]);
    assert!(alone.runs[0].1.queue_wait_ms.is_none());
}

/// Under a `--model` mix, a trace conversation stays on one model: every turn goes to
/// the model picked for its first request (its prefix cache lives there).
#[test]
fn qwen_sessions_keep_a_conversation_on_one_model() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("qwen.jsonl");
    let mut text = String::new();
    for c in 0..12i64 {
        for turn in 0..3i64 {
            let (chat, parent) = (
                c * 10 + turn,
                if turn == 0 { -1 } else { c * 10 + turn - 1 },
            );
            let t = c as f64 * 0.002 + turn as f64 * 0.001;
            let ids: Vec<u64> = (0..=turn as u64).map(|k| c as u64 * 100 + k).collect();
            text += &format!(
                "{{\"chat_id\": {chat}, \"parent_chat_id\": {parent}, \"timestamp\": {t}, \"input_length\": {}, \"output_length\": 3, \"type\": \"text\", \"turn\": 1, \"hash_ids\": {ids:?}}}\n",
                20 * (turn + 1)
            );
        }
    }
    std::fs::write(&trace, text).unwrap();
    let out_dir = dir.path().join("out");
    let out = session(&[
        "trace",
        trace.to_str().unwrap(),
        "--sessions",
        "--model",
        "a,b",
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.runs[0].1.succeeded, 36);
    let recs = records(&out_dir);
    let mut by_session: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
    for r in &recs {
        by_session
            .entry(r["session"].as_u64().unwrap())
            .or_default()
            .push(r["model"].as_str().unwrap().to_string());
    }
    assert_eq!(by_session.len(), 12);
    for (s, models) in &by_session {
        assert_eq!(models.len(), 3);
        assert!(
            models.iter().all(|m| m == &models[0]),
            "session {s}: {models:?}"
        );
    }
    let firsts: std::collections::BTreeSet<_> = by_session.values().map(|m| &m[0]).collect();
    assert_eq!(firsts.len(), 2, "both models get conversations");
}
