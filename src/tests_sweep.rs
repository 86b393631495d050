use super::*;
use crate::metrics::{RunData, summarize};
use crate::schedule::arrivals::Span;

fn settings(rates: usize) -> SweepSettings {
    SweepSettings {
        rates,
        num_requests: 10,
        burstiness: 1.0,
        duration_s: None,
        span: Span {
            requests: Some(10),
            duration_us: None,
        },
        max_concurrency: None,
    }
}

fn done(label: &str, req_s: f64) -> SavedRun {
    let mut summary = summarize(&RunData::default(), &[]);
    summary.req_s = req_s;
    SavedRun::of_session(
        label.into(),
        RunMode::Sweep,
        RunParams::default(),
        (String::new(), 0.0),
        summary,
        10,
        None,
    )
}

#[test]
fn rates_are_evenly_spaced_strictly_between_the_two_measured_rates() {
    let (r, note) = spaced_rates(2.0, 12.0, 4);
    assert_eq!(r, [4.0, 6.0, 8.0, 10.0]);
    assert!(note.is_none());
    let (r, _) = spaced_rates(1.0, 2.0, 1);
    assert_eq!(r, [1.5]);
}

#[test]
fn a_server_that_does_not_batch_gets_rates_below_its_synchronous_rate() {
    let (r, note) = spaced_rates(4.0, 4.0, 3);
    assert_eq!(r, [1.0, 2.0, 3.0]);
    assert!(note.unwrap().contains("not above the synchronous run"));
    let (r, _) = spaced_rates(4.0, 3.0, 1);
    assert_eq!(r, [2.0]);
    let (r, note) = spaced_rates(0.0, 5.0, 3);
    assert!(r.is_empty());
    assert!(note.unwrap().contains("no request succeeded"));
}

#[test]
fn the_planner_runs_synchronous_then_throughput_then_each_rate() {
    let mut p = Sweep::new(settings(3), 7, None, Default::default());
    let first = p.next(&[]).unwrap();
    assert_eq!(first.label, "synchronous");
    assert_eq!(first.load, Load::ClosedLoop { concurrency: 1 });
    assert_eq!(first.params.sweep.as_deref(), Some("synchronous"));
    let mut runs = vec![done("synchronous", 1.0)];
    let second = p.next(&runs).unwrap();
    assert_eq!(second.label, "throughput");
    assert_eq!(second.load, Load::AllAtOnce);
    runs.push(done("throughput", 9.0));
    let mut rates = Vec::new();
    while let Some(plan) = p.next(&runs) {
        assert_eq!(plan.mode, RunMode::Sweep);
        assert_eq!(plan.params.sweep.as_deref(), Some("rate"));
        assert_eq!(plan.label, format!("rate {}/3", rates.len() + 1));
        assert!(matches!(plan.load, Load::OpenLoop { .. }));
        assert_eq!(plan.requests, 10);
        rates.push(plan.params.rate.flatten().unwrap());
        runs.push(done(&plan.label, 0.0));
    }
    assert_eq!(rates, [3.0, 5.0, 7.0]);
    assert_eq!(runs.len(), 5);
}

#[test]
fn with_sessions_the_rate_runs_draw_session_arrivals() {
    // 4 turns a session: requests at 4 and 36 req/s were 1 and 9 sessions/s.
    let mut p = Sweep::new(settings(3), 7, None, Default::default()).of_sessions(4.0);
    let runs = vec![done("synchronous", 4.0), done("throughput", 36.0)];
    let plan = p.next(&runs).unwrap();
    assert_eq!(plan.params.rate.flatten(), Some(3.0));
}

#[test]
fn the_conclusion_lists_the_runs_by_rate_with_the_frontier() {
    let mut runs = vec![done("synchronous", 1.0), done("throughput", 9.0)];
    runs[0].summary.output_tok_s = 100.0;
    runs[0].summary.per_user_tok_s = crate::metrics::Stats::compute(&mut [50.0], &[50.0]);
    runs[1].summary.output_tok_s = 900.0;
    runs[1].summary.per_user_tok_s = crate::metrics::Stats::compute(&mut [10.0], &[50.0]);
    let mut mid = done("rate 1/1", 2.0);
    mid.params.rate = Some(Some(5.0));
    mid.summary.output_tok_s = 80.0;
    mid.summary.per_user_tok_s = crate::metrics::Stats::compute(&mut [40.0], &[50.0]);
    runs.push(mid);
    let text = conclusion_table(&runs, Some(2), 1.0).to_string();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("│ ")).collect();
    let order: Vec<&str> = ["synchronous", "rate 1/1", "throughput"].to_vec();
    let found: Vec<&str> = lines
        .iter()
        .filter_map(|l| order.iter().find(|o| l.contains(*o)).copied())
        .collect();
    assert_eq!(found, order, "{text}");
    let row = |name| lines.iter().find(|l| l.contains(name)).unwrap().to_string();
    assert!(row("synchronous").contains("yes"), "{text}");
    assert!(row("throughput").contains("yes"), "{text}");
    assert!(
        !row("rate 1/1").contains("yes"),
        "dominated by synchronous: {text}"
    );
    assert!(row("throughput").contains("450.0"), "per GPU: {text}");
}

#[test]
fn with_sessions_the_conclusion_places_every_run_in_sessions_per_second() {
    // 4 requests per session: the throughput run's 12 req/s are 3 sessions/s, below the
    // open-loop run's 5 sessions/s.
    let runs = {
        let mut r = vec![done("synchronous", 2.0), done("throughput", 12.0)];
        let mut mid = done("rate 1/1", 16.0);
        mid.params.rate = Some(Some(5.0));
        r.push(mid);
        r
    };
    let text = conclusion_table(&runs, None, 4.0).to_string();
    assert!(text.contains("rate sessions/s"), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("│ ")).collect();
    let order = ["synchronous", "throughput", "rate 1/1"];
    let found: Vec<&str> = lines
        .iter()
        .filter_map(|l| order.iter().find(|o| l.contains(*o)).copied())
        .collect();
    assert_eq!(found, order, "{text}");
    let row = |name| lines.iter().find(|l| l.contains(name)).unwrap().to_string();
    assert!(row("throughput").contains("3.000"), "{text}");
    assert!(row("synchronous").contains("0.500"), "{text}");
}
