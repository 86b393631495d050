use super::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.0123
# HELP vllm:prefix_cache_queries Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1.2345e+06
vllm:prefix_cache_queries_created{engine="0",model_name="m"} 1.7345e+09
# HELP vllm:prompt_tokens Number of prefill tokens processed.
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 48213.0
# HELP vllm:request_success Count of successfully processed requests.
# TYPE vllm:request_success counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 17.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 83.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="m"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 61.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 100.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 100.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 9.87
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{implementation="CPython",major="3",minor="12",patchlevel="3",version="3.12.3"} 1.0
"#;

#[test]
fn vllm_excerpt() {
    let e = parse(VLLM).unwrap();
    assert_eq!(e.samples.len(), 14);
    let s = &e.samples[0];
    assert_eq!(s.name, "vllm:num_requests_running");
    assert_eq!(s.value, 3.0);
    assert_eq!(s.label("model_name"), Some("m"));
    assert_eq!(
        s.key(),
        r#"vllm:num_requests_running{engine="0",model_name="m"}"#
    );
    assert_eq!(e.samples[3].value, 1.2345e6);
    assert_eq!(
        e.family_of("vllm:prefix_cache_queries_total"),
        ("vllm:prefix_cache_queries", MetricType::Counter)
    );
    assert_eq!(
        e.family_of("vllm:time_to_first_token_seconds_sum"),
        ("vllm:time_to_first_token_seconds", MetricType::Histogram)
    );
    assert_eq!(
        e.family_of("vllm:time_to_first_token_seconds_bucket"),
        ("vllm:time_to_first_token_seconds", MetricType::Histogram)
    );
    assert_eq!(
        e.family_of("vllm:num_requests_running"),
        ("vllm:num_requests_running", MetricType::Gauge)
    );
    assert_eq!(
        e.family_of("nothing_total"),
        ("nothing_total", MetricType::Untyped)
    );
    let inf = e
        .samples
        .iter()
        .find(|s| s.label("le") == Some("+Inf"))
        .unwrap();
    assert_eq!(inf.value, 100.0);
    assert_eq!(
        e.help["vllm:kv_cache_usage_perc"],
        "KV-cache usage. 1 means 100 percent usage."
    );
    // Two label sets of one name stay two series.
    let keys: Vec<String> = e
        .samples
        .iter()
        .filter(|s| s.name == "vllm:request_success_total")
        .map(Sample::key)
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}

#[test]
fn sglang_and_llamacpp_names() {
    let text = "# HELP sglang:num_running_reqs The number of running requests.\r\n\
            # TYPE sglang:num_running_reqs gauge\r\n\
            sglang:num_running_reqs{model_name=\"qwen\",tp_rank=\"0\"} 4.0\r\n\
            # TYPE sglang:prompt_tokens counter\r\n\
            sglang:prompt_tokens_total{model_name=\"qwen\"} 1024.0\r\n\
            sglang:cache_hit_rate{model_name=\"qwen\"} NaN\r\n\
            \r\n\
            # HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n\
            # TYPE llamacpp:prompt_tokens_total counter\n\
            llamacpp:prompt_tokens_total 6886\n\
            llamacpp:prompt_tokens_cached_total 2048\n\
            llamacpp:requests_processing 0\n\
            llamacpp:predicted_tokens_seconds 2.37151\n";
    let e = parse(text).unwrap();
    let names: Vec<&str> = e.samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sglang:num_running_reqs",
            "sglang:prompt_tokens_total",
            "sglang:cache_hit_rate",
            "llamacpp:prompt_tokens_total",
            "llamacpp:prompt_tokens_cached_total",
            "llamacpp:requests_processing",
            "llamacpp:predicted_tokens_seconds",
        ]
    );
    assert!(e.samples[2].value.is_nan());
    assert_eq!(e.samples[3].value, 6886.0);
    assert_eq!(
        e.family_of("llamacpp:prompt_tokens_total"),
        ("llamacpp:prompt_tokens_total", MetricType::Counter)
    );
    assert_eq!(
        e.samples[0].key(),
        r#"sglang:num_running_reqs{model_name="qwen",tp_rank="0"}"#
    );
}

#[test]
fn values_escapes_and_timestamps() {
    let text = concat!(
        "a 1\n",
        "b +Inf\n",
        "c -Inf 1700000000000\n",
        "d{x=\"a\\\\b\\\"c\\nd\"} 1.5e-3 -5\n",
        "e{ y = \"2\" , x=\"1\", } 2E3\n",
        "  f\t7\t \n",
        "g{} 0\n",
        "# a free comment with \"quotes\" {\n",
        "#TYPE h counter\n",
        "h_total{le=\"ünïcødé ✓\"} 42\n",
        "# HELP i multi\\nline \\\\ \\x kept\n",
    );
    let e = parse(text).unwrap();
    let s = &e.samples;
    assert_eq!(s[0].value, 1.0);
    assert_eq!(s[1].value, f64::INFINITY);
    assert_eq!(s[2].value, f64::NEG_INFINITY);
    assert_eq!(s[2].timestamp_ms, Some(1_700_000_000_000));
    assert_eq!(s[3].label("x"), Some("a\\b\"c\nd"));
    assert_eq!(s[3].value, 1.5e-3);
    assert_eq!(s[3].timestamp_ms, Some(-5));
    // Re-escaped as it was given.
    assert_eq!(s[3].key(), r#"d{x="a\\b\"c\nd"}"#);
    // Label order is kept as given.
    assert_eq!(s[4].key(), r#"e{y="2",x="1"}"#);
    assert_eq!(s[4].value, 2000.0);
    assert_eq!((s[5].name.as_str(), s[5].value), ("f", 7.0));
    assert_eq!(s[6].key(), "g");
    assert_eq!(e.types["h"], MetricType::Counter);
    assert_eq!(s[7].label("le"), Some("ünïcødé ✓"));
    assert_eq!(e.help["i"], "multi\nline \\ \\x kept");
    assert_eq!(s.len(), 8);
}

#[test]
fn errors_name_the_line_and_what_was_expected() {
    let cases: &[(&str, usize, &str)] = &[
        ("ok 1\nbad\n", 2, "expected a value"),
        ("ok 1\n\nx{a=\"1\" 2\n", 3, "expected ',' or '}'"),
        ("x{a=1} 2", 1, "expected '\"'"),
        ("x{a=\"1} 2", 1, "no closing"),
        ("x{a=\"\\t\"} 2", 1, "invalid escape"),
        ("x{1a=\"1\"} 2", 1, "expected a label name"),
        ("x{a=\"1\",a=\"2\"} 2", 1, "appears twice"),
        ("x 1 2 3", 1, "end of the line after the timestamp"),
        ("x 1 1.5", 1, "integer timestamp"),
        ("x one", 1, "expected a number"),
        ("9x 1", 1, "expected a metric name"),
        ("x-y 1", 1, "expected '{' or a space"),
        ("# TYPE x countr", 1, "expected counter, gauge"),
        ("# TYPE x", 1, "expected counter, gauge"),
        ("# TYPE x gauge\n# TYPE x counter", 2, "second # TYPE"),
        ("# HELP", 1, "expected a metric name after # HELP"),
        ("a 1\r\nb{", 2, "label name"),
    ];
    for (text, line, want) in cases {
        let e = parse(text).unwrap_err();
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(e.message.contains(want), "{text:?}: {e}");
        assert!(e.to_string().starts_with(&format!("line {line}: ")));
    }
}

fn random_name(rng: &mut StdRng) -> String {
    const FIRST: &[u8] = b"abcxyzABZ_:";
    const REST: &[u8] = b"abcxyzABZ_:0189";
    let n = rng.random_range(0..12);
    let mut s = String::new();
    s.push(FIRST[rng.random_range(0..FIRST.len())] as char);
    for _ in 0..n {
        s.push(REST[rng.random_range(0..REST.len())] as char);
    }
    s
}

fn random_label_value(rng: &mut StdRng) -> String {
    const CHARS: &[char] = &[
        'a', 'Z', '0', ' ', '\t', '\\', '"', '\n', '{', '}', ',', '=', '#', 'é', '✓', '\r',
    ];
    let n = rng.random_range(0..10);
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())])
        .collect()
}

fn random_value(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..8) {
        0 => f64::INFINITY,
        1 => f64::NEG_INFINITY,
        2 => f64::NAN,
        3 => rng.random_range(0..1000) as f64,
        4 => f64::from_bits(rng.random::<u64>()),
        _ => rng.random::<f64>() * 10f64.powi(rng.random_range(-300..300)),
    }
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

#[test]
fn random_round_trip() {
    let mut rng = StdRng::seed_from_u64(4);
    for _ in 0..300 {
        let mut want = Vec::new();
        let mut text = String::new();
        for _ in 0..rng.random_range(0..20) {
            if rng.random_bool(0.2) {
                text.push_str(
                    "# HELP some_name text with \\\\ and \"quotes\"\n# other comment\n\n",
                );
            }
            let mut labels: Vec<(String, String)> = Vec::new();
            for _ in 0..rng.random_range(0..4) {
                let k = random_name(&mut rng).replace(':', "_");
                if !labels.iter().any(|(x, _)| *x == k) {
                    labels.push((k, random_label_value(&mut rng)));
                }
            }
            let s = Sample {
                name: random_name(&mut rng),
                labels,
                value: random_value(&mut rng),
                timestamp_ms: rng.random_bool(0.3).then(|| rng.random::<i64>()),
            };
            text.push_str(&s.to_string());
            text.push_str(if rng.random_bool(0.5) { "\r\n" } else { "\n" });
            want.push(s);
        }
        let got = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(got.samples.len(), want.len(), "{text}");
        for (g, w) in got.samples.iter().zip(&want) {
            assert_eq!(g.name, w.name);
            assert_eq!(g.labels, w.labels, "{text}");
            assert!(same_value(g.value, w.value), "{} vs {}", g.value, w.value);
            assert_eq!(g.timestamp_ms, w.timestamp_ms);
            assert_eq!(g.key(), w.key());
        }
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = StdRng::seed_from_u64(9);
    // Bytes biased towards the format's own punctuation, so parsing gets deep.
    const PIECES: &[&str] = &[
        "a", ":", "_", "{", "}", "=", "\"", "\\", ",", " ", "\t", "\n", "\r", "#", "1", "e",
        "+Inf", "NaN", "-", ".", "é", "✓", "HELP", "TYPE", "counter", "\u{0}", "le=\"",
    ];
    for _ in 0..3000 {
        let mut s = String::new();
        for _ in 0..rng.random_range(0..40) {
            s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
        }
        let _ = parse(&s);
        let bytes: Vec<u8> = (0..rng.random_range(0..64))
            .map(|_| rng.random::<u8>())
            .collect();
        let _ = parse(&String::from_utf8_lossy(&bytes));
    }
}
