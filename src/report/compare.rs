//! `servescope compare A B`: two result sets run by run (matched by label), every
//! metric side by side with B/A and a verdict. The rule: a change within ±noise %
//! (default 5) is noise; otherwise lower is better for latencies and failures, higher
//! for throughput, goodput and the success rate. Summaries are read from results.json
//! as saved, so a results.json alone is enough.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};
use serde_json::{Map, Value};

use super::page::num;
use crate::error::Error;

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

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

/// (path in a saved summary, label, direction). `requests.success_rate` is computed.
const METRICS: [(&str, &str, Better); 28] = [
    ("throughput.output_tok_s", "output tok/s", Better::Higher),
    ("throughput.total_tok_s", "total tok/s", Better::Higher),
    ("throughput.req_s", "requests/s", Better::Higher),
    ("requests.success_rate", "success rate", Better::Higher),
    ("requests.failed", "failed requests", Better::Lower),
    ("ttft_ms.mean", "TTFT mean (ms)", Better::Lower),
    ("ttft_ms.p50", "TTFT p50 (ms)", Better::Lower),
    ("ttft_ms.p90", "TTFT p90 (ms)", Better::Lower),
    ("ttft_ms.p99", "TTFT p99 (ms)", Better::Lower),
    ("tpot_ms.mean", "TPOT mean (ms)", Better::Lower),
    ("tpot_ms.p50", "TPOT p50 (ms)", Better::Lower),
    ("tpot_ms.p90", "TPOT p90 (ms)", Better::Lower),
    ("tpot_ms.p99", "TPOT p99 (ms)", Better::Lower),
    ("itl_ms.mean", "ITL mean (ms)", Better::Lower),
    ("itl_ms.p50", "ITL p50 (ms)", Better::Lower),
    ("itl_ms.p99", "ITL p99 (ms)", Better::Lower),
    ("e2e_ms.mean", "E2E mean (ms)", Better::Lower),
    ("e2e_ms.p50", "E2E p50 (ms)", Better::Lower),
    ("e2e_ms.p90", "E2E p90 (ms)", Better::Lower),
    ("e2e_ms.p99", "E2E p99 (ms)", Better::Lower),
    // Open loop: latency from when the schedule wanted the request sent, so a client
    // that held requests back (--max-concurrency) does not look faster.
    (
        "ttft_from_scheduled_ms.p50",
        "TTFT p50 from schedule (ms)",
        Better::Lower,
    ),
    (
        "ttft_from_scheduled_ms.p99",
        "TTFT p99 from schedule (ms)",
        Better::Lower,
    ),
    (
        "e2e_from_scheduled_ms.p50",
        "E2E p50 from schedule (ms)",
        Better::Lower,
    ),
    (
        "e2e_from_scheduled_ms.p99",
        "E2E p99 from schedule (ms)",
        Better::Lower,
    ),
    ("queue_wait_ms.p99", "queue wait p99 (ms)", Better::Lower),
    ("goodput.req_s", "goodput req/s", Better::Higher),
    (
        "goodput.request_share",
        "share meeting the SLO",
        Better::Higher,
    ),
    (
        "schedule_lag_ms.p99",
        "schedule lag p99 (ms)",
        Better::Lower,
    ),
];

/// One metric of one run on both sides.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Where the value is in a saved summary (`ttft_ms.p99`).
    pub path: &'static str,
    pub label: &'static str,
    pub better: Better,
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// B / A, when A is not 0.
    pub ratio: Option<f64>,
    pub verdict: Verdict,
}

#[derive(Clone, Debug)]
pub struct RunComparison {
    pub label: String,
    /// Modes, when they differ (compared anyway, with a warning).
    pub modes_differ: Option<(String, String)>,
    pub rows: Vec<Row>,
}

/// One side: where it came from and its header.
#[derive(Clone, Debug)]
pub struct Side {
    pub path: PathBuf,
    pub header: Map<String, Value>,
    /// The runs as saved (label, mode, params, summary), for the page's charts.
    pub runs: Vec<Value>,
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
pub(super) fn shown(path: &str, v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if path == "requests.failed" => format!("{v:.0}"),
        Some(v) if path.ends_with("_rate") || path.ends_with("_share") => {
            format!("{:.1}%", v * 100.0)
        }
        Some(v) => num(v),
    }
}

pub(super) fn metric(summary: &Value, path: &str) -> Option<f64> {
    if path == "requests.success_rate" {
        let r = &summary["requests"];
        let total = r["total"].as_f64()?;
        return (total > 0.0).then(|| r["succeeded"].as_f64().unwrap_or(0.0) / total);
    }
    let mut v = summary;
    for k in path.split('.') {
        match v.get(k) {
            Some(x) => v = x,
            // An open-loop run without a cap saves no queue wait: it had none.
            None if path.starts_with("queue_wait_ms.")
                && summary.get("schedule_lag_ms").is_some() =>
            {
                return Some(0.0);
            }
            None => return None,
        }
    }
    v.as_f64()
}

/// results.json of a directory, or the file itself.
fn read_side(which: &str, path: &Path) -> Result<(Side, Vec<Value>), Error> {
    let file = if path.is_dir() {
        path.join("results.json")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Error::Input(format!(
            "{which} {}: {e} (expected a result directory or its results.json)",
            file.display()
        ))
    })?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Input(format!("{which} {}: not valid JSON: {e}", file.display())))?;
    let runs = doc["runs"].as_array().cloned().unwrap_or_default();
    if runs.is_empty() || runs.iter().any(|r| r["label"].as_str().is_none()) {
        return Err(Error::Input(format!(
            "{which} {}: expected servescope results (a \"runs\" list of labelled runs)",
            file.display()
        )));
    }
    let mut header = match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    header.remove("runs");
    Ok((
        Side {
            path: path.to_path_buf(),
            header,
            runs: runs.clone(),
        },
        runs,
    ))
}

/// Compare B with A.
pub fn compare(a: &Path, b: &Path, noise_pct: f64) -> Result<Comparison, Error> {
    let (side_a, runs_a) = read_side("A", a)?;
    let (side_b, runs_b) = read_side("B", b)?;
    let label = |r: &Value| r["label"].as_str().unwrap_or_default().to_string();
    let mut runs = Vec::new();
    let mut only_a = Vec::new();
    for ra in &runs_a {
        let l = label(ra);
        let Some(rb) = runs_b.iter().find(|r| label(r) == l) else {
            only_a.push(l);
            continue;
        };
        let (ma, mb) = (
            ra["mode"].as_str().unwrap_or(""),
            rb["mode"].as_str().unwrap_or(""),
        );
        let rows = METRICS
            .iter()
            .map(|&(path, name, better)| {
                let (va, vb) = (metric(&ra["summary"], path), metric(&rb["summary"], path));
                Row {
                    path,
                    label: name,
                    better,
                    a: va,
                    b: vb,
                    ratio: match (va, vb) {
                        (Some(x), Some(y)) if x != 0.0 => Some(y / x),
                        _ => None,
                    },
                    verdict: verdict(va, vb, better, noise_pct),
                }
            })
            // A metric neither side has (goodput without an SLO) says nothing.
            .filter(|r| r.a.is_some() || r.b.is_some())
            .collect();
        runs.push(RunComparison {
            label: l,
            modes_differ: (ma != mb).then(|| (ma.to_string(), mb.to_string())),
            rows,
        });
    }
    let only_b = runs_b
        .iter()
        .map(label)
        .filter(|l| !runs_a.iter().any(|r| label(r) == *l))
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
        format!(
            "Verdict: B/A within ±{}% is noise; otherwise lower is better for latencies, failures and schedule lag, \
             higher for throughput, goodput and the success rate.",
            self.noise_pct
        )
    }

    pub(super) fn side_line(name: &str, s: &Side) -> String {
        let h = &s.header;
        let g = |k: &str| h.get(k).and_then(|v| v.as_str()).unwrap_or("-");
        format!(
            "{name}: {} — model {}, endpoint {}, started {}",
            s.path.display(),
            g("model"),
            g("endpoint"),
            g("started")
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
                        r.label,
                        if r.better == Better::Lower {
                            "↓"
                        } else {
                            "↑"
                        }
                    ),
                    shown(r.path, r.a),
                    shown(r.path, r.b),
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
            if let Some((ma, mb)) = &run.modes_differ {
                let _ = writeln!(out, "WARNING: mode {ma} in A but {mb} in B");
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
    use serde_json::json;

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
                .find(|r| r.label == label)
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
            c.runs[0].rows.iter().all(|r| r.label != "goodput req/s"),
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
