//! Measuring what the client itself uses during a run: the CPU time of its runtime's
//! threads, and the limits on the connections it may hold (the open-file limit, which
//! is raised to the hard one first, and the local port range). The figures and the
//! rules that judge them are `metrics::client_use`'s.
//!
//! The CPU is that of the threads of the client's own runtime, registered as they
//! start, not the process's: the built-in simulator serves from the same process, and
//! tests run many sessions in one process. Linux only (read from /proc); elsewhere the
//! run has no CPU figures.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::around::AroundSpec;
use super::target::{CLIENT_WORKERS, Target};
use crate::metrics::Summary;
use crate::metrics::client_use::{ClientUse, ConnLimits, connection_flags, cpu_flag};
use crate::metrics::validity::raise;
use crate::schedule::Load;
use crate::shard::Shard;

/// The client's side of a run's watch (`Around`): its CPU over the sending, and the
/// connections it held against its limits.
pub struct ClientWatch {
    meter: Option<CpuMeter>,
    used: Option<ClientUse>,
    connections: Option<u64>,
    limits: ConnLimits,
}

impl ClientWatch {
    pub fn start(spec: &AroundSpec<'_>) -> ClientWatch {
        ClientWatch {
            limits: conn_limits(),
            meter: CpuMeter::start(&spec.target.threads, CLIENT_WORKERS),
            used: None,
            connections: spec.connections,
        }
    }

    /// Read the CPU meter (the first call only).
    pub fn stop(&mut self) {
        if let Some(m) = self.meter.take() {
            self.used = m.stop();
        }
    }

    /// Save the figures and flag what may have limited the run.
    pub fn judge(&self, target: &Target, summary: &mut Summary) {
        if let Some(u) = &self.used {
            summary.client = Some(u.clone());
            if let Some(f) = cpu_flag(u) {
                raise(&mut summary.validity, f);
            }
        }
        let held = (self.connections.unwrap_or(0)).max(summary.concurrency.max_in_flight);
        // The built-in simulator's end of each connection is this process's too.
        let per = if target.simulated { 2 } else { 1 };
        for f in connection_flags(held, per, &self.limits) {
            raise(&mut summary.validity, f);
        }
    }
}

/// The OS thread ids of one runtime's threads, registered by each as it starts
/// (`tokio::runtime::Builder::on_thread_start`).
#[derive(Clone, Debug, Default)]
pub struct Threads(Arc<Mutex<Vec<u32>>>);

impl Threads {
    /// Called on each new thread of the runtime.
    pub fn register_current(&self) {
        // A reused id (a thread ended, a new one got its number) is counted once.
        if let Some(tid) = current_tid()
            && let Ok(mut v) = self.0.lock()
            && !v.contains(&tid)
        {
            v.push(tid);
        }
    }

    /// CPU seconds of the registered threads still alive (a blocking-pool thread that
    /// ended took its time with it: a slight undercount, never an overcount). Ended
    /// threads leave the list, so a long session's list stays the runtime's size.
    fn cpu_s(&self) -> Option<f64> {
        let mut tids = self.0.lock().ok()?;
        let mut total = 0.0;
        tids.retain(|&t| thread_cpu_s(t).map(|s| total += s).is_some());
        (!tids.is_empty()).then_some(total)
    }
}

/// A run's CPU measurement, from just before its first request.
pub struct CpuMeter {
    threads: Threads,
    cores: u32,
    cpu0: f64,
    t0: Instant,
}

impl CpuMeter {
    /// `workers`: the runtime's worker threads, the most cores it can keep busy.
    pub fn start(threads: &Threads, workers: usize) -> Option<CpuMeter> {
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
        Some(CpuMeter {
            cpu0: threads.cpu_s()?,
            threads: threads.clone(),
            cores: workers.min(parallel).max(1) as u32,
            t0: Instant::now(),
        })
    }

    /// The figures once the last request ended.
    pub fn stop(self) -> Option<ClientUse> {
        let wall = self.t0.elapsed().as_secs_f64();
        let cpu = (self.threads.cpu_s()? - self.cpu0).max(0.0);
        Some(ClientUse::new(cpu, wall, self.cores))
    }
}

/// The connections a run's load holds at most (this shard's part), when the load
/// fixes it; an uncapped open loop holds what the server's latency makes it hold.
pub fn planned_connections(load: &Load, count: usize, shard: Shard) -> Option<u64> {
    match load {
        Load::AllAtOnce => Some(count as u64),
        Load::ClosedLoop { concurrency } => Some(shard.part_of(*concurrency) as u64),
        Load::OpenLoop { cap: Some(c), .. } => Some(shard.part_of(*c) as u64),
        Load::OpenLoop { cap: None, .. } => None,
    }
}

/// The process's connection limits, read once; the open-file soft limit is raised to
/// the hard one first (a run opens a file per connection, and the usual soft limit of
/// 1024 is below many a benchmark's concurrency).
pub fn conn_limits() -> ConnLimits {
    static LIMITS: OnceLock<ConnLimits> = OnceLock::new();
    *LIMITS.get_or_init(|| ConnLimits {
        open_files: raise_open_files(),
        ports: local_ports(),
    })
}

#[cfg(unix)]
fn raise_open_files() -> Option<u64> {
    // Linux refuses a soft limit above fs.nr_open (2^20 by default) even when the hard
    // limit is "unlimited".
    const MOST: u64 = 1 << 20;
    match rlimit::increase_nofile_limit(MOST) {
        Ok(n) => Some(n),
        Err(_) => rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft),
    }
}

#[cfg(not(unix))]
fn raise_open_files() -> Option<u64> {
    None
}

/// Local ports per destination: the span of Linux's ephemeral range.
fn local_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    (hi >= lo).then(|| hi - lo + 1)
}

/// The calling thread's id ("PID/task/TID" is where /proc/thread-self points).
fn current_tid() -> Option<u32> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// A thread's CPU seconds: schedstat's nanoseconds on CPU, else stat's user + system
/// clock ticks.
fn thread_cpu_s(tid: u32) -> Option<f64> {
    let dir = format!("/proc/self/task/{tid}");
    if let Ok(text) = std::fs::read_to_string(format!("{dir}/schedstat"))
        && let Some(ns) = text
            .split_whitespace()
            .next()
            .and_then(|w| w.parse::<u64>().ok())
    {
        return Some(ns as f64 / 1e9);
    }
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    stat_cpu_s(&stat)
}

/// utime + stime of a /proc stat line, in seconds. The name in parentheses may hold
/// spaces, so fields are counted after its closing parenthesis (field 3 is first).
fn stat_cpu_s(stat: &str) -> Option<f64> {
    // USER_HZ: 100 on every Linux architecture this builds for (the ABI fixes it).
    const TICKS_PER_S: f64 = 100.0;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_S)
}

#[cfg(test)]
#[path = "tests_client_meter.rs"]
mod tests;
