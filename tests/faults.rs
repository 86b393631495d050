//! Faults injected by the simulator are each recorded with their own failure kind, the
//! rest of the run is measured as usual, and the summary's counts equal what was
//! injected.

use std::collections::BTreeMap;

use servescope::record::FailureKind;
use servescope::sim::{FaultConfig, FaultKind, FaultSpec, SimConfig, SimServer};
use servescope::{Outcome, run_args};

fn at(ordinals: &[u64]) -> FaultSpec {
    FaultSpec {
        rate: 0.0,
        at: ordinals.iter().copied().collect(),
    }
}

fn rate(r: f64) -> FaultSpec {
    FaultSpec {
        rate: r,
        ..FaultSpec::default()
    }
}

fn sim(faults: FaultConfig) -> SimServer {
    let cfg = SimConfig {
        ttft_base_ms: 5.0,
        prefill_ms_per_token: 0.0,
        tpot_ms: 1.0,
        faults,
        ..SimConfig::ideal()
    };
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn run(server: &SimServer, n: &str) -> servescope::metrics::Summary {
    let out = match run_args([
        "servescope",
        "concurrency",
        "--endpoint",
        &server.url(),
        "--concurrency",
        "3",
        "--num-requests",
        n,
        "--input-len",
        "16",
        "--output-len",
        "10",
        // A stall that never ends is caught by the idle timeout: 1 s, well above a 200 ms
        // slow header or a busy machine's pause in a normal stream.
        "--idle-timeout",
        "1.0",
        "--quiet",
    ]) {
        Ok(Outcome::Session(s)) => s,
        other => panic!("{other:?}"),
    };
    out.runs.into_iter().next().unwrap().1
}

/// What the client should have counted, from what the simulator says it injected.
fn expected(server: &SimServer) -> BTreeMap<FailureKind, u64> {
    let injected = server.stats().faults_injected;
    let mut by_kind = BTreeMap::new();
    for kind in FaultKind::ALL {
        let failure = match kind {
            // A stall without an end becomes an idle timeout in the client.
            FaultKind::Stall => Some(FailureKind::IdleTimeout),
            k => k.expected_failure(),
        };
        if let Some(f) = failure
            && injected.get(kind) > 0
        {
            *by_kind.entry(f).or_default() += injected.get(kind);
        }
    }
    by_kind
}

#[test]
fn every_kind_on_a_schedule() {
    // Ordinal 0 is the connection test.
    let server = sim(FaultConfig {
        drop: at(&[2]),
        http_500: at(&[4]),
        http_429: at(&[6]),
        cut: at(&[8]),
        error_event: at(&[10]),
        malformed: at(&[12]),
        stall: at(&[14]),
        slow_headers: at(&[16]),
        slow_headers_ms: 200,
        ..FaultConfig::default()
    });
    let s = run(&server, "20");
    let injected = server.stats().faults_injected;
    assert_eq!(injected.total(), 8, "{injected:?}");
    assert_eq!(s.failures.counts, expected(&server));
    assert_eq!(
        s.failures.counts[&FailureKind::StreamCut],
        2,
        "drop and cut"
    );
    assert_eq!(
        s.failures.counts[&FailureKind::HttpStatus],
        2,
        "500 and 429"
    );
    assert_eq!(s.failures.counts[&FailureKind::IdleTimeout], 1);
    // Slow headers are slow, not failed; everything else was measured.
    assert_eq!((s.total, s.succeeded), (20, 13));
    assert!(
        s.ttft_ms.as_ref().unwrap().max >= 200.0,
        "the slow-headers request"
    );
    assert_eq!(s.ttft_ms.as_ref().unwrap().count, 13);
}

#[test]
fn every_kind_by_rate_is_counted_exactly() {
    let mut faults = FaultConfig {
        drop: rate(0.03),
        http_500: rate(0.03),
        http_429: rate(0.03),
        cut: rate(0.03),
        error_event: rate(0.03),
        malformed: rate(0.03),
        // Fewer: each holds its slot for the whole idle timeout.
        stall: rate(0.01),
        ..FaultConfig::default()
    };
    // A seed whose ordinal 0 (the connection test) is not faulted.
    faults.seed = (0..)
        .find(|&seed| {
            faults.seed = seed;
            faults.decide(0).is_none()
        })
        .unwrap();
    let server = sim(faults);
    let s = run(&server, "300");
    let expected = expected(&server);
    assert_eq!(s.failures.counts, expected);
    let failed: u64 = expected.values().sum();
    assert!(failed > 20, "~6 × 9 + 3 faults expected, {failed} injected");
    assert_eq!(s.succeeded + failed, 300);
}
