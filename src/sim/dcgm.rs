//! A DCGM-style exporter on a port of its own (as dcgm-exporter runs beside a serving
//! engine): each simulated GPU's power follows the engine's load, an energy counter
//! integrates it, utilisation is the busy share since the last scrape, framebuffer
//! memory follows the KV cache. dcgm-exporter's names, types, units and labels.
//!
//! Power per GPU: `idle_w + (max_w - idle_w) · min(1, running / full_load_running)`,
//! integrated every `TICK` (the engine model's running requests; the ideal timetable
//! has none, so it idles).

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::Shared;
use super::metrics::CONTENT_TYPE;

/// How often the power model is integrated.
const TICK: Duration = Duration::from_millis(10);
/// The energy counter's value when the simulator starts: "since boot", never 0.
const BOOT_ENERGY_MJ: f64 = 1.0e9;
/// Framebuffer memory used by the weights, and by a full KV cache, per GPU.
const FB_WEIGHTS_MIB: f64 = 16_384.0;
const FB_KV_MIB: f64 = 61_440.0;

/// `servescope sim --dcgm-port P --gpus N --gpu-watts IDLE,MAX`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DcgmConfig {
    /// The exporter's port (0 picks a free one).
    pub port: u16,
    pub gpus: u32,
    /// Power of an idle GPU, W.
    pub idle_w: f64,
    /// Power at full load, W.
    pub max_w: f64,
    /// Running requests at which a GPU draws `max_w`.
    pub full_load_running: u32,
}

impl Default for DcgmConfig {
    fn default() -> Self {
        DcgmConfig {
            port: 9400,
            gpus: 1,
            idle_w: 80.0,
            max_w: 700.0,
            full_load_running: 64,
        }
    }
}

impl DcgmConfig {
    /// Each GPU's power draw with `running` requests in the engine, W.
    pub fn power_w(&self, running: u64) -> f64 {
        let load = (running as f64 / f64::from(self.full_load_running.max(1))).min(1.0);
        self.idle_w + (self.max_w - self.idle_w) * load
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(1..=64).contains(&self.gpus) {
            return Err(format!("--gpus: expected 1 to 64, got {}", self.gpus));
        }
        let ok = |w: f64| w.is_finite() && w >= 0.0;
        if !ok(self.idle_w) || !ok(self.max_w) || self.idle_w > self.max_w {
            return Err(format!(
                "--gpu-watts: expected IDLE,MAX with 0 ≤ IDLE ≤ MAX, got {},{}",
                self.idle_w, self.max_w
            ));
        }
        if self.full_load_running == 0 {
            return Err("\"full_load_running\" in --config: expected at least 1, got 0".into());
        }
        Ok(())
    }
}

/// What the exporter integrates and reports.
#[derive(Debug)]
struct Meter {
    /// Per GPU, mJ.
    energy_mj: f64,
    power_w: f64,
    /// Since the last scrape: seconds with requests running, and in all.
    busy_s: f64,
    span_s: f64,
    last_util: f64,
}

/// The exporter's state, shared by its ticker and its route.
#[derive(Debug)]
pub(super) struct Exporter {
    config: DcgmConfig,
    meter: Mutex<Meter>,
}

impl Exporter {
    pub(super) fn new(config: DcgmConfig) -> Arc<Exporter> {
        let power_w = config.power_w(0);
        Arc::new(Exporter {
            config,
            meter: Mutex::new(Meter {
                energy_mj: BOOT_ENERGY_MJ,
                power_w,
                busy_s: 0.0,
                span_s: 0.0,
                last_util: 0.0,
            }),
        })
    }

    fn meter(&self) -> std::sync::MutexGuard<'_, Meter> {
        // Plain arithmetic under the lock: poison is harmless.
        self.meter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Each GPU's energy counter in J (all GPUs carry the same load).
    pub(super) fn energy_j(&self) -> f64 {
        self.meter().energy_mj / 1000.0
    }

    /// Integrate the power model every tick, for as long as the server runs.
    pub(super) async fn run(self: Arc<Self>, shared: Arc<Shared>) {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = Instant::now();
        loop {
            ticks.tick().await;
            let running = shared.counters().metrics.running;
            let now = Instant::now();
            let dt = now.duration_since(last).as_secs_f64();
            last = now;
            let mut m = self.meter();
            // The power held since the last tick, then the power from now on.
            m.energy_mj += m.power_w * dt * 1000.0;
            m.power_w = self.config.power_w(running);
            m.span_s += dt;
            if running > 0 {
                m.busy_s += dt;
            }
        }
    }

    fn render(&self, kv_usage: f64) -> String {
        let mut m = self.meter();
        if m.span_s > 0.0 {
            m.last_util = (100.0 * m.busy_s / m.span_s).round();
            (m.busy_s, m.span_s) = (0.0, 0.0);
        }
        let fb = (FB_WEIGHTS_MIB + FB_KV_MIB * kv_usage).round();
        let fields = [
            (
                "DCGM_FI_DEV_POWER_USAGE",
                "gauge",
                "Power draw (in W).",
                m.power_w,
            ),
            (
                "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
                "counter",
                "Total energy consumption since boot (in mJ).",
                m.energy_mj.floor(),
            ),
            (
                "DCGM_FI_DEV_GPU_UTIL",
                "gauge",
                "GPU utilization (in %).",
                m.last_util,
            ),
            (
                "DCGM_FI_DEV_FB_USED",
                "gauge",
                "Framebuffer memory used (in MiB).",
                fb,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in fields {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
            for gpu in 0..self.config.gpus {
                let _ = writeln!(
                    out,
                    "{name}{{gpu=\"{gpu}\",UUID=\"GPU-5e7e5c0e-0000-4000-8000-{gpu:012}\",device=\"nvidia{gpu}\",modelName=\"servescope-sim GPU\",Hostname=\"servescope-sim\"}} {value:?}"
                );
            }
        }
        out
    }
}

/// The exporter's one route, `/metrics`, as dcgm-exporter serves it.
pub(super) fn router(exporter: Arc<Exporter>, shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(page))
        .with_state((exporter, shared))
}

async fn page(State((exporter, shared)): State<(Arc<Exporter>, Arc<Shared>)>) -> Response {
    let kv = shared.counters().metrics.kv_usage;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], exporter.render(kv)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_follows_the_running_requests_up_to_full_load() {
        let c = DcgmConfig {
            idle_w: 100.0,
            max_w: 500.0,
            full_load_running: 10,
            ..DcgmConfig::default()
        };
        assert_eq!(c.power_w(0), 100.0);
        assert_eq!(c.power_w(5), 300.0);
        assert_eq!(c.power_w(10), 500.0);
        assert_eq!(c.power_w(40), 500.0);
        let bad = DcgmConfig {
            idle_w: 600.0,
            ..c.clone()
        };
        assert!(bad.validate().unwrap_err().starts_with("--gpu-watts"));
        let none = DcgmConfig { gpus: 0, ..c };
        assert!(none.validate().unwrap_err().starts_with("--gpus"));
    }

    #[test]
    fn the_page_is_dcgm_exporters_per_gpu() {
        let e = Exporter::new(DcgmConfig {
            gpus: 2,
            ..DcgmConfig::default()
        });
        let page = e.render(0.5);
        let expo = crate::metrics::prometheus::parse(&page).unwrap();
        let power: Vec<_> = expo
            .samples
            .iter()
            .filter(|s| s.name == "DCGM_FI_DEV_POWER_USAGE")
            .collect();
        assert_eq!(power.len(), 2);
        assert!(power.iter().all(|s| s.value == 80.0));
        assert!(page.contains("# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter"));
        assert!(page.contains("DCGM_FI_DEV_FB_USED{gpu=\"1\","), "{page}");
        assert!(
            page.contains("} 47104.0"),
            "FB at half the KV cache: {page}"
        );
    }
}
