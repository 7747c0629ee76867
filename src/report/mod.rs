//! What a run reports. [`model`] is the single source of truth (`report.json`); everything
//! else (the terminal summary here, HTML/JUnit/HDR logs elsewhere) is derived from it.

pub mod json;
pub mod model;
pub mod summary;

pub use model::Report;
