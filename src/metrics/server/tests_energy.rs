use super::*;
use crate::metrics::prometheus;
use crate::metrics::server::collect::Collector;
use crate::metrics::server::presets::DCGM;
use crate::metrics::server_saved::{Counter, Gauge, ServerMetrics};
use crate::metrics::stats::SavedStats;

fn counter(before: Option<f64>, after: f64, seconds: f64) -> Series {
    let delta = after - before.unwrap_or(0.0);
    Series::Counter(Counter {
        before,
        after: Some(after),
        delta: Some(delta),
        rate: Some(delta / seconds),
        note: None,
    })
}

fn gauge(samples: &[(f64, f64)]) -> Series {
    Series::Gauge(Gauge {
        stats: SavedStats::default(),
        samples: samples.iter().map(|&(t, v)| (t, Some(v))).collect(),
    })
}

fn metrics(series: Vec<(&str, Series)>) -> ServerMetrics {
    ServerMetrics {
        series: series
            .into_iter()
            .map(|(k, s)| (k.to_string(), s))
            .collect(),
        ..Default::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[test]
fn counters_give_energy_power_and_per_token_figures() {
    // GPU 0: 150 000 mJ over 10 s; GPU 1: 100 000 mJ over 10 s.
    let m = metrics(vec![
        (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\"}",
            counter(Some(1_000_000.0), 1_150_000.0, 10.0),
        ),
        (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"1\"}",
            counter(Some(5_000_000.0), 5_100_000.0, 10.0),
        ),
        // Power samples of GPUs with a counter are not counted again.
        (
            "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\"}",
            gauge(&[(0.0, 999.0), (10.0, 999.0)]),
        ),
    ]);
    let e = of([&m], 500).unwrap();
    assert_eq!(e.source, EnergySource::EnergyCounter);
    assert_eq!(e.gpus, 2);
    assert!(close(e.joules, 250.0), "{e:?}");
    assert!(close(e.mean_power_w.unwrap(), 25.0), "{e:?}");
    assert!(close(e.j_per_output_token.unwrap(), 0.5), "{e:?}");
    assert!(close(e.output_tokens_per_j.unwrap(), 2.0), "{e:?}");
}

#[test]
fn power_samples_are_integrated_by_trapezoids_per_gpu() {
    let m = metrics(vec![
        // (100+200)/2·1 + 200·2 = 550 J over 3 s.
        (
            "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\"}",
            gauge(&[(0.0, 100.0), (1.0, 200.0), (3.0, 200.0)]),
        ),
        // Missing from the scrape at 1 s: 100 W from 0 to 3 s is 300 J all the same.
        (
            "DCGM_FI_DEV_POWER_USAGE{gpu=\"1\"}",
            gauge(&[(0.0, 100.0), (3.0, 100.0)]),
        ),
    ]);
    let e = of([&m], 0).unwrap();
    assert_eq!(e.source, EnergySource::PowerIntegral);
    assert!(close(e.joules, 850.0), "{e:?}");
    assert!(close(e.mean_power_w.unwrap(), 550.0 / 3.0 + 100.0), "{e:?}");
    // No output tokens: no per-token figure rather than a division by zero.
    assert_eq!((e.j_per_output_token, e.output_tokens_per_j), (None, None));
}

#[test]
fn an_energy_gauge_is_read_as_a_counter_and_a_drop_counts_from_zero() {
    // +2000, then a restart (7000 → 1000: 1000 since it), then +3000: 6000 mJ in 3 s.
    let m = metrics(vec![(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\"}",
        gauge(&[(0.0, 5000.0), (1.0, 7000.0), (2.0, 1000.0), (3.0, 4000.0)]),
    )]);
    let e = of([&m], 12).unwrap();
    assert_eq!(e.source, EnergySource::EnergyCounter);
    assert!(close(e.joules, 6.0), "{e:?}");
    assert!(close(e.mean_power_w.unwrap(), 2.0), "{e:?}");
    assert!(close(e.j_per_output_token.unwrap(), 0.5), "{e:?}");
}

#[test]
fn no_power_samples_give_no_figure_not_zero() {
    assert_eq!(of([&ServerMetrics::default()], 100), None);
    let m = metrics(vec![
        // One power sample cannot be integrated.
        ("DCGM_FI_DEV_POWER_USAGE{gpu=\"0\"}", gauge(&[(0.0, 300.0)])),
        // A counter first seen during the run holds the energy since boot.
        (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"1\"}",
            counter(None, 9_000_000.0, 5.0),
        ),
        // A counter that did not move was not refreshed.
        (
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"2\"}",
            counter(Some(7.0), 7.0, 5.0),
        ),
        (
            "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"}",
            gauge(&[(0.0, 50.0), (1.0, 60.0)]),
        ),
    ]);
    assert_eq!(of([&m], 100), None);
}

#[test]
fn gpus_without_a_counter_fall_back_to_power_and_sources_add_up() {
    let node_a = metrics(vec![(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\"}",
        counter(Some(0.0), 40_000.0, 2.0),
    )]);
    // Another node's exporter, same `gpu` label: a GPU of its own.
    let node_b = metrics(vec![(
        "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\"}",
        gauge(&[(0.0, 30.0), (2.0, 30.0)]),
    )]);
    let e = of([&node_a, &node_b], 100).unwrap();
    assert_eq!(e.source, EnergySource::Mixed);
    assert_eq!(e.gpus, 2);
    assert!(close(e.joules, 100.0), "{e:?}");
    assert!(close(e.mean_power_w.unwrap(), 50.0), "{e:?}");
}

/// dcgm-exporter pages through the collector: a counter reset between scrapes and a
/// GPU absent from one scrape.
#[test]
fn dcgm_pages_through_the_collector() {
    let page = |e0: f64, p0: f64, gpu1: Option<(f64, f64)>| {
        let mut s = format!(
            "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n# TYPE DCGM_FI_DEV_POWER_USAGE gauge\n\
             DCGM_FI_DEV_POWER_USAGE{{gpu=\"0\",UUID=\"GPU-a\"}} {p0}\n"
        );
        if let Some((_, p1)) = gpu1 {
            s += &format!("DCGM_FI_DEV_POWER_USAGE{{gpu=\"1\",UUID=\"GPU-b\"}} {p1}\n");
        }
        s += &format!(
            "# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).\n\
             # TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n\
             DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu=\"0\",UUID=\"GPU-a\"}} {e0}\n"
        );
        if let Some((e1, _)) = gpu1 {
            s +=
                &format!("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu=\"1\",UUID=\"GPU-b\"}} {e1}\n");
        }
        prometheus::parse(&s).unwrap()
    };
    let mut c = Collector::new(DCGM.iter().map(|s| s.to_string()).collect());
    // GPU 0's counter restarts after 1 s: +10 000, then 5 000 since the restart.
    c.add(0.0, &page(100_000.0, 100.0, Some((1_000.0, 50.0))));
    c.add(1.0, &page(110_000.0, 100.0, None));
    c.add(2.0, &page(5_000.0, 100.0, Some((61_000.0, 50.0))));
    let saved = c.finish(None).unwrap().to_saved(&[]);
    let e = of([&saved], 30).unwrap();
    assert_eq!(e.source, EnergySource::EnergyCounter);
    // GPU 0: 15 J; GPU 1: 60 J (its missing scrape changes nothing).
    assert!(close(e.joules, 75.0), "{e:?}");
    assert!(close(e.j_per_output_token.unwrap(), 2.5), "{e:?}");
}

#[test]
fn energy_round_trips_through_json() {
    let e = Energy {
        source: EnergySource::PowerIntegral,
        joules: 12.5,
        gpus: 1,
        mean_power_w: Some(6.25),
        j_per_output_token: None,
        output_tokens_per_j: None,
    };
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["source"], "power_integral");
    assert!(v.get("j_per_output_token").is_none(), "{v}");
    assert_eq!(serde_json::from_value::<Energy>(v).unwrap(), e);
}

/// `compare` reads the energy figures from results.json and judges each by its own
/// direction: fewer joules per token is better, more tokens per joule is better.
#[test]
fn compare_judges_energy_figures_by_their_direction() {
    use crate::report::compare::{Verdict, compare};
    let side = |joules: f64| {
        let dir = tempfile::tempdir().unwrap();
        let doc = serde_json::json!({"model": "m", "endpoint": "e", "runs": [{
            "label": "c 1", "mode": "concurrency", "params": {},
            "summary": {"requests": {"total": 10, "succeeded": 10, "failed": 0},
                        "tokens": {"input": 100, "output": 100},
                        "energy": {"source": "energy_counter", "joules": joules, "gpus": 1,
                                   "mean_power_w": joules,
                                   "j_per_output_token": joules / 100.0,
                                   "output_tokens_per_j": 100.0 / joules}}}]});
        std::fs::write(dir.path().join("results.json"), doc.to_string()).unwrap();
        dir
    };
    let (a, b) = (side(200.0), side(100.0));
    let c = compare(a.path(), b.path(), 5.0).unwrap();
    let verdict = |label: &str| {
        let row = c.runs[0].rows.iter().find(|r| r.metric.label == label);
        row.unwrap_or_else(|| panic!("no row {label}")).verdict
    };
    // The total grows with a run's size: not a figure to judge.
    assert!(
        !c.runs[0]
            .rows
            .iter()
            .any(|r| r.metric.label == "GPU energy (J)")
    );
    assert_eq!(verdict("J per output token"), Verdict::Better);
    assert_eq!(verdict("output tokens per J"), Verdict::Better);
    // B spent twice the energy of A: worse on every figure.
    let c = compare(b.path(), a.path(), 5.0).unwrap();
    let worse = c.runs[0]
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::Worse);
    assert_eq!(worse.count(), 2, "{}", c.render());
    assert!(c.render().contains("J per output token"), "{}", c.render());
}
