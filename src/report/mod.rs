//! What a run reports. [`model`] is the single source of truth (`report.json`); everything
//! else (the terminal summary here, HTML/JUnit/HDR logs elsewhere) is derived from it.

pub(crate) mod chart;
pub(crate) mod compare;
pub(crate) mod dir;
pub(crate) mod hlog;
pub(crate) mod html;
pub mod json;
pub(crate) mod junit;
pub(crate) mod markdown;
pub mod merge;
pub(crate) mod merge_check;
pub mod model;
pub(crate) mod outdir;
pub mod summary;

pub use dir::{write_report_dir, ReportFiles};
pub use model::RunReport;
