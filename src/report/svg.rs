//! Charts as inline SVG, written here.
//!
//! Why SVG from Rust rather than a JS library (uPlot) or plotters: the page needs no
//! script to show its charts (it opens offline, prints, and survives a blocked script),
//! the output is deterministic text that unit tests can read, and every series carries a
//! `class="series"` the browser test counts. plotters' SVG backend needs a font backend
//! for text layout and cannot tag series; the charts needed here (lines, steps, points
//! and request bars on linear or log axes) are a few hundred lines.

use std::fmt::Write as _;

use super::charts::{Points, Series, Timeline};

/// Tableau 10: distinguishable, and readable on white.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
/// Above this many points a series' points get no tooltip each (file size).
const MAX_TITLED_POINTS: usize = 60;
/// After the palette's ten colours, series repeat them dashed.
const DASHES: [&str; 3] = ["", "6 3", "2 2"];

const W: f64 = 640.0;
const H: f64 = 340.0;
/// Full-width charts (timelines) get a wider canvas, so text keeps its size.
const WIDE_W: f64 = 1040.0;
const LEFT: f64 = 66.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 46.0;

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

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Style {
    Line,
    /// A step function: each value holds until the next point.
    Step,
    Points,
    LineAndPoints,
    /// Steps with a translucent fill down to the axis.
    StepArea,
}

/// One chart: `id` is unique in the page (the browser test reports it).
#[derive(Clone, Debug)]
pub struct Chart<'a> {
    pub id: String,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: &'a [Series],
    pub style: Style,
    /// A sentence under the chart (how to read it, what was left out).
    pub note: Option<String>,
}

/// How a data range maps onto pixels.
#[derive(Clone, Debug)]
struct Mapping {
    lo: f64,
    hi: f64,
    log: bool,
    reversed: bool,
    px0: f64,
    px1: f64,
    ticks: Vec<f64>,
}

impl Mapping {
    fn new(axis: &Axis, values: &[f64], px0: f64, px1: f64) -> Mapping {
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
    fn exact(axis: &Axis, lo: f64, hi: f64, px0: f64, px1: f64) -> Mapping {
        let mut m = Mapping::new(axis, &[lo, hi], px0, px1);
        if hi > lo {
            m.lo = lo;
            m.hi = hi;
            m.ticks.retain(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9);
        }
        m
    }

    fn px(&self, v: f64) -> Option<f64> {
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

/// Escape text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn color(i: usize) -> (&'static str, &'static str) {
    (
        PALETTE[i % PALETTE.len()],
        DASHES[(i / PALETTE.len()) % DASHES.len()],
    )
}

/// The frame every chart shares: grid, ticks and axis labels.
fn frame(out: &mut String, x: &Mapping, y: &Mapping, labels: (&str, &str), size: (f64, f64)) {
    let (xl, yl) = labels;
    let (w, h) = size;
    let (x0, x1, y0, y1) = (LEFT, w - RIGHT, h - BOTTOM, TOP);
    out.push_str("<g class=\"grid\">");
    for &t in &y.ticks {
        if let Some(py) = y.px(t) {
            let _ = write!(
                out,
                "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{py:.1}\" y2=\"{py:.1}\"/><text class=\"yt\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x0 - 6.0,
                py + 4.0,
                tick_label(t)
            );
        }
    }
    for &t in &x.ticks {
        if let Some(px) = x.px(t) {
            let _ = write!(
                out,
                "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{y1}\" y2=\"{y0}\"/><text class=\"xt\" x=\"{px:.1}\" y=\"{:.1}\">{}</text>",
                y0 + 16.0,
                tick_label(t)
            );
        }
    }
    out.push_str("</g>");
    let _ = write!(
        out,
        "<rect class=\"box\" x=\"{x0}\" y=\"{y1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
        x1 - x0,
        y0 - y1
    );
    let _ = write!(
        out,
        "<text class=\"xl\" x=\"{:.1}\" y=\"{:.1}\">{}</text><text class=\"yl\" transform=\"translate(14 {:.1}) rotate(-90)\">{}</text>",
        (x0 + x1) / 2.0,
        h - 8.0,
        esc(xl),
        (y0 + y1) / 2.0,
        esc(yl)
    );
}

/// What a chart is and how to read it back: the page's hover readout inverts
/// `data-map` (per axis: pixel start and end, data low and high, log, reversed) to show
/// the cursor's position in data units.
struct SvgHead<'a> {
    id: &'a str,
    title: &'a str,
    size: (f64, f64),
    x: (&'a Mapping, &'a str),
    y: (&'a Mapping, &'a str),
}

fn open_svg(out: &mut String, h: SvgHead) {
    let (w, ht) = h.size;
    let map = |m: &Mapping| {
        format!(
            "{:.1} {:.1} {} {} {} {}",
            m.px0,
            m.px1,
            m.lo,
            m.hi,
            u8::from(m.log),
            u8::from(m.reversed)
        )
    };
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"{}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"{}\" \
         data-map=\"{}|{}\" data-xl=\"{}\" data-yl=\"{}\">",
        esc(h.id),
        esc(h.title),
        map(h.x.0),
        map(h.y.0),
        esc(h.x.1),
        esc(h.y.1),
    );
}

/// A chart with its title, legend and note, as a `<figure>`.
pub fn chart(c: &Chart) -> String {
    let xs: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    let x = Mapping::new(&c.x, &xs, LEFT, W - RIGHT);
    let y = Mapping::new(&c.y, &ys, H - BOTTOM, TOP);
    let mut out = String::new();
    let _ = write!(
        out,
        "<figure class=\"fig\"><figcaption>{}</figcaption>",
        esc(&c.title)
    );
    open_svg(
        &mut out,
        SvgHead {
            id: &c.id,
            title: &c.title,
            size: (W, H),
            x: (&x, &c.x.label),
            y: (&y, &c.y.label),
        },
    );
    frame(&mut out, &x, &y, (&c.x.label, &c.y.label), (W, H));
    for (i, s) in c.series.iter().enumerate() {
        // Pixel positions, and the data points they show (for tooltips).
        let (pts, kept): (Points, Points) = s
            .points
            .iter()
            .filter_map(|&(a, b)| Some(((x.px(a)?, y.px(b)?), (a, b))))
            .unzip();
        if pts.is_empty() {
            continue;
        }
        let (col, dash) = color(i);
        let _ = write!(out, "<g class=\"series\" data-name=\"{}\">", esc(&s.name));
        let step = matches!(c.style, Style::Step | Style::StepArea);
        let line = c.style != Style::Points;
        // A lone point has no line to draw: show it as a point.
        let points = matches!(c.style, Style::Points | Style::LineAndPoints) || pts.len() == 1;
        if line && pts.len() > 1 {
            let mut d = String::with_capacity(pts.len() * 14);
            for (k, &(px, py)) in pts.iter().enumerate() {
                if k == 0 {
                    let _ = write!(d, "M{px:.1} {py:.1}");
                } else if step {
                    let _ = write!(d, "H{px:.1}V{py:.1}");
                } else {
                    let _ = write!(d, "L{px:.1} {py:.1}");
                }
            }
            // A translucent area under the steps, down to the axis.
            if c.style == Style::StepArea
                && let Some(base) = y.px(y.lo.max(0.0))
            {
                let _ = write!(
                    out,
                    "<path d=\"{d}V{base:.1}H{:.1}Z\" fill=\"{col}\" fill-opacity=\"0.18\" stroke=\"none\"/>",
                    pts[0].0
                );
            }
            let _ = write!(
                out,
                "<path d=\"{d}\" fill=\"none\" stroke=\"{col}\" stroke-width=\"1.8\"{}><title>{}</title></path>",
                if dash.is_empty() {
                    String::new()
                } else {
                    format!(" stroke-dasharray=\"{dash}\"")
                },
                esc(&s.name)
            );
        }
        if points && pts.len() > MAX_TITLED_POINTS {
            // Many points: one path of round dots (a zero-length segment each), ~14
            // bytes a point instead of ~120 for a circle with a tooltip.
            let mut d = String::with_capacity(pts.len() * 14);
            for &(px, py) in &pts {
                let _ = write!(d, "M{px:.1} {py:.1}h0");
            }
            let _ = write!(
                out,
                "<path d=\"{d}\" stroke=\"{col}\" stroke-width=\"4\" stroke-linecap=\"round\" opacity=\"0.75\"><title>{}</title></path>",
                esc(&s.name)
            );
        } else if points {
            for (&(px, py), &(dx, dy)) in pts.iter().zip(&kept) {
                let _ = write!(
                    out,
                    "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3\" fill=\"{col}\"><title>{}: {}, {}</title></circle>",
                    esc(&s.name),
                    tick_label(dx),
                    tick_label(dy)
                );
            }
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out.push_str(&legend(
        c.series
            .iter()
            .map(|s| (s.name.as_str(), !s.points.is_empty())),
    ));
    if let Some(n) = &c.note {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(n));
    }
    out.push_str("</figure>");
    out
}

/// The legend under a chart: one entry per series, in series order (the colour order).
fn legend<'a>(entries: impl Iterator<Item = (&'a str, bool)>) -> String {
    let mut out = String::from("<ul class=\"legend\">");
    for (i, (name, has_data)) in entries.enumerate() {
        let (col, dash) = color(i);
        let style = if dash.is_empty() {
            format!("border-top:3px solid {col}")
        } else {
            format!("border-top:3px dashed {col}")
        };
        let _ = write!(
            out,
            "<li><span class=\"sw\" style=\"{style}\"></span>{}{}</li>",
            esc(name),
            if has_data { "" } else { " (no samples)" }
        );
    }
    out.push_str("</ul>");
    out
}

/// Colours of the request bars: waiting for a slot, waiting for the first token,
/// streaming, failed.
const BAR_KINDS: [(&str, &str, &str); 4] = [
    (
        "queue",
        "#bab0ac",
        "held by the client (--max-concurrency or a parent turn)",
    ),
    ("prefill", "#f28e2b", "sent → first token"),
    ("decode", "#4e79a7", "first token → end"),
    ("failed", "#e15759", "failed (sent → end)"),
];

/// Each drawn request as a bar from its start to its first token to its end, one row
/// per request by start time. One `<path>` per kind keeps the DOM small.
pub fn timeline_chart(id: &str, title: &str, t: &Timeline, note: Option<String>) -> String {
    let n = t.bars.len();
    let height = (n as f64 * 3.0).clamp(220.0, 520.0) + TOP + BOTTOM;
    let t_end = t.bars.iter().map(|b| b.ended).fold(0.0f64, f64::max);
    let t_begin = t
        .bars
        .iter()
        .map(|b| b.scheduled.unwrap_or(b.started).min(b.started))
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let x = Mapping::exact(&Axis::zero(""), t_begin, t_end, LEFT, WIDE_W - RIGHT);
    let rows = (n.max(1) * t.stride) as f64;
    let y = Mapping::exact(&Axis::zero(""), 0.0, rows, TOP, height - BOTTOM);
    let stride = t.stride as f64;
    let row_h = y.px(stride).unwrap_or(TOP) - y.px(0.0).unwrap_or(TOP);
    let mut paths: [String; 4] = Default::default();
    let mut rect = |k: usize, a: f64, b: f64, row: usize| {
        let (Some(pa), Some(pb)) = (x.px(a), x.px(b)) else {
            return;
        };
        // At least a pixel, so short requests in a long run still show.
        let w = (pb - pa).max(1.0);
        let top = y.px(row as f64 * stride).unwrap_or(TOP);
        let h = (row_h * 0.8).max(1.0);
        let _ = write!(paths[k], "M{pa:.1} {top:.2}h{w:.1}v{h:.2}h-{w:.1}z");
    };
    for (row, b) in t.bars.iter().enumerate() {
        if !b.ok {
            rect(3, b.started, b.ended, row);
            continue;
        }
        if let Some(s) = b.scheduled
            && b.queued
        {
            rect(0, s, b.started, row);
        }
        match b.first {
            Some(f) => {
                rect(1, b.started, f, row);
                rect(2, f, b.ended, row);
            }
            None => rect(2, b.started, b.ended, row),
        }
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "<figure class=\"fig wide\"><figcaption>{}</figcaption>",
        esc(title)
    );
    let size = (WIDE_W, height);
    open_svg(
        &mut out,
        SvgHead {
            id,
            title,
            size,
            x: (&x, "time (s)"),
            y: (&y, "request"),
        },
    );
    // The y axis counts requests (every stride-th drawn), top to bottom.
    let labels = ("time since the run's start (s)", "request (by start time)");
    frame(&mut out, &x, &y, labels, size);
    let mut legend_items = Vec::new();
    for (k, (class, col, name)) in BAR_KINDS.iter().enumerate() {
        if paths[k].is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "<path class=\"series bar-{class}\" data-name=\"{name}\" fill=\"{col}\" d=\"{}\"><title>{name}</title></path>",
            paths[k]
        );
        legend_items.push((*col, *name));
    }
    out.push_str("</svg><ul class=\"legend\">");
    for (col, name) in legend_items {
        let _ = write!(
            out,
            "<li><span class=\"sw box\" style=\"background:{col}\"></span>{name}</li>"
        );
    }
    out.push_str("</ul>");
    if let Some(n) = note {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(&n));
    }
    out.push_str("</figure>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_data() {
        let (lo, hi, t) = linear_ticks(0.0, 97.0);
        assert_eq!((lo, hi), (0.0, 100.0));
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let (lo, hi, t) = linear_ticks(0.13, 0.62);
        assert!(lo <= 0.13 && hi >= 0.62);
        assert_eq!(t, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
        // A flat series still gets a range.
        let (lo, hi, _) = linear_ticks(5.0, 5.0);
        assert!(lo < 5.0 && hi > 5.0);
        let (lo, hi, _) = linear_ticks(0.0, 0.0);
        assert!(lo == 0.0 && hi > 0.0);
    }

    #[test]
    fn log_ticks_by_decade() {
        let (lo, hi, t) = log_ticks(3.0, 4000.0);
        assert_eq!((lo, hi), (1.0, 10_000.0));
        assert_eq!(t, vec![1.0, 10.0, 100.0, 1000.0, 10_000.0]);
        let (_, _, t) = log_ticks(20.0, 300.0);
        assert_eq!(t, vec![10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]);
    }

    #[test]
    fn auto_axis_goes_logarithmic_over_a_wide_range_and_ignores_a_few_tiny_values() {
        let narrow = Axis::auto("ms", [41.0, 100.0, 562.0].into_iter());
        assert_eq!(narrow.scale, Scale::Linear);
        // 200 gaps of 6–300 ms and one of 0.001 ms: log from 1 ms, the tiny one at the edge.
        let mut gaps: Vec<f64> = (0..200).map(|i| 6.0 + i as f64 * 1.5).collect();
        gaps.push(0.001);
        let wide = Axis::auto("ms", gaps.into_iter());
        assert_eq!((wide.scale, wide.floor), (Scale::Log, Some(1.0)));
        assert!(wide.log_note().unwrap().contains("below 1 "));
        let m = Mapping::new(&wide, &[0.001, 6.0, 300.0], 0.0, 100.0);
        assert_eq!((m.lo, m.hi), (1.0, 1000.0));
        assert_eq!(m.px(0.001), m.px(1.0), "clamped to the edge");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(150.0), "150");
        assert_eq!(tick_label(12_000.0), "12k");
        assert_eq!(tick_label(2_500_000.0), "2.5M");
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn chart_has_one_series_element_per_curve_with_data() {
        let series = vec![
            Series {
                name: "a".into(),
                points: vec![(1.0, 0.0), (2.0, 0.5), (4.0, 1.0)],
            },
            Series {
                name: "b <x>".into(),
                points: vec![(3.0, 1.0)],
            },
            Series {
                name: "empty".into(),
                points: vec![],
            },
        ];
        let svg = chart(&Chart {
            id: "t".into(),
            title: "T".into(),
            x: Axis::linear("x (ms)"),
            y: Axis::zero("share"),
            series: &series,
            style: Style::Line,
            note: None,
        });
        assert_eq!(svg.matches("class=\"series\"").count(), 2);
        assert!(svg.contains("b &lt;x&gt;") && !svg.contains("b <x>"));
        assert!(svg.contains("empty (no samples)"));
        assert_eq!(svg.matches("<li>").count(), 3, "legend lists every series");
        assert!(svg.contains("x (ms)"));
        // The hover readout's mapping: x from 1 to 4 over the plot's width, linear.
        let map = attr_of(&svg, "data-map");
        let x: Vec<&str> = map.split('|').next().unwrap().split(' ').collect();
        assert_eq!(x[0].parse::<f64>().unwrap(), LEFT);
        assert_eq!(x[1].parse::<f64>().unwrap(), W - RIGHT);
        assert_eq!(&x[4..], ["0", "0"], "linear, not reversed");
        assert_eq!(attr_of(&svg, "data-xl"), "x (ms)");
    }

    fn attr_of(html: &str, name: &str) -> String {
        let at = html.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        html[at..at + html[at..].find('"').unwrap()].to_string()
    }
}
