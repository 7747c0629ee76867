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
        if let Ok(pm) = std::fs::read_to_string(dir.join("data/postmaster.pid")) {
            if let Some(server) = pm.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) {
                if pid_alive(server) {
                    // SAFETY: signalling a postmaster that an earlier harness started.
                    unsafe { libc::kill(server, libc::SIGQUIT) };
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
