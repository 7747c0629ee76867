//! The Docker provider: a PostgreSQL container through testcontainers.
//!
//! testcontainers starts and removes the container; bollard (the engine API client that
//! testcontainers itself uses) answers what testcontainers cannot: whether an engine is there,
//! whether the image is present or can be pulled, and why not, so that `auto` never picks an
//! engine that cannot serve and `--db docker` fails with the engine's own reason.
//!
//! Any image that behaves like the official `postgres` image works: the official ones where a
//! registry is reachable, or the one `docker/postgres/build-image.sh` builds from Debian's
//! packages where none is.
//!
//! No container is left behind: testcontainers removes a container when its handle drops; a
//! list of live containers lets SIGINT/SIGTERM (which never run destructors) remove them too;
//! and every container carries its owner's pid and start time, so the next start removes the
//! containers of a harness that was SIGKILLed.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bollard::query_parameters::{
    CreateImageOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::{Error, Options};

/// The image `--pg-image` names when the user names none.
pub const DEFAULT_IMAGE: &str = "postgres:16-alpine";

/// Label on every container this crate starts: `<pid>:<process start time>` of its owner.
const OWNER_LABEL: &str = "e2ee-harness.owner";

type Slot = Mutex<Option<ContainerAsync<GenericImage>>>;

static LIVE: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

/// A connection to the Docker engine, for the questions testcontainers does not answer.
pub(crate) struct Engine(bollard::Docker);

/// How the image came to be available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ImageSource {
    Present,
    Pulled,
}

impl Engine {
    /// Connects (`DOCKER_HOST` or the local socket), agrees on an API version and pings, all
    /// within `timeout`. `Err` says why not, in a few words.
    pub(crate) async fn connect(timeout: Duration) -> Result<Engine, String> {
        let connect = async {
            let docker = bollard::Docker::connect_with_defaults().map_err(|e| reason(&e))?;
            // Older engines (20.10 speaks API 1.41) refuse newer clients: negotiate first.
            let docker = docker.negotiate_version().await.map_err(|e| reason(&e))?;
            docker.ping().await.map_err(|e| reason(&e))?;
            Ok(Engine(docker))
        };
        tokio::time::timeout(timeout, connect)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
    }

    /// Makes sure `image` is in the engine: present already, or pulled now (within
    /// `timeout`). `Err` is the engine's reason, e.g. the registry lookup that failed.
    pub(crate) async fn ensure_image(
        &self,
        image: &str,
        timeout: Duration,
    ) -> Result<ImageSource, String> {
        match self.0.inspect_image(image).await {
            Ok(_) => return Ok(ImageSource::Present),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(reason(&e)),
        }
        let (name, tag) = split_image(image);
        let options = CreateImageOptionsBuilder::default()
            .from_image(&name)
            .tag(&tag)
            .build();
        let pull = async {
            let mut progress = self.0.create_image(Some(options), None, None);
            while let Some(step) = progress.next().await {
                step.map_err(|e| reason(&e))?;
            }
            Ok(ImageSource::Pulled)
        };
        tokio::time::timeout(timeout, pull)
            .await
            .unwrap_or_else(|_| Err(format!("pull did not finish within {timeout:?}")))
    }

    /// Removes containers whose owning harness process is gone (SIGKILLed, power cut): the
    /// label names the owner's pid and start time, so a reused pid is not mistaken for it.
    async fn sweep_orphans(&self) {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&std::collections::HashMap::from([(
                "label",
                vec![OWNER_LABEL],
            )]))
            .build();
        let Ok(containers) = self.0.list_containers(Some(options)).await else {
            return;
        };
        for c in containers {
            let owner = c.labels.as_ref().and_then(|l| l.get(OWNER_LABEL));
            let (Some(id), Some(owner)) = (c.id.as_deref(), owner) else {
                continue;
            };
            if owner_alive(owner) {
                continue;
            }
            tracing::info!(
                container = id,
                owner,
                "removing a container left by a dead harness"
            );
            let rm = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            let _ = self.0.remove_container(id, Some(rm)).await;
        }
    }
}

/// The engine's own words for an error (its message, not bollard's wrapper).
fn reason(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => crate::error_chain(other),
    }
}

/// `name[:tag]` → (name, tag); a ':' inside a registry host:port is not a tag.
pub(crate) fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

/// Why `auto` passes over Docker, or `Ok` when it may use it: the engine must answer and the
/// image must be present or pullable.
pub(crate) async fn usable(options: &Options) -> Result<(), String> {
    let engine = Engine::connect(Duration::from_secs(2))
        .await
        .map_err(|why| format!("no Docker engine ({why})"))?;
    engine
        .ensure_image(&options.image, options.pull_timeout)
        .await
        .map(|_| ())
        .map_err(|why| {
            format!(
                "engine answered, image {} absent and not pullable: {why}",
                options.image
            )
        })
}

/// This process's identity for [`OWNER_LABEL`].
fn owner_id() -> String {
    format!(
        "{}:{}",
        std::process::id(),
        process_start(std::process::id()).unwrap_or_default()
    )
}

/// Whether the process an owner label names is still the same live process.
fn owner_alive(owner: &str) -> bool {
    let Some((pid, start)) = owner.split_once(':') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    process_start(pid).is_some_and(|s| s == start)
}

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot): with the pid, it names
/// one process for the life of the machine.
fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' do not.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19).map(str::to_string)
}

pub(crate) struct DockerServer {
    slot: Arc<Slot>,
    url: String,
    /// How the image came to be there (for the description line).
    pub(crate) source: ImageSource,
}

impl DockerServer {
    pub(crate) async fn start(options: &Options) -> Result<DockerServer, Error> {
        let engine = Engine::connect(Duration::from_secs(2))
            .await
            .map_err(|why| Error::Docker {
                detail: format!("no Docker engine answered: {why}"),
            })?;
        engine.sweep_orphans().await;
        let source = engine
            .ensure_image(&options.image, options.pull_timeout)
            .await
            .map_err(|why| Error::DockerImage {
                image: options.image.clone(),
                reason: why,
            })?;
        let container = run_container(options).await?;
        let url = container_url(&container).await?;
        let slot = Arc::new(Mutex::new(Some(container)));
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(&slot));
        let server = DockerServer { slot, url, source };
        server.wait_for_query(options.ready_timeout).await?;
        Ok(server)
    }

    /// Readiness is proven by a real query over the mapped port, not by log lines alone: the
    /// official image logs "ready" for its init-time server too, which listens on no port.
    async fn wait_for_query(&self, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            match crate::connect(&self.url).await {
                Ok(c) if c.simple_query("SELECT 1").await.is_ok() => return Ok(()),
                _ if Instant::now() > deadline => {
                    return Err(Error::Docker {
                        detail: "container started but never accepted a query".into(),
                    })
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub(crate) fn url(&self) -> String {
        self.url.clone()
    }

    /// The container's id (for `docker pause`-style faults and for tests).
    pub(crate) fn id(&self) -> Option<String> {
        self.slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|c| c.id().to_string())
    }

    pub(crate) fn stop(&mut self) {
        remove(&self.slot);
    }
}

/// Starts the container: the official image's environment contract, the harness's server
/// settings as `postgres` arguments, and the owner label for the orphan sweep.
async fn run_container(options: &Options) -> Result<ContainerAsync<GenericImage>, Error> {
    let (name, tag) = split_image(&options.image);
    let mut cmd: Vec<String> = vec!["-c".into(), "max_connections=300".into()];
    cmd.extend(
        options
            .durability
            .server_args()
            .iter()
            .map(|a| a.to_string()),
    );
    GenericImage::new(name, tag)
        .with_exposed_port(5432.tcp())
        .with_wait_for(WaitFor::message_on_stderr(
            "database system is ready to accept connections",
        ))
        .with_env_var("POSTGRES_USER", "postgres")
        .with_env_var("POSTGRES_PASSWORD", "postgres")
        .with_env_var("POSTGRES_DB", "postgres")
        .with_label(OWNER_LABEL, owner_id())
        .with_cmd(cmd)
        .with_startup_timeout(options.ready_timeout)
        .start()
        .await
        .map_err(|e| Error::Docker {
            detail: crate::error_chain(&e),
        })
}

async fn container_url(container: &ContainerAsync<GenericImage>) -> Result<String, Error> {
    let docker_err = |e: testcontainers::TestcontainersError| Error::Docker {
        detail: e.to_string(),
    };
    let host = container.get_host().await.map_err(docker_err)?.to_string();
    let port = container
        .get_host_port_ipv4(5432)
        .await
        .map_err(docker_err)?;
    // The port is published on IPv4; "localhost" may resolve to ::1 first.
    let host = if host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        host
    };
    Ok(format!(
        "postgres://postgres:postgres@{host}:{port}/postgres"
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_image_keeps_registry_ports() {
        assert_eq!(
            split_image("postgres:16-alpine"),
            ("postgres".into(), "16-alpine".into())
        );
        assert_eq!(
            split_image("postgres"),
            ("postgres".into(), "latest".into())
        );
        assert_eq!(
            split_image("registry:5000/pg"),
            ("registry:5000/pg".into(), "latest".into())
        );
        assert_eq!(
            split_image("registry:5000/pg:17"),
            ("registry:5000/pg".into(), "17".into())
        );
    }

    #[test]
    fn owner_of_this_process_is_alive_and_a_reused_pid_is_not() {
        assert!(owner_alive(&owner_id()));
        let pid = std::process::id();
        assert!(!owner_alive(&format!("{pid}:1")));
        assert!(!owner_alive("not-a-pid"));
    }
}
