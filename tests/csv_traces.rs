//! The CSV traces (Azure LLM inference, BurstGPT) replayed end to end against the
//! simulator: lengths exact, timestamps kept, --model-filter, failed rows, sharding,
//! dual-round, and the errors a wrong file or flag gets.

mod common;

use std::path::Path;

use common::{records, refused, results, session};
use servescope::sim::{SimConfig, SimServer};

const AZURE: &str = "/work/shared/traces/azure_llm_inference_conv_2023.csv";

fn ideal_sim() -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 2.0,
        prefill_ms_per_token: 0.0001,
        tpot_ms: 0.2,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// (µs since the first row, context, generated) of the first `n` rows of the real file.
fn azure_rows(n: usize) -> Vec<(u64, u64, u64)> {
    let text = std::fs::read_to_string(AZURE).unwrap();
    let mut rows: Vec<(f64, u64, u64)> = text
        .lines()
        .skip(1)
        .take(n)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            // Same day: seconds from the time of day.
            let t = &f[0][11..];
            let (h, m, s) = (&t[0..2], &t[3..5], &t[6..]);
            let secs = h.parse::<f64>().unwrap() * 3600.0
                + m.parse::<f64>().unwrap() * 60.0
                + s.parse::<f64>().unwrap();
            (secs, f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    let t0 = rows[0].0;
    rows.iter_mut()
        .map(|r| (((r.0 - t0) * 1e6).round() as u64, r.1, r.2))
        .collect()
}

#[test]
fn the_real_azure_trace_replays_with_its_lengths_and_times() {
    if !Path::new(AZURE).exists() {
        eprintln!("skipped: {AZURE} is not here");
        return;
    }
    let server = ideal_sim();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = session(&[
        "trace",
        AZURE,
        "--limit",
        "60",
        "--time-scale",
        "0.02",
        "--endpoint",
        &server.url(),
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!((o.runs[0].1.total, o.runs[0].1.succeeded), (60, 60));
    let rows = azure_rows(60);
    for r in records(&out) {
        let i = r["id"].as_u64().unwrap() as usize;
        let (t_us, input, output) = rows[i];
        assert_eq!(r["input_tokens"].as_u64().unwrap(), input, "request {i}");
        // The simulator tokenizes the prompt itself: exactly the trace's length.
        assert_eq!(r["prompt_tokens"].as_u64().unwrap(), input, "request {i}");
        assert_eq!(r["output_tokens"].as_u64().unwrap(), output, "request {i}");
        let at = (r["scheduled_at"].as_f64().unwrap() * 1e6).round() as i64;
        assert!(
            (at - (t_us as f64 * 0.02).round() as i64).abs() <= 1,
            "request {i} at {at} µs, the trace says {t_us} × 0.02"
        );
        // No hash ids: prompts share nothing, so nothing is cached.
        assert_eq!(r["cached_tokens"].as_u64().unwrap_or(0), 0, "request {i}");
    }
    let params = &results(&out)["runs"][0]["params"];
    assert_eq!(params["format"], "azure");
    assert!(params.get("block_size").is_none(), "{params}");
}

const BURST: &str = "\
Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
0,ChatGPT,40,5,45,Conversation log
0.05,GPT-4,60,0,60,API log
0.1,GPT-4,30,4,34,API log
0.15,ChatGPT,20,3,23,Conversation log
0.2,GPT-4,50,6,56,Conversation log
0.25,ChatGPT,70,2,72,API log
";

#[test]
fn burstgpt_filters_a_model_and_leaves_out_failures() {
    let server = ideal_sim();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("burst.csv");
    std::fs::write(&trace, BURST).unwrap();
    let out = dir.path().join("all");
    let o = session(&[
        "trace",
        trace.to_str().unwrap(),
        "--endpoint",
        &server.url(),
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    // The row with 0 response tokens (a failed request) is not sent.
    assert_eq!(o.runs[0].1.total, 5);
    let mut lens: Vec<(u64, u64)> = records(&out)
        .iter()
        .map(|r| {
            (
                r["input_tokens"].as_u64().unwrap(),
                r["output_tokens"].as_u64().unwrap(),
            )
        })
        .collect();
    lens.sort();
    assert_eq!(lens, [(20, 3), (30, 4), (40, 5), (50, 6), (70, 2)]);
    let params = &results(&out)["runs"][0]["params"];
    assert_eq!(
        (&params["format"], &params["empty_rows"]),
        (&"burstgpt".into(), &1.into())
    );

    let out = dir.path().join("gpt4");
    let o = session(&[
        "trace",
        trace.to_str().unwrap(),
        "--model-filter",
        "gpt-4",
        "--endpoint",
        &server.url(),
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.runs[0].1.total, 2);
    let recs = records(&out);
    let mut inputs: Vec<u64> = recs
        .iter()
        .map(|r| r["input_tokens"].as_u64().unwrap())
        .collect();
    inputs.sort();
    assert_eq!(inputs, [30, 50]);
    // The replay's zero is the first GPT-4 request kept (0.1 s): 0.2 s comes at 0.1 s.
    let mut at: Vec<f64> = recs
        .iter()
        .map(|r| r["scheduled_at"].as_f64().unwrap())
        .collect();
    at.sort_by(f64::total_cmp);
    assert_eq!(at, [0.0, 0.1]);
    assert_eq!(results(&out)["runs"][0]["params"]["model_filter"], "gpt-4");

    let e = refused(&["trace", trace.to_str().unwrap(), "--model-filter", "claude"]);
    assert!(
        e.contains("--model-filter claude: no row of") && e.contains("ChatGPT, GPT-4"),
        "{e}"
    );
}

#[test]
fn csv_traces_shard_and_feed_dual_round() {
    let server = ideal_sim();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("burst.csv");
    std::fs::write(&trace, BURST).unwrap();
    let mut ids = Vec::new();
    for shard in ["0/2", "1/2"] {
        let out = dir.path().join(shard.replace('/', "-"));
        session(&[
            "trace",
            trace.to_str().unwrap(),
            "--shard",
            shard,
            "--endpoint",
            &server.url(),
            "--output-dir",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        let mut mine: Vec<u64> = records(&out)
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        mine.sort();
        ids.push(mine);
    }
    assert_eq!(ids, [vec![0, 2, 4], vec![1, 3]]);

    let out = dir.path().join("dual");
    let o = session(&[
        "dual-round",
        "--trace",
        trace.to_str().unwrap(),
        "--concurrency",
        "2",
        "--endpoint",
        &server.url(),
        "--output-dir",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        o.runs.iter().all(|(_, s)| s.total == 5),
        "5 requests a round"
    );
}

#[test]
fn wrong_files_and_flags_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("odd.csv");
    std::fs::write(&odd, "when,prompt,answer\n1,2,3\n").unwrap();
    let e = refused(&["trace", odd.to_str().unwrap()]);
    assert!(
        e.starts_with(&format!(
            "trace {}:1: not a known trace format: `when,prompt,answer`; expected a CSV header `TIMESTAMP,ContextTokens,GeneratedTokens` (Azure) or",
            odd.display()
        )),
        "{e}"
    );
    let azure = dir.path().join("azure.csv");
    std::fs::write(
        &azure,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47,1x,44\n",
    )
    .unwrap();
    let e = refused(&["trace", azure.to_str().unwrap()]);
    assert_eq!(
        e,
        format!(
            "trace {}:3: field `ContextTokens`: expected a whole number of tokens ≥ 0, found \"1x\"",
            azure.display()
        )
    );
    std::fs::write(
        &azure,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n",
    )
    .unwrap();
    let a = azure.to_str().unwrap();
    let e = refused(&["trace", a, "--model-filter", "GPT-4"]);
    assert!(
        e.starts_with("--model-filter needs a trace with a model per row (BurstGPT)"),
        "{e}"
    );
    let e = refused(&["trace", a, "--block-size", "16"]);
    assert!(
        e.starts_with("--block-size applies to traces with hash ids"),
        "{e}"
    );
    let e = refused(&["trace", a, "--sessions"]);
    assert!(e.starts_with("--sessions needs a Qwen trace"), "{e}");
    let header_only = dir.path().join("empty.csv");
    std::fs::write(&header_only, "TIMESTAMP,ContextTokens,GeneratedTokens\n").unwrap();
    let e = refused(&["trace", header_only.to_str().unwrap()]);
    assert!(
        e.ends_with("no request to replay: the trace has a header but no rows"),
        "{e}"
    );
}
