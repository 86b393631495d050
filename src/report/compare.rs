//! `servescope compare A B`: two result sets run by run (matched by label), every
//! metric side by side with B/A and a verdict. The rule: a change within ±noise %
//! (default 5) is noise; otherwise lower is better for latencies and failures, higher
//! for throughput, goodput and the success rate. Summaries are read from results.json
//! as saved, so a results.json alone is enough.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::compare_repeats::{INTERVAL_RULE, decided_by_note, repeated_levels, shown_ci};
use super::document::{LengthRange, ReadError, ResultsDoc, RunParams};
use super::page::num;
use crate::console::printable;
use crate::error::Error;
use crate::metrics::Summary;
use crate::metrics::catalogue::{self, Metric, Unit};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

pub use crate::metrics::catalogue::Better;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Better,
    Worse,
    Noise,
    /// Missing on one side.
    NotComparable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Noise => "within noise",
            Verdict::NotComparable => "-",
        }
    }
}

/// One metric of one run on both sides.
#[derive(Clone, Debug)]
pub struct Row {
    /// Which metric (key, label, direction).
    pub metric: &'static Metric,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// B / A, when A is not 0.
    pub ratio: Option<f64>,
    pub verdict: Verdict,
    /// Repeated levels: A's and B's 95 % intervals (`a` and `b` are the means).
    pub ci: Option<[[f64; 2]; 2]>,
}

/// Which rule gave a run's verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecidedBy {
    /// B/A against the ±noise band.
    NoiseBand,
    /// Means of repeats: better or worse only when the 95 % intervals do not overlap.
    Intervals { a: usize, b: usize },
}

#[derive(Clone, Debug)]
pub struct RunComparison {
    pub label: String,
    /// Modes, when they differ (compared anyway, with a warning).
    pub modes_differ: Option<(String, String)>,
    /// What the two sent differently, when a trace's lengths or sharing differ
    /// (`--input-len`, `--output-len`, `--prompts`).
    pub workload_differs: Option<String>,
    pub rows: Vec<Row>,
    pub decided_by: DecidedBy,
}

/// One side: where it came from and its results (runs as saved, for the page's charts).
#[derive(Clone, Debug)]
pub struct Side {
    pub path: PathBuf,
    pub doc: ResultsDoc,
}

#[derive(Clone, Debug)]
pub struct Comparison {
    pub a: Side,
    pub b: Side,
    /// The noise band, in percent.
    pub noise_pct: f64,
    pub runs: Vec<RunComparison>,
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
}

/// The verdict for B against A by the rule above.
pub fn verdict(a: Option<f64>, b: Option<f64>, better: Better, noise_pct: f64) -> Verdict {
    let (Some(a), Some(b)) = (a, b) else {
        return Verdict::NotComparable;
    };
    let up = if a == 0.0 {
        if b == 0.0 {
            return Verdict::Noise;
        }
        b > 0.0
    } else {
        let change = b / a - 1.0;
        // A tiny tolerance, so exactly ±noise counts as noise despite rounding.
        if change.abs() <= noise_pct / 100.0 + 1e-12 {
            return Verdict::Noise;
        }
        (change > 0.0) == (a > 0.0)
    };
    if up == (better == Better::Higher) {
        Verdict::Better
    } else {
        Verdict::Worse
    }
}

/// A value as the tables show it: counts whole, shares in percent.
pub(super) fn shown(metric: &Metric, v: Option<f64>) -> String {
    match (v, metric.unit) {
        (None, _) => "-".into(),
        (Some(v), Unit::Requests) => format!("{v:.0}"),
        (Some(v), Unit::Share) => format!("{:.1}%", v * 100.0),
        (Some(v), _) => num(v),
    }
}

/// results.json of a directory, or the file itself.
fn read_side(which: &str, path: &Path) -> Result<Side, Error> {
    let file = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    let doc = ResultsDoc::read(&file).map_err(|e| match e {
        ReadError::Io(e) => Error::Input(format!(
            "{which} {}: {e} (expected a result directory or its results.json)",
            file.display()
        )),
        ReadError::Invalid(m) => Error::Input(format!("{which} {}: {m}", file.display())),
    })?;
    if doc.runs.is_empty() {
        return Err(Error::Input(format!(
            "{which} {}: expected servescope results (a \"runs\" list of labelled runs)",
            file.display()
        )));
    }
    Ok(Side {
        path: path.to_path_buf(),
        doc,
    })
}

/// One metric of a run on both sides.
fn row(metric: &'static Metric, a: &Summary, b: &Summary, noise_pct: f64) -> Row {
    let (va, vb) = (metric.value(a), metric.value(b));
    Row {
        metric,
        a: va,
        b: vb,
        ratio: match (va, vb) {
            (Some(x), Some(y)) if x != 0.0 => Some(y / x),
            _ => None,
        },
        verdict: verdict(va, vb, metric.better, noise_pct),
        ci: None,
    }
}

/// A trace replayed with other lengths or sharing on one side: said, since the
/// comparison is then of the workloads as much as of the servers.
pub fn workload_differs(a: &RunParams, b: &RunParams) -> Option<String> {
    let length = |l: Option<LengthRange>| l.map_or("the trace's".to_string(), |l| l.to_string());
    let mut said = Vec::new();
    for (name, la, lb) in [
        ("input", a.input_len, b.input_len),
        ("output", a.output_len, b.output_len),
    ] {
        if la != lb && a.trace.is_some() && b.trace.is_some() {
            said.push(format!("{name} lengths A {}, B {}", length(la), length(lb)));
        }
    }
    if let (Some(pa), Some(pb)) = (&a.prompts, &b.prompts)
        && pa != pb
    {
        said.push(format!("prompts A {}, B {}", pa.as_str(), pb.as_str()));
    }
    (!said.is_empty()).then(|| format!("workload differs: {}", said.join("; ")))
}

/// Compare B with A.
pub fn compare(a: &Path, b: &Path, noise_pct: f64) -> Result<Comparison, Error> {
    let side_a = read_side("A", a)?;
    let side_b = read_side("B", b)?;
    // Levels repeated on both sides are compared as levels, not run by run.
    let (mut runs, covered) = repeated_levels(&side_a.doc.runs, &side_b.doc.runs);
    let mut only_a = Vec::new();
    for ra in &side_a.doc.runs {
        if covered.contains(&ra.label) {
            continue;
        }
        let Some(rb) = side_b.doc.run(&ra.label) else {
            only_a.push(ra.label.clone());
            continue;
        };
        let rows = catalogue::all()
            .map(|m| row(m, &ra.summary, &rb.summary, noise_pct))
            // A metric neither side has (goodput without an SLO) says nothing.
            .filter(|r| r.a.is_some() || r.b.is_some())
            .collect();
        runs.push(RunComparison {
            label: ra.label.clone(),
            modes_differ: (ra.mode != rb.mode).then(|| (ra.mode.to_string(), rb.mode.to_string())),
            workload_differs: workload_differs(&ra.params, &rb.params),
            rows,
            decided_by: DecidedBy::NoiseBand,
        });
    }
    let only_b = side_b
        .doc
        .runs
        .iter()
        .filter(|r| side_a.doc.run(&r.label).is_none() && !covered.contains(&r.label))
        .map(|r| r.label.clone())
        .collect();
    Ok(Comparison {
        a: side_a,
        b: side_b,
        noise_pct,
        runs,
        only_a,
        only_b,
    })
}

impl Comparison {
    pub fn rule(&self) -> String {
        let mut rule = format!(
            "Verdict: B/A within ±{}% is noise; otherwise lower is better for latencies, failures and schedule lag, \
             higher for throughput, goodput and the success rate.",
            self.noise_pct
        );
        if self
            .runs
            .iter()
            .any(|r| r.decided_by != DecidedBy::NoiseBand)
        {
            rule.push_str(INTERVAL_RULE);
        }
        rule
    }

    pub(super) fn side_line(name: &str, s: &Side) -> String {
        let h = &s.doc;
        // A model id is the server's text: shown, never obeyed, by the terminal.
        let g = |v: &Option<String>| {
            v.as_deref()
                .map_or("-".into(), |v| printable(v).into_owned())
        };
        format!(
            "{name}: {} — model {}, endpoint {}, started {}",
            s.path.display(),
            g(&h.model),
            g(&h.endpoint),
            g(&h.started)
        )
    }

    pub(super) fn counts(rows: &[Row]) -> String {
        let n = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count();
        format!(
            "{} better, {} worse, {} within noise",
            n(Verdict::Better),
            n(Verdict::Worse),
            n(Verdict::Noise)
        )
    }

    /// The terminal report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", Self::side_line("A", &self.a));
        let _ = writeln!(out, "{}", Self::side_line("B", &self.b));
        let _ = writeln!(out, "{}\n", self.rule());
        for run in &self.runs {
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED);
            t.set_header(vec!["", "A", "B", "B/A", "verdict"]);
            for r in &run.rows {
                t.add_row(vec![
                    format!(
                        "{} {}",
                        r.metric.label,
                        if r.metric.better == Better::Lower {
                            "↓"
                        } else {
                            "↑"
                        }
                    ),
                    shown_ci(r, 0),
                    shown_ci(r, 1),
                    r.ratio.map_or("-".into(), |x| format!("{x:.3}")),
                    r.verdict.as_str().to_string(),
                ]);
            }
            for i in 1..4 {
                if let Some(c) = t.column_mut(i) {
                    c.set_cell_alignment(CellAlignment::Right);
                }
            }
            let _ = writeln!(out, "── {} ──", run.label);
            if let Some(note) = decided_by_note(run.decided_by) {
                let _ = writeln!(out, "{note}");
            }
            if let Some((ma, mb)) = &run.modes_differ {
                let _ = writeln!(out, "WARNING: mode {ma} in A but {mb} in B");
            }
            if let Some(w) = &run.workload_differs {
                let _ = writeln!(out, "{w}");
            }
            let _ = writeln!(
                out,
                "{t}\n{}  (↓ lower is better, ↑ higher is better)\n",
                Self::counts(&run.rows)
            );
        }
        if self.runs.is_empty() {
            let _ = writeln!(out, "No run label is in both A and B.");
        }
        if !self.only_a.is_empty() {
            let _ = writeln!(out, "Only in A (not compared): {}", self.only_a.join(", "));
        }
        if !self.only_b.is_empty() {
            let _ = writeln!(out, "Only in B (not compared): {}", self.only_b.join(", "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn verdicts_follow_the_stated_rule() {
        use Better::{Higher, Lower};
        use Verdict::{Better as B, Noise, NotComparable, Worse};
        // Latency: lower is better.
        assert_eq!(verdict(Some(100.0), Some(90.0), Lower, 5.0), B);
        assert_eq!(verdict(Some(100.0), Some(104.0), Lower, 5.0), Noise);
        assert_eq!(
            verdict(Some(100.0), Some(105.0), Lower, 5.0),
            Noise,
            "the bound is noise"
        );
        assert_eq!(verdict(Some(100.0), Some(106.0), Lower, 5.0), Worse);
        // Throughput: higher is better.
        assert_eq!(verdict(Some(100.0), Some(120.0), Higher, 5.0), B);
        assert_eq!(verdict(Some(100.0), Some(80.0), Higher, 5.0), Worse);
        // Zero on the A side: the sign decides.
        assert_eq!(verdict(Some(0.0), Some(0.0), Lower, 5.0), Noise);
        assert_eq!(
            verdict(Some(0.0), Some(3.0), Lower, 5.0),
            Worse,
            "failures appeared"
        );
        assert_eq!(verdict(None, Some(3.0), Lower, 5.0), NotComparable);
        assert_eq!(verdict(Some(1.0), Some(1.5), Higher, 60.0), Noise);
    }

    fn results(dir: &Path, runs: &[(&str, f64, f64)]) {
        let runs: Vec<Value> = runs
            .iter()
            .map(|(label, ttft_p99, tok_s)| {
                json!({"label": label, "mode": "concurrency", "params": {},
                       "summary": {"requests": {"total": 10, "succeeded": 10, "failed": 0},
                                   "throughput": {"output_tok_s": tok_s, "total_tok_s": tok_s, "req_s": 1.0},
                                   "ttft_ms": {"mean": ttft_p99, "p50": ttft_p99, "p90": ttft_p99, "p99": ttft_p99}}})
            })
            .collect();
        let doc = json!({"model": "m", "endpoint": "e", "runs": runs});
        std::fs::write(dir.join("results.json"), doc.to_string()).unwrap();
    }

    #[test]
    fn runs_match_by_label_and_unmatched_are_listed() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        results(
            a.path(),
            &[
                ("c 1", 100.0, 50.0),
                ("c 4", 200.0, 150.0),
                ("c 8", 1.0, 1.0),
            ],
        );
        results(
            b.path(),
            &[
                ("c 4", 150.0, 150.0),
                ("c 1", 103.0, 40.0),
                ("c 16", 1.0, 1.0),
            ],
        );
        let c = compare(a.path(), &b.path().join("results.json"), 5.0).unwrap();
        assert_eq!(c.runs.len(), 2);
        assert_eq!(c.only_a, ["c 8"]);
        assert_eq!(c.only_b, ["c 16"]);
        let row = |run: usize, label: &str| {
            c.runs[run]
                .rows
                .iter()
                .find(|r| r.metric.label == label)
                .unwrap()
                .clone()
        };
        assert_eq!(c.runs[0].label, "c 1");
        assert_eq!(row(0, "TTFT p99 (ms)").verdict, Verdict::Noise);
        assert_eq!(row(0, "output tok/s").verdict, Verdict::Worse);
        assert_eq!(row(0, "output tok/s").ratio, Some(0.8));
        assert_eq!(row(1, "TTFT p99 (ms)").verdict, Verdict::Better);
        assert_eq!(row(1, "success rate").verdict, Verdict::Noise);
        assert!(
            c.runs[0]
                .rows
                .iter()
                .all(|r| r.metric.label != "goodput req/s"),
            "neither side has goodput"
        );
        let text = c.render();
        assert!(
            text.contains("Only in A (not compared): c 8")
                && text.contains("Only in B (not compared): c 16")
        );
        assert!(text.contains("within ±5% is noise"), "{text}");
        let html = super::super::compare_page::to_html(&c);
        assert!(html.contains("class=\"v worse\"") && html.contains("Only in B"));
    }

    #[test]
    fn bad_inputs_name_the_side_and_file() {
        let a = tempfile::tempdir().unwrap();
        let e = compare(a.path(), a.path(), 5.0).unwrap_err().to_string();
        assert!(e.starts_with("A ") && e.contains("results.json"), "{e}");
        std::fs::write(a.path().join("results.json"), "{").unwrap();
        assert!(
            compare(a.path(), a.path(), 5.0)
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
        std::fs::write(a.path().join("results.json"), "{\"runs\": []}").unwrap();
        assert!(
            compare(a.path(), a.path(), 5.0)
                .unwrap_err()
                .to_string()
                .contains("labelled runs")
        );
    }
}
