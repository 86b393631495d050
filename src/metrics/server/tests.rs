use super::collect::*;
use super::presets::*;
use super::*;
use crate::metrics::prometheus;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Collect from texts at the given seconds, as the scrapes would.
fn collect(asked: &[&str], pages: &[(f64, &str)]) -> ServerMetrics {
    let mut c = Collector::new(names(asked));
    for (at, text) in pages {
        c.add(*at, &prometheus::parse(text).unwrap());
    }
    c.finish(None).unwrap()
}

fn counter(m: &ServerMetrics, key: &str) -> CounterChange {
    match &m
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {m:#?}"))
        .value
    {
        SeriesValue::Counter(c) => c.clone(),
        v => panic!("{key} is {v:?}"),
    }
}

fn gauge(m: &ServerMetrics, key: &str) -> Stats {
    match &m
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {m:#?}"))
        .value
    {
        SeriesValue::Gauge { stats: Some(s), .. } => s.clone(),
        v => panic!("{key} is {v:?}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn names_and_presets() {
    let n = parse_names("vllm, my_metric ,vllm:num_requests_running,tgi").unwrap();
    assert_eq!(n[0], "vllm:num_requests_running");
    assert_eq!(n.len(), VLLM.len() + 2, "duplicates dropped");
    assert_eq!(&n[VLLM.len()..], ["my_metric", "tgi"]);
    let n = parse_names("sglang,llamacpp").unwrap();
    assert_eq!(n.len(), SGLANG.len() + LLAMACPP.len());
    assert!(n.contains(&"llamacpp:prompt_tokens_cached".to_string()));
    assert_eq!(parse_names("llama.cpp").unwrap().len(), LLAMACPP.len());
    assert!(
        parse_names("vllm,bad name")
            .unwrap_err()
            .contains("bad name")
    );
    assert!(parse_names(" , ").is_err());
    let url = Url::parse("http://127.0.0.1:8000/metrics").unwrap();
    assert!(MetricsSpec::new(url.clone(), "vllm", Duration::ZERO).is_err());
    assert!(MetricsSpec::new(Url::parse("ftp://h/m").unwrap(), "x", DEFAULT_INTERVAL).is_err());
    assert!(
        MetricsSpec::new(Url::parse("http://u:p@h/m").unwrap(), "x", DEFAULT_INTERVAL)
            .unwrap_err()
            .contains("credentials")
    );
    let s = MetricsSpec::new(url, "x,y", DEFAULT_INTERVAL).unwrap();
    assert_eq!(s.names, ["x", "y"]);
}

#[test]
fn a_misspelt_preset_suggests_the_nearest() {
    for (word, near) in [
        ("vlm", "vllm"),
        ("VLLM", "vllm"),
        ("sglng", "sglang"),
        ("llama-cpp", "llamacpp"),
        ("llamacp", "llamacpp"),
    ] {
        let e = parse_names(&format!("{word},vllm:num_requests_running")).unwrap_err();
        assert!(
            e.contains(&format!("{word:?} is not a preset; did you mean `{near}`?")),
            "{word}: {e}"
        );
    }
    // Metric names, prefixed or far from every preset, are taken as they are.
    assert_eq!(parse_names("vllm:foo,tgi,my_metric").unwrap().len(), 3);
}

#[test]
fn same_origin_cases() {
    let u = |s: &str| Url::parse(s).unwrap();
    assert!(same_origin(
        &u("http://h:8000/v1/chat/completions"),
        &u("http://h:8000/metrics")
    ));
    assert!(same_origin(&u("http://h/v1"), &u("http://h:80/metrics")));
    assert!(same_origin(
        &u("https://H.example/v1"),
        &u("https://h.example:443/metrics")
    ));
    assert!(same_origin(
        &u("http://[::1]:8000/"),
        &u("http://[0:0:0:0:0:0:0:1]:8000/m")
    ));
    assert!(!same_origin(
        &u("http://h:8000/"),
        &u("http://h:8001/metrics")
    ));
    assert!(!same_origin(
        &u("http://h:8000/"),
        &u("http://other:8000/metrics")
    ));
    assert!(!same_origin(
        &u("https://h:8000/"),
        &u("http://h:8000/metrics")
    ));
    assert!(!same_origin(
        &u("http://localhost:8000/"),
        &u("http://127.0.0.1:8000/")
    ));
    assert!(!same_origin(&u("https://h/"), &u("https://h:8443/")));
}

#[test]
fn counters_gauges_histograms_and_label_sets() {
    let page = |n: f64| {
        format!(
            "# TYPE vllm:prompt_tokens counter\n\
                 vllm:prompt_tokens_total{{model_name=\"a\"}} {a}\n\
                 vllm:prompt_tokens_total{{model_name=\"b\"}} {b}\n\
                 vllm:prompt_tokens_created{{model_name=\"a\"}} 1.7e9\n\
                 # TYPE vllm:num_requests_running gauge\n\
                 vllm:num_requests_running{{model_name=\"a\"}} {n}\n\
                 # TYPE vllm:time_to_first_token_seconds histogram\n\
                 vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",model_name=\"a\"}} {n}\n\
                 vllm:time_to_first_token_seconds_sum{{model_name=\"a\"}} {s}\n\
                 vllm:time_to_first_token_seconds_count{{model_name=\"a\"}} {n}\n\
                 # TYPE lat summary\n\
                 lat{{quantile=\"0.5\"}} 1\n\
                 lat_sum 2\n\
                 lat_count {n}\n\
                 # TYPE old counter\n\
                 old {n}\n",
            a = 100.0 * n,
            b = 7.0 * n,
            s = 0.2 * n,
        )
    };
    let pages: Vec<(f64, String)> = (0..5)
        .map(|i| (i as f64 * 0.5, page(i as f64 + 1.0)))
        .collect();
    let pages: Vec<(f64, &str)> = pages.iter().map(|(t, p)| (*t, p.as_str())).collect();
    let m = collect(
        &[
            "vllm:prompt_tokens",
            "vllm:num_requests_running",
            "vllm:time_to_first_token_seconds",
            "lat",
            "old_total",
            "not_there",
        ],
        &pages,
    );
    let keys: Vec<&str> = m.series.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            r#"vllm:prompt_tokens_total{model_name="a"}"#,
            r#"vllm:prompt_tokens_total{model_name="b"}"#,
            r#"vllm:num_requests_running{model_name="a"}"#,
            r#"vllm:time_to_first_token_seconds_sum{model_name="a"}"#,
            r#"vllm:time_to_first_token_seconds_count{model_name="a"}"#,
            "lat_sum",
            "lat_count",
            "old",
        ]
    );
    let a = counter(&m, r#"vllm:prompt_tokens_total{model_name="a"}"#);
    assert_eq!((a.before, a.after, a.delta), (Some(100.0), 500.0, 400.0));
    assert!(close(a.rate.unwrap(), 200.0), "400 over 2 s");
    assert!(a.notes.is_empty());
    let b = counter(&m, r#"vllm:prompt_tokens_total{model_name="b"}"#);
    assert_eq!(b.delta, 28.0);
    let g = gauge(&m, r#"vllm:num_requests_running{model_name="a"}"#);
    assert_eq!((g.count, g.min, g.max, g.mean), (5, 1.0, 5.0, 3.0));
    assert_eq!(
        counter(&m, "old").delta,
        4.0,
        "x_total asked, x exposed as a counter"
    );
    assert_eq!(m.missing, ["not_there"]);
    assert!(close(m.derived_value("mean_ttft_ms").unwrap(), 200.0));
    assert_eq!((m.scrapes, m.duration_s), (5, 2.0));
}

#[test]
fn restarts_late_series_and_nan() {
    let m = collect(
        &["c", "late", "g"],
        &[
            (0.0, "# TYPE c counter\nc_total 50\ng NaN\n"),
            (1.0, "c_total 80\nlate_total 3\ng 2\n"),
            (2.0, "c_total 10\nlate_total 5\ng NaN\n"),
            (4.0, "c_total 30\nlate_total 9\ng 4\n"),
        ],
    );
    let c = counter(&m, "c_total");
    // 50→80 (+30), restart, 10 (+10), →30 (+20).
    assert_eq!((c.before, c.after, c.delta), (Some(50.0), 30.0, 60.0));
    assert_eq!(c.rate, Some(15.0));
    assert!(c.notes[0].contains("went down"), "{:?}", c.notes);
    let late = counter(&m, "late_total");
    assert_eq!((late.before, late.delta), (None, 9.0));
    assert!(late.notes[0].contains("absent before"));
    let j = m.to_json();
    assert!(j["late_total"]["before"].is_null());
    assert!(j["c_total"]["note"].as_str().unwrap().contains("restart"));
    // NaN samples are not numbers to average.
    let g = gauge(&m, "g");
    assert_eq!((g.count, g.mean), (2, 3.0));
}

#[test]
fn derived_hit_rates_per_engine_and_label_set() {
    let before = "\
            vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 1000\n\
            vllm:prefix_cache_hits_total{model_name=\"m\",engine=\"0\"} 100\n\
            vllm:prefix_cache_queries_total{engine=\"1\",model_name=\"m\"} 0\n\
            vllm:prefix_cache_hits_total{engine=\"1\",model_name=\"m\"} 0\n\
            llamacpp:prompt_tokens_total 100\n\
            llamacpp:prompt_tokens_cached_total 0\n\
            sglang:cache_hit_rate{model_name=\"s\"} 0.5\n\
            sglang:prompt_tokens_total{model_name=\"q\"} 0\n\
            sglang:cached_tokens_total{model_name=\"q\"} 0\n";
    let after = "\
            vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"m\"} 2000\n\
            vllm:prefix_cache_hits_total{model_name=\"m\",engine=\"0\"} 700\n\
            vllm:prefix_cache_queries_total{engine=\"1\",model_name=\"m\"} 0\n\
            vllm:prefix_cache_hits_total{engine=\"1\",model_name=\"m\"} 0\n\
            llamacpp:prompt_tokens_total 400\n\
            llamacpp:prompt_tokens_cached_total 100\n\
            sglang:cache_hit_rate{model_name=\"s\"} 0.7\n\
            sglang:prompt_tokens_total{model_name=\"q\"} 40\n\
            sglang:cached_tokens_total{model_name=\"q\"} 10\n";
    let mut asked: Vec<&str> = VLLM.to_vec();
    asked.extend(SGLANG);
    asked.extend(LLAMACPP);
    let m = collect(&asked, &[(0.0, before), (1.0, after)]);
    let d: HashMap<String, Option<f64>> = m.derived.iter().map(|d| (d.key(), d.value)).collect();
    // Label order differs between the two counters: still the same label set.
    assert_eq!(
        d[r#"prefix_cache_hit_rate{model_name="m",engine="0"}"#],
        Some(0.6)
    );
    assert_eq!(
        d[r#"prefix_cache_hit_rate{engine="1",model_name="m"}"#], None,
        "no queries"
    );
    // llama.cpp: 100 cached of 100 + 300 prompt tokens.
    assert_eq!(d["prefix_cache_hit_rate"], Some(0.25));
    assert!(close(
        d[r#"prefix_cache_hit_rate{model_name="s"}"#].unwrap(),
        0.6
    ));
    assert_eq!(d[r#"prefix_cache_hit_rate{model_name="q"}"#], Some(0.25));
    assert_eq!(
        m.derived_value("prefix_cache_hit_rate"),
        None,
        "several label sets"
    );
    let j = m.to_json();
    assert_eq!(j["derived"]["prefix_cache_hit_rate"], json!(0.25));
    // The old and new names of one quantity: the one not served is not missing.
    assert!(
        !m.missing
            .contains(&"vllm:gpu_prefix_cache_hits".to_string())
    );
    assert!(m.missing.contains(&"vllm:kv_cache_usage_perc".to_string()));
    assert!(m.missing.contains(&"vllm:gpu_cache_usage_perc".to_string()));
}

#[test]
fn json_shape() {
    let m = collect(
        &["c", "g", "nope"],
        &[
            (0.0, "# TYPE c counter\nc_total 1\ng 5\n"),
            (2.0, "c_total 5\ng 7\n"),
        ],
    );
    let j = m.to_json();
    assert_eq!(
        j["c_total"],
        json!({"type": "counter", "before": 1.0, "after": 5.0, "delta": 4.0, "rate": 2.0})
    );
    let g = &j["g"];
    assert_eq!(g["type"], "gauge");
    for k in ["mean", "p50", "p90", "p99", "min", "max", "std", "count"] {
        assert!(g.get(k).is_some(), "{k}");
    }
    assert_eq!(g["count"], 2);
    assert_eq!(
        g["samples"],
        json!([[0.0, 5.0], [2.0, 7.0]]),
        "timed samples"
    );
    let extra = m.to_json_with(&[99.9]);
    assert!(close(extra["g"]["p99.9"].as_f64().unwrap(), 6.998));
    assert_eq!(extra["g"]["p50"], 6.0);
    assert_eq!(j["missing"], json!(["nope"]));
    assert_eq!(j["derived"], json!({}));
    assert!(j.get("failed_samples").is_none());
    let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["c_total", "g", "derived", "missing"]);
    // One scrape only: nothing to compare.
    let mut c = Collector::new(names(&["c"]));
    c.add(0.0, &prometheus::parse("c 1").unwrap());
    assert!(c.finish(Some("boom".into())).unwrap_err().contains("boom"));
}

// ----- against a live HTTP server -----

struct TestServer {
    hits: AtomicU64,
    auths: Mutex<Vec<Option<String>>>,
    /// Which scrape numbers (1-based) answer 500.
    fail: fn(u64) -> bool,
    body: fn(u64) -> String,
}

async fn metrics_handler(State(st): State<Arc<TestServer>>, headers: HeaderMap) -> Response {
    let n = st.hits.fetch_add(1, Ordering::SeqCst) + 1;
    let auth = headers
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("?").to_string());
    st.auths.lock().unwrap().push(auth);
    if (st.fail)(n) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    (st.body)(n).into_response()
}

async fn serve(fail: fn(u64) -> bool, body: fn(u64) -> String) -> (Url, Arc<TestServer>) {
    let st = Arc::new(TestServer {
        hits: AtomicU64::new(0),
        auths: Mutex::new(Vec::new()),
        fail,
        body,
    });
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_handler))
        .with_state(st.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (Url::parse(&format!("http://{addr}/metrics")).unwrap(), st)
}

/// Changes with every scrape `n`: counters grow, gauges move.
fn live_page(n: u64) -> String {
    let n = n as f64;
    format!(
        "# HELP test:requests Requests served.\n\
             # TYPE test:requests counter\n\
             test:requests_total{{model_name=\"a\"}} {}\n\
             test:requests_total{{model_name=\"b\"}} {}\n\
             # TYPE test:running gauge\n\
             test:running{{model_name=\"a\"}} {}\n\
             test:running{{model_name=\"b\"}} {}\n\
             # TYPE vllm:prefix_cache_queries counter\n\
             vllm:prefix_cache_queries_total{{model_name=\"a\"}} {}\n\
             # TYPE vllm:prefix_cache_hits counter\n\
             vllm:prefix_cache_hits_total{{model_name=\"a\"}} {}\n\
             # TYPE vllm:time_to_first_token_seconds histogram\n\
             vllm:time_to_first_token_seconds_bucket{{le=\"0.1\",model_name=\"a\"}} {n}\n\
             vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",model_name=\"a\"}} {}\n\
             vllm:time_to_first_token_seconds_sum{{model_name=\"a\"}} {}\n\
             vllm:time_to_first_token_seconds_count{{model_name=\"a\"}} {}\n\
             unrelated_metric 1\n",
        10.0 * n,
        n,
        n,
        1000.0 - n,
        100.0 * n,
        25.0 * n,
        2.0 * n,
        0.5 * n,
        2.0 * n,
    )
}

fn spec(url: &Url, metrics: &str) -> MetricsSpec {
    MetricsSpec::new(url.clone(), metrics, Duration::from_millis(20)).unwrap()
}

#[tokio::test]
async fn live_run_with_auth() {
    let (url, st) = serve(|_| false, live_page).await;
    let auth = HeaderValue::from_static("Bearer secret");
    let scraper = Scraper::new(Some(auth), Duration::from_secs(5)).unwrap();
    let spec = spec(
        &url,
        "test:requests,test:running,vllm:prefix_cache_queries,vllm:prefix_cache_hits,\
             vllm:time_to_first_token_seconds,test:never_there",
    );
    let running = scraper.start(&spec).await.unwrap();
    assert_eq!(
        st.hits.load(Ordering::SeqCst),
        1,
        "the first scrape is awaited"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Then until two samples are in, however slow the machine: the fourth scrape
    // is sent only once the third one's answer was read.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while st.hits.load(Ordering::SeqCst) < 4 {
        assert!(tokio::time::Instant::now() < deadline, "not sampling");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let m = running.finish().await.unwrap();
    assert_eq!(m.failed_samples, 0, "{:?}", m.last_error);
    assert!(m.scrapes >= 4, "before, some samples, after: {}", m.scrapes);

    let a = counter(&m, r#"test:requests_total{model_name="a"}"#);
    let last = a.after / 10.0;
    assert_eq!(a.before, Some(10.0));
    assert_eq!(a.delta, 10.0 * (last - 1.0));
    assert!(close(a.rate.unwrap() * m.duration_s, a.delta));
    assert!(m.duration_s >= 0.15);
    let b = counter(&m, r#"test:requests_total{model_name="b"}"#);
    assert_eq!(b.delta, last - 1.0, "label sets never mixed");

    let ga = gauge(&m, r#"test:running{model_name="a"}"#);
    let gb = gauge(&m, r#"test:running{model_name="b"}"#);
    assert_eq!(
        ga.count, m.scrapes,
        "every scrape, before and after included"
    );
    assert_eq!((ga.min, ga.max), (1.0, last));
    assert_eq!(gb.max, 999.0);
    assert!(close(ga.mean + gb.mean, 1000.0));

    assert!(
        m.get(r#"vllm:time_to_first_token_seconds_sum{model_name="a"}"#)
            .is_some()
    );
    assert!(
        m.series.iter().all(|s| !s.key.contains("_bucket")),
        "buckets left out"
    );
    assert!(m.get("unrelated_metric").is_none());
    assert!(close(
        m.derived_value("prefix_cache_hit_rate").unwrap(),
        0.25
    ));
    assert!(close(m.derived_value("mean_ttft_ms").unwrap(), 250.0));
    assert_eq!(m.missing, ["test:never_there"]);
    let j = m.to_json();
    assert_eq!(
        j[r#"test:requests_total{model_name="a"}"#]["type"],
        "counter"
    );
    assert_eq!(j[r#"test:running{model_name="b"}"#]["type"], "gauge");
    assert!(
        j["derived"]
            .get(r#"mean_ttft_ms{model_name="a"}"#)
            .is_some()
    );

    let auths = st.auths.lock().unwrap();
    assert!(auths.len() >= m.scrapes);
    assert!(auths.iter().all(|a| a.as_deref() == Some("Bearer secret")));
}

#[tokio::test]
async fn no_auth_unless_given_and_failures_counted() {
    // Scrapes 2 and 3 (during the run) fail; the others work.
    let (url, st) = serve(|n| n == 2 || n == 3, live_page).await;
    let scraper = Scraper::new(None, Duration::from_secs(5)).unwrap();
    let running = scraper.start(&spec(&url, "test:requests")).await.unwrap();
    while st.hits.load(Ordering::SeqCst) < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let m = running.finish().await.unwrap();
    assert_eq!(m.failed_samples, 2);
    assert!(m.last_error.as_deref().unwrap().contains("HTTP 500"));
    assert_eq!(m.to_json()["failed_samples"], 2);
    assert!(st.auths.lock().unwrap().iter().all(Option::is_none));
}

#[tokio::test]
async fn failures_before_and_after_the_run() {
    // HTTP error before the run: an error naming the URL and the cause.
    let (url, _) = serve(|_| true, live_page).await;
    let scraper = Scraper::new(None, Duration::from_secs(5)).unwrap();
    let e = scraper.start(&spec(&url, "x")).await.unwrap_err();
    assert!(e.contains(url.as_str()) && e.contains("HTTP 500"), "{e}");

    // Not the text format.
    let (url, _) = serve(|_| false, |_| "x{a=\"1\" 2\n".into()).await;
    let e = scraper.start(&spec(&url, "x")).await.unwrap_err();
    assert!(e.contains(url.as_str()) && e.contains("line 1"), "{e}");

    // Nothing listening.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = Url::parse(&format!("http://{}/metrics", free.local_addr().unwrap())).unwrap();
    drop(free);
    let e = scraper.start(&spec(&dead, "x")).await.unwrap_err();
    assert!(e.contains(dead.as_str()), "{e}");

    // Every scrape after the first fails: nothing to compare with.
    let (url, _) = serve(|n| n > 1, live_page).await;
    let running = scraper.start(&spec(&url, "test:requests")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = running.finish().await.unwrap_err();
    assert!(e.contains("HTTP 500"), "{e}");

    // Only the final scrape fails: counted up to the last sample, with a note.
    let (url, st) = serve(|n| n > 3, live_page).await;
    let running = scraper.start(&spec(&url, "test:requests")).await.unwrap();
    while st.hits.load(Ordering::SeqCst) < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let m = running.finish().await.unwrap();
    let a = counter(&m, r#"test:requests_total{model_name="a"}"#);
    assert_eq!((a.before, a.after), (Some(10.0), 30.0));
    assert!(
        a.notes
            .iter()
            .any(|n| n.contains("scrape after the run failed"))
    );
    assert!(m.failed_samples >= 2);
}
