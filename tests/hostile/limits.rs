//! Runs that check whether they measured what was meant: a server that does not honour
//! `ignore_eos`, a `--max-concurrency` cap holding arrivals back, and the client's own
//! figures (CPU share, cores) saved with every run.

use std::time::Duration;

use serde_json::Value;

use crate::common::{SimProcess, records, session};
use crate::server::{Reply, chat_stream, models, serve};

fn checks(s: &servescope::metrics::Summary) -> Vec<String> {
    s.validity.iter().map(|f| f.check.clone()).collect()
}

fn results(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// Whatever max_tokens asks for, 2 tokens: a server that stops at its own end.
fn short_server() -> crate::server::Scripted {
    serve(|r| -> Reply {
        match r.path.as_str() {
            "/v1/models" => models("\"m\""),
            _ => chat_stream(2, Duration::ZERO),
        }
    })
}

fn closed_loop<'a>(dir: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "concurrency",
        "--concurrency",
        "4",
        "--num-requests",
        "16",
        "--input-len",
        "8",
        "--output-len",
        "64",
        "--output-dir",
        dir,
        "--quiet",
    ];
    a.extend_from_slice(more);
    a
}

#[test]
fn a_simulator_that_ignores_ignore_eos_is_flagged_live_and_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = session(&closed_loop(d, &["--sim-ignore-ignore-eos"]));
    let s = &out.runs[0].1;
    assert_eq!(s.succeeded, 16);
    assert!(
        checks(s).contains(&"ignore_eos".to_string()),
        "{:?}",
        s.validity
    );
    let doc = results(dir.path());
    let saved = &doc["runs"][0]["summary"]["validity"];
    assert!(
        saved
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "ignore_eos"
                && f["message"]
                    .as_str()
                    .unwrap()
                    .contains("ignore_eos is not honoured")),
        "{saved}"
    );
    assert!(
        records(dir.path())
            .iter()
            .all(|r| r["expected_output_tokens"] == 64)
    );
    // `report` finds it again from the records.
    let Ok(servescope::Outcome::Report(runs)) = servescope::run_args(["servescope", "report", d])
    else {
        panic!("report failed")
    };
    assert!(checks(&runs[0].summary).contains(&"ignore_eos".to_string()));
}

#[test]
fn an_honouring_simulator_is_not_flagged_and_the_client_use_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = session(&closed_loop(d, &[]));
    let s = &out.runs[0].1;
    assert!(
        !checks(s).contains(&"ignore_eos".to_string()),
        "{:?}",
        s.validity
    );
    assert_eq!(s.tokens.output, 16 * 64);
    let client = &results(dir.path())["runs"][0]["summary"]["client"];
    assert_eq!(client["cores"], 2, "{client}");
    let share = client["cpu_share"].as_f64().unwrap();
    assert!((0.0..=1.5).contains(&share), "{client}");
    assert!(client["wall_s"].as_f64().unwrap() > 0.0, "{client}");

    // `report` keeps what the live process saw of itself: the records cannot give it.
    let file = dir.path().join("results.json");
    let mut doc = results(dir.path());
    doc["runs"][0]["summary"]["validity"] =
        serde_json::json!([{"check": "client_cpu", "message": "the client was busy 97%"}]);
    std::fs::write(&file, doc.to_string()).unwrap();
    let Ok(servescope::Outcome::Report(runs)) = servescope::run_args(["servescope", "report", d])
    else {
        panic!("report failed")
    };
    assert_eq!(checks(&runs[0].summary), ["client_cpu"]);
    assert!(runs[0].summary.client.is_some());
}

#[test]
fn a_server_that_stops_early_is_flagged_unless_ignore_eos_was_not_asked_for() {
    let srv = short_server();
    let url = srv.url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let s = &session(&closed_loop(d, &["--endpoint", &url])).runs[0].1;
    let flag = s.validity.iter().find(|f| f.check == "ignore_eos");
    let m = &flag.expect("flagged").message;
    assert!(m.contains("the server stopped early: 16 of 16"), "{m}");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let s = &session(&closed_loop(d, &["--endpoint", &url, "--no-ignore-eos"])).runs[0].1;
    assert!(s.validity.is_empty(), "{:?}", s.validity);
    assert!(
        records(dir.path())
            .iter()
            .all(|r| r.get("expected_output_tokens").is_none())
    );
    // Stop sequences end outputs early with ignore_eos too: nothing to judge.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let more = ["--endpoint", &url, "--extra-body", r#"{"stop":["."]}"#];
    let s = &session(&closed_loop(d, &more)).runs[0].1;
    assert!(s.validity.is_empty(), "{:?}", s.validity);
}

#[test]
fn the_sim_command_can_ignore_ignore_eos() {
    let sim = SimProcess::start(&["--ideal", "--ignore-ignore-eos"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let s = &session(&closed_loop(d, &["--endpoint", &sim.url])).runs[0].1;
    assert!(
        checks(s).contains(&"ignore_eos".to_string()),
        "{:?}",
        s.validity
    );
    assert!(s.tokens.output < 16 * 64);
}

#[test]
fn the_sim_flag_needs_the_built_in_simulator() {
    let e = servescope::run_args(
        [
            "servescope",
            "concurrency",
            "--endpoint",
            "http://127.0.0.1:9",
        ]
        .into_iter()
        .chain(["--sim-ignore-ignore-eos"]),
    )
    .unwrap_err();
    assert!(matches!(e, servescope::error::Error::Input(_)), "{e:?}");
    assert!(e.to_string().contains("--sim-ignore-ignore-eos"), "{e}");
}

#[test]
fn a_max_concurrency_cap_that_held_arrivals_back_is_flagged() {
    // Every request due at once, one slot, ~20 ms each: they queue behind each other.
    let srv = serve(|r| -> Reply {
        match r.path.as_str() {
            "/v1/models" => models("\"m\""),
            _ => chat_stream(4, Duration::from_millis(5)),
        }
    });
    let url = srv.url();
    let out = session(&[
        "rate",
        "--rates",
        "inf",
        "--num-requests",
        "12",
        "--max-concurrency",
        "1",
        "--input-len",
        "8",
        "--output-len",
        "4",
        "--endpoint",
        &url,
        "--quiet",
    ]);
    let s = &out.runs[0].1;
    let flag = s.validity.iter().find(|f| f.check == "queue_wait");
    let m = &flag.unwrap_or_else(|| panic!("{:?}", s.validity)).message;
    assert!(m.contains("raise --max-concurrency"), "{m}");
}
