//! The GPUs' energy over a run, from DCGM-style series of any metrics source: each
//! GPU's energy counter increase when it has one, else the time integral of its power
//! samples (trapezoids); summed over GPUs and sources. Then joules per output token,
//! output tokens per joule and the mean power.
//!
//! Computed from the saved series (`server_saved`), so a run read back from
//! results.json gives the same figure.

use serde::{Deserialize, Serialize};

use crate::metrics::server_saved::{self as saved, Series};

/// Power draw in W, one series per GPU.
pub const POWER: &str = "DCGM_FI_DEV_POWER_USAGE";
/// Energy since boot in mJ, one series per GPU; a counter, exposed as a gauge by some
/// deployments' field lists.
pub const ENERGY: &str = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION";

/// How the run's energy was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnergySource {
    /// Every GPU's energy counter increase.
    EnergyCounter,
    /// Every GPU's power samples integrated over time.
    PowerIntegral,
    /// Counters for some GPUs, power samples for the others.
    Mixed,
}

impl EnergySource {
    pub fn as_str(self) -> &'static str {
        match self {
            EnergySource::EnergyCounter => "energy counter",
            EnergySource::PowerIntegral => "power samples",
            EnergySource::Mixed => "energy counters and power samples",
        }
    }
}

/// `summary.energy` of results.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Energy {
    pub source: EnergySource,
    /// Summed over GPUs.
    pub joules: f64,
    /// GPUs counted (over every source).
    pub gpus: u64,
    /// Summed over GPUs, each GPU's energy over its own span of samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_power_w: Option<f64>,
    /// None when the run produced no output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub j_per_output_token: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens_per_j: Option<f64>,
}

/// One GPU's energy (J) and the seconds it covers.
#[derive(Clone, Copy, Debug, PartialEq)]
struct GpuEnergy {
    joules: f64,
    seconds: f64,
    from_counter: bool,
}

/// The run's energy from the sources a summary kept (the engine's and the others),
/// per output token as it counts them: live, and again when `report` re-reads a run.
pub fn of_summary(s: &crate::metrics::Summary) -> Option<Energy> {
    let all = s.server_metrics.iter();
    of(
        all.chain(s.metric_sources.iter().map(|(_, m)| m)),
        s.tokens.output,
    )
}

/// The run's energy from every source's series; `None` when no GPU had an energy
/// counter that moved over a known span or at least two power samples (never a 0 made
/// up from nothing).
pub fn of<'a>(
    sources: impl IntoIterator<Item = &'a saved::ServerMetrics>,
    output_tokens: u64,
) -> Option<Energy> {
    let mut gpus: Vec<GpuEnergy> = Vec::new();
    for m in sources {
        gpus.extend(per_gpu(m));
    }
    if gpus.is_empty() {
        return None;
    }
    let counters = gpus.iter().filter(|g| g.from_counter).count();
    let source = match counters {
        n if n == gpus.len() => EnergySource::EnergyCounter,
        0 => EnergySource::PowerIntegral,
        _ => EnergySource::Mixed,
    };
    let joules: f64 = gpus.iter().map(|g| g.joules).sum();
    let timed = gpus.iter().all(|g| g.seconds > 0.0);
    let mean_power_w = timed.then(|| gpus.iter().map(|g| g.joules / g.seconds).sum());
    let out = (output_tokens > 0).then_some(output_tokens as f64);
    Some(Energy {
        source,
        joules,
        gpus: gpus.len() as u64,
        mean_power_w,
        j_per_output_token: out.map(|t| joules / t),
        output_tokens_per_j: out.filter(|_| joules > 0.0).map(|t| t / joules),
    })
}

/// Each GPU of one source: its counter when usable, else its power samples.
fn per_gpu(m: &saved::ServerMetrics) -> Vec<GpuEnergy> {
    let mut out = Vec::new();
    let mut labels_done: Vec<&str> = Vec::new();
    for (key, series) in &m.series {
        let (name, labels) = split_key(key);
        if name != ENERGY {
            continue;
        }
        if let Some(e) = from_counter(series) {
            labels_done.push(labels);
            out.push(e);
        }
    }
    for (key, series) in &m.series {
        let (name, labels) = split_key(key);
        if name != POWER || labels_done.contains(&labels) {
            continue;
        }
        if let Series::Gauge(g) = series
            && let Some(e) = integrate(&g.samples)
        {
            out.push(e);
        }
    }
    out
}

/// `name{labels}` → (`name`, `{labels}`): the label part names the GPU.
fn split_key(key: &str) -> (&str, &str) {
    key.find('{').map_or((key, ""), |i| key.split_at(i))
}

/// The counter's increase, mJ → J. A counter first seen during the run is not used:
/// its value is the energy since boot, not since the run began.
fn from_counter(series: &Series) -> Option<GpuEnergy> {
    let (mj, seconds) = match series {
        Series::Counter(c) => {
            c.before?;
            let delta = c.delta?;
            // rate = delta / seconds; no rate: no time passed.
            let seconds = match c.rate {
                Some(r) if r > 0.0 => delta / r,
                _ => 0.0,
            };
            (delta, seconds)
        }
        Series::Gauge(g) => gauge_increase(&g.samples)?,
    };
    // A counter that stood still while the GPU was powered was not updated (a run
    // shorter than its refresh): the power samples say more.
    if mj <= 0.0 {
        return None;
    }
    Some(GpuEnergy {
        joules: mj / 1000.0,
        seconds,
        from_counter: true,
    })
}

/// A counter exposed as a gauge: its increase over the samples, a drop (the exporter
/// or the driver restarted) counted from 0 as Prometheus's `increase()` does. The
/// first sample must be the one before the run (time 0).
fn gauge_increase(samples: &[(f64, Option<f64>)]) -> Option<(f64, f64)> {
    let pts: Vec<(f64, f64)> = samples.iter().filter_map(|&(t, v)| Some((t, v?))).collect();
    let (&(t0, first), rest) = pts.split_first()?;
    let &(t1, _) = rest.last()?;
    if t0 > 0.0 {
        return None;
    }
    let mut prev = first;
    let mut sum = 0.0;
    for &(_, v) in rest {
        sum += if v >= prev { v - prev } else { v };
        prev = v;
    }
    Some((sum, t1 - t0))
}

/// Trapezoids over the power samples (W) of one GPU; at least two are needed.
fn integrate(samples: &[(f64, Option<f64>)]) -> Option<GpuEnergy> {
    let pts: Vec<(f64, f64)> = samples.iter().filter_map(|&(t, v)| Some((t, v?))).collect();
    if pts.len() < 2 {
        return None;
    }
    let joules = pts
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum();
    Some(GpuEnergy {
        joules,
        seconds: pts[pts.len() - 1].0 - pts[0].0,
        from_counter: false,
    })
}

#[cfg(test)]
#[path = "tests_energy.rs"]
mod tests;
