//! `servescope compare STUDY_DIR`: a study's configurations side by side, load by load
//! (a result directory's run, matched by its directory within the configuration and its
//! label), each against the first configuration (the baseline) with `compare`'s
//! verdict rule and the catalogue's metrics.

use std::fmt::Write as _;
use std::path::PathBuf;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};

use super::compare::{Better, Verdict, shown, verdict};
use super::document::{ResultsDoc, SavedRun};
use super::page::{Page, table};
use super::study_set::StudySet;
use super::svg::esc;
use crate::error::Error;
use crate::metrics::catalogue::{self, Metric};

/// One metric of one load across the configurations.
#[derive(Clone, Debug)]
pub struct MetricLine {
    pub metric: &'static Metric,
    /// Per configuration, in study order.
    pub values: Vec<Option<f64>>,
    /// Per configuration against the baseline (the baseline's own: not comparable).
    pub verdicts: Vec<Verdict>,
}

/// One load (a run label within a result directory) across the configurations.
#[derive(Clone, Debug)]
pub struct LoadLineUp {
    /// `DIR · RUN` (or `RUN` when the configuration's directory holds the results).
    pub name: String,
    pub lines: Vec<MetricLine>,
}

#[derive(Clone, Debug)]
pub struct StudyComparison {
    pub root: PathBuf,
    pub noise_pct: f64,
    /// Configuration labels; the first is the baseline.
    pub configs: Vec<String>,
    pub loads: Vec<LoadLineUp>,
    /// Loads some configuration ran but the baseline did not (not lined up).
    pub not_in_baseline: Vec<String>,
}

/// Every load of each configuration, by name, as saved.
fn runs_of(dirs: &[(String, PathBuf)]) -> Result<Vec<(String, SavedRun)>, Error> {
    let mut out = Vec::new();
    for (within, dir) in dirs {
        let file = dir.join("results.json");
        let doc = ResultsDoc::read(&file).map_err(|e| e.at(&file))?;
        for r in doc.runs {
            let name = match within.is_empty() {
                true => r.label.clone(),
                false => format!("{within} · {}", r.label),
            };
            out.push((name, r));
        }
    }
    Ok(out)
}

/// Line the configurations of `set` up against its first.
pub fn compare_study(set: &StudySet, noise_pct: f64) -> Result<StudyComparison, Error> {
    let per_config: Vec<Vec<(String, SavedRun)>> = set
        .configs
        .iter()
        .map(|c| runs_of(&c.dirs))
        .collect::<Result<_, _>>()?;
    let find = |k: usize, name: &str| {
        per_config[k]
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r)
    };
    let mut loads = Vec::new();
    for (name, base) in &per_config[0] {
        let lines = catalogue::all()
            .filter_map(|m| {
                let values: Vec<Option<f64>> = (0..per_config.len())
                    .map(|k| find(k, name).and_then(|r| m.value(&r.summary)))
                    .collect();
                if values.iter().all(Option::is_none) {
                    return None;
                }
                let verdicts = values
                    .iter()
                    .enumerate()
                    .map(|(k, v)| match k {
                        0 => Verdict::NotComparable,
                        _ => verdict(m.value(&base.summary), *v, m.better, noise_pct),
                    })
                    .collect();
                Some(MetricLine {
                    metric: m,
                    values,
                    verdicts,
                })
            })
            .collect();
        loads.push(LoadLineUp {
            name: name.clone(),
            lines,
        });
    }
    let mut not_in_baseline = Vec::new();
    for (k, runs) in per_config.iter().enumerate().skip(1) {
        for (name, _) in runs {
            if find(0, name).is_none() {
                not_in_baseline.push(format!("{} · {name}", set.configs[k].label));
            }
        }
    }
    Ok(StudyComparison {
        root: set.root.clone(),
        noise_pct,
        configs: set.configs.iter().map(|c| c.label.clone()).collect(),
        loads,
        not_in_baseline,
    })
}

fn arrow(m: &Metric) -> &'static str {
    match m.better {
        Better::Lower => "↓",
        Better::Higher => "↑",
    }
}

impl StudyComparison {
    /// The rule, as `compare` states it, with the baseline named.
    pub fn rule(&self) -> String {
        format!(
            "Each configuration against the baseline {}: value (its ratio to the baseline, verdict); \
             within ±{}% is noise; otherwise lower is better for latencies, failures and schedule lag, \
             higher for throughput, goodput and the success rate.",
            self.configs[0], self.noise_pct
        )
    }

    fn cell(&self, line: &MetricLine, k: usize) -> String {
        let v = shown(line.metric, line.values[k]);
        let base = line.values[0];
        match (k, base, line.values[k]) {
            (0, _, _) | (_, _, None) => v,
            (_, Some(a), Some(b)) if a != 0.0 => {
                format!("{v} ({:.3}×, {})", b / a, line.verdicts[k].as_str())
            }
            _ => format!("{v} ({})", line.verdicts[k].as_str()),
        }
    }

    /// The terminal report: one table per load, a column per configuration.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Study {}: {} configurations\n{}\n\n",
            self.root.display(),
            self.configs.len(),
            self.rule()
        );
        for load in &self.loads {
            let mut t = Table::new();
            t.load_style(UTF8_FULL_CONDENSED);
            let mut header = vec![String::new()];
            // Labels come from saved files: their control characters shown as escapes.
            header.extend(
                self.configs
                    .iter()
                    .map(|c| crate::console::printable(c).into_owned()),
            );
            t.set_header(header);
            for line in &load.lines {
                let mut row = vec![format!("{} {}", line.metric.label, arrow(line.metric))];
                row.extend((0..self.configs.len()).map(|k| self.cell(line, k)));
                t.add_row(row);
            }
            for i in 1..=self.configs.len() {
                if let Some(c) = t.column_mut(i) {
                    c.set_cell_alignment(CellAlignment::Right);
                }
            }
            let name = crate::console::printable(&load.name);
            let _ = writeln!(out, "── {name} ──\n{t}\n");
        }
        if !self.not_in_baseline.is_empty() {
            let _ = writeln!(
                out,
                "Not run by the baseline (not compared): {}",
                self.not_in_baseline.join(", ")
            );
        }
        out
    }

    /// The same as a page (`compare STUDY_DIR --html`).
    pub fn to_html(&self) -> String {
        let mut page = Page::default();
        page.push(&format!(
            "<h1>servescope study comparison</h1><p><code>{}</code></p><p class=\"muted\">{}</p>",
            esc(&self.root.display().to_string()),
            esc(&self.rule())
        ));
        let mut header = vec![String::new()];
        header.extend(self.configs.iter().map(|c| esc(c)));
        for (i, load) in self.loads.iter().enumerate() {
            page.section(&format!("load{i}"), &load.name);
            let rows: Vec<Vec<String>> = load
                .lines
                .iter()
                .map(|line| {
                    let mut row =
                        vec![format!("{} {}", esc(line.metric.label), arrow(line.metric))];
                    row.extend((0..self.configs.len()).map(|k| {
                        let class = match line.verdicts[k] {
                            Verdict::Better => "better",
                            Verdict::Worse => "worse",
                            _ => "noise",
                        };
                        format!(
                            "<span class=\"v {class}\">{}</span>",
                            esc(&self.cell(line, k))
                        )
                    }));
                    row
                })
                .collect();
            page.push(&table(&header, &rows));
        }
        if !self.not_in_baseline.is_empty() {
            page.push(&format!(
                "<p class=\"note\">Not run by the baseline (not compared): {}</p>",
                esc(&self.not_in_baseline.join(", "))
            ));
        }
        page.finish(&format!(
            "servescope study comparison: {}",
            self.root.display()
        ))
    }
}
