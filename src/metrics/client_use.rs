//! What the client itself used during a run, and the validity checks on it: its
//! runtime's CPU share, and the connections its limits allow (open files, ephemeral
//! ports). Measuring is `session::client_meter`'s; these are the figures and the rules,
//! pure so that a limited client is tested with numbers, not with load.

use serde::{Deserialize, Serialize};

use super::validity::Flag;

/// A run's client flagged above this share of its cores: a busy worker delays every
/// event that arrives meanwhile, and waits grow steeply as busy time nears 100 %
/// (at 80 % a task already waits four times its own handling on average); the sending
/// timekeeper and the recorder need headroom as well.
pub const CPU_SHARE_WARN: f64 = 0.8;

/// Descriptors the process holds besides its connections (standard streams, output
/// files, the simulator's listener, tokenizer files...).
pub const RESERVED_FILES: u64 = 64;

/// The client's CPU over one run (results.json `summary.client`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClientUse {
    /// CPU seconds (user + system) of the client runtime's threads, from just before
    /// the first request to just after the last.
    pub cpu_s: f64,
    /// Wall seconds of the same span.
    pub wall_s: f64,
    /// The cores those threads may use: the runtime's worker threads, at most the
    /// machine's available parallelism.
    pub cores: u32,
    /// cpu_s / (wall_s × cores).
    pub cpu_share: f64,
}

impl ClientUse {
    /// Figures rounded to µs (the share to 1e-6): serde_json's default parsing may read
    /// a full-precision float back 1 ULP off, and `report` must find the saved figures
    /// exactly (short decimals parse exactly).
    pub fn new(cpu_s: f64, wall_s: f64, cores: u32) -> ClientUse {
        let micro = |v: f64| (v * 1e6).round() / 1e6;
        let (cpu_s, wall_s) = (micro(cpu_s), micro(wall_s));
        let cores = cores.max(1);
        let cpu_share = if wall_s > 0.0 {
            micro(cpu_s / (wall_s * f64::from(cores)))
        } else {
            0.0
        };
        ClientUse {
            cpu_s,
            wall_s,
            cores,
            cpu_share,
        }
    }
}

/// The client's runtime was busy most of the run.
pub fn cpu_flag(c: &ClientUse) -> Option<Flag> {
    (c.cpu_share > CPU_SHARE_WARN).then(|| {
        Flag::new(
            "client_cpu",
            format!(
                "the client was busy {:.0}% of the time on its {} core{} ({:.2} CPU s in {:.2} s, over {:.0}%): \
                 its own work may have delayed requests and token timings; run it on a less busy machine \
                 or split the load over processes (--shard)",
                c.cpu_share * 100.0,
                c.cores,
                if c.cores == 1 { "" } else { "s" },
                c.cpu_s,
                c.wall_s,
                CPU_SHARE_WARN * 100.0
            ),
        )
    })
}

/// What limits how many connections the process may hold, when known.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConnLimits {
    /// The open-file soft limit (RLIMIT_NOFILE), after raising it to the hard one.
    pub open_files: Option<u64>,
    /// Local ports for connections to one server address (Linux's
    /// ip_local_port_range).
    pub ports: Option<u64>,
}

/// A run holding up to `connections` at once: flag the limits it crosses. With the
/// built-in simulator both ends of each connection are this process's files
/// (`files_per_connection` 2).
pub fn connection_flags(
    connections: u64,
    files_per_connection: u64,
    limits: &ConnLimits,
) -> Vec<Flag> {
    let mut flags = Vec::new();
    let files = connections
        .saturating_mul(files_per_connection)
        .saturating_add(RESERVED_FILES);
    if let Some(limit) = limits.open_files
        && files > limit
    {
        flags.push(Flag::new(
            "open_files",
            format!(
                "the run held up to {connections} connections (about {files} open files) and this process may \
                 open {limit} (ulimit -n, already raised to the hard limit): connections beyond it fail; \
                 raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) or lower the concurrency"
            ),
        ));
    }
    if let Some(ports) = limits.ports
        && connections > ports
    {
        flags.push(Flag::new(
            "ephemeral_ports",
            format!(
                "the run held up to {connections} connections to one server address and the client has {ports} \
                 local ports (net.ipv4.ip_local_port_range): connections beyond them fail; widen the range \
                 or split the load over client machines (--shard)"
            ),
        ));
    }
    flags
}

#[cfg(test)]
#[path = "tests_client_use.rs"]
mod tests;
