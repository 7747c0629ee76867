//! The Docker provider: a `postgres` container through testcontainers.
//!
//! testcontainers removes a container when its handle drops; the harness also keeps every live
//! container in a list so SIGINT/SIGTERM (which never run destructors) remove them too.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use testcontainers_modules::postgres::Postgres as PgImage;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::{ContainerAsync, ImageExt};

use crate::{Error, Options};

type Slot = Mutex<Option<ContainerAsync<PgImage>>>;

static LIVE: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

pub(crate) struct DockerServer {
    slot: Arc<Slot>,
    url: String,
}

impl DockerServer {
    pub(crate) async fn start(options: &Options) -> Result<DockerServer, Error> {
        ping(Duration::from_secs(2))
            .await
            .map_err(|why| Error::Docker {
                detail: format!("no Docker engine answered the ping: {why}"),
            })?;
        let (name, tag) = match options.image.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
            _ => (options.image.clone(), "latest".to_string()),
        };
        let mut cmd: Vec<String> = vec!["-c".into(), "max_connections=300".into()];
        cmd.extend(
            options
                .durability
                .server_args()
                .iter()
                .map(|a| a.to_string()),
        );
        // The image's ready conditions wait for "ready to accept connections" as the image logs
        // it twice (once for its init server, once for the real one).
        let container = PgImage::default()
            .with_name(name)
            .with_tag(tag)
            .with_cmd(cmd)
            .with_startup_timeout(options.ready_timeout)
            .start()
            .await
            .map_err(|e| Error::Docker {
                detail: crate::error_chain(&e),
            })?;
        let host = container.get_host().await.map_err(|e| Error::Docker {
            detail: e.to_string(),
        })?;
        let port = container
            .get_host_port_ipv4(5432)
            .await
            .map_err(|e| Error::Docker {
                detail: e.to_string(),
            })?;
        let url = format!("postgres://postgres:postgres@{host}:{port}/postgres");
        let slot = Arc::new(Mutex::new(Some(container)));
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&slot));
        let server = DockerServer { slot, url };
        // Readiness is proven by a real query, not by log lines alone.
        let deadline = Instant::now() + options.ready_timeout;
        loop {
            match crate::connect(&server.url).await {
                Ok(c) if c.simple_query("SELECT 1").await.is_ok() => break,
                _ if Instant::now() > deadline => {
                    return Err(Error::Docker {
                        detail: "container started but never accepted a query".into(),
                    })
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(server)
    }

    pub(crate) fn url(&self) -> String {
        self.url.clone()
    }

    pub(crate) fn stop(&mut self) {
        remove(&self.slot);
    }
}

/// Removes the container synchronously, from any context (async or not, even `atexit`).
fn remove(slot: &Slot) {
    let Some(container) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(async move {
                let _ = container.rm().await;
            });
        }
    })
    .join();
}

pub(crate) fn shutdown_all() {
    let live: Vec<Arc<Slot>> = LIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
        .filter_map(|w| w.upgrade())
        .collect();
    for s in live {
        remove(&s);
    }
}

/// Asks the Docker engine `GET /_ping` within `timeout`. `Err` says why not, in a few words.
pub(crate) async fn ping(timeout: Duration) -> Result<(), String> {
    let host =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let fut = tokio::task::spawn_blocking(move || ping_blocking(&host, timeout));
    match tokio::time::timeout(timeout + Duration::from_millis(200), fut).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("ping task failed: {e}")),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

fn ping_blocking(host: &str, timeout: Duration) -> Result<(), String> {
    let request = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
    let mut response = Vec::new();
    if let Some(path) = host.strip_prefix("unix://") {
        let mut s =
            std::os::unix::net::UnixStream::connect(path).map_err(|e| format!("{path}: {e}"))?;
        s.set_read_timeout(Some(timeout)).ok();
        s.set_write_timeout(Some(timeout)).ok();
        s.write_all(request).map_err(|e| format!("{path}: {e}"))?;
        s.read_to_end(&mut response)
            .map_err(|e| format!("{path}: {e}"))?;
    } else if let Some(addr) = host.strip_prefix("tcp://") {
        let sock: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(|e| format!("{addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr}: no address"))?;
        let mut s = std::net::TcpStream::connect_timeout(&sock, timeout)
            .map_err(|e| format!("{addr}: {e}"))?;
        s.set_read_timeout(Some(timeout)).ok();
        s.write_all(request).map_err(|e| format!("{addr}: {e}"))?;
        s.read_to_end(&mut response)
            .map_err(|e| format!("{addr}: {e}"))?;
    } else {
        return Err(format!("unsupported DOCKER_HOST {host}"));
    }
    let text = String::from_utf8_lossy(&response);
    if text.starts_with("HTTP/1.") && text.contains(" 200 ") && text.trim_end().ends_with("OK") {
        Ok(())
    } else {
        Err(format!(
            "unexpected ping answer: {}",
            text.lines().next().unwrap_or("")
        ))
    }
}
