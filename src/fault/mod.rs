//! Faults injected during a run (`[[faults]]` in a scenario): the bundled server killed or
//! restarted, the disposable PostgreSQL restarted, frozen or cut off — or a user's own
//! command. [`check`] refuses, before the load starts, a fault the setup cannot inject;
//! [`run_schedule`] injects each at its offset; [`FaultWatch`] measures what it did.

mod inject;
pub(crate) mod server;
pub(crate) mod watch;

use std::time::Instant;

use disposable_pg::{Postgres, ProviderKind};

pub(crate) use server::ChildServer;
pub(crate) use watch::FaultWatch;

use crate::scenario::{Fault, FaultKind, Scenario, ScenarioError};

/// A fault that could not be injected, or the server it needs that could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FaultError {
    #[error("bundled server: {0}")]
    Server(String),
    #[error("database: {0}")]
    Db(#[from] disposable_pg::Error),
    #[error("{0}")]
    Signal(String),
    #[error("command `{command}`: {detail}")]
    Command { command: String, detail: String },
}

/// What faults can act on in this run.
pub(crate) struct Targets<'a> {
    /// The bundled server, when it runs as a child process we may kill.
    pub(crate) server: Option<&'a ChildServer>,
    /// The bundled server's PostgreSQL (`None` with `--target`).
    pub(crate) db: Option<&'a Postgres>,
    /// The server's database on `db` (whose sessions `drop_db_connections` ends).
    pub(crate) db_name: Option<String>,
}

/// The setup a run was given, as far as faults care.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    /// The bundled server (else `--target`).
    pub(crate) bundled: bool,
    /// The provider of the bundled server's database, once known.
    pub(crate) db: Option<ProviderKind>,
}

/// Refuses a fault this setup cannot inject, naming it `file:line:column` (exit 2).
pub(crate) fn check(scenario: &Scenario, setup: Setup) -> Result<(), ScenarioError> {
    for f in &scenario.faults {
        if f.command.is_some() {
            continue;
        }
        let why = if !setup.bundled {
            Some("with --target the harness cannot reach the server or its database; name a `command` that injects this fault".to_string())
        } else {
            match (f.kind, setup.db) {
                (FaultKind::KillServer | FaultKind::RestartServer, _) => None,
                (FaultKind::RestartDb, Some(ProviderKind::Local)) => None,
                (FaultKind::RestartDb, Some(p)) => Some(format!(
                    "restart_db needs the local PostgreSQL provider (--db local), not {p}: a container's mapped port changes on restart and a URL's server is not ours; or name a `command`"
                )),
                (FaultKind::PauseDb, Some(ProviderKind::Local | ProviderKind::Docker)) => None,
                (FaultKind::PauseDb, Some(p)) => Some(format!(
                    "pause_db needs a PostgreSQL this run started (--db local or docker), not {p}; or name a `command`"
                )),
                (FaultKind::DropDbConnections, _) => None,
                (_, None) => None,
            }
        };
        if let Some(why) = why {
            return Err(scenario.fault_error(f, format!("fault {}: {why}", f.kind.name())));
        }
    }
    Ok(())
}

/// Injects each fault at its offset from `window_start`, one after the other, recording
/// begin and end in `watch`. A fault that cannot be injected is recorded with its error and
/// the schedule goes on.
pub(crate) async fn run_schedule(
    faults: &[Fault],
    targets: &Targets<'_>,
    window_start: Instant,
    watch: &FaultWatch,
) {
    for (i, f) in faults.iter().enumerate() {
        tokio::time::sleep_until((window_start + f.at).into()).await;
        let started = Instant::now();
        watch.began(i, started);
        tracing::info!(kind = f.kind.name(), at = ?f.at, "injecting fault");
        let result = inject::inject(f, targets).await;
        if let Err(e) = &result {
            tracing::warn!(kind = f.kind.name(), error = %e, "fault not injected");
        }
        watch.ended(i, Instant::now(), result.err().map(|e| e.to_string()));
    }
}
