//! A study's server configurations against `servescope sim` as the server: each
//! configuration's server started on a free port, waited for, benchmarked and stopped;
//! failures recorded while the next configuration still runs; no server left behind.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use servescope::Outcome;
use servescope::report::compare::Verdict;
use servescope::report::document::ResultsDoc;
use servescope::report::study_compare::StudyComparison;
use servescope::shutdown::Shutdown;
use servescope::study::servers::{
    ConfigOutcome, ConfigRun, ServerSpec, StudySetIndex, run_configurations_with,
};

const BIN: &str = env!("CARGO_BIN_EXE_servescope");

/// The spec with `servescope sim` as the server; `mark` goes into its environment so the
/// test can tell whether any of its servers is still alive.
fn sim_spec(extra: &str, mark: &str) -> ServerSpec {
    let yaml = format!(
        "command: \"'{BIN}' sim --port {{port}} {{config}}\"\nenv: {{SERVESCOPE_TEST_MARK: {mark}}}\n{extra}"
    );
    serde_saphyr::from_str(&yaml).unwrap()
}

/// Processes whose environment holds `mark` (servers of this test still running).
fn alive(mark: &str) -> Vec<u32> {
    let needle = format!("SERVESCOPE_TEST_MARK={mark}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|v| v == needle.as_bytes()))
                .unwrap_or(false)
        })
        // A zombie already reaped by nobody is not running; a stopped server is reaped.
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false)
        })
        .collect()
}

fn concurrency_load(run: &ConfigRun) -> Result<(), servescope::Error> {
    let dir = run.out_dir.join("concurrency");
    let mut argv: Vec<String> = [
        "servescope",
        "concurrency",
        "--endpoint",
        &run.endpoint,
        "--concurrency",
        "2,8",
        "--num-requests",
        "24",
        "--input-len",
        "64",
        "--output-len",
        "16",
        "-q",
        "--output-dir",
        dir.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    argv.extend(run.extra_load_args());
    servescope::run_args(argv).map(|_| ())
}

fn index(out: &Path) -> StudySetIndex {
    serde_json::from_str(&std::fs::read_to_string(out.join("study.json")).unwrap()).unwrap()
}

fn ttft_p50(dir: &Path) -> f64 {
    let doc = ResultsDoc::read(&dir.join("results.json")).unwrap();
    let run = doc.run("concurrency 8").unwrap();
    servescope::metrics::catalogue::known("ttft_ms.p50")
        .value(&run.summary)
        .unwrap()
}

fn run(args: &[&str]) -> servescope::Outcome {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    servescope::run_args(argv).unwrap()
}

/// `compare DIR` and `report DIR --html` line the configurations up; returns the
/// comparison and the page.
fn lined_up(dir: &Path) -> (StudyComparison, String) {
    let Outcome::StudyCompared(c) = run(&["compare", dir.to_str().unwrap()]) else {
        panic!("a study comparison")
    };
    let html = dir.join("report.html");
    run(&[
        "report",
        dir.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    let page = dir.join("compare.html");
    run(&[
        "compare",
        dir.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    let compared = std::fs::read_to_string(page).unwrap();
    for label in &c.configs {
        let shown = label.replace('<', "&lt;").replace('>', "&gt;");
        assert!(
            compared.contains(&format!("<th>{shown}</th>")),
            "a column per configuration: {label}"
        );
    }
    assert!(
        compared.contains("<span class=\"v "),
        "verdicts as classed spans"
    );
    (*c, std::fs::read_to_string(html).unwrap())
}

#[test]
fn each_configuration_gets_its_own_server_and_labelled_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let mark = format!("ok-{}", std::process::id());
    let spec = sim_spec("matrix: {max-num-seqs: [1, 8]}\n", &mark);
    let shutdown = Shutdown::default();
    let mut seen = Vec::new();
    let idx = run_configurations_with(&spec, &out, &shutdown, |run| {
        seen.push((run.index, run.label.clone(), run.endpoint.clone()));
        assert!(!alive(&mark).is_empty(), "the server runs during the loads");
        concurrency_load(run)
    })
    .unwrap();
    assert_eq!(idx, index(&out), "study.json is the returned index");
    let labels: Vec<&str> = idx.configs.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["max-num-seqs=1", "max-num-seqs=8"]);
    assert_ne!(seen[0].2, seen[1].2, "a fresh port for each server");
    for c in &idx.configs {
        assert_eq!(c.outcome, ConfigOutcome::Ran, "{c:?}");
        assert_eq!(c.results, [format!("{}/concurrency", c.label)]);
        assert!(
            c.argv.contains(&"--max-num-seqs".to_string()),
            "{:?}",
            c.argv
        );
        assert!(out.join(&c.log).is_file());
        let doc = ResultsDoc::read(&out.join(&c.results[0]).join("results.json")).unwrap();
        let meta = doc.metadata.unwrap();
        assert_eq!(
            meta.get("config").map(String::as_str),
            Some(c.label.as_str())
        );
    }
    let (one, eight) = (
        ttft_p50(&out.join("max-num-seqs=1/concurrency")),
        ttft_p50(&out.join("max-num-seqs=8/concurrency")),
    );
    assert!(
        one > 2.0 * eight,
        "8 requests in flight on 1 slot queue for their first token: p50 TTFT {one:.1} ms vs {eight:.1} ms"
    );
    assert_eq!(alive(&mark), Vec::<u32>::new(), "every server stopped");

    let (c, page) = lined_up(&out);
    assert_eq!(c.configs, ["max-num-seqs=1", "max-num-seqs=8"]);
    let names: Vec<&str> = c.loads.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["concurrency · concurrency 2", "concurrency · concurrency 8"]
    );
    let ttft = c.loads[1]
        .lines
        .iter()
        .find(|l| l.metric.key == "ttft_ms.p50")
        .unwrap();
    assert_eq!(
        ttft.verdicts[1],
        Verdict::Better,
        "8 slots: lower TTFT than 1"
    );
    let text = c.render();
    assert!(
        text.contains("max-num-seqs=1") && text.contains("better"),
        "{text}"
    );
    for id in ["load-concurrency-throughput:2", "load-concurrency-ttft:4"] {
        assert!(page.contains(id), "a curve per configuration: {id}");
    }
    assert!(
        page.contains("max-num-seqs=8 · concurrency · concurrency 8"),
        "a summary column"
    );
}

#[test]
fn results_labelled_by_metadata_line_up_without_an_index() {
    let tmp = tempfile::tempdir().unwrap();
    for (dir, config) in [("a", "<b>x</b>"), ("b", "y")] {
        let out = tmp.path().join(dir);
        common::session(&[
            "concurrency",
            "--concurrency",
            "1,2",
            "--num-requests",
            "4",
            "--input-len",
            "16",
            "--output-len",
            "4",
            "-q",
            "--metadata",
            &format!("config={config}"),
            "--output-dir",
            out.to_str().unwrap(),
        ]);
    }
    let (c, page) = lined_up(tmp.path());
    assert_eq!(c.configs, ["<b>x</b>", "y"]);
    assert_eq!(c.loads.len(), 2);
    assert!(
        page.contains("&lt;b&gt;x&lt;/b&gt; · concurrency 1"),
        "escaped"
    );
    assert!(!page.contains("<b>x"), "never raw");
    let e = servescope::run_args([
        "servescope",
        "compare",
        tmp.path().join("a").to_str().unwrap(),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("expected a study's output directory"), "{e}");
}

#[test]
fn failed_servers_are_recorded_and_the_next_configuration_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let mark = format!("fail-{}", std::process::id());
    // 1: sim refuses an unknown flag and exits at once; 2: it listens on 127.0.0.2,
    // so the readiness URL on 127.0.0.1 never answers; 3: a working server.
    let spec = sim_spec(
        "ready_timeout_s: 3\nstop_timeout_s: 5\nconfigs: [{no-such-flag: 1}, {host: 127.0.0.2}, {max-num-seqs: 4}]\n",
        &mark,
    );
    let t0 = Instant::now();
    let mut ran = Vec::new();
    let idx = run_configurations_with(&spec, &out, &Shutdown::default(), |run| {
        ran.push(run.label.clone());
        concurrency_load(run)
    })
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(60));
    assert_eq!(
        ran,
        ["max-num-seqs=4"],
        "loads only where a server was ready"
    );
    let c = &idx.configs;
    assert_eq!(c[0].outcome, ConfigOutcome::ServerFailed);
    let why = c[0].reason.as_deref().unwrap();
    assert!(
        why.contains("exited") && why.contains("no-such-flag"),
        "the log's last lines: {why}"
    );
    assert_eq!(c[1].outcome, ConfigOutcome::ServerFailed);
    let why = c[1].reason.as_deref().unwrap();
    assert!(why.contains("did not answer 2xx within 3 s"), "{why}");
    assert_eq!(c[2].outcome, ConfigOutcome::Ran);
    assert_eq!(c[2].results, ["max-num-seqs=4/concurrency"]);
    assert_eq!(
        alive(&mark),
        Vec::<u32>::new(),
        "the never-ready server was stopped too"
    );

    // A command that does not exist.
    let spec: ServerSpec =
        serde_saphyr::from_str("command: \"/nonexistent/no-such-server --port {port}\"\n").unwrap();
    let idx = run_configurations_with(
        &spec,
        &tmp.path().join("none"),
        &Shutdown::default(),
        |_| panic!("no load without a server"),
    )
    .unwrap();
    assert_eq!(idx.configs[0].label, "default");
    assert_eq!(idx.configs[0].outcome, ConfigOutcome::ServerFailed);
    let why = idx.configs[0].reason.as_deref().unwrap();
    assert!(
        why.contains("cannot start \"/nonexistent/no-such-server\""),
        "{why}"
    );
}

#[test]
fn a_signal_stops_the_waiting_server_and_the_study() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let mark = format!("sig-{}", std::process::id());
    let spec = sim_spec(
        "ready_timeout_s: 120\nconfigs: [{host: 127.0.0.2}, {max-num-seqs: 4}]\n",
        &mark,
    );
    let shutdown = Arc::new(Shutdown::default());
    let trigger = shutdown.clone();
    let m = mark.clone();
    let t = std::thread::spawn(move || {
        // Once the server is up (but never ready), as Ctrl-C would.
        let t0 = Instant::now();
        while alive(&m).is_empty() && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        trigger.trigger(2);
    });
    let t0 = Instant::now();
    let idx = run_configurations_with(&spec, &out, &shutdown, |_| panic!("never ready")).unwrap();
    t.join().unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "not the 120 s timeout"
    );
    assert_eq!(idx.configs[0].outcome, ConfigOutcome::Interrupted);
    assert_eq!(idx.configs[1].outcome, ConfigOutcome::NotRun);
    assert_eq!(index(&out), idx);
    assert_eq!(alive(&mark), Vec::<u32>::new(), "the server was stopped");
}

#[test]
fn a_load_ended_by_a_signal_stops_the_server_and_the_study() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let mark = format!("load-sig-{}", std::process::id());
    let spec = sim_spec("configs: [{max-num-seqs: 2}, {max-num-seqs: 4}]\n", &mark);
    let shutdown = Shutdown::default();
    let idx = run_configurations_with(&spec, &out, &shutdown, |run| {
        concurrency_load(run)?;
        // As a session's own listener reports Ctrl-C during its runs.
        shutdown.trigger(2);
        Err(servescope::Error::Interrupted { signal: 2, runs: 2 })
    })
    .unwrap();
    assert_eq!(idx.configs[0].outcome, ConfigOutcome::Interrupted);
    assert_eq!(
        idx.configs[0].results,
        ["max-num-seqs=2/concurrency"],
        "what finished is listed"
    );
    assert_eq!(idx.configs[1].outcome, ConfigOutcome::NotRun);
    assert_eq!(alive(&mark), Vec::<u32>::new(), "the server was stopped");
}

/// The shipped example, through `servescope run`: its `servescope` command is this
/// build's binary; smaller loads by flags after the file.
#[test]
fn a_study_file_starts_each_configuration_s_server_and_runs_its_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mark = format!("study-{}", std::process::id());
    let example = std::fs::read_to_string("examples/server-configs.yaml").unwrap();
    let yaml = example
        .replace(
            "command: \"servescope sim",
            &format!("command: \"'{BIN}' sim"),
        )
        .replace(
            "  ready_timeout_s: 60\n",
            &format!("  ready_timeout_s: 60\n  env: {{SERVESCOPE_TEST_MARK: {mark}}}\n"),
        );
    assert!(yaml.contains(BIN) && yaml.contains(&mark), "{yaml}");
    let file = tmp.path().join("study.yaml");
    std::fs::write(&file, yaml).unwrap();
    let outcome = servescope::run_args([
        "servescope",
        "run",
        file.to_str().unwrap(),
        "--num-requests",
        "32",
        "--input-len",
        "128",
        "--output-len",
        "16",
        "-q",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    let Ok(Outcome::Study(study)) = outcome else {
        panic!("a study: {outcome:?}")
    };
    let names: Vec<&str> = study.loads.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["max-num-seqs=4/conc16", "max-num-seqs=32/conc16"]);
    let idx = index(&out);
    for c in &idx.configs {
        assert_eq!(c.outcome, ConfigOutcome::Ran, "{c:?}");
        assert_eq!(c.results, [format!("{}/conc16", c.label)]);
        let doc = ResultsDoc::read(&out.join(&c.results[0]).join("results.json")).unwrap();
        assert_eq!(
            doc.metadata.unwrap().get("config").map(String::as_str),
            Some(c.label.as_str())
        );
        let (saved, server) = (doc.endpoint.unwrap(), c.endpoint.clone().unwrap());
        assert!(
            saved.starts_with(&server),
            "the loads ran against its server: {saved} vs {server}"
        );
    }
    let p50 = |label: &str| {
        let doc = ResultsDoc::read(&out.join(label).join("conc16").join("results.json")).unwrap();
        servescope::metrics::catalogue::known("ttft_ms.p50")
            .value(&doc.runs[0].summary)
            .unwrap()
    };
    // Run again into the same directory: refused before any server starts.
    let before = std::fs::read_to_string(out.join("study.json")).unwrap();
    let again = servescope::run_args([
        "servescope",
        "run",
        file.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ])
    .unwrap_err();
    assert_eq!(again.exit_code(), 2, "{again}");
    assert!(
        again.to_string().contains("already holds results"),
        "{again}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("study.json")).unwrap(),
        before,
        "no configuration started"
    );
    let (four, many) = (p50("max-num-seqs=4"), p50("max-num-seqs=32"));
    assert!(
        four > 2.0 * many,
        "16 in flight on 4 slots queue for a first token: p50 TTFT {four:.1} vs {many:.1} ms"
    );
    assert_eq!(alive(&mark), Vec::<u32>::new(), "every server stopped");
}

#[test]
fn a_study_with_a_server_refuses_an_endpoint_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("study.yaml");
    std::fs::write(
        &file,
        "server:\n  command: \"x --port {port}\"\n  configs: [{a: 1}]\nloads:\n  - mode: concurrency\n    concurrency: 1\noutput: {dir: out}\n",
    )
    .unwrap();
    let err = servescope::run_args([
        "servescope",
        "run",
        file.to_str().unwrap(),
        "--endpoint",
        "http://127.0.0.1:1",
    ])
    .unwrap_err();
    assert!(err.to_string().contains("leave out"), "{err}");
    assert_eq!(err.exit_code(), 2);
    // The program is the command's first word, and a readiness URL on the picked port
    // needs the command to take it.
    for (command, want) in [
        ("{config} --port {port}", "first word is the program"),
        ("x --port 8000", "no {port} in the command"),
    ] {
        std::fs::write(
            &file,
            format!("server:\n  command: \"{command}\"\n  configs: [{{a: 1}}]\nloads:\n  - mode: concurrency\n    concurrency: 1\noutput: {{dir: out}}\n"),
        )
        .unwrap();
        let err = servescope::run_args(["servescope", "run", file.to_str().unwrap()]).unwrap_err();
        assert!(err.to_string().contains(want), "{command}: {err}");
        assert_eq!(err.exit_code(), 2, "{err}");
    }
    // A key the server section does not have: its line and the key.
    std::fs::write(
        &file,
        "loads:\n  - mode: concurrency\n    concurrency: 1\nserver:\n  command: \"x\"\n  readyurl: \"y\"\n",
    )
    .unwrap();
    let err = servescope::run_args(["servescope", "run", file.to_str().unwrap()]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(":6:") && text.contains("readyurl"), "{text}");
}

/// `servescope run`: a configuration whose server fails is recorded, the next one runs,
/// and the study exits 1 naming it; a secret the server printed stays out of the
/// reason, the terminal and study.json.
#[test]
fn a_failed_configuration_fails_the_study_after_the_others_ran_and_its_log_is_masked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let secret = "sk-study-secret-0123456789";
    let yaml = format!(
        "server:\n  command: \"'{BIN}' sim --port {{port}} {{config}}\"\n  configs:\n    - {{max-num-seqs: 4}}\n    - {{no-such-flag: {secret}}}\n  ready_timeout_s: 20\nloads:\n  - {{name: c2, mode: concurrency, concurrency: 2}}\nworkload: {{num-requests: 4, input-len: 16, output-len: 4}}\noutput: {{dir: '{}', quiet: true}}\n",
        out.display()
    );
    let file = tmp.path().join("study.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let err = servescope::run_args(["servescope", "run", file.to_str().unwrap()]).unwrap_err();
    assert_eq!(err.exit_code(), 1, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("1 of 2 server configurations") && text.contains("server_failed"),
        "{text}"
    );
    let idx = index(&out);
    assert_eq!(idx.configs[0].outcome, ConfigOutcome::Ran);
    assert_eq!(idx.configs[0].results, ["max-num-seqs=4/c2"]);
    assert_eq!(idx.configs[1].outcome, ConfigOutcome::ServerFailed);

    // A server that prints a credential flag's value before it exits.
    let yaml = format!(
        "server:\n  command: \"sh -c 'echo started with api_key=$2; exit 3' sh --api-key {secret} --port {{port}}\"\n  configs: [{{a: 1}}]\nloads:\n  - {{mode: concurrency, concurrency: 1}}\noutput: {{dir: '{}'}}\n",
        tmp.path().join("out2").display()
    );
    std::fs::write(&file, &yaml).unwrap();
    let failed = std::process::Command::new(BIN)
        .args(["run", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("started with api_key="),
        "the log tail: {stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
    let saved = std::fs::read_to_string(tmp.path().join("out2/study.json")).unwrap();
    assert!(!saved.contains(secret), "{saved}");
    assert!(saved.contains("started with api_key="), "{saved}");
}
