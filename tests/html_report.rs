//! The HTML report, `compare` and `merge` end to end, against the simulator; the pages
//! are loaded in headless Chromium ($CHROMIUM or /usr/bin/chromium; when there is none,
//! skipped with a message, or a failure with SERVESCOPE_REQUIRE_BROWSER=1 or CI=true),
//! which must report no error, no console message and every chart drawn with the
//! expected number of series. The page's own script writes what the browser laid out
//! into #render-check; the test compares it with the series the report meant to draw
//! and with its own expectations for the main charts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use servescope::sim::{SimConfig, SimServer};
use servescope::{Error, Outcome, run_args};

fn sim() -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 8.0,
        prefill_ms_per_token: 0.01,
        tpot_ms: 2.0,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn run(args: &[&str]) -> Result<Outcome, Error> {
    let mut argv = vec!["servescope"];
    argv.extend_from_slice(args);
    run_args(argv)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Chromium, or None (the browser part is skipped) when there is none and none is
/// required: SERVESCOPE_REQUIRE_BROWSER=1 (set by .ci/run) or CI=true make it a failure.
fn browser() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "no Chromium at {} ($CHROMIUM, default /usr/bin/chromium; apt-get install chromium)",
        path.display()
    );
    let set = |name, value| std::env::var(name).is_ok_and(|v| v == value);
    for (name, value) in [("SERVESCOPE_REQUIRE_BROWSER", "1"), ("CI", "true")] {
        if set(name, value) {
            panic!("{msg}, and {name}={value}: the browser check must run");
        }
    }
    eprintln!("SKIPPED the browser check: {msg}");
    None
}

/// What the page's script found once loaded.
#[derive(Debug)]
struct Rendered {
    charts: usize,
    drawn: usize,
    /// (chart id, series drawn with a non-empty box), as the browser saw them.
    series: Vec<(String, usize)>,
    /// The same, as the report meant to draw them.
    expected: Vec<(String, usize)>,
    errors: usize,
    /// Console messages the page caused (none expected).
    console: Vec<String>,
}

impl Rendered {
    fn series_of(&self, id: &str) -> Option<usize> {
        self.series.iter().find(|(i, _)| i == id).map(|(_, n)| *n)
    }

    /// Everything drawn as meant, with no error.
    fn check(&self) {
        assert_eq!(self.errors, 0, "errors caught in the page: {self:?}");
        assert!(self.console.is_empty(), "console: {:?}", self.console);
        assert_eq!(self.charts, self.expected.len(), "{self:?}");
        assert_eq!(self.drawn, self.charts, "charts laid out: {self:?}");
        assert_eq!(self.series, self.expected);
    }
}

fn pairs(list: &str) -> Vec<(String, usize)> {
    list.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| {
            let (id, n) = x.rsplit_once(':').unwrap();
            (id.to_string(), n.parse().unwrap())
        })
        .collect()
}

fn attr(tag: &str, name: &str) -> String {
    let key = format!(" {name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"));
    let rest = &tag[at + key.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Load `page` in headless Chromium and read what its script wrote.
fn render(chromium: &Path, page: &Path) -> Rendered {
    let work = tempfile::tempdir().unwrap();
    let (out, err) = (work.path().join("dom.html"), work.path().join("stderr.txt"));
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    // Files, not pipes: a large DOM would fill a pipe while we wait.
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Containers often have a small /dev/shm.
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--window-size=1400,1000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.path().join("profile").display()
        ))
        .arg("--dump-dom")
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let dom = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    let at = dom
        .find("id=\"render-check\"")
        .expect("no #render-check in the DOM");
    let start = dom[..at].rfind('<').unwrap();
    let tag = &dom[start..start + dom[start..].find('>').unwrap()];
    assert_eq!(attr(tag, "data-done"), "1", "the load handler did not run");
    let js_errors = dom
        .find("id=\"js-errors\"")
        .map(|i| &dom[i..i + dom[i..].find("</div>").unwrap()]);
    Rendered {
        charts: attr(tag, "data-charts").parse().unwrap(),
        drawn: attr(tag, "data-drawn").parse().unwrap(),
        series: pairs(&attr(tag, "data-series")),
        expected: pairs(&attr(tag, "data-expected-series")),
        errors: attr(tag, "data-errors").parse::<usize>().unwrap()
            + js_errors.map_or(0, |e| usize::from(!e.ends_with('>'))),
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(String::from)
            .collect(),
    }
}

#[test]
fn a_concurrency_sweep_report_renders_every_chart() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    run(&[
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "1,2,4",
        "--num-requests",
        "8",
        "--input-len",
        "16",
        "--output-len",
        "4",
        "--output-dir",
        s(&results),
        "--quiet",
    ])
    .unwrap();
    let page = dir.path().join("report.html");
    let Outcome::Report(runs) = run(&["report", s(&results), "--html", s(&page)]).unwrap() else {
        panic!()
    };
    assert_eq!(runs.len(), 3);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<pre>") && html.contains("concurrency 4"));
    let Some(chromium) = browser() else { return };
    let r = render(&chromium, &page);
    r.check();
    // One line per run in every CDF; p50 and p99 per load curve; bars and occupancy
    // per run; no schedule lag in a closed loop.
    let mut want: Vec<(String, usize)> = ["ttft", "tpot", "e2e", "itl"]
        .iter()
        .map(|m| (format!("cdf-{m}"), 3))
        .collect();
    for (chart, n) in [
        ("throughput", 1),
        ("requests", 1),
        ("ttft", 2),
        ("tpot", 2),
        ("e2e", 2),
        ("ttft-vs-throughput", 2),
        ("tpot-vs-throughput", 2),
        ("e2e-vs-throughput", 2),
    ] {
        want.push((format!("load-concurrency-{chart}"), n));
    }
    want.push(("pareto".into(), pareto_series(&results)));
    for i in 0..3 {
        want.push((format!("run{i}-requests"), 2));
        want.push((format!("run{i}-latency"), 2));
        want.push((format!("run{i}-occupancy"), 2));
    }
    assert_eq!(r.series, want);

    // The sweep compared with itself: every metric within noise, curves overlaid.
    let cmp_page = dir.path().join("cmp.html");
    let Outcome::Compared(c) =
        run(&["compare", s(&results), s(&results), "--html", s(&cmp_page)]).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.runs.len(), 3);
    assert!(
        c.runs
            .iter()
            .flat_map(|r| &r.rows)
            .all(|r| r.verdict == servescope::report::compare::Verdict::Noise)
    );
    let r = render(&chromium, &cmp_page);
    r.check();
    assert_eq!(r.charts, 4);
    assert!(
        r.series.iter().all(|(_, n)| *n == 2),
        "A and B: {:?}",
        r.series
    );
}

/// The Pareto chart's series with points: the frontier, and the other runs if any.
fn pareto_series(results: &Path) -> usize {
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("results.json")).unwrap())
            .unwrap();
    let pts = doc["interactivity"].as_array().expect("interactivity data");
    1 + usize::from(pts.iter().any(|p| p["on_frontier"] == false))
}

#[test]
fn a_sweep_report_renders_the_pareto_chart_and_the_sweep_load_curves() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r");
    let page = dir.path().join("report.html");
    run(&[
        "sweep",
        "--endpoint",
        &server.url(),
        "--rates",
        "2",
        "--num-requests",
        "6",
        "--input-len",
        "16",
        "--output-len",
        "6",
        "--output-dir",
        s(&results),
        "--html",
        s(&page),
        "--quiet",
    ])
    .unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"pareto\"") && html.contains("Throughput vs interactivity"));
    let Some(chromium) = browser() else { return };
    let r = render(&chromium, &page);
    r.check();
    assert_eq!(r.series_of("pareto"), Some(pareto_series(&results)));
    // Every run on the load axis: one curve of four points.
    assert_eq!(r.series_of("load-sweep-throughput"), Some(1));
    let svg_at = html.find("id=\"load-sweep-throughput\"").unwrap();
    let figure = &html[svg_at..svg_at + html[svg_at..].find("</figure>").unwrap()];
    assert_eq!(figure.matches("<circle").count(), 4, "{figure}");
}

#[test]
fn open_loop_dual_round_and_server_metrics_render() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let (rate_dir, rate_page) = (dir.path().join("rate"), dir.path().join("rate.html"));
    // --html on the load command itself; a cap of 2 makes requests wait in the client.
    run(&[
        "rate",
        "--endpoint",
        &server.url(),
        "--rates",
        "50,400",
        "--max-concurrency",
        "2",
        "--num-requests",
        "12",
        "--input-len",
        "16",
        "--output-len",
        "4",
        "--output-dir",
        s(&rate_dir),
        "--html",
        s(&rate_page),
        "--quiet",
    ])
    .unwrap();
    let html = std::fs::read_to_string(&rate_page).unwrap();
    assert!(html.contains("id=\"run1-lag\""), "open loop: schedule lag");
    assert!(
        html.contains("bar-queue"),
        "requests held by --max-concurrency"
    );

    // The embedded engine simulator serves vLLM metrics; gauges sampled every 50 ms.
    let (dual_dir, dual_page) = (dir.path().join("dual"), dir.path().join("dual.html"));
    run(&[
        "dual-round",
        "--concurrency",
        "2",
        "--num-requests",
        "6",
        "--input-len",
        "512",
        "--output-len",
        "4",
        "--metrics",
        "vllm",
        "--metrics-interval",
        "0.05",
        "--slo",
        "ttft_ms=5000",
        "--output-dir",
        s(&dual_dir),
        "--html",
        s(&dual_page),
        "--quiet",
    ])
    .unwrap();
    let dual = std::fs::read_to_string(&dual_page).unwrap();
    assert!(dual.contains("rounds compared") && dual.contains("TTFT speedup"));
    assert!(dual.contains("Goodput under the SLO") && dual.contains("TTFT ≤ 5000 ms"));
    // As many server charts as gauges with timed samples in results.json.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dual_dir.join("results.json")).unwrap())
            .unwrap();
    let gauges = saved["runs"][0]["summary"]["server_metrics"]
        .as_object()
        .unwrap()
        .values()
        .filter(|v| v["type"] == "gauge" && v["samples"].as_array().is_some_and(|a| a.len() >= 2))
        .count();
    assert!(gauges >= 2, "running, waiting, KV usage: {gauges}");

    let Some(chromium) = browser() else { return };
    let r = render(&chromium, &rate_page);
    r.check();
    assert_eq!(r.series_of("cdf-ttft"), Some(2));
    assert_eq!(r.series_of("run0-lag"), Some(1));
    assert_eq!(r.series_of("load-rate-ttft"), Some(2));
    assert_eq!(
        r.series_of("run1-requests"),
        Some(3),
        "held, sent → first token, first token → end"
    );

    let r = render(&chromium, &dual_page);
    r.check();
    let server_charts: Vec<&(String, usize)> = r
        .series
        .iter()
        .filter(|(id, _)| id.starts_with("server-"))
        .collect();
    assert_eq!(server_charts.len(), gauges);
    assert!(
        server_charts.iter().all(|(_, n)| *n == 2),
        "one line per round: {server_charts:?}"
    );
}

/// A run that may not measure what was meant says so at the top of its report, its
/// messages escaped (they may quote the server); a dual-round page shows each round's.
#[test]
fn validity_flags_are_a_visible_escaped_block() {
    let dir = tempfile::tempdir().unwrap();
    let (results, page) = (dir.path().join("dual"), dir.path().join("dual.html"));
    run(&[
        "dual-round",
        "--concurrency",
        "2",
        "--num-requests",
        "6",
        "--input-len",
        "64",
        "--output-len",
        "64",
        "--sim-ignore-ignore-eos",
        "--output-dir",
        s(&results),
        "--html",
        s(&page),
        "--quiet",
    ])
    .unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("rounds compared"), "the dual-round section");
    assert_eq!(
        html.matches("<div class=\"validity\">").count(),
        2,
        "one block per round"
    );
    assert!(html.contains("<code>ignore_eos</code> the server stopped early"));

    // A flag quoting a hostile server: markup escaped, control characters shown.
    let file = results.join("results.json");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    doc["runs"][0]["summary"]["validity"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"check": "test", "message": "model <img src=x onerror=alert(1)> \u{1b}[2J"}));
    std::fs::write(&file, doc.to_string()).unwrap();
    let page = dir.path().join("hostile.html");
    run(&["report", s(&results), "--html", s(&page)]).unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<img src=x"), "markup escaped");
    assert!(html.contains("model &lt;img src=x onerror=alert(1)&gt;"));
    assert!(
        !html.contains('\u{1b}'),
        "control characters shown, not sent"
    );
    let Some(chromium) = browser() else { return };
    render(&chromium, &page).check();
}

#[test]
fn merged_and_compared_results_render() {
    let server = sim();
    let dir = tempfile::tempdir().unwrap();
    let part = |name: &str, seed: &str| {
        let d = dir.path().join(name);
        run(&[
            "rate",
            "--endpoint",
            &server.url(),
            "--rates",
            "100",
            "--num-requests",
            "10",
            "--input-len",
            "16",
            "--output-len",
            "4",
            "--seed",
            seed,
            "--output-dir",
            s(&d),
            "--quiet",
        ])
        .unwrap();
        d
    };
    let (a, b) = (part("a", "1"), part("b", "2"));
    let merged = dir.path().join("merged");
    let page = dir.path().join("merged.html");
    let Outcome::Merged(runs) =
        run(&["merge", s(&a), s(&b), "-o", s(&merged), "--html", s(&page)]).unwrap()
    else {
        panic!()
    };
    assert_eq!(runs[0].summary.total, 20);
    assert_eq!(runs[0].summary.succeeded, 20);
    let ids: std::collections::BTreeSet<u64> =
        std::fs::read_to_string(merged.join("requests.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
    assert_eq!(ids.len(), 20, "ids renumbered, unique");
    // The second directory started later: its records moved by the difference.
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("results.json")).unwrap())
            .unwrap();
    let offset_b = saved["merged_from"][1]["run_offsets_s"]["rate 100"]
        .as_f64()
        .unwrap();
    assert!(offset_b > 0.0, "{offset_b}");

    let cmp_page = dir.path().join("cmp.html");
    let Outcome::Compared(c) = run(&[
        "compare",
        s(&a),
        s(&merged.join("results.json")),
        "--html",
        s(&cmp_page),
    ])
    .unwrap() else {
        panic!()
    };
    assert_eq!(c.runs.len(), 1);
    assert!(c.only_a.is_empty() && c.only_b.is_empty());
    let req_s = c.runs[0]
        .rows
        .iter()
        .find(|r| r.metric.label == "success rate")
        .unwrap();
    assert_eq!((req_s.a, req_s.b), (Some(1.0), Some(1.0)));

    let Some(chromium) = browser() else { return };
    let r = render(&chromium, &page);
    r.check();
    assert_eq!(r.series_of("cdf-e2e"), Some(1));
    let r = render(&chromium, &cmp_page);
    r.check();
    assert_eq!(r.charts, 0);
}

#[test]
fn bad_flags_and_inputs_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    // --html needs the results it reports on.
    let e = run(&["throughput", "--html", "x.html", "--num-requests", "2"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("--output-dir"), "{e}");
    let e = run(&["report", s(dir.path()), "--html", "x.html"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("requests.jsonl"), "{e}");
    let e = run(&["compare", s(dir.path()), s(dir.path())]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let e = run(&["merge", s(dir.path()), "-o", "out"]).unwrap_err();
    assert_eq!(e.exit_code(), 2, "one directory is not a merge: {e}");
    let e = run(&["compare", "a", "b", "--noise=-1"]).unwrap_err();
    assert!(e.to_string().contains("--noise"), "{e}");
}

/// The acceptance rate over time (`--metrics spec-decode`) against a simulator that
/// drafts 3 tokens per step, one line for the run.
#[test]
fn the_speculative_decoding_chart_renders() {
    use servescope::sim::SpecDecoding;
    let spec = Some(SpecDecoding {
        tokens: 3,
        acceptance: 0.6,
    });
    let server = SimServer::start(
        SimConfig {
            spec,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("spec.html");
    run(&[
        "batch",
        "--endpoint",
        &server.url(),
        "--batch-sizes",
        "8",
        "--output-len",
        "96",
        "--metrics",
        "spec-decode",
        "--metrics-interval",
        "0.05",
        "--output-dir",
        s(&dir.path().join("out")),
        "--html",
        s(&page),
        "--quiet",
    ])
    .unwrap();
    assert!(
        std::fs::read_to_string(&page)
            .unwrap()
            .contains("id=\"spec-decode-acceptance\"")
    );
    let Some(chromium) = browser() else { return };
    let r = render(&chromium, &page);
    r.check();
    assert_eq!(r.series_of("spec-decode-acceptance"), Some(1));
}
