//! `merge`: lining up, shards and the errors that name the directory.

use super::*;
use crate::report::document::ShardDoc;
use crate::shard::Shard;
use serde_json::{Value, json};

fn rec(run: &str, id: u64, started: u64, first: u64, ended: u64) -> RequestRecord {
    RequestRecord {
        id,
        scheduled_at: Some(started.saturating_sub(10)),
        ..RequestRecord::ok_for_test(run, started, vec![first, ended], ended, 4, 2)
    }
}

/// A result directory with one run `label` started at `t0` (UNIX s).
fn write_dir(dir: &Path, label: &str, mode: &str, t0: f64, recs: &[RequestRecord]) {
    let mut text = String::new();
    recs.iter().for_each(|r| r.write_json_line(&mut text));
    std::fs::write(dir.join("requests.jsonl"), text).unwrap();
    let doc = json!({
        "tool": {"name": "servescope", "version": "0.1.0"},
        "started": "2026-11-22T10:00:00Z", "model": "m", "endpoint": "http://x",
        "runs": [{"label": label, "mode": mode, "params": {"rate": 5.0, "num_requests": recs.len()},
                  "started": "", "started_unix": t0, "summary": {}}]
    });
    std::fs::write(dir.join("results.json"), doc.to_string()).unwrap();
}

fn opts<'a>(dirs: &'a [PathBuf], out: &'a Path) -> MergeOptions<'a> {
    MergeOptions {
        dirs,
        out,
        percentiles: &[],
        slo: None,
        argv: &[],
        overwrite: false,
    }
}

#[test]
fn records_are_shifted_by_the_wall_clock_offset_and_renumbered() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    // A started at t = 1000 s, B 0.5 s later; both numbered their requests 0, 1.
    write_dir(
        a.path(),
        "rate 5",
        "rate",
        1000.0,
        &[
            rec("rate 5", 0, 0, 100_000, 200_000),
            rec("rate 5", 1, 300_000, 350_000, 400_000),
        ],
    );
    write_dir(
        b.path(),
        "rate 5",
        "rate",
        1000.5,
        &[
            rec("rate 5", 0, 0, 50_000, 100_000),
            rec("rate 5", 1, 50_000, 150_000, 900_000),
        ],
    );
    let dirs = vec![b.path().to_path_buf(), a.path().to_path_buf()];
    let target = out.path().join("merged");
    let runs = merge(opts(&dirs, &target)).unwrap();
    let s = &runs[0].summary;
    assert_eq!(s.total, 4);
    assert_eq!(runs[0].started_unix, 1000.0, "the earliest start");
    // B's requests moved 0.5 s later: [0.5, 0.6) and [0.55, 1.4); A's [0, 0.2)
    // and [0.3, 0.4). Duration from the first schedule (A's request 0 at 0,
    // scheduled at 0 too) to the last end, 1.4 s.
    assert!((s.duration_s - 1.4).abs() < 1e-9, "{}", s.duration_s);
    assert_eq!(s.concurrency.max_in_flight, 2);
    let text = std::fs::read_to_string(target.join("requests.jsonl")).unwrap();
    let recs: Vec<RequestRecord> = text
        .lines()
        .map(|l| RequestRecord::parse_json_line(l).unwrap())
        .collect();
    let mut ids: Vec<u64> = recs.iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, [0, 1, 2, 3], "unique ids");
    let by_start: Vec<u64> = {
        let mut v: Vec<&RequestRecord> = recs.iter().collect();
        v.sort_by_key(|r| r.started_at);
        v.iter().map(|r| r.started_at).collect()
    };
    assert_eq!(by_start, [0, 300_000, 500_000, 550_000]);
    let b0 = recs.iter().find(|r| r.started_at == 500_000).unwrap();
    assert_eq!(
        (b0.events[0], b0.ended_at, b0.scheduled_at),
        (550_000, 600_000, Some(500_000))
    );
    assert_eq!(b0.id, 2, "ids by start time");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(doc["runs"][0]["params"]["num_requests"], 4);
    assert_eq!(doc["merged_from"][0]["run_offsets_s"]["rate 5"], 0.5);
    assert!(target.join("summary.csv").exists());
    // The merged directory reads back like any other.
    let (_, again) = super::super::reanalyze::reanalyze(&target, &[], None).unwrap();
    assert_eq!(again[0].summary.total, 4);
    // And is not overwritten by a second merge.
    let e = merge(opts(&dirs, &target)).unwrap_err().to_string();
    assert!(
        e.contains("already holds") && e.contains("--overwrite"),
        "{e}"
    );
    // Unless told to: --overwrite replaces the merged results (not appended to them).
    std::fs::write(target.join("results.json"), "stale").unwrap();
    let runs = merge(MergeOptions {
        overwrite: true,
        ..opts(&dirs, &target)
    })
    .unwrap();
    assert_eq!(runs[0].summary.total, 4);
    let (_, again) = super::super::reanalyze::reanalyze(&target, &[], None).unwrap();
    assert_eq!(again[0].summary.total, 4);
}

#[test]
fn mismatched_runs_and_missing_files_name_the_directory() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_dir(
        a.path(),
        "rate 5",
        "rate",
        1.0,
        &[rec("rate 5", 0, 0, 1, 2)],
    );
    write_dir(
        b.path(),
        "rate 6",
        "rate",
        1.0,
        &[rec("rate 6", 0, 0, 1, 2)],
    );
    let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    let e = merge(opts(&dirs, &out.path().join("m"))).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&b.path().display().to_string()) && msg.contains("rate 6"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 2);

    write_dir(
        b.path(),
        "rate 5",
        "concurrency",
        1.0,
        &[rec("rate 5", 0, 0, 1, 2)],
    );
    let msg = merge(opts(&dirs, &out.path().join("m")))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("is a concurrency run, but a rate run"),
        "{msg}"
    );

    std::fs::remove_file(b.path().join("results.json")).unwrap();
    let msg = merge(opts(&dirs, &out.path().join("m")))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&b.path().join("results.json").display().to_string())
            && msg.contains("missing"),
        "{msg}"
    );

    write_dir(
        b.path(),
        "rate 5",
        "rate",
        1.0,
        &[rec("rate 5", 0, 0, 1, 2)],
    );
    std::fs::write(b.path().join("requests.jsonl"), "{\"run\": 1}\n").unwrap();
    let msg = merge(opts(&dirs, &out.path().join("m")))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("requests.jsonl:1"), "{msg}");
    assert!(!out.path().join("m").exists(), "nothing written on error");

    let msg = merge(opts(&dirs, a.path())).unwrap_err().to_string();
    assert!(msg.contains("one of the directories being merged"), "{msg}");

    let twice = vec![a.path().to_path_buf(), a.path().join(".")];
    let msg = merge(opts(&twice, &out.path().join("m")))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("given twice"), "{msg}");
}
/// Mark a directory written by `write_dir` as shard `shard` ("I/N"), with `seed`.
fn make_shard(dir: &Path, shard: &str, seed: u64) {
    let path = dir.join("results.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let s: Shard = shard.parse().unwrap();
    doc["shard"] = serde_json::to_value(ShardDoc::from(s)).unwrap();
    doc["seed"] = json!(seed);
    doc["runs"][0]["params"]["shard"] = json!({"index": s.index, "count": s.count});
    std::fs::write(&path, doc.to_string()).unwrap();
}

#[test]
fn shards_keep_their_workload_indexes() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    // Shard 0/2 sent requests 0 and 2, shard 1/2 requests 1 and 3; both started at
    // the same instant (--start-at).
    let recs = |ids: [u64; 2]| {
        ids.map(|i| rec("rate 5", i, i * 100_000, i * 100_000 + 10, i * 100_000 + 50))
    };
    write_dir(a.path(), "rate 5", "rate", 1000.0, &recs([0, 2]));
    write_dir(b.path(), "rate 5", "rate", 1000.0, &recs([1, 3]));
    make_shard(a.path(), "0/2", 7);
    make_shard(b.path(), "1/2", 7);
    let dirs = vec![b.path().to_path_buf(), a.path().to_path_buf()];
    let target = out.path().join("merged");
    let runs = merge(opts(&dirs, &target)).unwrap();
    assert_eq!(runs[0].summary.total, 4);
    assert!(runs[0].params.shard.is_none(), "{:?}", runs[0].params);
    let text = std::fs::read_to_string(target.join("requests.jsonl")).unwrap();
    for line in text.lines() {
        let r = RequestRecord::parse_json_line(line).unwrap();
        assert_eq!(
            r.started_at,
            r.id * 100_000,
            "request {} kept its index",
            r.id
        );
    }
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(target.join("results.json")).unwrap())
            .unwrap();
    assert_eq!(doc["shards"], json!({"count": 2, "merged": [0, 1]}));
    assert!(doc.get("shard").is_none());
    assert_eq!(doc["merged_from"][0]["shard"]["index"], 1);

    // The same shard twice, shards of another split, a shard with an unsharded run.
    let c = tempfile::tempdir().unwrap();
    write_dir(c.path(), "rate 5", "rate", 1000.0, &recs([0, 2]));
    make_shard(c.path(), "0/2", 7);
    let dirs = vec![a.path().to_path_buf(), c.path().to_path_buf()];
    let msg = merge(opts(&dirs, &out.path().join("m")))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("are both shard 0/2"), "{msg}");
    make_shard(c.path(), "1/3", 7);
    let msg = merge(opts(&dirs, &out.path().join("m")))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("is shard 1/3 but") && msg.contains("of 2 shards"),
        "{msg}"
    );
    write_dir(c.path(), "rate 5", "rate", 1000.0, &recs([1, 3]));
    let msg = merge(opts(&dirs, &out.path().join("m")))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("ran without --shard"), "{msg}");
    // Shards of another seed merge, with a warning.
    make_shard(c.path(), "1/2", 8);
    assert_eq!(
        merge(opts(&dirs, &out.path().join("m"))).unwrap()[0]
            .summary
            .total,
        4
    );
}

#[test]
fn a_merged_run_is_incomplete_when_a_part_is() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_dir(a.path(), "c", "concurrency", 10.0, &[rec("c", 0, 0, 5, 10)]);
    write_dir(b.path(), "c", "concurrency", 10.0, &[rec("c", 0, 0, 5, 10)]);
    // Part B was interrupted after 1 of its 4 requests.
    let results = b.path().join("results.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    let run = &mut doc["runs"][0];
    run["complete"] = json!(false);
    run["incomplete_reason"] = json!("interrupted by SIGINT");
    run["requests_planned"] = json!(4);
    run["requests_sent"] = json!(1);
    std::fs::write(&results, doc.to_string()).unwrap();
    let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    let runs = merge(opts(&dirs, &out.path().join("m"))).unwrap();
    let r = &runs[0];
    assert_eq!(r.complete, Some(false));
    assert_eq!(
        r.incomplete_reason.as_deref(),
        Some("interrupted by SIGINT")
    );
    // Part A says nothing of its plan: the merged plan is unknown.
    assert_eq!((r.requests_planned, r.requests_sent), (None, Some(2)));
    assert!(
        r.incomplete_note()
            .unwrap()
            .starts_with("INCOMPLETE: interrupted by SIGINT (2 requests recorded)")
    );
}

#[test]
fn the_merged_interactivity_is_of_the_merged_runs_not_the_first_parts() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_dir(
        a.path(),
        "r",
        "rate",
        1000.0,
        &[rec("r", 0, 0, 100_000, 200_000)],
    );
    write_dir(
        b.path(),
        "r",
        "rate",
        1000.0,
        &[rec("r", 0, 0, 50_000, 100_000)],
    );
    // The first part's header, with its own (stale for the merge) points and --gpus.
    let file = a.path().join("results.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    doc["gpus"] = json!(2);
    doc["interactivity"] = json!([{"label": "r", "per_user_tok_s": 1.0,
        "output_tok_s": 1.0, "on_frontier": true}]);
    std::fs::write(&file, doc.to_string()).unwrap();
    let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    let target = out.path().join("merged");
    let runs = merge(opts(&dirs, &target)).unwrap();
    let merged = ResultsDoc::read(&target.join("results.json")).unwrap();
    let pts = merged.interactivity.unwrap();
    assert_eq!(merged.gpus, Some(2));
    assert_eq!(pts.len(), 1);
    // 2 tokens over 100 ms (A) and over 50 ms (B): 20 and 40 tok/s, median 30.
    assert!((pts[0].per_user_tok_s - 30.0).abs() < 1e-9, "{pts:?}");
    assert_eq!(pts[0].output_tok_s, runs[0].summary.output_tok_s);
    assert_eq!(pts[0].per_gpu, Some(runs[0].summary.output_tok_s / 2.0));
}

#[test]
fn the_default_tokenizer_warning_of_any_part_survives_the_merge() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_dir(
        a.path(),
        "r",
        "rate",
        1000.0,
        &[rec("r", 0, 0, 100_000, 200_000)],
    );
    write_dir(
        b.path(),
        "r",
        "rate",
        1000.0,
        &[rec("r", 0, 0, 50_000, 100_000)],
    );
    // Only the second part counted output with the default tokenizer.
    let file = b.path().join("results.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    doc["output_tokens_counted_with"] = json!({"tokenizer": "builtin:cl100k", "runs": ["r"],
        "server_can_tokenize": true, "warning": "w"});
    doc["truncated_prompts"] = json!({"max_input_length": 64, "truncated": 3, "prompts": 10});
    std::fs::write(&file, doc.to_string()).unwrap();
    let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    let target = out.path().join("merged");
    merge(opts(&dirs, &target)).unwrap();
    let merged = ResultsDoc::read(&target.join("results.json")).unwrap();
    let c = merged
        .output_tokens_counted_with
        .expect("the warning is kept");
    assert_eq!(
        (c.runs, c.server_can_tokenize),
        (vec!["r".to_string()], true)
    );
    assert_eq!(merged.truncated_prompts.unwrap().truncated, 3);
}

#[test]
fn what_a_process_saw_of_itself_survives_the_merge() {
    let (a, b, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    write_dir(a.path(), "c", "concurrency", 10.0, &[rec("c", 0, 0, 5, 10)]);
    write_dir(b.path(), "c", "concurrency", 10.0, &[rec("c", 0, 0, 5, 10)]);
    // Part B's client was busy; a flag the records give again is recomputed, not kept.
    let results = b.path().join("results.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    doc["runs"][0]["summary"]["validity"] = json!([
        {"check": "client_cpu", "message": "the client was busy 95%"},
        {"check": "ignore_eos", "message": "stale"}
    ]);
    std::fs::write(&results, doc.to_string()).unwrap();
    let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    let runs = merge(opts(&dirs, &out.path().join("m"))).unwrap();
    let checks: Vec<&str> = runs[0]
        .summary
        .validity
        .iter()
        .map(|f| f.check.as_str())
        .collect();
    assert_eq!(checks, ["client_cpu"]);
}
