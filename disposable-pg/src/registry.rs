//! Process-wide bookkeeping of the servers this process started, so that they can be stopped
//! from places that do not own the handle: a signal handler, `atexit`, or the next run (which
//! sweeps directories left by a process that was SIGKILLed).

use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::local::Shared;

static LIVE: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

pub(crate) fn register(s: &Arc<Shared>) {
    install_atexit();
    let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
    live.retain(|w| w.strong_count() > 0);
    live.push(Arc::downgrade(s));
}

pub(crate) fn shutdown_all() {
    let live: Vec<Arc<Shared>> = {
        let mut guard = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        guard.drain(..).filter_map(|w| w.upgrade()).collect()
    };
    for s in live {
        s.stop();
    }
    crate::docker::shutdown_all();
}

extern "C" fn at_exit() {
    shutdown_all();
}

/// Statics are never dropped, so a server shared by a whole test binary is stopped here.
fn install_atexit() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // SAFETY: registering a plain extern "C" fn with no captured state.
        unsafe { libc::atexit(at_exit) };
    });
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// The parent-death signal fires when the *thread* that forked the child exits, not the
/// process; so servers are forked by one thread that lives as long as the process does.
pub(crate) fn spawn_from_lifelong_thread(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("disposable-pg-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // The sender lives in a static, so this loop (and thread) never ends.
            })
            .expect("spawning the spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread gone"))?
}

const PREFIX: &str = "e2ee-harness-pg-";

/// Temp dir names carry the owning pid, so a later run can tell a dead owner's leftovers.
pub(crate) fn dir_prefix() -> String {
    format!("{PREFIX}{}-", std::process::id())
}

/// Removes directories (and stops servers) left behind by harness processes that no longer
/// exist — only possible after a SIGKILL, since every other exit path cleans up.
pub(crate) fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        let dir = e.path();
        let data = dir.join("data");
        if let Ok(pm) = std::fs::read_to_string(data.join("postmaster.pid")) {
            if let Some(server) = pm.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) {
                // The pid may have been reused by any process since: only a postmaster of
                // this very directory is signalled.
                if pid_alive(server) && is_postmaster_of(server, &data) {
                    // SAFETY: signalling a postmaster that an earlier harness started.
                    unsafe { libc::kill(server, libc::SIGQUIT) };
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Whether `pid` runs a `postgres` (or `postmaster`) executable whose command line names
/// `data` as its data directory (`-D data`), read from `/proc/<pid>/cmdline`.
pub(crate) fn is_postmaster_of(pid: i32, data: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&std::path::Path> = raw
        .split(|b| *b == 0)
        .map(|a| std::path::Path::new(std::ffi::OsStr::from_bytes(a)))
        .collect();
    let is_postgres = args
        .first()
        .and_then(|a| a.file_name())
        .is_some_and(|n| n == "postgres" || n == "postmaster");
    let same = |p: &std::path::Path| {
        p == data
            || matches!(
                (p.canonicalize(), data.canonicalize()),
                (Ok(a), Ok(b)) if a == b
            )
    };
    let names_data = args
        .windows(2)
        .any(|w| w[0].as_os_str() == "-D" && same(w[1]));
    is_postgres && names_data
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leftover directory whose postmaster.pid names a live process that is not its
    /// postmaster (the pid was reused): the sweep removes the directory, never the process.
    #[test]
    fn the_sweep_never_signals_a_process_that_reused_the_pid() {
        let mut dead = Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        let mut bystander = Command::new("sleep").arg("300").spawn().unwrap();
        let dir = std::env::temp_dir().join(format!("{PREFIX}{dead_pid}-sweeptest"));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("data/postmaster.pid"),
            format!("{}\n{}\n", bystander.id(), dir.join("data").display()),
        )
        .unwrap();
        assert!(!is_postmaster_of(bystander.id() as i32, &dir.join("data")));
        sweep_stale();
        assert!(!dir.exists(), "the stale directory is removed");
        assert!(
            bystander.try_wait().unwrap().is_none(),
            "the bystander was signalled"
        );
        bystander.kill().unwrap();
        bystander.wait().unwrap();
    }

    #[test]
    fn a_running_local_postmaster_is_recognised() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let options = crate::Options {
            choice: crate::Choice::Local,
            ..crate::Options::for_tests()
        };
        let pg = rt
            .block_on(crate::Postgres::start(&options))
            .expect("tests need local PostgreSQL binaries");
        let data = pg.data_dir().unwrap().join("data");
        assert!(is_postmaster_of(pg.pid().unwrap() as i32, &data));
        assert!(!is_postmaster_of(
            pg.pid().unwrap() as i32,
            &data.join("elsewhere")
        ));
    }
}
