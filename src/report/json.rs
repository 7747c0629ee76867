//! Writing and reading `report.json`.

use std::path::{Path, PathBuf};

use crate::report::model::{RunReport, OLDEST_READABLE_SCHEMA, SCHEMA_VERSION};
use crate::Error;

/// File name of the report inside a report directory.
pub(crate) const REPORT_FILE: &str = "report.json";

/// Writes `dir/report.json` (pretty-printed), creating `dir`. The file is written to a
/// temporary name and renamed, so a reader never sees half a report.
pub fn write(dir: &Path, report: &RunReport) -> Result<PathBuf, Error> {
    let text = serde_json::to_string_pretty(report).expect("a RunReport always serializes");
    super::outdir::write_file(dir, REPORT_FILE, text.as_bytes())
}

/// Reads a report from a `report.json` file or a report directory.
pub fn read(path: &Path) -> Result<RunReport, Error> {
    let file = if path.is_dir() {
        path.join(REPORT_FILE)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    let report: RunReport = serde_json::from_str(&text).map_err(|e| {
        Error::BadInput(format!(
            "{}:{}:{}: not a harness report: {e}",
            file.display(),
            e.line(),
            e.column()
        ))
    })?;
    if !(OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&report.schema_version) {
        return Err(Error::BadInput(format!(
            "{}: report schema_version {} is not supported (this harness reads {OLDEST_READABLE_SCHEMA} to {SCHEMA_VERSION})",
            file.display(),
            report.schema_version
        )));
    }
    Ok(report)
}
