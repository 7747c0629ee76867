//! What a run reports. [`model`] is the single source of truth (`report.json`); everything
//! else (the terminal summary here, HTML/JUnit/HDR logs elsewhere) is derived from it.

pub mod chart;
pub mod compare;
pub mod dir;
pub mod hlog;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod merge;
pub mod merge_check;
pub mod model;
pub mod outdir;
pub mod summary;

pub use dir::{write_report_dir, ReportFiles};
pub use model::RunReport;
