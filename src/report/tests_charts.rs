use super::*;
use crate::metrics::summarize;
use crate::record::TokenSource;
use serde_json::{Value, json};

/// (mode, params, label) with the mode typed; `sweeps` takes references to these.
fn typed<'a>(runs: &'a [(&str, RunParams, &'a str)]) -> Vec<(RunMode, &'a RunParams, &'a str)> {
    runs.iter()
        .map(|(m, p, l)| (RunMode::parse(m), p, *l))
        .collect()
}

fn sample(started: u64, first: Option<u64>, ended: u64) -> Sample {
    Sample {
        scheduled: None,
        queue_wait: None,
        started,
        first,
        last: first.map(|f| f.max(ended.saturating_sub(1))),
        ended,
        events: 2,
        input_tokens: 1,
        output_tokens: 2,
        text_tokens: None,
        prompt_tokens: None,
        cached_tokens: None,
        source: TokenSource::Usage,
        ok: true,
        retries: 0,
        phase: Default::default(),
        inputs: None,
        expected_output: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn cdf_of_few_samples_is_the_samples() {
    // Sorted 1, 2, 4, 8: quantile i/3 is the i-th sample.
    let mut v = vec![8.0, 1.0, 4.0, 2.0];
    let pts = cdf(&mut v);
    let want = [(1.0, 0.0), (2.0, 1.0 / 3.0), (4.0, 2.0 / 3.0), (8.0, 1.0)];
    assert_eq!(pts.len(), 4);
    for (p, w) in pts.iter().zip(want) {
        assert!(close(p.0, w.0) && close(p.1, w.1), "{pts:?}");
    }
    assert_eq!(cdf(&mut [5.0]), vec![(5.0, 1.0)]);
    assert!(cdf(&mut []).is_empty());
}

#[test]
fn cdf_of_many_samples_is_bounded_and_exact_on_a_line() {
    // 0, 1, ..., 10000: the quantile at p is 10000 p exactly.
    let mut v: Vec<f64> = (0..=10_000).rev().map(f64::from).collect();
    let pts = cdf(&mut v);
    assert_eq!(pts.len(), CDF_POINTS);
    assert_eq!(pts[0], (0.0, 0.0));
    assert_eq!(*pts.last().unwrap(), (10_000.0, 1.0));
    for &(x, p) in &pts {
        assert!((x - 10_000.0 * p).abs() < 1e-6, "({x}, {p})");
    }
    // 49 of the points lie strictly inside the top 1 %, 0.0002 apart.
    assert_eq!(pts.iter().filter(|p| p.1 > 0.99 && p.1 < 1.0).count(), 49);
    assert!(pts.windows(2).all(|w| w[0].1 < w[1].1), "increasing");
}

#[test]
fn cdf_from_counts_equals_cdf_from_samples() {
    let gaps = [5_000u32, 5_000, 7_000, 10_000, 5_000, 20_000];
    let mut counts = Counts::default();
    gaps.iter().for_each(|&g| counts.add(g));
    let mut ms: Vec<f64> = gaps.iter().map(|&g| g as f64 / 1000.0).collect();
    assert_eq!(cdf_counts(&counts, 1000.0), cdf(&mut ms));
    // Sorted 5, 5, 5, 7, 10, 20 ms at 0, 0.2, ..., 1.
    assert_eq!(cdf_counts(&counts, 1000.0)[3], (7.0, 0.6));
}

#[test]
fn run_cdfs_agree_with_the_summary() {
    let mut d = RunData::default();
    for (i, (first, end)) in [(100, 300), (150, 160), (20, 990), (500, 501)]
        .into_iter()
        .enumerate()
    {
        let base = i as u64 * 10_000;
        d.push(&crate::record::RequestRecord {
            id: i as u64,
            ..crate::record::RequestRecord::ok_for_test(
                "r",
                base,
                vec![base + first * 1000, base + (first + 5) * 1000],
                base + end * 1000,
                1,
                3,
            )
        });
    }
    let s = summarize(&d, &[]);
    let c = run_cdfs(&d);
    let at = |pts: &[(f64, f64)], p: f64| pts.iter().find(|q| close(q.1, p)).map(|q| q.0).unwrap();
    assert_eq!(at(&c.ttft, 0.0), s.ttft_ms.as_ref().unwrap().min);
    assert_eq!(at(&c.ttft, 1.0), s.ttft_ms.as_ref().unwrap().max);
    assert_eq!(at(&c.e2e, 1.0), s.e2e_ms.as_ref().unwrap().max);
    assert_eq!(at(&c.tpot, 0.0), s.tpot_ms.as_ref().unwrap().min);
    // TPOT = 5 ms / (3 − 1) for every request; ITL is 5 ms per gap.
    assert!(c.tpot.iter().all(|p| close(p.0, 2.5)));
    assert!(c.itl.iter().all(|p| close(p.0, 5.0)));
    assert_eq!(c.ttft.len(), 4);
}

#[test]
fn occupancy_counts_half_open_intervals() {
    // [0,10) [5,15) [10,20): 1 from 0, 2 from 5, still 2 at 10 (one ends, one
    // starts), 1 from 15, 0 from 20.
    let steps = occupancy([(0, 10), (5, 15), (10, 20)]);
    assert_eq!(steps, vec![(0, 1), (5, 2), (15, 1), (20, 0)]);
    assert!(occupancy([]).is_empty());
    // Two requests at once, then both done.
    assert_eq!(occupancy([(3, 7), (3, 7)]), vec![(3, 2), (7, 0)]);
}

#[test]
fn in_flight_and_queued_from_samples() {
    // A: [0 s, 1 s) first token 0.4 s; B: [0.2 s, 0.6 s) first token 0.5 s.
    let a = sample(0, Some(400_000), 1_000_000);
    let b = sample(200_000, Some(500_000), 600_000);
    let (flight, queued) = in_flight_and_queued(&[a, b]);
    assert_eq!(
        flight,
        vec![(0, 1), (200_000, 2), (600_000, 1), (1_000_000, 0)]
    );
    assert_eq!(
        queued,
        vec![(0, 1), (200_000, 2), (400_000, 1), (500_000, 0)]
    );
}

#[test]
fn steps_are_downsampled_to_bucket_maxima() {
    let steps = occupancy([(0, 10), (5, 15), (10, 20)]);
    // Few steps: exact, in seconds.
    assert_eq!(downsample_steps(&steps, 10).len(), 4);
    // Three points: two buckets [0,10) [10,20) and the end.
    let d = downsample_steps(&steps, 3);
    assert_eq!(d, vec![(0.0, 2.0), (10e-6, 2.0), (20e-6, 0.0)]);
    // A short spike inside a bucket survives.
    let spiky = vec![(0, 1), (1, 9), (2, 1), (50, 2), (99, 3), (100, 0)];
    let d = downsample_steps(&spiky, 3);
    assert_eq!(
        d.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![9.0, 3.0, 0.0]
    );
}

#[test]
fn timeline_keeps_every_kth_request_by_start() {
    let samples: Vec<Sample> = (0..10u64)
        .rev()
        .map(|i| {
            sample(
                i * 1_000_000,
                Some(i * 1_000_000 + 500_000),
                i * 1_000_000 + 900_000,
            )
        })
        .collect();
    let all = timeline(&samples, 100);
    assert_eq!((all.stride, all.total, all.bars.len()), (1, 10, 10));
    assert_eq!(all.bars[0].started, 0.0);
    assert_eq!(all.bars[1].first, Some(1.5));
    let few = timeline(&samples, 4);
    // 10 requests, at most 4 bars: every 3rd → requests 0, 3, 6, 9.
    assert_eq!(few.stride, 3);
    let starts: Vec<f64> = few.bars.iter().map(|b| b.started).collect();
    assert_eq!(starts, vec![0.0, 3.0, 6.0, 9.0]);
    assert_eq!(few.total, 10);
}

#[test]
fn latency_over_time_of_drawn_requests() {
    let mut failed = sample(3_000_000, None, 3_500_000);
    failed.ok = false;
    let samples = vec![
        sample(0, Some(250_000), 1_000_000),
        sample(2_000_000, None, 2_100_000),
        failed,
    ];
    let (ttft, e2e) = latency_over_time(&timeline(&samples, 10));
    assert_eq!(ttft, vec![(0.0, 250.0)], "no first token, no TTFT");
    assert_eq!(e2e, vec![(0.0, 1000.0), (2.0, 100.0)], "failed left out");
}

#[test]
fn schedule_lag_keeps_the_worst_per_stretch() {
    let mk = |sched: u64, started: u64, wait: Option<u64>| Sample {
        scheduled: Some(sched),
        queue_wait: wait,
        ..sample(started, Some(started + 10), started + 20)
    };
    let samples = vec![
        mk(0, 100, None),            // 0.1 ms late
        mk(1_000, 1_050, None),      // 0.05 ms
        mk(2_000, 2_300, Some(200)), // 0.3 ms − 0.2 ms queue wait = 0.1 ms
        mk(3_000, 3_900, None),      // 0.9 ms
    ];
    let (all, thinned) = schedule_lag(&samples, 10);
    assert!(!thinned);
    let want = [(0.0, 0.1), (0.001, 0.05), (0.002, 0.1), (0.003, 0.9)];
    for (p, w) in all.iter().zip(want) {
        assert!(close(p.0, w.0) && close(p.1, w.1), "{all:?}");
    }
    // Two stretches of schedule time: [0, 1.5 ms) and [1.5, 3 ms].
    let (two, thinned) = schedule_lag(&samples, 2);
    assert!(thinned);
    assert_eq!(two.len(), 2);
    assert!(close(two[0].1, 0.1) && close(two[1].1, 0.9), "{two:?}");
    // Closed-loop requests have no schedule.
    assert!(schedule_lag(&[sample(0, None, 5)], 10).0.is_empty());
}

#[test]
fn sweeps_by_mode_and_round() {
    let p = |v: Value| -> RunParams { serde_json::from_value(v).unwrap() };
    let runs = [
        (
            "concurrency",
            p(json!({"concurrency": 16})),
            "concurrency 16",
        ),
        ("concurrency", p(json!({"concurrency": 1})), "concurrency 1"),
        ("rate", p(json!({"rate": 5.0})), "rate 5"),
        ("rate", p(json!({"rate": null})), "rate inf"),
        ("rate", p(json!({"rate": 20.0})), "rate 20"),
        ("throughput", p(json!({"num_requests": 4})), "throughput"),
        ("trace", p(json!({"time_scale": 1.6})), "trace x1.6"),
    ];
    let t = typed(&runs);
    let s = sweeps(t.iter().map(|(m, p, l)| (m, *p, *l)));
    assert_eq!(s.len(), 2, "one-level trace and throughput are no sweep");
    assert_eq!(s[0].mode, RunMode::Concurrency);
    assert_eq!(
        s[0].groups,
        vec![("concurrency".into(), vec![(1.0, 1), (16.0, 0)])]
    );
    assert_eq!(s[1].groups[0].1, vec![(5.0, 2), (20.0, 4)]);
    assert_eq!(s[1].left_out, vec!["rate inf".to_string()]);

    let dual = [
        (
            "dual-round",
            p(json!({"concurrency": 2, "round": 1})),
            "concurrency 2 round 1",
        ),
        (
            "dual-round",
            p(json!({"concurrency": 2, "round": 2})),
            "concurrency 2 round 2",
        ),
        (
            "dual-round",
            p(json!({"concurrency": 8, "round": 1})),
            "concurrency 8 round 1",
        ),
        (
            "dual-round",
            p(json!({"concurrency": 8, "round": 2})),
            "concurrency 8 round 2",
        ),
    ];
    let t = typed(&dual);
    let s = sweeps(t.iter().map(|(m, p, l)| (m, *p, *l)));
    let names: Vec<&str> = s[0].groups.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(names, ["round 1", "round 2"]);
    assert_eq!(s[0].groups[1].1, vec![(2.0, 1), (8.0, 3)]);
    let t = load_level(&RunMode::Trace, &p(json!({"time_scale": 0.8}))).unwrap();
    assert!(t.0.reversed && t.1 == 0.8);
}

#[test]
fn load_curves_follow_the_sweep() {
    let mk = |ttft_us: u64| {
        let mut d = RunData::default();
        let mut r = crate::record::RequestRecord::parse_json_line(
            r#"{"run":"x","id":0,"scheduled_at":null,"started_at":0,"first_token_at":null,"ended_at":1.0,"events":[],"input_tokens":1,"prompt_tokens":null,"cached_tokens":null,"output_tokens":10,"output_tokens_source":"usage","status":"ok","error":null,"http_status":200}"#,
        )
        .unwrap();
        r.events = vec![ttft_us, 1_000_000];
        d.push(&r);
        summarize(&d, &[])
    };
    let (a, b) = (mk(100_000), mk(300_000));
    let p = |v: Value| -> RunParams { serde_json::from_value(v).unwrap() };
    let runs = [
        ("concurrency", p(json!({"concurrency": 4})), "c 4"),
        ("concurrency", p(json!({"concurrency": 2})), "c 2"),
    ];
    let t = typed(&runs);
    let s = &sweeps(t.iter().map(|(m, p, l)| (m, *p, *l)))[0];
    let sums = [&a, &b];
    let ttft = load_curve(s, &sums, "TTFT p50", |s| {
        s.ttft_ms.as_ref()?.percentile(50.0)
    });
    assert_eq!(ttft[0].points, vec![(2.0, 300.0), (4.0, 100.0)]);
    assert_eq!(ttft[0].name, "TTFT p50");
    let lt = latency_vs_throughput(s, &sums, "TTFT p50", |s| s.ttft_ms.as_ref().map(|t| t.mean));
    // 10 output tokens in 1 s each: x = 10 tok/s.
    assert_eq!(lt[0].points, vec![(10.0, 300.0), (10.0, 100.0)]);
}

#[test]
fn gauge_samples_from_saved_metrics() {
    let m = json!({
        "vllm:num_requests_running": {"type": "gauge", "mean": 1.0, "samples": [[0.0, 1.0], [1.0, 3.0]]},
        "vllm:prompt_tokens_total": {"type": "counter", "delta": 5.0},
        "old:gauge": {"type": "gauge", "mean": 2.0},
        "derived": {}
    });
    let g = gauge_samples(&ServerMetrics::from_json(m).unwrap());
    assert_eq!(
        g,
        vec![(
            "vllm:num_requests_running".to_string(),
            vec![(0.0, 1.0), (1.0, 3.0)]
        )]
    );
}
