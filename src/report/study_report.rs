//! `servescope report STUDY_DIR [--html OUT.html]`: every configuration's runs,
//! recomputed from their records, printed and (with --html) drawn on one page: each
//! configuration is a series of the load curves and its runs are columns of the
//! summary, named `CONFIG · RUN`.

use super::document::SavedRun;
use super::reanalyze::Reanalysis;
use super::study_set::{StudySet, load_all};
use super::table::render_saved;
use crate::error::Error;
use crate::settings::ReportSettings;

pub fn report(set: &StudySet, s: &ReportSettings, how: Reanalysis) -> Result<Vec<SavedRun>, Error> {
    if s.rewrite || s.attainment.is_some() {
        return Err(Error::Input(format!(
            "report {}: a study's output directory takes no --rewrite or --attainment; give one configuration's result directory (e.g. {})",
            s.dir.display(),
            set.configs[0].dirs[0].1.display()
        )));
    }
    // As the HTML page of one directory: goodput under the SLO each run was saved with.
    let loaded = load_all(
        set,
        Reanalysis {
            saved_slo: true,
            ..how
        },
    )?;
    let labels: Vec<&str> = set.configs.iter().map(|c| c.label.as_str()).collect();
    errln!(
        "Study {}: {} configurations ({})",
        s.dir.display(),
        labels.len(),
        labels.join(", ")
    );
    for r in &loaded.runs {
        outln!("{}", render_saved(&r.saved));
    }
    if let Some(out) = &s.html {
        let html = super::html::render_report(&loaded, &s.dir.display().to_string());
        std::fs::write(out, &html)
            .map_err(|e| Error::Output(format!("--html {}: cannot write: {e}", out.display())))?;
        errln!(
            "HTML report: {} ({} KB)",
            out.display(),
            html.len().div_ceil(1024)
        );
    }
    Ok(loaded.runs.into_iter().map(|r| r.saved).collect())
}
