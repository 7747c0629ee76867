//! The local provider: `initdb` and `postgres` from this machine, in a temp dir.
//!
//! Why each step is the way it is:
//! - PostgreSQL refuses to run as root, so as root we run it as the `postgres` user (or
//!   `nobody`) and hand the temp dir to that user.
//! - The server gets its own process group, so a terminal's Ctrl-C reaches the harness (which
//!   then stops the server in order) rather than killing the database under a running test.
//! - It is spawned with a parent-death signal from a thread that lives as long as the process,
//!   so even a SIGKILLed harness takes its server with it.
//! - Readiness means "a real connection succeeds", not "the port is open".

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::registry;
use crate::{Durability, Error, Options};

/// Where `initdb` and `postgres` live.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub dir: PathBuf,
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

/// Finds the server binaries: `--pg-bin`, else `PATH`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub(crate) fn find_binaries(pg_bin: Option<&Path>) -> Result<Binaries, Error> {
    if let Some(dir) = pg_bin {
        return binaries_in(dir).ok_or_else(|| Error::NoBinaries {
            detail: format!(
                "--pg-bin {} holds no executable `initdb` and `postgres`",
                dir.display()
            ),
        });
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if let Some(b) = binaries_in(&dir) {
                return Ok(b);
            }
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let version: Vec<u32> = name
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    if let Some(b) = versions.iter().rev().find_map(|(_, dir)| binaries_in(dir)) {
        return Ok(b);
    }
    Err(Error::NoBinaries {
        detail: "no `initdb` and `postgres` on PATH or under /usr/lib/postgresql/*/bin".into(),
    })
}

fn binaries_in(dir: &Path) -> Option<Binaries> {
    let initdb = dir.join("initdb");
    let postgres = dir.join("postgres");
    (is_executable(&initdb) && is_executable(&postgres)).then(|| Binaries {
        dir: dir.to_path_buf(),
        initdb,
        postgres,
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The unprivileged account to run PostgreSQL as, when we are root.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// `None` when not root (run as ourselves); otherwise `postgres`, else `nobody`.
pub(crate) fn run_as() -> Result<Option<RunAs>, Error> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Some(ids) = lookup_user(name) {
            return Ok(Some(ids));
        }
    }
    Err(Error::NoBinaries {
        detail: "running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as".into(),
    })
}

fn lookup_user(name: &str) -> Option<RunAs> {
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy the ids at once.
    // The harness calls this before spawning servers, never concurrently with other getpw* users.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: non-null pointer from getpwnam.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some(RunAs { uid, gid })
}

struct State {
    child: Option<Child>,
    root: Option<PathBuf>,
}

/// Shared between the handle and the process-wide registry (for signal-time cleanup).
pub(crate) struct Shared(Mutex<State>);

impl Shared {
    /// Stops the server (fast shutdown, then kill) and removes its directory. Idempotent.
    pub(crate) fn stop(&self) {
        let mut st = match self.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(mut child) = st.child.take() {
            stop_child(&mut child);
        }
        if let Some(root) = st.root.take() {
            let _ = std::fs::remove_dir_all(&root);
        }
    }
}

fn stop_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = child.id() as libc::pid_t;
    // SIGINT is PostgreSQL's "fast shutdown": roll back, disconnect clients, exit.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGQUIT is "immediate shutdown": the postmaster still takes its backends down.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub(crate) struct LocalServer {
    shared: Arc<Shared>,
    launch: Launch,
}

/// How the server process is started: kept so a restart starts it the same way.
struct Launch {
    bins: Binaries,
    who: Option<RunAs>,
    root: PathBuf,
    port: u16,
    durability: Durability,
    timeout: Duration,
}

impl Launch {
    fn spawn(&self) -> Result<Child, Error> {
        let (root, port) = (&self.root, self.port);
        let log_path = root.join("postgres.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::Io {
                path: log_path.clone(),
                source: e,
            })?;
        let log_err = log.try_clone().map_err(|e| Error::Io {
            path: log_path.clone(),
            source: e,
        })?;
        let mut cmd = Command::new(&self.bins.postgres);
        cmd.arg("-D")
            .arg(root.join("data"))
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(root)
            .args(["-c", "listen_addresses=127.0.0.1"])
            // Enough for a load run's pools plus conformance connections.
            .args(["-c", "max_connections=300"])
            .args(["-c", "shared_buffers=256MB"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .current_dir(root)
            .process_group(0);
        cmd.args(self.durability.server_args());
        if let Some(w) = self.who {
            cmd.uid(w.uid).gid(w.gid);
        }
        // SAFETY: prctl is async-signal-safe; it runs in the child after setuid, so the
        // parent-death signal survives the credential change.
        unsafe {
            cmd.pre_exec(|| {
                // Normal priority, whichever thread started it: a load generator may have
                // raised its own (e2ee-harness favours its threads over the server's).
                libc::sched_setscheduler(
                    0,
                    libc::SCHED_OTHER,
                    &libc::sched_param { sched_priority: 0 },
                );
                libc::setpriority(libc::PRIO_PROCESS, 0, 0);
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        registry::spawn_from_lifelong_thread(cmd).map_err(|e| Error::Io {
            path: self.bins.postgres.clone(),
            source: e,
        })
    }
}

impl LocalServer {
    pub(crate) async fn start(options: &Options) -> Result<LocalServer, Error> {
        let bins = find_binaries(options.pg_bin.as_deref())?;
        let who = run_as()?;
        registry::sweep_stale();
        let durability = options.durability;
        let timeout = options.ready_timeout;
        // initdb and the first start are blocking work; keep them off the async workers.
        let bins2 = bins.clone();
        let root = tokio::task::spawn_blocking(move || prepare(&bins2, who))
            .await
            .expect("initdb task panicked")?;
        // A free port can be taken between our probe and the server's bind; retry then.
        let mut last_err = None;
        for _ in 0..5 {
            match Self::launch(&bins, who, &root, durability, timeout).await {
                Ok(server) => return Ok(server),
                Err(e @ Error::LocalFailed { .. }) if e.to_string().contains("could not bind") => {
                    last_err = Some(e);
                }
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&root);
                    return Err(e);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&root);
        Err(last_err.expect("at least one attempt"))
    }

    async fn launch(
        bins: &Binaries,
        who: Option<RunAs>,
        root: &Path,
        durability: Durability,
        timeout: Duration,
    ) -> Result<LocalServer, Error> {
        let port = free_port().map_err(|e| Error::Io {
            path: root.to_path_buf(),
            source: e,
        })?;
        let launch = Launch {
            bins: bins.clone(),
            who,
            root: root.to_path_buf(),
            port,
            durability,
            timeout,
        };
        let child = launch.spawn()?;
        let shared = Arc::new(Shared(Mutex::new(State {
            child: Some(child),
            root: None,
        })));
        registry::register(&shared);
        let server = LocalServer { shared, launch };
        match server.wait_ready(timeout).await {
            Ok(()) => {
                // From now on the directory belongs to the handle: stop() removes it.
                server.shared.0.lock().expect("fresh mutex").root = Some(root.to_path_buf());
                Ok(server)
            }
            Err(e) => {
                server.shared.stop();
                Err(e)
            }
        }
    }

    /// Fast shutdown, then a start of the same data directory on the same port (a database
    /// restart as an operator does it). Clients see their connections closed, then refused,
    /// then accepted again.
    pub(crate) async fn restart(&self) -> Result<(), Error> {
        let shared = self.shared.clone();
        let old = {
            let mut st = shared.0.lock().unwrap_or_else(|p| p.into_inner());
            st.child.take()
        };
        if let Some(mut child) = old {
            tokio::task::spawn_blocking(move || stop_child(&mut child))
                .await
                .expect("stop task panicked");
        }
        // Same port: the server's clients reconnect to the address they know.
        let child = self.launch.spawn()?;
        {
            let mut st = shared.0.lock().unwrap_or_else(|p| p.into_inner());
            if st.root.is_none() {
                // Stopped meanwhile (shutdown): do not leave a server behind.
                drop(st);
                let mut child = child;
                stop_child(&mut child);
                return Err(Error::LocalFailed {
                    step: "restarting the server".into(),
                    detail: "the server was stopped during the restart".into(),
                    log: String::new(),
                });
            }
            st.child = Some(child);
        }
        self.wait_ready(self.launch.timeout).await
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let log_path = &self.launch.root.join("postgres.log");
        let deadline = Instant::now() + timeout;
        let url = self.url();
        loop {
            {
                let mut st = self.shared.0.lock().expect("state");
                if let Some(child) = st.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        st.child = None;
                        return Err(Error::LocalFailed {
                            step: "starting the server".into(),
                            detail: format!("postgres exited with {status}"),
                            log: read_tail(log_path),
                        });
                    }
                }
            }
            if let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                let conn = tokio::spawn(conn);
                let ok = client.simple_query("SELECT 1").await.is_ok();
                drop(client);
                let _ = conn.await;
                if ok {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(Error::LocalFailed {
                    step: "waiting for the server to accept connections".into(),
                    detail: format!("not ready after {timeout:?}"),
                    log: read_tail(log_path),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub(crate) fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            self.launch.port
        )
    }

    pub(crate) fn root(&self) -> &Path {
        &self.launch.root
    }

    /// The postmaster's pid (a restart changes it); `None` while stopped.
    pub(crate) fn pid(&self) -> Option<u32> {
        let st = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        st.child.as_ref().map(|c| c.id())
    }

    pub(crate) fn stop(&mut self) {
        self.shared.stop();
    }
}

/// Makes the temp dir, hands it to the server's user, and runs initdb in it.
fn prepare(bins: &Binaries, who: Option<RunAs>) -> Result<PathBuf, Error> {
    let root = tempfile::Builder::new()
        .prefix(&registry::dir_prefix())
        .tempdir()
        .map_err(|e| Error::Io {
            path: std::env::temp_dir(),
            source: e,
        })?
        .keep();
    let fail = |root: &Path, e: Error| {
        let _ = std::fs::remove_dir_all(root);
        e
    };
    if let Some(w) = who {
        let c = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
            .expect("no NUL in temp path");
        // SAFETY: valid C string; chown has no other preconditions.
        if unsafe { libc::chown(c.as_ptr(), w.uid, w.gid) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(fail(
                &root,
                Error::Io {
                    path: root.clone(),
                    source: e,
                },
            ));
        }
    }
    let data = root.join("data");
    let result = match cached_cluster(bins, who) {
        // A copy of a cached cluster: initdb is most of the start-up time, and its output is
        // the same every time for the same binaries and user.
        Ok(cached) => copy_cluster(&cached, &data, who),
        Err(e) => {
            tracing::debug!("initdb cache unavailable ({e}); running initdb directly");
            run_initdb(bins, who, &data, &root)
        }
    };
    result.map_err(|e| fail(&root, e))?;
    Ok(root)
}

fn run_initdb(bins: &Binaries, who: Option<RunAs>, data: &Path, cwd: &Path) -> Result<(), Error> {
    let mut cmd = Command::new(&bins.initdb);
    cmd.arg("-D")
        .arg(data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ])
        .current_dir(cwd)
        .stdin(Stdio::null());
    if let Some(w) = who {
        cmd.uid(w.uid).gid(w.gid);
    }
    let out = cmd.output().map_err(|e| Error::Io {
        path: bins.initdb.clone(),
        source: e,
    })?;
    if !out.status.success() {
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return Err(Error::LocalFailed {
            step: "running initdb".into(),
            detail: format!("initdb exited with {}", out.status),
            log,
        });
    }
    Ok(())
}

/// A pristine initdb'd cluster kept in /var/tmp per PostgreSQL build and user, built once and
/// copied for every start. Set `E2EE_HARNESS_NO_INITDB_CACHE=1` to always run initdb.
fn cached_cluster(bins: &Binaries, who: Option<RunAs>) -> Result<PathBuf, Error> {
    if std::env::var_os("E2EE_HARNESS_NO_INITDB_CACHE").is_some() {
        return Err(Error::NoBinaries {
            detail: "initdb cache disabled".into(),
        });
    }
    let out = Command::new(&bins.postgres)
        .arg("--version")
        .output()
        .map_err(|e| Error::Io {
            path: bins.postgres.clone(),
            source: e,
        })?;
    let version: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // SAFETY: geteuid has no preconditions.
    let uid = who
        .map(|w| w.uid)
        .unwrap_or_else(|| unsafe { libc::geteuid() });
    let base = PathBuf::from("/var/tmp");
    let cache = base.join(format!(
        "e2ee-harness-initdb-{}-{uid}",
        version.trim_matches('_')
    ));
    if cache.join("PG_VERSION").is_file() {
        return Ok(cache);
    }
    // Build beside it and rename into place, so concurrent first runs never see half a cluster.
    let staging = tempfile::Builder::new()
        .prefix("e2ee-harness-initdb-staging-")
        .tempdir_in(&base)
        .map_err(|e| Error::Io {
            path: base.clone(),
            source: e,
        })?;
    if let Some(w) = who {
        chown(staging.path(), w)?;
    }
    let data = staging.path().join("data");
    run_initdb(bins, who, &data, staging.path())?;
    match std::fs::rename(&data, &cache) {
        Ok(()) => Ok(cache),
        Err(_) if cache.join("PG_VERSION").is_file() => Ok(cache),
        Err(e) => Err(Error::Io {
            path: cache,
            source: e,
        }),
    }
}

/// `cp -a` as the server's user keeps the 0700 modes and ownership PostgreSQL insists on.
fn copy_cluster(from: &Path, to: &Path, who: Option<RunAs>) -> Result<(), Error> {
    let mut cmd = Command::new("cp");
    cmd.arg("-a").arg(from).arg(to).stdin(Stdio::null());
    if let Some(w) = who {
        cmd.uid(w.uid).gid(w.gid);
    }
    let out = cmd.output().map_err(|e| Error::Io {
        path: to.to_path_buf(),
        source: e,
    })?;
    if !out.status.success() {
        return Err(Error::LocalFailed {
            step: "copying the cached cluster".into(),
            detail: format!("cp exited with {}", out.status),
            log: String::from_utf8_lossy(&out.stderr).to_string(),
        });
    }
    Ok(())
}

fn chown(path: &Path, w: RunAs) -> Result<(), Error> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in path");
    // SAFETY: valid C string; chown has no other preconditions.
    if unsafe { libc::chown(c.as_ptr(), w.uid, w.gid) } != 0 {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn read_tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_bin_without_initdb_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_binaries(Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("initdb"), "{err}");
        assert_eq!(err.exit_code(), 3);
    }
}
