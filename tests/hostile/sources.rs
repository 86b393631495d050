//! Several metrics sources (`--metrics-url NAME=URL`): the simulator's DCGM-style
//! exporter giving the run's energy, a source that is down, and credentials that go
//! only to the benchmarked server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use servescope::sim::{DcgmConfig, SimConfig, SimServer};

use crate::common::session;
use crate::server::{Reply, Request, chat_stream, models, serve};
use crate::terminal::servescope;

fn results(dir: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// The run's energy matches the simulator's own power model, and more load draws more
/// power.
#[test]
fn the_simulated_gpus_energy_follows_their_power_model() {
    let dcgm = DcgmConfig {
        port: 0,
        gpus: 2,
        ..DcgmConfig::default()
    };
    let cfg = SimConfig {
        dcgm: Some(dcgm.clone()),
        ..SimConfig::default()
    };
    let sim = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let page = dir.path().join("r.html");
    let source = format!("dcgm={}", sim.dcgm_url().unwrap());
    let before = sim.dcgm_energy_j().unwrap();
    let wall = Instant::now();
    session(&[
        "concurrency",
        "--endpoint",
        &sim.url(),
        "--concurrency",
        "1,16",
        "--num-requests",
        "16",
        "--input-len",
        "64",
        "--output-len",
        "24",
        "--metrics-url",
        &source,
        "--metrics-interval",
        "0.1",
        "--output-dir",
        out.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
        "--quiet",
    ]);
    let wall = wall.elapsed().as_secs_f64();
    // Both GPUs carry the same load: the exporter's counter of one, twice.
    let sim_joules = 2.0 * (sim.dcgm_energy_j().unwrap() - before);
    let doc = results(&out);
    let runs = doc["runs"].as_array().unwrap();
    let mut in_windows = 0.0;
    let mut window_s = 0.0;
    let mut power = Vec::new();
    for run in runs {
        let s = &run["summary"];
        let e = &s["energy"];
        assert_eq!(e["source"], "energy_counter", "{e}");
        assert_eq!(e["gpus"], 2, "{e}");
        let joules = e["joules"].as_f64().unwrap();
        let watts = e["mean_power_w"].as_f64().unwrap();
        let out_tokens = s["tokens"]["output"].as_f64().unwrap();
        let per_token = e["j_per_output_token"].as_f64().unwrap();
        assert!(
            (per_token - joules / out_tokens).abs() < 1e-9 * joules,
            "{e}"
        );
        let per_j = e["output_tokens_per_j"].as_f64().unwrap();
        assert!((per_j * per_token - 1.0).abs() < 1e-9, "{e}");
        // Per GPU, between idle and full power.
        assert!(
            (dcgm.idle_w..=dcgm.max_w).contains(&(watts / 2.0)),
            "{watts} W: {e}"
        );
        in_windows += joules;
        window_s += joules / watts;
        power.push(watts);
        // The source's series, per GPU, under its name.
        let m = &s["metric_sources"]["dcgm"];
        for name in [
            "DCGM_FI_DEV_POWER_USAGE",
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            "DCGM_FI_DEV_GPU_UTIL",
            "DCGM_FI_DEV_FB_USED",
        ] {
            for gpu in ["0", "1"] {
                let key = m
                    .as_object()
                    .unwrap()
                    .keys()
                    .find(|k| k.starts_with(&format!("{name}{{gpu=\"{gpu}\"")));
                assert!(key.is_some(), "{name} of GPU {gpu}: {m}");
            }
        }
        assert!(s.get("server_metrics").is_none(), "no engine source: {s}");
    }
    // Outside the scrape windows the simulator idled: what it counted in all, less that,
    // is what the runs measured.
    let expected = sim_joules - 2.0 * dcgm.idle_w * (wall - window_s);
    assert!(
        (in_windows - expected).abs() < 0.05 * expected,
        "runs {in_windows:.1} J, the simulator's model {expected:.1} J (all {sim_joules:.1} J in {wall:.2} s)"
    );
    assert!(power[1] > power[0] * 1.3, "16 in flight vs 1: {power:?}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("dcgm: DCGM_FI_DEV_POWER_USAGE{gpu=&quot;1&quot;")
            || html.contains("dcgm: DCGM_FI_DEV_POWER_USAGE{gpu=\"1\""),
        "a power chart per GPU"
    );
}

const POWER_PAGE: &str =
    "# TYPE DCGM_FI_DEV_POWER_USAGE gauge\nDCGM_FI_DEV_POWER_USAGE{gpu=\"0\"} 100\n";
const VLLM_PAGE: &str =
    "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"m\"} 1\n";

/// The `Authorization` and `X-Team` headers a request carried.
type Heard = (Option<String>, Option<String>);

/// A source that is down is a warning naming it; the run goes on with the others. The
/// key and `-H` headers reach only the benchmarked server's own /metrics.
#[test]
fn a_dead_source_is_named_and_credentials_stay_home() {
    let gpu_heard: Arc<Mutex<Vec<Heard>>> = Arc::default();
    let heard = gpu_heard.clone();
    let gpu = serve(move |r: &Request| {
        let creds = (
            r.header("authorization").map(String::from),
            r.header("x-team").map(String::from),
        );
        heard.lock().unwrap().push(creds);
        Reply::Full(200, "text/plain", POWER_PAGE.as_bytes().to_vec())
    });
    let engine_auth: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = engine_auth.clone();
    let srv = serve(move |r: &Request| match r.path.as_str() {
        "/v1/models" => models("\"m\""),
        "/metrics" => {
            seen.lock()
                .unwrap()
                .push(r.header("authorization").map(String::from));
            Reply::Full(200, "text/plain", VLLM_PAGE.as_bytes().to_vec())
        }
        _ => chat_stream(4, Duration::from_millis(20)),
    });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ran = servescope(
        &[
            "concurrency",
            "--endpoint",
            &srv.url(),
            "--concurrency",
            "2",
            "--num-requests",
            "8",
            "--input-len",
            "8",
            "--output-len",
            "4",
            "--api-key",
            "sk-sources-test",
            "-H",
            "X-Team: t",
            "--metrics",
            "vllm",
            "--metrics-url",
            &format!("gpu={}/metrics", gpu.url()),
            "--metrics",
            "gpu=dcgm",
            "--metrics-url",
            "dead=http://127.0.0.1:1/metrics",
            "--metrics",
            "dead=node",
            "--metrics-interval",
            "0.05",
            "--output-dir",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr
            .contains("WARNING: cannot scrape the metrics of source `dead` (cannot scrape server metrics from http://127.0.0.1:1/metrics"),
        "{}",
        ran.stderr
    );
    let s = &results(&out)["runs"][0]["summary"];
    assert!(s["server_metrics"].is_object(), "{s}");
    let sources = s["metric_sources"].as_object().unwrap();
    assert_eq!(sources.keys().collect::<Vec<_>>(), ["gpu"], "{s}");
    // Only power samples: their integral, 100 W on one GPU.
    let e = &s["energy"];
    assert_eq!(e["source"], "power_integral", "{e}");
    assert!(
        (e["mean_power_w"].as_f64().unwrap() - 100.0).abs() < 1e-6,
        "{e}"
    );
    assert!(
        ran.stdout
            .contains("gpu        DCGM_FI_DEV_POWER_USAGE{gpu=\"0\"}: mean 100.000"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("energy     "), "{}", ran.stdout);
    // Read back, the run keeps its sources and the energy they give.
    let again = servescope(&["report", out.to_str().unwrap()], &[]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stdout.contains("gpu        DCGM_FI_DEV_POWER_USAGE"),
        "{}",
        again.stdout
    );
    assert!(
        again.stdout.contains("(power samples), mean 100.0 W"),
        "{}",
        again.stdout
    );
    // The exporter on another port never saw the key or the header; the server did.
    let gpu_heard = gpu_heard.lock().unwrap();
    assert!(gpu_heard.len() >= 2, "{gpu_heard:?}");
    assert!(
        gpu_heard.iter().all(|c| *c == (None, None)),
        "{gpu_heard:?}"
    );
    let engine_auth = engine_auth.lock().unwrap();
    assert!(
        !engine_auth.is_empty()
            && engine_auth
                .iter()
                .all(|a| a.as_deref() == Some("Bearer sk-sources-test")),
        "{engine_auth:?}"
    );
}
