//! The client's own limits judged from figures: a busy client, too few files or ports.

use super::*;

#[test]
fn the_share_is_cpu_over_wall_time_on_the_client_cores() {
    let c = ClientUse::new(3.0, 2.0, 2);
    assert!((c.cpu_share - 0.75).abs() < 1e-12);
    assert!(cpu_flag(&c).is_none(), "75 % leaves headroom");
    // No wall time (nothing ran): no share, no division by zero.
    assert_eq!(ClientUse::new(0.0, 0.0, 0).cpu_share, 0.0);
}

#[test]
fn a_cpu_bound_client_is_flagged() {
    let busy = ClientUse::new(3.4, 2.0, 2);
    let f = cpu_flag(&busy).expect("85 % of two cores");
    assert_eq!(f.check, "client_cpu");
    assert!(
        f.message.contains("busy 85% of the time on its 2 cores"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("--shard"),
        "says what to do: {}",
        f.message
    );
    // One core, fully busy.
    let one = cpu_flag(&ClientUse::new(1.0, 1.0, 1)).unwrap();
    assert!(one.message.contains("on its 1 core "), "{}", one.message);
}

#[test]
fn the_saved_figures_round_trip() {
    let c = ClientUse::new(1.5, 3.0, 2);
    let back: ClientUse = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
    assert_eq!(back, c);
}

#[test]
fn too_few_open_files_for_the_connections_is_flagged() {
    let limits = ConnLimits {
        open_files: Some(1024),
        ports: Some(28_232),
    };
    assert!(connection_flags(900, 1, &limits).is_empty());
    let f = connection_flags(1000, 1, &limits);
    let checks: Vec<&str> = f.iter().map(|f| f.check.as_str()).collect();
    assert_eq!(checks, ["open_files"], "1000 + reserved files > 1024");
    assert!(f[0].message.contains("ulimit -Hn"), "{}", f[0].message);
    // The built-in simulator's end of each connection counts too.
    assert_eq!(connection_flags(500, 2, &limits).len(), 1);
}

#[test]
fn too_few_local_ports_for_the_connections_is_flagged() {
    let limits = ConnLimits {
        open_files: Some(1 << 20),
        ports: Some(1000),
    };
    let f = connection_flags(1500, 1, &limits);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].check, "ephemeral_ports");
    assert!(
        f[0].message.contains("ip_local_port_range"),
        "{}",
        f[0].message
    );
    // Unknown limits flag nothing.
    assert!(connection_flags(1 << 30, 2, &ConnLimits::default()).is_empty());
}

#[test]
fn figures_read_back_from_results_json_are_the_figures_saved() {
    // serde_json's default float parsing may be 1 ULP off a full-precision value, and
    // `report` must give the live summary again: the figures are rounded to µs.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let cpu = (x >> 11) as f64 / (1u64 << 53) as f64 * 7.0;
        let wall = cpu + ((x >> 3) & 0xffff) as f64 / 997.0;
        let c = ClientUse::new(cpu, wall, 2);
        let text = serde_json::to_string(&c).unwrap();
        let back: ClientUse = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c, "{text}");
    }
}
