//! The report's validity block: each run's flags (`metrics::validity`), shown at the
//! top of the summary so that a run that may not measure what was meant is not read
//! as if it did.

use super::page::Page;
use super::reanalyze::LoadedRun;
use super::svg::esc;
use crate::console::printable;

/// One warning block per run that has flags; nothing when no run has any.
pub fn blocks(page: &mut Page, runs: &[LoadedRun]) {
    for r in runs {
        let flags = &r.saved.summary.validity;
        if flags.is_empty() {
            continue;
        }
        let mut out = format!(
            "<div class=\"validity\"><strong>{}: this run may not measure what was meant</strong><ul>",
            esc(&r.saved.label)
        );
        for f in flags {
            // Messages may quote the server: its control characters shown, its markup
            // escaped.
            out.push_str(&format!(
                "<li><code>{}</code> {}</li>",
                esc(&f.check),
                esc(&printable(&f.message))
            ));
        }
        out.push_str("</ul></div>");
        page.push(&out);
    }
}
