use super::search::*;

fn cfg(min: f64, max: f64, resolution: f64, integer: bool) -> SearchConfig {
    SearchConfig {
        min,
        max,
        resolution,
        integer,
        confirm: 0,
        target: 0.99,
    }
}

fn obs(att: f64) -> Observation {
    Observation {
        sent: 1000,
        met: (att * 1000.0).round() as u64,
        complete: true,
    }
}

/// Runs a search against a server whose attainment at each level is `att(level)`.
fn drive(mut s: Search, att: impl Fn(f64) -> f64) -> Search {
    let mut guard = 0;
    while let Some(level) = s.next_level() {
        s.record(obs(att(level)));
        guard += 1;
        assert!(guard < 200, "the search does not end");
    }
    s
}

fn levels(s: &Search) -> Vec<f64> {
    s.probes().iter().map(|p| p.level).collect()
}

#[test]
fn grows_then_bisects_to_the_exact_integer_capacity() {
    let s = drive(Search::new(cfg(1.0, 1024.0, 0.05, true)), |l| {
        if l <= 24.0 { 1.0 } else { 0.9 }
    });
    assert_eq!(
        levels(&s),
        [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 24.0, 28.0, 26.0, 25.0]
    );
    assert_eq!(s.verdict(), Verdict::Found);
    assert_eq!(s.value(), Some(24.0));
    assert_eq!(s.bracket(), (Some(24.0), Some(25.0)));
}

#[test]
fn every_integer_capacity_is_found_exactly_within_the_probe_bound() {
    for (min, max) in [(1.0, 1024.0), (1.0, 100.0), (3.0, 200.0), (8.0, 64.0)] {
        let c = cfg(min, max, 0.05, true);
        let bound = probe_bound(&c);
        for k in (min as usize)..(max as usize) {
            let s = drive(Search::new(c.clone()), |l| {
                if l <= k as f64 { 1.0 } else { 0.5 }
            });
            let (pass, fail) = s.bracket();
            let (pass, fail) = (pass.unwrap(), fail.unwrap());
            assert!(
                fail - pass <= (0.05 * pass).max(1.0),
                "min {min} max {max} K {k}: bracket [{pass}, {fail})"
            );
            assert!(pass <= k as f64 && fail > k as f64, "K {k}: {pass}..{fail}");
            if (k as f64) < 20.0 {
                assert_eq!(s.value(), Some(k as f64), "min {min} K {k}");
            }
            assert!(
                s.probes().len() <= bound,
                "min {min} max {max} K {k}: {} probes > bound {bound}: {:?}",
                s.probes().len(),
                levels(&s)
            );
        }
    }
}

#[test]
fn rate_levels_bisect_to_the_relative_resolution_within_the_bound() {
    let c = cfg(0.5, 64.0, 0.05, false);
    let bound = probe_bound(&c);
    for cap in [0.7, 1.3, 5.0, 9.99, 33.3, 63.0] {
        let s = drive(Search::new(c.clone()), |l| if l <= cap { 1.0 } else { 0.0 });
        let (pass, fail) = (s.bracket().0.unwrap(), s.bracket().1.unwrap());
        assert!(pass <= cap && cap < fail, "{cap}: [{pass}, {fail})");
        assert!(fail - pass <= 0.05 * pass, "{cap}: [{pass}, {fail})");
        assert!(s.probes().len() <= bound, "{cap}: {:?}", levels(&s));
    }
}

#[test]
fn max_passing_and_min_failing_end_at_once() {
    let s = drive(Search::new(cfg(1.0, 8.0, 0.05, true)), |_| 1.0);
    assert_eq!(levels(&s), [1.0, 2.0, 4.0, 8.0]);
    assert_eq!(s.verdict(), Verdict::AtLeastMax);
    assert_eq!(s.value(), Some(8.0));

    // A max that is not a power of two of min is probed itself.
    let s = drive(Search::new(cfg(1.0, 6.0, 0.05, true)), |_| 1.0);
    assert_eq!(levels(&s), [1.0, 2.0, 4.0, 6.0]);

    let s = drive(Search::new(cfg(4.0, 64.0, 0.05, true)), |_| 0.0);
    assert_eq!(levels(&s), [4.0]);
    assert_eq!(s.verdict(), Verdict::BelowMin);
    assert_eq!(s.value(), None);
}

#[test]
fn the_target_is_inclusive_and_failures_count_as_misses() {
    let mut s = Search::new(cfg(1.0, 4.0, 0.05, true));
    // 99 of 100 met: exactly the target passes.
    s.record(Observation {
        sent: 100,
        met: 99,
        complete: true,
    });
    assert_eq!(s.probes()[0].passed, Some(true));
    // 98 of 100 (the other two failed requests): fails.
    s.record(Observation {
        sent: 100,
        met: 98,
        complete: true,
    });
    assert_eq!(s.probes()[1].passed, Some(false));
    assert_eq!(s.verdict(), Verdict::Found);
    assert_eq!(s.value(), Some(1.0));
}

#[test]
fn an_incomplete_probe_never_passes() {
    let mut s = Search::new(cfg(1.0, 4.0, 0.05, true));
    s.record(Observation {
        sent: 10,
        met: 10,
        complete: false,
    });
    assert_eq!(s.probes()[0].passed, Some(false));
    assert_eq!(s.next_level(), None, "the session is ending");
    // It is no evidence against the level: the bracket and verdict stay open.
    assert_eq!(s.bracket(), (None, None));
    assert_eq!(s.verdict(), Verdict::Searching);
    assert_eq!(s.value(), None);
}

#[test]
fn a_probe_near_the_threshold_is_confirmed_on_pooled_counts() {
    let mut c = cfg(1.0, 4.0, 0.05, true);
    c.confirm = 2;
    let mut s = Search::new(c);
    // n = 400, target 0.99: s.e. ≈ 0.005, band ±0.00995. 0.985 is inside it.
    let o = |met| Observation {
        sent: 400,
        met,
        complete: true,
    };
    s.record(o(394));
    assert_eq!(s.next_level(), Some(1.0), "repeated");
    assert_eq!(s.probes()[0].passed, None);
    s.record(o(400));
    assert_eq!(s.next_level(), Some(1.0), "twice");
    s.record(o(397));
    // Pooled: 1191 / 1200 = 0.9925 ≥ 0.99 although the first alone failed.
    assert!(s.probes().iter().all(|p| p.passed == Some(true)));
    assert_eq!(s.next_level(), Some(2.0));
    // Far from the threshold: no repeat.
    s.record(o(300));
    assert_eq!(s.probes()[3].passed, Some(false));
    assert_eq!(s.next_level(), None);
    assert_eq!(s.value(), Some(1.0));
}

#[test]
fn confirmation_can_turn_a_lucky_pass_into_a_fail() {
    let mut c = cfg(1.0, 4.0, 0.05, true);
    c.confirm = 1;
    let mut s = Search::new(c);
    let o = |met| Observation {
        sent: 400,
        met,
        complete: true,
    };
    s.record(o(398)); // 0.995: passes alone, but within the band
    assert_eq!(s.next_level(), Some(1.0));
    s.record(o(390)); // pooled 788 / 800 = 0.985
    assert_eq!(s.probes()[0].passed, Some(false));
    assert_eq!(s.verdict(), Verdict::BelowMin);
}

#[test]
fn the_probe_bound_is_the_issue_formula() {
    assert_eq!(probe_bound(&cfg(1.0, 1024.0, 0.05, true)), 10 + 5 + 2);
    assert_eq!(probe_bound(&cfg(4.0, 64.0, 0.25, true)), 4 + 2 + 2);
    assert_eq!(round_sig(12.3456, 3), 12.3);
}
