//! e2ee-harness: load testing and conformance for end-to-end-encrypted chat backends.
//!
//! The flow a reader should see, module by module:
//! [`cli`] → `scenario` (what to run) → `load` (open/closed executors) → `client` (a virtual
//! device: [`crypto`] + the server's API, one implementation per dialect) → `metrics` (HDR
//! histograms, integrity) → `verdict` (the one judge of a run) → `report`.
//! Beside it: `conform` (schema conformance on a disposable PostgreSQL) and `dbbench`
//! (database-level workloads of schema packs). The PostgreSQL provider is its own crate,
//! `disposable-pg`; the server under test by default is the `reference-server` crate.

pub(crate) mod builtin;
pub mod cli;
pub mod client;
pub mod conform;
pub mod crypto;
pub mod dbbench;
pub mod error;
pub mod exit;
pub mod fault;
pub mod load;
pub mod metrics;
pub mod report;
pub mod scenario;
pub mod schema_pack;
pub mod source;
pub mod verdict;

pub use error::Error;
pub use exit::Outcome;
