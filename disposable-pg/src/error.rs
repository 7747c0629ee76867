//! The one error type of this crate. Each variant maps to one of the harness's exit codes:
//! bad usage is 2, anything missing or unreachable is 3.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--db` was none of the accepted forms.
    #[error("invalid --db value {value:?}: expected one of `auto`, `local`, `docker`, or a postgres:// (postgresql://) URL")]
    BadChoice { value: String },

    /// A provider flag that makes no sense with the others.
    #[error("{flag}: {detail}")]
    BadFlag { flag: &'static str, detail: String },

    /// `--pg-bin` (or the search) found no usable `initdb`/`postgres`.
    #[error("no PostgreSQL server binaries: {detail}")]
    NoBinaries { detail: String },

    /// No provider at all could be used (auto).
    #[error(
        "no PostgreSQL available. Any one of these works:\n  \
         1. pass a server URL: --db postgres://user@host:5432/db (or set DATABASE_URL)\n  \
         2. start a Docker engine (the harness then uses testcontainers): --db docker\n  \
         3. install PostgreSQL server binaries (Debian: apt-get install postgresql) or point --pg-bin at their directory: --db local\n\
         details: {detail}"
    )]
    NoProvider { detail: String },

    /// Docker was asked for explicitly and is not there, or the container failed.
    #[error("docker provider unavailable: {detail}")]
    Docker { detail: String },

    /// The engine answered but has no such image and cannot pull it.
    #[error(
        "docker provider: image {image} is absent and cannot be pulled: {reason}\n  \
         pull it where a registry is reachable (docker pull {image}), or build PostgreSQL \
         images from Debian's packages with docker/postgres/build-image.sh and pass \
         --pg-image e2ee-harness/postgres:15 (or set E2EE_HARNESS_PG_IMAGE)"
    )]
    DockerImage { image: String, reason: String },

    /// The provider cannot do this (e.g. restart a server it did not start).
    #[error("not supported: {what}")]
    Unsupported { what: String },

    /// The server refused or dropped the connection.
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Unreachable { target: String, reason: String },

    /// initdb or postgres failed; `log` holds what it printed.
    #[error("local PostgreSQL failed while {step}: {detail}\n--- server output ---\n{log}")]
    LocalFailed {
        step: String,
        detail: String,
        log: String,
    },

    #[error("{what}: {}", crate::error_chain(source))]
    Sql {
        what: String,
        source: tokio_postgres::Error,
    },

    #[error("I/O error at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// The harness's exit code for this error: 2 for bad usage, 3 for missing infrastructure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BadChoice { .. } | Error::BadFlag { .. } => 2,
            _ => 3,
        }
    }
}
