//! The one error type of the harness library. Every variant knows its exit code, so the CLI
//! maps errors to exit codes in one place.

use std::path::PathBuf;

use crate::exit::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PostgreSQL provider problem (bad `--db`, no binaries, unreachable URL, …).
    #[error(transparent)]
    Db(#[from] disposable_pg::Error),

    /// Bad usage or a bad input file: the message names what and where.
    #[error("{0}")]
    BadInput(String),

    /// Something the run needs is not there (target unreachable, …).
    #[error("{0}")]
    Unavailable(String),

    /// The run happened and failed on its way (e.g. a target that answers `/healthz` but
    /// fails every API request): exit 1, like a failed check.
    #[error("the run failed: {0}")]
    RunFailed(String),

    /// A schema pack that cannot be used: a migration that does not apply (file, statement,
    /// PostgreSQL's error position), a bad file name, an invalid `expect.toml` (file:line:column).
    #[error("bad schema pack: {0}")]
    BadPack(String),

    #[error("I/O error at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// SIGINT/SIGTERM arrived; the CLI exits 130 after cleaning up.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Db(
                disposable_pg::Error::BadChoice { .. } | disposable_pg::Error::BadFlag { .. },
            ) => Outcome::BadInput,
            Error::Db(_) | Error::Unavailable(_) => Outcome::Unavailable,
            Error::BadInput(_) | Error::BadPack(_) => Outcome::BadInput,
            Error::Io { .. } => Outcome::Unavailable,
            Error::Interrupted | Error::RunFailed(_) => Outcome::Failed,
        }
    }
}
