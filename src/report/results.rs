//! results.json and summary.csv, per the results spec. Both are rewritten whole after
//! every run (via a temporary file and a rename, so a reader never sees half a file).

use std::path::Path;

use serde_json::{Map, Value};

use super::document::ResultsDoc;
use crate::metrics::slices;

pub use super::document::SavedRun;

pub fn write_results_json(dir: &Path, doc: &ResultsDoc) -> std::io::Result<()> {
    doc.write(dir)
}

/// One column per run, one row per statistic (`ttft_ms.p99`, `throughput.output_tok_s`...);
/// and slices.csv when a run was cut into time slices; turns.csv and models.csv when a
/// run's records carry turns or models.
pub fn write_summary_csv(dir: &Path, runs: &[SavedRun]) -> std::io::Result<()> {
    write_slices_csv(dir, runs)?;
    super::breakdown::write_csvs(dir, runs)?;
    let mut rows: Vec<String> = Vec::new();
    let mut columns: Vec<Map<String, Value>> = Vec::new();
    for run in runs {
        let mut flat = Map::new();
        flatten("", &run.summary.to_json(), &mut flat);
        for k in flat.keys() {
            if !rows.contains(k) {
                rows.push(k.clone());
            }
        }
        columns.push(flat);
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["metric".to_string()];
    header.extend(runs.iter().map(|r| r.label.clone()));
    w.write_record(&header).map_err(std::io::Error::other)?;
    for row in &rows {
        let mut rec = vec![row.clone()];
        for col in &columns {
            rec.push(match col.get(row) {
                Some(Value::Null) | None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            });
        }
        w.write_record(&rec).map_err(std::io::Error::other)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomically(&dir.join("summary.csv"), &bytes)
}

/// slices.csv: one row per run and time slice (`--slice-s`), when any run has slices.
fn write_slices_csv(dir: &Path, runs: &[SavedRun]) -> std::io::Result<()> {
    let sliced = runs
        .iter()
        .filter_map(|r| Some((r.label.as_str(), r.summary.slices.as_ref()?)));
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut any = false;
    for (label, s) in sliced {
        if !any {
            w.write_record(slices::CSV_HEADER)
                .map_err(std::io::Error::other)?;
            any = true;
        }
        for row in slices::csv_rows(label, s) {
            w.write_record(&row).map_err(std::io::Error::other)?;
        }
    }
    if !any {
        return Ok(());
    }
    let bytes = w
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    write_atomically(&dir.join("slices.csv"), &bytes)
}

/// Numbers only: nested objects become dotted names; message lists are left out.
fn flatten(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "failure_examples" {
                    continue;
                }
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        Value::Array(_) => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{RunData, summarize};
    use crate::record::RequestRecord;
    use crate::report::document::{RunMode, RunParams};

    fn run(label: &str, ttft_us: u64) -> SavedRun {
        let mut d = RunData::default();
        d.push(&RequestRecord::ok_for_test(
            label,
            0,
            vec![ttft_us, 2 * ttft_us - 1],
            2 * ttft_us,
            3,
            2,
        ));
        SavedRun {
            label: label.into(),
            mode: RunMode::Concurrency,
            params: RunParams::default(),
            started: "2026-11-22T10:00:00Z".into(),
            started_unix: 0.0,
            complete: None,
            incomplete_reason: None,
            requests_planned: None,
            requests_sent: None,
            summary: summarize(&d, &[]),
        }
    }

    #[test]
    fn csv_has_one_column_per_run() {
        let dir = tempfile::tempdir().unwrap();
        write_summary_csv(dir.path(), &[run("c 1", 1000), run("c 2", 3000)]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), "metric,c 1,c 2");
        let ttft = text
            .lines()
            .find(|l| l.starts_with("ttft_ms.mean,"))
            .unwrap();
        assert_eq!(ttft, "ttft_ms.mean,1.0,3.0");
        assert!(
            text.lines()
                .any(|l| l.starts_with("throughput.output_tok_s,"))
        );
        assert!(text.lines().any(|l| l.starts_with("requests.failed,0,0")));
    }

    #[test]
    fn results_json_has_header_and_runs() {
        let dir = tempfile::tempdir().unwrap();
        let doc = ResultsDoc {
            model: Some("m".into()),
            runs: vec![run("a", 1000)],
            ..ResultsDoc::new()
        };
        write_results_json(dir.path(), &doc).unwrap();
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("results.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["runs"][0]["label"], "a");
        assert_eq!(v["runs"][0]["summary"]["requests"]["total"], 1);
        assert!(!dir.path().join("results.tmp").exists());
    }
}
