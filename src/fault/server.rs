//! The bundled reference server as a child process (`e2ee-harness serve` of this very
//! binary) on a fixed loopback port, so a `kill_server` fault is a real SIGKILL and the
//! server comes back on the address every client knows.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::fault::FaultError;

/// How long a (re)started server gets to answer `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before the server is killed.
const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(10);

/// A reference server running as our child.
pub(crate) struct ChildServer {
    addr: SocketAddr,
    database_url: String,
    exe: PathBuf,
    child: Mutex<Option<Child>>,
    http: reqwest::Client,
}

impl ChildServer {
    /// Starts the server on a free loopback port and waits until it is healthy.
    pub(crate) async fn start(database_url: &str) -> Result<ChildServer, FaultError> {
        let exe = std::env::current_exe().map_err(|e| FaultError::Server(e.to_string()))?;
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| FaultError::Server(format!("no free port: {e}")))?
            .port();
        let server = ChildServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            database_url: database_url.to_string(),
            exe,
            child: Mutex::new(None),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| FaultError::Server(e.to_string()))?,
        };
        server.launch().await?;
        Ok(server)
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Spawns the process and waits for `/healthz`.
    pub(crate) async fn launch(&self) -> Result<(), FaultError> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(["serve", "--quiet", "--db", &self.database_url])
            .args(["--listen", &self.addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C in the terminal reaches the harness, which
            // stops the server itself, in order.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe. A harness killed with SIGKILL leaves no server.
        unsafe {
            cmd.pre_exec(|| {
                // The server runs at normal priority, not the generator's raised one (the
                // child is one thread: the calling thread is the process).
                crate::load::priority::normal_for_this_thread();
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| FaultError::Server(format!("cannot start {}: {e}", self.exe.display())))?;
        *self.child.lock().await = Some(child);
        self.wait_healthy().await
    }

    async fn wait_healthy(&self) -> Result<(), FaultError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/healthz", self.base_url());
        loop {
            if let Some(child) = self.child.lock().await.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(FaultError::Server(format!(
                        "the server exited with {status} while starting"
                    )));
                }
            }
            if let Ok(r) = self.http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(FaultError::Server(format!(
                    "not healthy {READY_TIMEOUT:?} after start"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no goodbye to anyone; waits until the process is gone.
    pub(crate) async fn kill(&self) {
        if let Some(mut child) = self.child.lock().await.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM: the server closes its sessions and finishes in-flight requests; killed if it
    /// takes longer than [`GRACEFUL_TIMEOUT`].
    pub(crate) async fn terminate(&self) {
        let Some(mut child) = self.child.lock().await.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // SAFETY: signalling our own child, which has not been reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        if tokio::time::timeout(GRACEFUL_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}
