//! Chart axes: linear or log scales, "nice" ticks and their labels, and how a data
//! range maps onto pixels.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    Log,
}

#[derive(Clone, Debug)]
pub struct Axis {
    /// With its unit, e.g. "TTFT (ms)".
    pub label: String,
    pub scale: Scale,
    /// Drawn from high to low (a trace's time scale: left is less load).
    pub reversed: bool,
    /// Start a linear axis at 0 when the data is positive (counts, throughput).
    pub from_zero: bool,
    /// A log axis starts here, a power of ten (values below are drawn at its edge),
    /// so a few tiny values do not squash the rest.
    pub floor: Option<f64>,
}

impl Axis {
    pub fn linear(label: impl Into<String>) -> Axis {
        Axis {
            label: label.into(),
            scale: Scale::Linear,
            reversed: false,
            from_zero: false,
            floor: None,
        }
    }
    pub fn zero(label: impl Into<String>) -> Axis {
        Axis {
            from_zero: true,
            ..Axis::linear(label)
        }
    }
    /// Logarithmic when positive values span more than 20×: latency
    /// distributions often do, and a linear axis would crush the body of the curve.
    /// The range is judged from the lowest 1% of values up, and the log axis starts
    /// at the power of ten below: a handful of near-zero gaps must not stretch it over
    /// six decades.
    pub fn auto(label: impl Into<String>, values: impl Iterator<Item = f64>) -> Axis {
        let mut v: Vec<f64> = values.filter(|v| v.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let axis = Axis::zero(label);
        let (Some(&min), Some(&hi)) = (v.first(), v.last()) else {
            return axis;
        };
        let lo = v[v.len() / 100];
        if lo > 0.0 && hi / lo > 20.0 {
            // The axis starts at the power of ten below the 1% value.
            let decade = 10f64.powi(lo.log10().floor() as i32);
            Axis {
                scale: Scale::Log,
                floor: (min < decade).then_some(decade),
                ..axis
            }
        } else {
            axis
        }
    }

    /// A sentence for the chart's note when the axis is logarithmic.
    pub fn log_note(&self) -> Option<String> {
        (self.scale == Scale::Log).then(|| match self.floor {
            Some(f) => format!(
                "Logarithmic axis; the few values below {} are drawn at its left edge.",
                tick_label(f)
            ),
            None => "Logarithmic axis.".to_string(),
        })
    }
}

/// How a data range maps onto pixels.
#[derive(Clone, Debug)]
pub(super) struct Mapping {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) log: bool,
    pub(super) reversed: bool,
    pub(super) px0: f64,
    pub(super) px1: f64,
    pub(super) ticks: Vec<f64>,
}

impl Mapping {
    pub(super) fn new(axis: &Axis, values: &[f64], px0: f64, px1: f64) -> Mapping {
        let log = axis.scale == Scale::Log;
        let floor = axis.floor.filter(|_| log).unwrap_or(0.0);
        let vals: Vec<f64> = values
            .iter()
            .map(|&v| if log { v.max(floor) } else { v })
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let (mut lo, mut hi) = vals
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if vals.is_empty() {
            (lo, hi) = if log { (1.0, 10.0) } else { (0.0, 1.0) };
        }
        let (lo, hi, ticks) = if log {
            log_ticks(lo, hi)
        } else {
            if axis.from_zero && lo > 0.0 {
                lo = 0.0;
            }
            linear_ticks(lo, hi)
        };
        Mapping {
            lo,
            hi,
            log,
            reversed: axis.reversed,
            px0,
            px1,
            ticks,
        }
    }

    /// Exactly [lo, hi], with the nice ticks that fall inside (a timeline's axes:
    /// rounding out would leave blank space after the last request).
    pub(super) fn exact(axis: &Axis, lo: f64, hi: f64, px0: f64, px1: f64) -> Mapping {
        let mut m = Mapping::new(axis, &[lo, hi], px0, px1);
        if hi > lo {
            m.lo = lo;
            m.hi = hi;
            m.ticks.retain(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9);
        }
        m
    }

    pub(super) fn px(&self, v: f64) -> Option<f64> {
        if !v.is_finite() || (self.log && v <= 0.0) {
            return None;
        }
        // Below a log axis's floor: at its edge.
        let v = if self.log { v.max(self.lo) } else { v };
        let f = |x: f64| if self.log { x.log10() } else { x };
        let mut t = (f(v) - f(self.lo)) / (f(self.hi) - f(self.lo));
        if self.reversed {
            t = 1.0 - t;
        }
        Some(self.px0 + t * (self.px1 - self.px0))
    }
}

/// "Nice" linear ticks (1, 2, 5 × 10^k apart, about six of them) and the range they
/// span, which covers [lo, hi].
pub fn linear_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        // A flat series: a band around the value.
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad * if lo == 0.0 { 0.0 } else { 1.0 }, hi + pad)
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let n = ((end - start) / step).round() as usize;
    let ticks = (0..=n).map(|i| clean(start + i as f64 * step)).collect();
    (start, end, ticks)
}

/// Powers of ten covering [lo, hi] (with 2 and 5 between them when the range spans
/// fewer than three decades), and that range.
pub fn log_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let a = lo.log10().floor() as i32;
    let b = (hi.log10().ceil() as i32).max(a + 1);
    let mut ticks = Vec::new();
    for k in a..=b {
        let p = 10f64.powi(k);
        ticks.push(clean(p));
        if b - a < 3 && k < b {
            ticks.push(clean(2.0 * p));
            ticks.push(clean(5.0 * p));
        }
    }
    (10f64.powi(a), 10f64.powi(b), ticks)
}

/// Rounds away binary noise (0.30000000000000004 → 0.3).
fn clean(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

/// A tick label: short (12k, 1.5M) and without trailing zeros.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if a >= 1e6 {
        trim(format!("{:.2}", v / 1e6)) + "M"
    } else if a >= 1e4 {
        trim(format!("{:.1}", v / 1e3)) + "k"
    } else if a >= 100.0 || a == 0.0 {
        trim(format!("{v:.0}"))
    } else if a >= 1.0 {
        trim(format!("{v:.2}"))
    } else {
        trim(format!("{v:.4}"))
    }
}
