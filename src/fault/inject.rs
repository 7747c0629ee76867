//! How each fault kind is injected. Every injection leaves things as it found them, also when
//! cancelled half-way (Ctrl-C, end of run): a frozen database is thawed by a guard.

use std::time::Duration;

use crate::fault::{FaultError, Targets};
use crate::scenario::{Fault, FaultKind};

/// How long a user's fault command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

pub(super) async fn inject(f: &Fault, t: &Targets<'_>) -> Result<(), FaultError> {
    if let Some(command) = &f.command {
        return run_command(command).await;
    }
    match f.kind {
        FaultKind::KillServer => {
            let s = server(t)?;
            s.kill().await;
            tokio::time::sleep(f.hold).await;
            s.launch().await
        }
        FaultKind::RestartServer => {
            let s = server(t)?;
            s.terminate().await;
            s.launch().await
        }
        FaultKind::RestartDb => Ok(db(t)?.restart().await?),
        FaultKind::PauseDb => pause_db(t, f.hold).await,
        FaultKind::DropDbConnections => drop_connections(t).await,
    }
}

fn server<'a>(t: &Targets<'a>) -> Result<&'a crate::fault::ChildServer, FaultError> {
    t.server
        .ok_or_else(|| FaultError::Server("the server does not run as a child process".into()))
}

fn db<'a>(t: &Targets<'a>) -> Result<&'a disposable_pg::Postgres, FaultError> {
    t.db.ok_or_else(|| FaultError::Signal("no database this run started".into()))
}

/// `sh -c command`, which must exit 0 within [`COMMAND_TIMEOUT`].
async fn run_command(command: &str) -> Result<(), FaultError> {
    let fail = |detail: String| FaultError::Command {
        command: command.to_string(),
        detail,
    };
    let child = tokio::process::Command::new("sh")
        .args(["-c", command])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(COMMAND_TIMEOUT, child)
        .await
        .map_err(|_| fail(format!("still running after {COMMAND_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Freezes the database for `hold`: every PostgreSQL process stopped (SIGSTOP), or the
/// container paused; thawed when the guard drops, whatever happens meanwhile.
async fn pause_db(t: &Targets<'_>, hold: Duration) -> Result<(), FaultError> {
    let pg = db(t)?;
    let guard = match (pg.pid(), pg.container_id()) {
        (Some(pid), _) => Frozen::processes(pid)?,
        (None, Some(id)) => Frozen::container(id).await?,
        (None, None) => {
            return Err(FaultError::Signal(
                "the database has neither a process nor a container here".into(),
            ))
        }
    };
    tokio::time::sleep(hold).await;
    drop(guard);
    Ok(())
}

/// A frozen database: thawed on drop.
enum Frozen {
    /// Stopped pids, postmaster first.
    Processes(Vec<libc::pid_t>),
    Container(String),
}

impl Frozen {
    /// Stops the postmaster first (no new backends are forked), then each of its children.
    fn processes(postmaster: u32) -> Result<Frozen, FaultError> {
        let pm = postmaster as libc::pid_t;
        let mut stopped = Vec::new();
        // SAFETY: signalling the PostgreSQL server this process started.
        if unsafe { libc::kill(pm, libc::SIGSTOP) } != 0 {
            return Err(FaultError::Signal(format!(
                "SIGSTOP {pm}: {}",
                std::io::Error::last_os_error()
            )));
        }
        stopped.push(pm);
        for child in children_of(pm) {
            // SAFETY: a backend of that server (a child of its postmaster).
            if unsafe { libc::kill(child, libc::SIGSTOP) } == 0 {
                stopped.push(child);
            }
        }
        Ok(Frozen::Processes(stopped))
    }

    async fn container(id: String) -> Result<Frozen, FaultError> {
        docker(&["pause", &id]).await?;
        Ok(Frozen::Container(id))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        match self {
            Frozen::Processes(pids) => {
                // Backends first, postmaster last: mirror image of the freeze.
                for pid in pids.iter().rev() {
                    // SAFETY: processes we stopped.
                    unsafe { libc::kill(*pid, libc::SIGCONT) };
                }
            }
            Frozen::Container(id) => {
                // Synchronous: a drop cannot await, and the container must not stay paused.
                let _ = std::process::Command::new("docker")
                    .args(["unpause", id])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
        }
    }
}

/// Direct children of `pid`, from /proc.
fn children_of(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parent_pid(&s))
                == Some(pid)
        })
        .collect()
}

/// The ppid field of /proc/PID/stat (after the parenthesised command name).
fn parent_pid(stat: &str) -> Option<libc::pid_t> {
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

async fn docker(args: &[&str]) -> Result<(), FaultError> {
    let out = tokio::process::Command::new("docker")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| FaultError::Signal(format!("docker {}: {e}", args.join(" "))))?;
    if !out.status.success() {
        return Err(FaultError::Signal(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Ends every session of the server's database (as an operator's `pg_terminate_backend`).
async fn drop_connections(t: &Targets<'_>) -> Result<(), FaultError> {
    let pg = db(t)?;
    let name = t
        .db_name
        .as_deref()
        .ok_or_else(|| FaultError::Signal("no database name".into()))?;
    let client = disposable_pg::connect(pg.url()).await?;
    client
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )
        .await
        .map_err(|e| FaultError::Signal(format!("pg_terminate_backend: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn parent_pid_reads_past_a_command_with_spaces() {
        assert_eq!(super::parent_pid("42 (post gres) S 7 42 42"), Some(7));
    }
}
