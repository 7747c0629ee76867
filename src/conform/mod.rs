//! Schema conformance: apply a pack's migrations to a disposable PostgreSQL and prove what
//! the schema promises (docs/conformance.md).

pub mod catalog;
pub mod checkexpr;
pub mod expect;
pub mod outcome;
pub mod pack;
pub mod rowgen;
pub mod runner;
