//! A report directory: `report.json` and everything derived from it, written together.
//!
//! Everything is rendered in memory first, so a report that cannot be rendered (a histogram
//! that does not decode) writes nothing. Each file is written under a temporary name and
//! renamed, so a reader never sees half a file.

use std::path::{Path, PathBuf};

use crate::report::model::RunReport;
use crate::report::outdir::write_file;
use crate::report::{hlog, html, json, junit, markdown};
use crate::Error;

/// Paths of the files [`write_report_dir`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    pub(crate) dir: PathBuf,
    pub json: PathBuf,
    pub html: PathBuf,
    pub markdown: PathBuf,
    pub junit: PathBuf,
    pub hlog: PathBuf,
}

/// Writes a full report directory for `report`: `report.json`, `report.html`, `summary.md`,
/// `junit.xml` and `latency.hlog`, creating `dir` if needed. Existing files of those names
/// are replaced; other files in `dir` (goose's report, …) are left alone.
pub fn write_report_dir(dir: &Path, report: &RunReport) -> Result<ReportFiles, Error> {
    let html_text = html::render(report)?;
    let hlog_bytes = hlog::render(report)?;
    let markdown_text = markdown::render(report);
    let junit_text = junit::render(report);

    let json_path = json::write(dir, report)?;
    let files = ReportFiles {
        dir: dir.to_path_buf(),
        json: json_path,
        html: write_file(dir, html::HTML_FILE, html_text.as_bytes())?,
        markdown: write_file(dir, markdown::MARKDOWN_FILE, markdown_text.as_bytes())?,
        junit: write_file(dir, junit::JUNIT_FILE, junit_text.as_bytes())?,
        hlog: write_file(dir, hlog::HLOG_FILE, &hlog_bytes)?,
    };
    Ok(files)
}
