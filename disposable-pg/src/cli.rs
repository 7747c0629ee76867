//! The command-line flags that choose a disposable PostgreSQL, and the shutdown signals,
//! shared by every binary that starts one (`e2ee-harness` and `reference-server`), so the
//! two accept the same `--db`/`--pg-*` flags and stop the same way.

use std::path::PathBuf;

use clap::Args;

use crate::{Error, Options};

/// How to get a PostgreSQL. Shared by every command that needs one.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// auto | local | docker | a postgres:// URL. auto: a URL if given, else Docker if an
    /// engine answers, else local binaries.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "auto",
        value_name = "auto|local|docker|URL"
    )]
    pub db: String,
    /// Directory holding initdb and postgres (local provider).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// PostgreSQL image for the docker provider (and for auto, which uses Docker only when
    /// the engine has or can pull it). Offline: docker/postgres/build-image.sh builds
    /// e2ee-harness/postgres:15 from Debian's packages. `conform --db docker` takes several
    /// (repeat the flag, or a comma-separated list) and reports per PostgreSQL version.
    #[arg(
        long,
        env = "E2EE_HARNESS_PG_IMAGE",
        default_value = crate::DEFAULT_IMAGE,
        value_delimiter = ',',
        value_name = "IMAGE"
    )]
    pub pg_image: Vec<String>,
    /// fsync and synchronous_commit on (default for run, serve and db-bench).
    #[arg(long, conflicts_with = "pg_fast")]
    pub pg_durable: bool,
    /// fsync and synchronous_commit off (default for other commands and for tests).
    #[arg(long)]
    pub pg_fast: bool,
}

impl DbArgs {
    /// Provider options; `durable_by_default` is the command's own default. Only `conform`
    /// can use several images ([`DbArgs::options_per_image`]); here one is required.
    pub fn options(&self, durable_by_default: bool) -> Result<Options, Error> {
        if self.pg_image.len() > 1 {
            return Err(Error::BadFlag {
                flag: "--pg-image",
                detail: format!(
                    "{} images given ({}); only `conform --db docker` takes several",
                    self.pg_image.len(),
                    self.pg_image.join(", ")
                ),
            });
        }
        self.options_for(durable_by_default, self.image())
    }

    /// One set of options per `--pg-image` (several only with `--db docker`).
    pub fn options_per_image(&self, durable_by_default: bool) -> Result<Vec<Options>, Error> {
        if self.pg_image.len() > 1 && self.db != "docker" {
            return Err(Error::BadFlag {
                flag: "--pg-image",
                detail: format!(
                    "several images ({}) need --db docker, not --db {}",
                    self.pg_image.join(", "),
                    self.db
                ),
            });
        }
        self.pg_image
            .iter()
            .map(|image| self.options_for(durable_by_default, image))
            .collect()
    }

    /// Whether `--db` holds DATABASE_URL's value because the flag was not given.
    fn db_from_env(&self) -> bool {
        let flag_given = std::env::args().any(|a| a == "--db" || a.starts_with("--db="));
        !flag_given && std::env::var("DATABASE_URL").is_ok_and(|v| !v.is_empty() && v == self.db)
    }

    fn image(&self) -> &str {
        self.pg_image
            .first()
            .map(String::as_str)
            .unwrap_or(crate::DEFAULT_IMAGE)
    }

    fn options_for(&self, durable_by_default: bool, image: &str) -> Result<Options, Error> {
        // clap fills --db from DATABASE_URL; as `auto` the provider then says that the
        // environment chose the database, not a flag.
        let choice: crate::Choice = if self.db_from_env() {
            crate::Choice::Auto
        } else {
            self.db.parse()?
        };
        let durable = if self.pg_durable {
            true
        } else if self.pg_fast {
            false
        } else {
            durable_by_default
        };
        Ok(crate::Options {
            choice,
            pg_bin: self.pg_bin.clone(),
            image: image.to_string(),
            durability: if durable {
                crate::Durability::Durable
            } else {
                crate::Durability::Fast
            },
            ..crate::Options::default()
        })
    }
}

/// Resolves on SIGINT or SIGTERM, naming which.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
