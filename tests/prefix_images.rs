//! `--shared-prefix` groups and `--images`, end to end in-process against the
//! simulator: the prefix cache hits on each group's system prompt after its first
//! request; every load mode sends the groups; images reach the simulator, which
//! charges their tokens in usage; dataset entries' image files are embedded; the APIs
//! that take no images are refused by name.

mod common;

use std::path::Path;

use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};
use servescope::workload::Tokenizer;
use servescope::workload::images::{ImageFormat, ImageSpec};
use servescope::workload::shared_prefix::{SharedPrefix, SharedPrefixSpec};
use servescope::{Error, run_args};

fn sim(image_tokens: u32) -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 2.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 0.5,
        image_tokens,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn num(r: &Value, key: &str) -> u64 {
    r[key].as_u64().unwrap_or_else(|| panic!("{key} in {r}"))
}

fn input_error(args: &[&str]) -> String {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    match run_args(argv) {
        Err(e @ (Error::Input(_) | Error::Dataset(_))) if e.exit_code() == 2 => e.to_string(),
        other => panic!("{args:?}: expected an input error, got {other:?}"),
    }
}

#[test]
fn the_prefix_cache_hits_on_each_group_system_prompt_after_its_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // S is not a multiple of the simulator's 16-token blocks: the cache holds whole
    // blocks, so a hit is S rounded down to a block.
    let (g, p, s, q) = (3u32, 6u32, 200u64, 40u64);
    let flag = format!("groups={g},prompts={p},system-len={s},question-len={q}");
    // The built-in simulator, its engine and prefix cache; one request at a time so
    // each finds the previous ones cached.
    let args = [
        "concurrency",
        "--concurrency",
        "1",
        "--shared-prefix",
        &flag,
        "--output-len",
        "4",
        "--seed",
        "11",
        "--quiet",
        "--output-dir",
        out.to_str().unwrap(),
    ];
    common::session(&args);
    let recs = common::records(&out);
    assert_eq!(
        recs.len(),
        (g * p) as usize,
        "--num-requests defaults to G×P"
    );
    let spec: SharedPrefixSpec = flag.parse().unwrap();
    let source = SharedPrefix::new(spec, &Tokenizer::builtin()).unwrap();
    let mut seen = std::collections::HashSet::new();
    let (mut later_cached, mut later_prompt, mut later_n) = (0u64, 0u64, 0u64);
    let mut sorted = recs.clone();
    sorted.sort_by_key(|r| num(r, "id"));
    for r in &sorted {
        let prompt = num(r, "prompt_tokens");
        let cached = num(r, "cached_tokens");
        assert_eq!(prompt, s + q, "exactly S+Q tokens: {r}");
        let group = source.slot(11, 0, num(r, "id")).group;
        if seen.insert(group) {
            assert_eq!(cached, 0, "group {group}'s first request: {r}");
        } else {
            assert!(
                (s - 15..=s).contains(&cached),
                "group {group}: {cached} of {prompt} cached, expected S={s} to a block"
            );
            later_cached += cached;
            later_prompt += prompt;
            later_n += 1;
        }
    }
    assert_eq!(seen.len(), g as usize);
    assert_eq!(later_n, u64::from(g * (p - 1)));
    let share = later_cached as f64 / later_prompt as f64;
    let expected = s as f64 / (s + q) as f64;
    assert!(
        (share - expected).abs() <= 16.0 / (s + q) as f64,
        "hit share {share:.3}, expected ≈ {expected:.3}"
    );
}

#[test]
fn every_load_mode_sends_the_groups() {
    let sim = sim(0);
    let url = sim.url();
    let flag = "groups=2,prompts=3,system-len=24,question-len=8";
    for (mode, extra) in [
        ("batch", vec!["--batch-sizes", "4"]),
        ("throughput", vec![]),
        ("concurrency", vec!["--concurrency", "2"]),
        ("rate", vec!["--rates", "200"]),
        ("dual-round", vec!["--concurrency", "2"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut args = vec![mode];
        args.extend(extra);
        args.extend([
            "--endpoint",
            &url,
            "--shared-prefix",
            flag,
            "--output-len",
            "3",
            "--quiet",
            "--output-dir",
            out.to_str().unwrap(),
        ]);
        common::session(&args);
        let recs = common::records(&out);
        let want = match mode {
            "batch" => 4,
            "dual-round" => 12, // two rounds of G×P
            _ => 6,
        };
        assert_eq!(recs.len(), want, "{mode}");
        for r in &recs {
            assert_eq!(r["status"], "ok", "{mode}: {r}");
            assert_eq!(num(r, "prompt_tokens"), 32, "{mode}: {r}");
            assert_eq!(num(r, "input_tokens"), 32, "{mode}: {r}");
        }
    }
    // Completions: one text of S+Q tokens; a shard sends its part.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    common::session(&[
        "throughput",
        "--endpoint",
        &url,
        "--api",
        "completions",
        "--shared-prefix",
        flag,
        "--shard",
        "1/2",
        "--quiet",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    let recs = common::records(&out);
    let mut ids: Vec<u64> = recs.iter().map(|r| num(r, "id")).collect();
    ids.sort();
    assert_eq!(ids, [1, 3, 5]);
    assert!(recs.iter().all(|r| num(r, "prompt_tokens") == 32));
}

fn image_run(url: Option<&str>, api: &str, extra: &[&str]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args = vec![
        "concurrency",
        "--concurrency",
        "2",
        "--num-requests",
        "4",
        "--input-len",
        "30",
        "--output-len",
        "3",
        "--images",
        "2",
        "--image-size",
        "24x16",
        "--api",
        api,
        "--quiet",
        "--output-dir",
        out.to_str().unwrap(),
    ];
    if let Some(u) = url {
        args.extend(["--endpoint", u]);
    }
    args.extend_from_slice(extra);
    common::session(&args);
    common::records(&out)
}

#[test]
fn the_simulator_charges_each_image_and_input_tokens_come_from_usage() {
    let sim = sim(100);
    for api in ["chat", "responses"] {
        let recs = image_run(Some(&sim.url()), api, &[]);
        assert_eq!(recs.len(), 4);
        for r in &recs {
            assert_eq!(r["status"], "ok", "{api}: {r}");
            assert_eq!(num(r, "prompt_tokens"), 30 + 2 * 100, "{api}: {r}");
            // The client counts text only; with images the server's count stands.
            assert_eq!(num(r, "input_tokens"), 230, "{api}: {r}");
        }
    }
    // The load commands' built-in simulator, with its own charge; PNG this time.
    let recs = image_run(
        None,
        "chat",
        &["--sim-image-tokens", "7", "--image-format", "png"],
    );
    assert!(
        recs.iter().all(|r| num(r, "prompt_tokens") == 30 + 14),
        "{recs:?}"
    );
}

#[test]
fn apis_without_images_and_stray_image_flags_are_refused_by_name() {
    let sim = sim(10);
    let url = sim.url();
    let base = ["concurrency", "--concurrency", "1", "--num-requests", "1"];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        input_error(&v)
    };
    for api in ["completions", "embeddings"] {
        let err = with(&["--endpoint", &url, "--images", "1", "--api", api]);
        assert!(err.contains("--images") && err.contains(api), "{err}");
    }
    // An API named by the endpoint's path is known only once connected.
    let route = format!("{url}/v1/completions");
    let err = with(&["--endpoint", &route, "--images", "1"]);
    assert!(
        err.contains("--images needs the chat or responses API"),
        "{err}"
    );
    let err = with(&["--image-size", "8x8"]);
    assert!(
        err.contains("--image-size") && err.contains("--images"),
        "{err}"
    );
    let err = with(&["--image-format", "png"]);
    assert!(err.contains("--image-format"), "{err}");
    let err = with(&["--images", "1", "--prompt-token-ids", "--api", "chat"]);
    assert!(err.contains("--prompt-token-ids"), "{err}");
    let err = with(&["--endpoint", &url, "--sim-image-tokens", "3"]);
    assert!(err.contains("--sim-image-tokens"), "{err}");
    let err = with(&["--images", "1", "--image-size", "0x5"]);
    assert!(err.contains("--image-size") && err.contains("WxH"), "{err}");
    let err = with(&["--shared-prefix", "groups=1,prompts=2,system-len=3"]);
    assert!(err.contains("question-len is missing"), "{err}");
    let err = with(&[
        "--shared-prefix",
        "groups=1,prompts=1,system-len=1,question-len=1",
        "--input-len",
        "5",
    ]);
    assert!(err.contains("--input-len"), "{err}");
    // --synthetic-prompts would be ignored beside prompts that are not synthetic.
    let err = with(&[
        "--shared-prefix",
        "groups=1,prompts=1,system-len=1,question-len=1",
        "--synthetic-prompts",
        "random-ids",
    ]);
    assert!(
        err.contains("--synthetic-prompts") && err.contains("--shared-prefix"),
        "{err}"
    );
    let err = with(&["--dataset", "/x.jsonl", "--synthetic-prompts", "words"]);
    assert!(
        err.contains("--synthetic-prompts") && err.contains("--dataset"),
        "{err}"
    );
}

fn write_image(dir: &Path, name: &str) -> Vec<u8> {
    let spec = ImageSpec {
        count: 1,
        width: 10,
        height: 6,
        format: ImageFormat::Png,
    };
    let bytes = spec.image(1, 0, 0, 0).unwrap();
    std::fs::write(dir.join(name), &bytes).unwrap();
    bytes
}

#[test]
fn dataset_images_are_embedded_from_files_and_urls_passed_on() {
    use base64::Engine;
    use servescope::workload::dataset::{PromptContent, dataset_prompts};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("img")).unwrap();
    let png = write_image(&dir.path().join("img"), "a.png");
    let data = dir.path().join("data.jsonl");
    std::fs::write(
        &data,
        concat!(
            r#"{"prompt": "describe these", "images": ["img/a.png", "https://example.com/cat.jpg"]}"#,
            "\n",
            r#"{"messages": [{"role": "user", "content": "and this"}], "images": ["img/a.png"]}"#,
            "\n",
            r#"{"prompt": "no image"}"#,
            "\n",
        ),
    )
    .unwrap();
    let entries = dataset_prompts(&data, false).unwrap();
    let PromptContent::Messages(m) = &entries[0].content else {
        panic!("{:?}", entries[0].content)
    };
    let parts = &m[0]["content"];
    assert_eq!(parts[0]["text"], "describe these");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    assert_eq!(
        parts[1]["image_url"]["url"],
        format!("data:image/png;base64,{b64}")
    );
    assert_eq!(parts[2]["image_url"]["url"], "https://example.com/cat.jpg");
    let PromptContent::Messages(m) = &entries[1].content else {
        panic!()
    };
    assert_eq!(
        m[0]["content"][1]["image_url"]["url"],
        parts[1]["image_url"]["url"]
    );
    assert_eq!(entries[2].content, PromptContent::Text("no image".into()));

    // Sent: the simulator charges the images (the https one too: it is not fetched).
    let sim = sim(50);
    let out = dir.path().join("out");
    common::session(&[
        "throughput",
        "--endpoint",
        &sim.url(),
        "--dataset",
        data.to_str().unwrap(),
        "--num-requests",
        "3",
        "--output-len",
        "2",
        "--quiet",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    let mut recs = common::records(&out);
    recs.sort_by_key(|r| num(r, "id"));
    let tok = Tokenizer::builtin();
    let text = |s: &str| tok.count(s) as u64;
    assert_eq!(num(&recs[0], "prompt_tokens"), text("describe these") + 100);
    assert_eq!(num(&recs[1], "prompt_tokens"), text("and this") + 50);
    assert_eq!(num(&recs[2], "prompt_tokens"), text("no image"));
    assert_eq!(
        num(&recs[0], "input_tokens"),
        num(&recs[0], "prompt_tokens")
    );

    // The completions API cannot carry them.
    let err = input_error(&[
        "throughput",
        "--endpoint",
        &sim.url(),
        "--api",
        "completions",
        "--dataset",
        data.to_str().unwrap(),
    ]);
    assert!(err.contains("--dataset: entries carry images"), "{err}");
}

#[test]
fn a_missing_or_unreadable_dataset_image_names_the_file_entry_and_image() {
    use servescope::workload::dataset::dataset_prompts;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \"images\": [\"missing.png\"]}\n",
    )
    .unwrap();
    let err = dataset_prompts(&data, false).unwrap_err().to_string();
    let file = data.display().to_string();
    assert!(err.contains(&format!("{file}:2")), "{err}");
    assert!(
        err.contains("\"missing.png\"") && err.contains("cannot read it"),
        "{err}"
    );
    // Through the command: an input error (exit 2).
    let err = input_error(&["throughput", "--dataset", data.to_str().unwrap()]);
    assert!(err.contains("missing.png"), "{err}");

    std::fs::write(dir.path().join("notes.png"), "not an image").unwrap();
    std::fs::write(&data, "{\"prompt\": \"b\", \"images\": [\"notes.png\"]}\n").unwrap();
    let err = dataset_prompts(&data, false).unwrap_err().to_string();
    assert!(
        err.contains("notes.png") && err.contains("not a PNG, JPEG"),
        "{err}"
    );
    std::fs::write(&data, "{\"prompt\": \"b\", \"images\": [\"\"]}\n").unwrap();
    let err = dataset_prompts(&data, false).unwrap_err().to_string();
    assert!(err.contains("\"images\" image 1"), "{err}");
    std::fs::write(&data, "{\"prompt\": \"b\", \"images\": \"a.png\"}\n").unwrap();
    let err = dataset_prompts(&data, false).unwrap_err().to_string();
    assert!(err.contains("must be a list"), "{err}");
}

#[test]
fn sim_image_tokens_sets_the_charge_of_the_sim_command() {
    let sim = common::SimProcess::start(&["--ideal", "--image-tokens", "9"]);
    let recs = image_run(Some(&sim.url), "chat", &[]);
    assert!(
        recs.iter().all(|r| num(r, "prompt_tokens") == 30 + 18),
        "{recs:?}"
    );
}

#[test]
fn a_trace_replay_carries_images_and_trace_sessions_refuse_them() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let mut lines = String::new();
    for i in 0..4 {
        lines.push_str(&format!(
            "{{\"timestamp\": {}, \"input_length\": 16, \"output_length\": 2, \"hash_ids\": [{i}]}}\n",
            i * 5
        ));
    }
    std::fs::write(&trace, lines).unwrap();
    let sim = sim(20);
    let out = dir.path().join("out");
    let t = trace.to_str().unwrap();
    common::session(&[
        "trace",
        t,
        "--block-size",
        "16",
        "--endpoint",
        &sim.url(),
        "--images",
        "1",
        "--image-size",
        "8x8",
        "--quiet",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    let recs = common::records(&out);
    assert_eq!(recs.len(), 4);
    assert!(
        recs.iter().all(|r| num(r, "prompt_tokens") == 16 + 20),
        "{recs:?}"
    );
    let err = input_error(&["trace", t, "--sessions", "--images", "1"]);
    assert!(
        err.contains("--images") && err.contains("--sessions"),
        "{err}"
    );
    let err = input_error(&[
        "trace",
        t,
        "--shared-prefix",
        "groups=1,prompts=1,system-len=1,question-len=1",
    ]);
    assert!(
        err.contains("--shared-prefix does not apply to trace replay"),
        "{err}"
    );
}
