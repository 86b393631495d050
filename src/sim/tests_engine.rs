//! The engine model end to end, over HTTP: timing, batching, prefix cache,
//! preemption, context length, `/metrics`, determinism, disconnects.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::engine::EngineConfig;
use super::tests::{Resp, header, post, read_response, request, send, start};
use super::{SimConfig, SimServer};

/// Small and fast: 2 ms steps, 64-token budget, 4096 tokens of KV.
pub(super) fn small() -> EngineConfig {
    EngineConfig {
        max_num_seqs: 8,
        max_num_batched_tokens: 64,
        kv_capacity_tokens: 4096,
        block_size: 16,
        max_model_len: 2048,
        prefix_caching: true,
        step_base_ms: 2.0,
        prefill_ms_per_token: 0.05,
        decode_ms_per_seq: 0.1,
        kv_read_ms_per_1k_tokens: 1.0,
    }
}

pub(super) fn engine(e: EngineConfig) -> SimConfig {
    SimConfig {
        engine: Some(e),
        ..SimConfig::default()
    }
}

/// A streamed completion of `ids` with usage.
fn ids_body(ids: &[u32], max_tokens: u32) -> Value {
    json!({"prompt": ids, "max_tokens": max_tokens, "ignore_eos": true, "stream": true,
           "stream_options": {"include_usage": true}})
}

fn usage(resp: &Resp) -> Value {
    resp.chunks().last().unwrap()["usage"].clone()
}

fn cached(resp: &Resp) -> u64 {
    usage(resp)["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap()
}

/// Checks the exposition format line by line; returns every sample by `name{labels}`.
pub(super) async fn scrape(sim: &SimServer) -> BTreeMap<String, f64> {
    let resp = request(sim, "GET", "/metrics", "").await;
    assert_eq!(resp.status, 200);
    let ct = header(&resp.headers, "content-type").unwrap();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = String::from_utf8(resp.body).unwrap();
    let mut samples = BTreeMap::new();
    let mut typed = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            typed.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value in {line:?}"));
        let (name, labels) = series.split_once('{').unwrap();
        assert!(labels.ends_with('}') && labels.contains("model_name=\"servescope-sim\""));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "no TYPE before {line:?}");
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no HELP for {family}"
        );
        samples.insert(series.to_string(), value);
    }
    // Histogram: cumulative buckets, +Inf equal to _count.
    let h = "vllm:time_to_first_token_seconds";
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{h}_bucket")))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert_eq!(buckets.len(), 23);
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(
        Some(&buckets[22]),
        samples.get(&format!("{h}_count{{model_name=\"servescope-sim\"}}"))
    );
    samples
}

pub(super) fn metric(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples[&format!("{name}{{model_name=\"servescope-sim\"}}")]
}

#[tokio::test]
async fn a_lone_request_follows_the_cost_model() {
    // small() with costs 10–30 times larger, so the model's times are large against a
    // loaded machine's delays: lower bounds are exact (never early), upper ones leave
    // 200 ms.
    let sim = start(engine(EngineConfig {
        step_base_ms: 20.0,
        prefill_ms_per_token: 1.5,
        decode_ms_per_seq: 1.0,
        kv_read_ms_per_1k_tokens: 10.0,
        ..small()
    }));
    // 150 tokens in chunks of 64, 64, 22: 3 × 20 ms + 150 × 1.5 ms = 285 ms.
    let ids: Vec<u32> = (0..150).collect();
    let t0 = Instant::now();
    let resp = post(&sim, "/v1/completions", ids_body(&ids, 4)).await;
    let at = |i: usize| (resp.events[i].0 - t0).as_secs_f64() * 1000.0;
    let ttft = at(0);
    let slack = 200.0;
    // The upper bound catches the prefill cost counted twice (510 ms).
    assert!((285.0..285.0 + slack).contains(&ttft), "TTFT {ttft} ms");
    // Each decode step: 20 + 1 + 10 × context / 1000 ms (context 151, 152, 153).
    let decode: f64 = (151..154).map(|ctx| 21.0 + f64::from(ctx) / 100.0).sum();
    let last = at(3);
    assert!(
        last >= 285.0 + decode && last < 285.0 + decode + slack,
        "last {last} ms"
    );
    assert_eq!(cached(&resp), 0);
    // The server's own TTFT: from arrival to the end of the third step, within the
    // client's.
    let m = scrape(&sim).await;
    let server_ttft = metric(&m, "vllm:time_to_first_token_seconds_sum") * 1000.0;
    assert!(
        server_ttft >= 285.0 && server_ttft <= ttft,
        "{server_ttft} ms, client {ttft} ms"
    );
    assert_eq!(metric(&m, "vllm:prompt_tokens_total"), 150.0);
    assert_eq!(metric(&m, "vllm:generation_tokens_total"), 4.0);
    assert_eq!(metric(&m, "vllm:request_success_total"), 1.0);
    let st = sim.stats();
    assert_eq!(
        (st.steps, st.max_step_tokens, st.max_running),
        (3 + 3, 64, 1)
    );
}

#[tokio::test]
async fn concurrent_requests_batch_within_limits() {
    let sim = start(engine(EngineConfig {
        max_num_seqs: 4,
        ..small()
    }));
    let mut tasks = Vec::new();
    for i in 0..12u32 {
        let ids: Vec<u32> = (1000 * i..1000 * i + 40).collect();
        let url = sim.addr();
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(url).await.unwrap();
            let body = ids_body(&ids, 8).to_string();
            send(&mut conn, "POST", "/v1/completions", &body, true).await;
            read_response(&mut conn, &mut Vec::new()).await
        }));
    }
    // Scraped until every request is answered: the gauge must never pass the cap, and
    // must have been seen full (4 running, more waiting) at least once, where the cap
    // is what holds requests back, so the check cannot pass without checking.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen_full = false;
    while !tasks.iter().all(|t| t.is_finished()) {
        let m = scrape(&sim).await;
        let running = metric(&m, "vllm:num_requests_running");
        let waiting = metric(&m, "vllm:num_requests_waiting");
        assert!(running <= 4.0, "{running} running, {waiting} waiting");
        seen_full |= running == 4.0 && waiting > 0.0;
        assert!(Instant::now() < deadline, "requests not answered in 10 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(seen_full, "never seen 4 running with more waiting");
    for t in tasks {
        let resp = t.await.unwrap();
        assert_eq!(usage(&resp)["completion_tokens"], 8);
    }
    let st = sim.stats();
    assert_eq!(st.completed, 12);
    assert_eq!(st.max_running, 4);
    assert!(st.max_waiting > 0);
    assert!(st.max_step_tokens <= 64);
    // 12 × (40 prompt + 7 decoded) tokens at most 64 a step, and 8 steps per request.
    assert!(st.steps >= (12 * 47u64).div_ceil(64).max(8), "{st:?}");
}

#[tokio::test]
async fn the_prefix_cache_skips_whole_cached_blocks() {
    let sim = start(engine(small()));
    let a: Vec<u32> = (0..100).collect();
    let first = post(&sim, "/v1/completions", ids_body(&a, 1)).await;
    let steps_first = sim.stats().steps;
    let second = post(&sim, "/v1/completions", ids_body(&a, 1)).await;
    let steps_second = sim.stats().steps - steps_first;
    assert_eq!((cached(&first), cached(&second)), (0, 96));
    // 2 steps (64 + 36 tokens) against 1 step of 4 tokens. Steps, not TTFTs: a
    // loaded machine's delays swamp the few ms between them.
    assert_eq!((steps_first, steps_second), (2, 1));
    // A prompt sharing 40 tokens shares two whole blocks.
    let mut c = a[..40].to_vec();
    c.extend(5000..5030);
    assert_eq!(
        cached(&post(&sim, "/v1/completions", ids_body(&c, 1)).await),
        32
    );
    // Non-streamed usage carries it too.
    let body = json!({"prompt": a, "max_tokens": 2, "ignore_eos": true});
    let resp = post(&sim, "/v1/completions", body).await.json();
    assert_eq!(resp["usage"]["prompt_tokens_details"]["cached_tokens"], 96);
    let m = scrape(&sim).await;
    assert_eq!(metric(&m, "vllm:prefix_cache_queries_total"), 370.0);
    assert_eq!(
        metric(&m, "vllm:prefix_cache_hits_total"),
        96.0 + 32.0 + 96.0
    );
    assert_eq!(sim.stats().cached_tokens, 96 + 32 + 96);
}

#[tokio::test]
async fn a_tiny_kv_cache_preempts_and_everyone_finishes() {
    // Eight blocks; each request grows to six.
    let sim = start(engine(EngineConfig {
        kv_capacity_tokens: 128,
        max_model_len: 128,
        ..small()
    }));
    let mut tasks = Vec::new();
    for i in 0..4u32 {
        let ids: Vec<u32> = (100 * i..100 * i + 30).collect();
        let addr = sim.addr();
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(addr).await.unwrap();
            let body = ids_body(&ids, 60).to_string();
            send(&mut conn, "POST", "/v1/completions", &body, true).await;
            read_response(&mut conn, &mut Vec::new()).await
        }));
    }
    for t in tasks {
        assert_eq!(usage(&t.await.unwrap())["completion_tokens"], 60);
    }
    let st = sim.stats();
    assert_eq!(st.completed, 4);
    assert!(st.preemptions > 0);
    let m = scrape(&sim).await;
    assert_eq!(
        metric(&m, "vllm:num_preemptions_total"),
        st.preemptions as f64
    );
    assert_eq!(metric(&m, "vllm:kv_cache_usage_perc"), 0.0);
}

#[tokio::test]
async fn too_long_for_the_context_is_400() {
    let sim = start(engine(EngineConfig {
        max_model_len: 100,
        ..small()
    }));
    let ids: Vec<u32> = (0..90).collect();
    let resp = post(&sim, "/v1/completions", ids_body(&ids, 20)).await;
    assert_eq!(resp.status, 400);
    let msg = resp.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("maximum context length is 100 tokens"),
        "{msg}"
    );
    assert!(msg.contains("you requested 110 tokens (90 in the messages, 20 in the completion)"));
    assert_eq!(sim.stats().requests, 0);
    let ok = post(&sim, "/v1/completions", ids_body(&ids, 10)).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn metrics_counters_only_grow() {
    let sim = start(engine(small()));
    let before = scrape(&sim).await;
    for i in 0..3u32 {
        let body = json!({"messages": [{"role": "user", "content": format!("hello {i}")}],
                          "max_tokens": 3, "ignore_eos": true, "stream": true});
        assert_eq!(post(&sim, "/v1/chat/completions", body).await.status, 200);
    }
    let after = scrape(&sim).await;
    for (k, v) in &before {
        let counter = k.contains("_total") || k.contains("_bucket") || k.contains("_count");
        if counter {
            assert!(after[k] >= *v, "{k} went down");
        }
    }
    assert_eq!(metric(&after, "vllm:request_success_total"), 3.0);
    assert_eq!(
        metric(&after, "vllm:time_to_first_token_seconds_count"),
        3.0
    );
    assert_eq!(metric(&after, "vllm:num_requests_running"), 0.0);

    // The ideal timetable fills what it can.
    let ideal = start(SimConfig {
        ttft_base_ms: 1.0,
        tpot_ms: 0.0,
        ..SimConfig::ideal()
    });
    post(&ideal, "/v1/completions", ids_body(&[1, 2, 3], 5)).await;
    let m = scrape(&ideal).await;
    assert_eq!(metric(&m, "vllm:generation_tokens_total"), 5.0);
    assert_eq!(metric(&m, "vllm:prompt_tokens_total"), 3.0);
    assert_eq!(metric(&m, "vllm:time_to_first_token_seconds_count"), 1.0);
}

#[tokio::test]
async fn the_same_requests_give_the_same_answers() {
    let run = async || {
        let sim = start(SimConfig {
            seed: 7,
            ..engine(small())
        });
        let mut out = Vec::new();
        for i in 0..6u32 {
            let mut ids: Vec<u32> = (0..16 * (i % 3)).collect();
            ids.extend(100 * i..100 * i + 25);
            let body = json!({"prompt": ids, "max_tokens": 20, "stream": true,
                              "stream_options": {"include_usage": true}});
            let resp = post(&sim, "/v1/completions", body).await;
            let u = usage(&resp);
            out.push((cached(&resp), u["completion_tokens"].as_u64().unwrap()));
        }
        (out, sim.stats().cached_tokens)
    };
    let a = run().await;
    assert_eq!(a, run().await);
    assert!(a.1 > 0);
}

#[tokio::test]
async fn a_client_that_leaves_frees_its_blocks() {
    let sim = start(engine(small()));
    let mut conn = TcpStream::connect(sim.addr()).await.unwrap();
    let ids: Vec<u32> = (0..500).collect();
    send(
        &mut conn,
        "POST",
        "/v1/completions",
        &ids_body(&ids, 1000).to_string(),
        true,
    )
    .await;
    // Admitted once the simulator has read the request, however late that is.
    let deadline = Instant::now() + Duration::from_secs(2);
    let m = loop {
        let m = scrape(&sim).await;
        if metric(&m, "vllm:num_requests_running") == 1.0 {
            break m;
        }
        assert!(Instant::now() < deadline, "request not admitted");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(metric(&m, "vllm:kv_cache_usage_perc") > 0.0);
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let m = scrape(&sim).await;
        if metric(&m, "vllm:num_requests_running") == 0.0 {
            assert_eq!(metric(&m, "vllm:kv_cache_usage_perc"), 0.0);
            break;
        }
        assert!(Instant::now() < deadline, "request still running");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sim.stats().completed, 0);
}

#[test]
fn settings_the_engine_cannot_run_are_refused() {
    let cfg = engine(EngineConfig {
        max_num_seqs: 100,
        max_num_batched_tokens: 10,
        ..small()
    });
    let err = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .err()
        .unwrap();
    assert!(err.to_string().contains("max_num_batched_tokens"), "{err}");
}
