//! `[[faults]]`: failures injected at offsets from the start of the measured window. Parsed
//! here with their place in the file, so a fault the chosen setup cannot inject is reported as
//! `file:line:column` too (see [`Fault::position`]).

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// How long a killed server stays down when the fault does not say.
pub(crate) const DEFAULT_DOWN: Duration = Duration::from_secs(2);
/// How long a paused database stays frozen when the fault does not say.
pub(crate) const DEFAULT_PAUSE: Duration = Duration::from_secs(3);

/// A fault as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFault {
    /// Offset from the start of the measured window (after warm-up).
    pub(crate) at: Spanned<String>,
    pub(crate) kind: Spanned<String>,
    /// kill_server: how long the server stays down before it is started again.
    pub(crate) down: Option<Spanned<String>>,
    /// pause_db: how long the database stays frozen.
    #[serde(rename = "for")]
    pub(crate) for_: Option<Spanned<String>>,
    /// Run this shell command instead of the built-in injection (user orchestration).
    pub(crate) command: Option<Spanned<String>>,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// SIGKILL the bundled server, start it again on the same address after `down`.
    KillServer,
    /// SIGTERM (graceful shutdown) and start again.
    RestartServer,
    /// Fast shutdown and start of the disposable PostgreSQL (same data, same port).
    RestartDb,
    /// Freeze the database (SIGSTOP/SIGCONT, or `docker pause`) for `for`.
    PauseDb,
    /// `pg_terminate_backend` of every session of the server's database.
    DropDbConnections,
}

impl FaultKind {
    pub(crate) const ALL: [FaultKind; 5] = [
        FaultKind::KillServer,
        FaultKind::RestartServer,
        FaultKind::RestartDb,
        FaultKind::PauseDb,
        FaultKind::DropDbConnections,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            FaultKind::KillServer => "kill_server",
            FaultKind::RestartServer => "restart_server",
            FaultKind::RestartDb => "restart_db",
            FaultKind::PauseDb => "pause_db",
            FaultKind::DropDbConnections => "drop_db_connections",
        }
    }
}

/// A validated fault.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    pub(crate) at: Duration,
    pub(crate) kind: FaultKind,
    /// kill_server: time down; pause_db: time frozen; zero otherwise.
    pub(crate) hold: Duration,
    pub(crate) command: Option<String>,
    /// 1-based line and column of the fault's `kind` (for errors found later, at run time).
    pub(crate) position: (usize, usize),
}

/// Validates one `[[faults]]` entry; `err` builds a located error, `duration` parses one.
pub(crate) fn validate<E>(
    raw: &RawFault,
    window: Duration,
    err: &impl Fn(Range<usize>, String) -> E,
    duration: &impl Fn(&Spanned<String>, &str) -> Result<Duration, E>,
    position: (usize, usize),
) -> Result<Fault, E> {
    let name = raw.kind.get_ref().as_str();
    let kind = FaultKind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            err(
                raw.kind.span(),
                format!("unknown fault kind `{name}` (one of: {})", known.join(", ")),
            )
        })?;
    let at = duration(&raw.at, "faults.at")?;
    if at >= window {
        return Err(err(
            raw.at.span(),
            format!("fault at {at:?} is past the end of the measured window ({window:?})"),
        ));
    }
    let only = |v: &Option<Spanned<String>>, field: &str, allowed: FaultKind| match v {
        Some(v) if kind != allowed => Err(err(
            v.span(),
            format!("`{field}` only applies to {} faults", allowed.name()),
        )),
        _ => Ok(()),
    };
    only(&raw.down, "down", FaultKind::KillServer)?;
    only(&raw.for_, "for", FaultKind::PauseDb)?;
    let hold = match (kind, &raw.down, &raw.for_) {
        (FaultKind::KillServer, Some(d), _) => duration(d, "faults.down")?,
        (FaultKind::KillServer, None, _) => DEFAULT_DOWN,
        (FaultKind::PauseDb, _, Some(f)) => duration(f, "faults.for")?,
        (FaultKind::PauseDb, _, None) => DEFAULT_PAUSE,
        _ => Duration::ZERO,
    };
    let command = match &raw.command {
        Some(c) if c.get_ref().trim().is_empty() => {
            return Err(err(c.span(), "faults.command is empty".into()))
        }
        Some(c) => Some(c.get_ref().clone()),
        None => None,
    };
    Ok(Fault {
        at,
        kind,
        hold,
        command,
        position,
    })
}
