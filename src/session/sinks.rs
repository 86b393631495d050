//! Where a session's results go: the terminal table, the result files (requests.jsonl
//! is the recorder's; results.json and summary.csv, rewritten after every run), the
//! round comparison of a dual-round level, and the HTML report at the end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::RunPlan;
use super::inputs::Inputs;
use super::target::Target;
use crate::client::redact::KeyMask;
use crate::clock::RunClock;
use crate::error::Error;
use crate::metrics::Summary;
use crate::metrics::server::only_in_some_versions;
use crate::metrics::slo::Slo;
use crate::report::document::{ResultsDoc, RunMode, SavedRun};
use crate::report::html::{HtmlOptions, write_report};
use crate::report::repeats::finished_level as finished_repeats;
use crate::report::results::{write_results_json, write_summary_csv};
use crate::report::rounds::finished_level;
use crate::report::table::render_saved_in;
use crate::settings::{OutputSettings, SessionSettings};
use crate::workload::prepare::PromptSource;

/// The results of the runs so far, and where they are saved.
pub struct Sinks {
    /// results.json: the header, and each run as it ends.
    pub doc: ResultsDoc,
    dir: Option<PathBuf>,
    /// The note on series this server version lacks was printed.
    noted_absent: AtomicBool,
}

impl Sinks {
    pub fn new(doc: ResultsDoc, output: &OutputSettings) -> Self {
        Sinks {
            doc,
            dir: output.dir.clone(),
            noted_absent: AtomicBool::new(false),
        }
    }

    /// The run's table on stdout (and the offline-throughput line of `throughput`).
    pub fn print_run(&self, plan: &RunPlan, run: &SavedRun) {
        out!("{}", render_saved_in(run, self.doc.metadata.as_ref()));
        let summary = &run.summary;
        if let Some(note) = self.absent_series_note(summary) {
            errln!("{note}");
        }
        if plan.mode == RunMode::Throughput
            && let Some(e) = &summary.embeddings
        {
            outln!(
                "Offline throughput: {} requests, {} inputs, {} input tokens in {:.2} s = {:.2} inputs/s ({:.2} input tok/s)",
                summary.succeeded,
                e.inputs,
                summary.tokens.input,
                summary.duration_s,
                e.inputs_s,
                summary.input_tok_s
            );
        } else if plan.mode == RunMode::Throughput {
            outln!(
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
        outln!();
    }

    /// The first time a run's server lacks preset series that only some engine versions
    /// have: a note naming them (the tables leave them out).
    fn absent_series_note(&self, summary: &Summary) -> Option<String> {
        let m = summary.server_metrics.as_ref()?;
        let absent: Vec<&str> = m
            .missing
            .iter()
            .map(String::as_str)
            .filter(|n| only_in_some_versions(n))
            .collect();
        if absent.is_empty() || self.noted_absent.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(format!(
            "Note: this server does not expose {} (only some versions of the engine have {}); the tables leave {} out.",
            absent.join(", "),
            if absent.len() == 1 { "it" } else { "them" },
            if absent.len() == 1 { "it" } else { "them" },
        ))
    }

    pub fn push(&mut self, run: SavedRun) {
        // With --append, the last `appended` entry is this session's.
        if let Some(this) = self.doc.appended.as_mut().and_then(|a| a.last_mut()) {
            this.runs.push(run.label.clone());
        }
        self.doc.runs.push(run);
        self.doc.interactivity = crate::report::pareto::of_runs(&self.doc.runs, self.doc.gpus);
    }

    /// After the last round of a dual-round level (the run just pushed; `next` is the
    /// plan after it, if any):
    /// compare its rounds, print the comparison and keep it for results.json.
    pub fn compare_rounds(&mut self, next: Option<&RunPlan>) {
        let next = next.map(|p| (&p.mode, &p.params));
        let Some(cmp) = finished_level(&self.doc.runs, next) else {
            return;
        };
        out!("{}", cmp.render());
        outln!();
        self.doc
            .dual_round
            .get_or_insert_with(Vec::new)
            .push(cmp.to_doc());
    }

    /// After the last repeat of a level (just pushed): its mean, interval and CV of
    /// each metric, printed and kept for results.json.
    pub fn summarize_repeats(&mut self) {
        let Some(level) = finished_repeats(&self.doc.runs) else {
            return;
        };
        out!("{}", level.render());
        outln!();
        self.doc
            .repeats
            .get_or_insert_with(Vec::new)
            .push(level.to_doc());
    }

    /// Rewrite results.json and summary.csv with every run so far.
    pub fn save(&self) -> Result<(), Error> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        write_results_json(dir, &self.doc)
            .and_then(|_| write_summary_csv(dir, &self.doc.runs))
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
    // Slices as the runs were saved (`--slice-s` of this session).
    let opts = HtmlOptions {
        percentiles,
        slo,
        slice_us: None,
    };
    // A failure is returned, not printed: the caller prints it once.
    let bytes = write_report(dir, out, opts)?;
    errln!(
        "HTML report: {} ({} KB)",
        out.display(),
        bytes.div_ceil(1024)
    );
    Ok(())
}

/// results.json's header: what was benchmarked, with what, and the command line.
pub fn header(
    s: &SessionSettings,
    target: &Target,
    inputs: &Inputs,
    argv: &[String],
) -> ResultsDoc {
    ResultsDoc {
        started: Some(RunClock::start().wall_rfc3339()),
        endpoint: Some(target.endpoint.url.to_string()),
        simulated: Some(target.simulated),
        model: Some(target.model.clone()),
        api: Some(target.endpoint.api.as_str().to_string()),
        batch_inputs: (target.endpoint.api == crate::client::openai::Api::Embeddings)
            .then_some(s.target.batch_inputs),
        tokenizer: Some(inputs.tokenizer.name().to_string()),
        seed: Some(s.workload.seed),
        synthetic_prompts: match &inputs.workload.source {
            PromptSource::Synthetic { prompts, .. } => Some(prompts.name().to_string()),
            _ => None,
        },
        shard: (!s.run.shard.is_whole()).then(|| s.run.shard.into()),
        start_at: s.run.start_at.map(crate::start_at::format),
        command: Some(saved_command(argv, &s.target)),
        gpus: s.output.gpus,
        metadata: s.output.metadata.clone(),
        truncated_prompts: inputs.truncated.clone(),
        ..ResultsDoc::new()
    }
}

/// The command line as saved: the API key and `-H` credentials masked
/// (`client::headers`; other headers are kept as given).
pub fn saved_command(argv: &[String], t: &crate::settings::TargetSettings) -> Vec<String> {
    let mut secrets = t.headers.secrets();
    secrets.extend(t.api_key.as_deref());
    let headers = crate::client::headers::redact_header_args(argv);
    redact_with(&headers, KeyMask::all(&secrets))
}

/// The command line as saved in results.json, with the API key's value masked: the
/// value of `--api-key`, and the key (or a recognisable part of it, see
/// `client::redact`) wherever else it shows, e.g. in a URL, whether given as a flag or
/// through `OPENAI_API_KEY`.
pub fn redacted_command(argv: &[String], key: Option<&str>) -> Vec<String> {
    redact_with(argv, key.map_or_else(KeyMask::none, KeyMask::new))
}

fn redact_with(argv: &[String], mask: KeyMask) -> Vec<String> {
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
        } else {
            out.push(mask.mask(a).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_the_engine_version_lacks_is_noted_once() {
        use crate::metrics::server_saved::ServerMetrics;
        use crate::metrics::{RunData, summarize};
        let sinks = Sinks::new(
            ResultsDoc::new(),
            &OutputSettings {
                dir: None,
                html: None,
                percentiles: vec![],
                slo: None,
                slice_us: None,
                gpus: None,
                metadata: None,
                existing: crate::settings::Existing::Refuse,
            },
        );
        let mut s = summarize(&RunData::default(), &[]);
        assert_eq!(sinks.absent_series_note(&s), None, "no server metrics");
        s.server_metrics = Some(ServerMetrics {
            missing: vec!["my_metric".into()],
            ..ServerMetrics::default()
        });
        assert_eq!(sinks.absent_series_note(&s), None, "asked for and missing");
        s.server_metrics.as_mut().unwrap().missing.extend([
            "llamacpp:kv_cache_usage_ratio".to_string(),
            "llamacpp:prompt_tokens_cached".to_string(),
        ]);
        let note = sinks.absent_series_note(&s).unwrap();
        assert!(
            note.starts_with("Note: this server does not expose llamacpp:kv_cache_usage_ratio, llamacpp:prompt_tokens_cached (only some versions"),
            "{note}"
        );
        assert!(!note.contains("my_metric"), "{note}");
        assert_eq!(sinks.absent_series_note(&s), None, "said once");
    }

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

    #[test]
    fn the_key_from_the_environment_is_masked_where_it_shows() {
        let key = "sk-éèé-0123456789";
        let latin1: String = key.bytes().map(char::from).collect();
        let argv: Vec<String> = [
            "servescope".to_string(),
            "--endpoint".into(),
            format!("http://h:8000/v1?k={key}"),
            format!("--extra-body={{\"user\":\"{latin1}\"}}"),
            "--model".into(),
            "m".into(),
        ]
        .to_vec();
        let out = redacted_command(&argv, Some(key));
        assert_eq!(out[2], "http://h:8000/v1?k=***");
        assert_eq!(out[3], "--extra-body={\"user\":\"***\"}");
        assert_eq!(out[4..], argv[4..]);
    }
}
