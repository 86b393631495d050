//! Charts as inline SVG, written here.
//!
//! Why SVG from Rust rather than a JS library (uPlot) or plotters: the page needs no
//! script to show its charts (it opens offline, prints, and survives a blocked script),
//! the output is deterministic text that unit tests can read, and every series carries a
//! `class="series"` the browser test counts. plotters' SVG backend needs a font backend
//! for text layout and cannot tag series; the charts needed here (lines, steps, points
//! and request bars on linear or log axes) are a few hundred lines.

use std::fmt::Write as _;

use super::axis::Mapping;
pub use super::axis::{Axis, Scale, linear_ticks, log_ticks, tick_label};
use super::charts::{Bar, Points, Series, Timeline};

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
pub enum Style {
    Line,
    /// A step function: each value holds until the next point.
    Step,
    Points,
    LineAndPoints,
    /// Steps with a translucent fill down to the axis.
    StepArea,
    /// The first series as a line with points (a Pareto frontier), the others as points.
    FirstLineRestPoints,
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

/// Escape text for HTML and SVG. Control and bidi characters (from a server's model id,
/// messages or labels) are shown as escapes, as on the terminal; line ends are kept.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c != '\n' && crate::console::hidden(c) => {
                out.push_str(&crate::console::printable(c.encode_utf8(&mut [0; 4])))
            }
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
        series(&mut out, c.style, (i, s), &x, &y);
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

/// One series of a chart, in a `<g class="series">`.
fn series(out: &mut String, style: Style, (i, s): (usize, &Series), x: &Mapping, y: &Mapping) {
    // Pixel positions, and the data points they show (for tooltips).
    let (pts, kept): (Points, Points) = s
        .points
        .iter()
        .filter_map(|&(a, b)| Some(((x.px(a)?, y.px(b)?), (a, b))))
        .unzip();
    if pts.is_empty() {
        return;
    }
    let (col, dash) = color(i);
    let _ = write!(out, "<g class=\"series\" data-name=\"{}\">", esc(&s.name));
    let step = matches!(style, Style::Step | Style::StepArea);
    let line = match style {
        Style::Points => false,
        Style::FirstLineRestPoints => i == 0,
        _ => true,
    };
    // A lone point has no line to draw: show it as a point.
    let points = matches!(
        style,
        Style::Points | Style::LineAndPoints | Style::FirstLineRestPoints
    ) || pts.len() == 1;
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
        if style == Style::StepArea
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
    if points {
        dots(out, &pts, &kept, col, &s.name);
    }
    out.push_str("</g>");
}

/// A series' points: circles with tooltips, or one path of dots when there are many.
fn dots(out: &mut String, pts: &Points, kept: &Points, col: &str, name: &str) {
    if pts.len() > MAX_TITLED_POINTS {
        // Many points: one path of round dots (a zero-length segment each), ~14
        // bytes a point instead of ~120 for a circle with a tooltip.
        let mut d = String::with_capacity(pts.len() * 14);
        for &(px, py) in pts {
            let _ = write!(d, "M{px:.1} {py:.1}h0");
        }
        let _ = write!(
            out,
            "<path d=\"{d}\" stroke=\"{col}\" stroke-width=\"4\" stroke-linecap=\"round\" opacity=\"0.75\"><title>{}</title></path>",
            esc(name)
        );
    } else {
        for (&(px, py), &(dx, dy)) in pts.iter().zip(kept) {
            let _ = write!(
                out,
                "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3\" fill=\"{col}\"><title>{}: {}, {}</title></circle>",
                esc(name),
                tick_label(dx),
                tick_label(dy)
            );
        }
    }
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
const BAR_KINDS: [(&str, &str, &str); 7] = [
    (
        "queue",
        "#bab0ac",
        "held by the client (--max-concurrency or a parent turn)",
    ),
    ("prefill", "#f28e2b", "sent → first token"),
    ("decode", "#4e79a7", "first token → end"),
    ("failed", "#e15759", "failed (sent → end)"),
    // A run with reasoning or tool calls: the time after the first token, by phase.
    (
        "reasoning",
        "#b07aa1",
        "reasoning (first reasoning → first answer)",
    ),
    ("answer", "#59a14f", "answer (first answer token → end)"),
    ("tool", "#edc948", "tool call (first tool-call event → end)"),
];

/// Each drawn request as a bar from its start to its first token to its end, one row
/// per request by start time. One `<path>` per kind keeps the DOM small.
pub fn timeline_chart(id: &str, title: &str, t: &Timeline, note: Option<String>) -> String {
    let height = (t.bars.len() as f64 * 3.0).clamp(220.0, 520.0) + TOP + BOTTOM;
    let (x, y) = timeline_mappings(t, height);
    let paths = bar_paths(t, &x, &y);
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
    bars_and_legend(&mut out, &paths);
    if let Some(n) = note {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(&n));
    }
    out.push_str("</figure>");
    out
}

/// A timeline's axes: time from the earliest schedule or start (0 at the latest) to the
/// last end; one row per request of the unsampled run, top to bottom.
fn timeline_mappings(t: &Timeline, height: f64) -> (Mapping, Mapping) {
    let t_end = t.bars.iter().map(|b| b.ended).fold(0.0f64, f64::max);
    let t_begin = t
        .bars
        .iter()
        .map(|b| b.scheduled.unwrap_or(b.started).min(b.started))
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let x = Mapping::exact(&Axis::zero(""), t_begin, t_end, LEFT, WIDE_W - RIGHT);
    let rows = (t.bars.len().max(1) * t.stride) as f64;
    let y = Mapping::exact(&Axis::zero(""), 0.0, rows, TOP, height - BOTTOM);
    (x, y)
}

/// The path data of each of `BAR_KINDS`, every drawn request's pieces in its row.
fn bar_paths(t: &Timeline, x: &Mapping, y: &Mapping) -> [String; BAR_KINDS.len()] {
    let stride = t.stride as f64;
    let row_h = y.px(stride).unwrap_or(TOP) - y.px(0.0).unwrap_or(TOP);
    let mut paths: [String; BAR_KINDS.len()] = Default::default();
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
            Some(f) if t.phased => {
                rect(1, b.started, f, row);
                phase_rects(b, &mut |k, from, to| rect(k, from, to, row));
            }
            Some(f) => {
                rect(1, b.started, f, row);
                rect(2, f, b.ended, row);
            }
            None => rect(2, b.started, b.ended, row),
        }
    }
    paths
}

/// A phased bar after its first token: reasoning until the answer (or the end), then
/// the answer or tool call to the end (`BAR_KINDS` 4, 5, 6).
fn phase_rects(b: &Bar, rect: &mut impl FnMut(usize, f64, f64)) {
    let answer_at = b.answer.map(|(a, _)| a);
    // Reasoning after the answer began (interleaved) is drawn as part of the answer.
    if let Some(r) = b.reasoning.filter(|&r| answer_at.is_none_or(|a| r < a)) {
        rect(4, r, answer_at.unwrap_or(b.ended));
    }
    if let Some((a, tool)) = b.answer {
        rect(if tool { 6 } else { 5 }, a, b.ended);
    }
}

/// One `<path>` per kind of bar drawn, closing the `<svg>`, then their legend.
fn bars_and_legend(out: &mut String, paths: &[String; BAR_KINDS.len()]) {
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
}

#[cfg(test)]
#[path = "tests_svg.rs"]
mod tests;
