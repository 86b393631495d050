//! Where a session's results go: the terminal table, the result files (requests.jsonl
//! is the recorder's; results.json and summary.csv, rewritten after every run), the
//! round comparison of a dual-round level, and the HTML report at the end.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::RunPlan;
use super::inputs::Inputs;
use super::target::Target;
use crate::clock::RunClock;
use crate::error::Error;
use crate::metrics::Summary;
use crate::metrics::slo::Slo;
use crate::report::html::{HtmlOptions, write_report};
use crate::report::results::{SavedRun, document, write_results_json, write_summary_csv};
use crate::report::rounds::RoundComparison;
use crate::report::table::render;
use crate::settings::{OutputSettings, SessionSettings};
use crate::workload::prepare::PromptSource;

/// The results of the runs so far, and where they are saved.
pub struct Sinks {
    /// results.json's header.
    header: Map<String, Value>,
    pub saved: Vec<SavedRun>,
    dir: Option<PathBuf>,
}

impl Sinks {
    pub fn new(header: Map<String, Value>, output: &OutputSettings) -> Self {
        Sinks {
            header,
            saved: Vec::new(),
            dir: output.dir.clone(),
        }
    }

    /// The run's table on stdout (and the offline-throughput line of `throughput`).
    pub fn print_run(&self, plan: &RunPlan, summary: &Summary) {
        print!("{}", render(&plan.label, summary));
        if plan.mode == "throughput" {
            println!(
                "Offline throughput: {} requests, {} tokens ({} input + {} output) in {:.2} s = {:.2} tok/s ({:.2} output tok/s)",
                summary.succeeded,
                summary.tokens.input + summary.tokens.output,
                summary.tokens.input,
                summary.tokens.output,
                summary.duration_s,
                summary.total_tok_s,
                summary.output_tok_s
            );
        }
        println!();
    }

    pub fn push(&mut self, run: SavedRun) {
        self.saved.push(run);
    }

    /// After the last round of a dual-round level (`plans[index]`): compare its
    /// rounds, print the comparison and keep it for results.json.
    pub fn compare_rounds(&mut self, plans: &[RunPlan], index: usize) {
        let Some((group, _)) = &plans[index].group else {
            return;
        };
        let next = plans.get(index + 1).and_then(|p| p.group.as_ref());
        if next.map(|g| &g.0) == Some(group) {
            return;
        }
        let rounds: Vec<(u32, &Summary)> = plans
            .iter()
            .zip(&self.saved)
            .filter_map(|(p, s)| match &p.group {
                Some((g, round)) if g == group => Some((*round, &s.summary)),
                _ => None,
            })
            .collect();
        let cmp = RoundComparison::new(group, &rounds);
        print!("{}", cmp.render());
        println!();
        match self.header.get_mut("dual_round") {
            Some(Value::Array(list)) => list.push(cmp.to_json()),
            _ => {
                self.header
                    .insert("dual_round".into(), Value::Array(vec![cmp.to_json()]));
            }
        }
    }

    /// Rewrite results.json and summary.csv with every run so far.
    pub fn save(&self) -> Result<(), Error> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        write_results_json(dir, &document(&self.header, &self.saved))
            .and_then(|_| write_summary_csv(dir, &self.saved))
            .map_err(|e| Error::Output(format!("cannot write results to {}: {e}", dir.display())))
    }
}

/// `--html` of a load subcommand: the report of its --output-dir, once the session
/// ended (whatever ended it), when any request was recorded.
pub fn html_report(output: &OutputSettings) -> Result<(), Error> {
    let (Some(out), Some(dir)) = (&output.html, &output.dir) else {
        return Ok(());
    };
    if !dir.join("requests.jsonl").exists() {
        return Ok(());
    }
    write_html(dir, out, &output.percentiles, output.slo.as_ref())
}

fn write_html(dir: &Path, out: &Path, percentiles: &[f64], slo: Option<&Slo>) -> Result<(), Error> {
    let opts = HtmlOptions { percentiles, slo };
    match write_report(dir, out, opts) {
        Ok(bytes) => {
            eprintln!(
                "HTML report: {} ({} KB)",
                out.display(),
                bytes.div_ceil(1024)
            );
            Ok(())
        }
        Err(e) => {
            eprintln!("error: the HTML report was not written: {e}");
            Err(e)
        }
    }
}

/// results.json's header: what was benchmarked, with what, and the command line.
pub fn header(
    s: &SessionSettings,
    target: &Target,
    inputs: &Inputs,
    argv: &[String],
) -> Map<String, Value> {
    let mut header = Map::new();
    header.insert(
        "tool".into(),
        json!({"name": "servescope", "version": env!("CARGO_PKG_VERSION")}),
    );
    header.insert("started".into(), json!(RunClock::start().wall_rfc3339()));
    header.insert("endpoint".into(), json!(target.endpoint.url.as_str()));
    header.insert("simulated".into(), json!(target.simulated));
    header.insert("model".into(), json!(target.model));
    header.insert("api".into(), json!(target.endpoint.api.as_str()));
    header.insert("tokenizer".into(), json!(inputs.tokenizer.name()));
    header.insert("seed".into(), json!(s.workload.seed));
    if let PromptSource::Synthetic { prompts, .. } = &inputs.workload.source {
        header.insert("synthetic_prompts".into(), json!(prompts.name()));
    }
    if !s.run.shard.is_whole() {
        header.insert("shard".into(), s.run.shard.to_json());
    }
    if let Some(at) = s.run.start_at {
        header.insert("start_at".into(), json!(crate::start_at::format(at)));
    }
    header.insert(
        "command".into(),
        json!(redacted_command(argv, s.target.api_key.as_deref())),
    );
    header
}

/// The command line as saved in results.json, with the API key's value masked.
pub fn redacted_command(argv: &[String], key: Option<&str>) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut mask_next = false;
    for a in argv {
        if mask_next {
            out.push("***".into());
            mask_next = false;
        } else if a == "--api-key" {
            out.push(a.clone());
            mask_next = true;
        } else if a.starts_with("--api-key=") {
            out.push("--api-key=***".into());
        } else if key.is_some_and(|k| !k.is_empty() && a.contains(k)) {
            out.push("***".into());
        } else {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_is_masked_in_the_saved_command() {
        let argv: Vec<String> = [
            "servescope",
            "batch",
            "--api-key",
            "sk-secret",
            "--api-key=sk-secret",
            "x",
        ]
        .map(String::from)
        .to_vec();
        let out = redacted_command(&argv, Some("sk-secret"));
        assert!(!out.iter().any(|a| a.contains("sk-secret")), "{out:?}");
        assert_eq!(out[2], "--api-key");
        assert_eq!(out[3], "***");
        assert_eq!(out[4], "--api-key=***");
    }
}
