//! A disposable PostgreSQL for tests, load runs and conformance checks.
//!
//! Three providers, one handle:
//! - [`Choice::Local`]: `initdb` + `postgres` from this machine, in a temp dir, on a free
//!   loopback port. The quickest and the one CI uses.
//! - [`Choice::Docker`]: a container of the official `postgres` image, or of one built from
//!   Debian's packages by `docker/postgres/build-image.sh`, through testcontainers.
//! - [`Choice::Url`]: a server somebody else runs; nothing is started or stopped.
//!
//! [`Choice::Auto`] picks a URL if one is given, else Docker if an engine answers and has (or
//! can pull) the image, else local binaries. Whatever is started is stopped, and its directory removed, when the
//! [`Postgres`] handle drops, when [`shutdown_all`] runs (the CLI calls it on SIGINT/SIGTERM),
//! at process exit, and, as a last resort, by the kernel: local servers are started with a
//! parent-death signal so even a SIGKILLed harness leaves no `postgres` behind.

mod choice;
pub mod cli;
mod docker;
mod error;
mod local;
mod registry;
mod sandbox;
mod template;

pub use choice::{Choice, Durability, Options};
pub use docker::DEFAULT_IMAGE;
pub use error::Error;
pub use sandbox::{drop_all as drop_all_sandboxes, Sandbox};
pub use template::{shared_for_tests, TemplateCache};

use std::fmt;

/// Which provider actually serves a [`Postgres`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Local,
    Docker,
    Url,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::Local => "local",
            ProviderKind::Docker => "docker",
            ProviderKind::Url => "url",
        })
    }
}

enum Backend {
    Local(local::LocalServer),
    Docker(docker::DockerServer),
    Url,
}

/// A running PostgreSQL. Dropping it stops whatever this process started.
pub struct Postgres {
    url: String,
    kind: ProviderKind,
    durable: bool,
    /// Why `auto` chose this provider (one line, shown to the user).
    reason: String,
    version: String,
    backend: Backend,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("durable", &self.durable)
            .field("version", &self.version)
            .finish()
    }
}

impl Postgres {
    /// Starts (or connects to) a PostgreSQL as `options` say.
    pub async fn start(options: &Options) -> Result<Postgres, Error> {
        let (choice, mut reason) = choice::resolve(options).await?;
        let (url, backend, durable): (String, Backend, bool) = match choice {
            Choice::Url(url) => {
                // Not ours: we cannot know or change how durable it is; report what it says.
                (url, Backend::Url, true)
            }
            Choice::Local => {
                let server = local::LocalServer::start(options).await?;
                (
                    server.url(),
                    Backend::Local(server),
                    options.durability.is_durable(),
                )
            }
            Choice::Docker => {
                let server = docker::DockerServer::start(options).await?;
                if server.source == docker::ImageSource::Pulled {
                    reason.push_str(&format!("; image {} pulled", options.image));
                }
                (
                    server.url(),
                    Backend::Docker(server),
                    options.durability.is_durable(),
                )
            }
            Choice::Auto => unreachable!("resolve() never returns Auto"),
        };
        let kind = match backend {
            Backend::Local(_) => ProviderKind::Local,
            Backend::Docker(_) => ProviderKind::Docker,
            Backend::Url => ProviderKind::Url,
        };
        let (version, durable) = probe(&url, durable, kind).await?;
        Ok(Postgres {
            url,
            kind,
            durable,
            reason,
            version,
            backend,
        })
    }

    /// `postgres://` URL of the maintenance database (`postgres`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// URL of another database on the same server.
    pub fn url_for(&self, database: &str) -> String {
        with_database(&self.url, database)
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// Whether fsync and synchronous_commit are on (read back from the server).
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// One line: which provider and why.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// One line for people: version, provider, durability, and why this provider was chosen.
    pub fn describe(&self) -> String {
        format!(
            "PostgreSQL {} ({}, {}): {}",
            self.version,
            self.kind,
            if self.durable {
                "durable"
            } else {
                "fast: fsync off"
            },
            self.reason
        )
    }

    /// `server_version` as the server reports it, e.g. "15.18".
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The data directory of a local server (for tests that check cleanup).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        match &self.backend {
            Backend::Local(s) => Some(s.root()),
            _ => None,
        }
    }

    /// The container of a Docker server (for faults such as `docker pause`, and for tests).
    pub fn container_id(&self) -> Option<String> {
        match &self.backend {
            Backend::Docker(s) => s.id(),
            _ => None,
        }
    }

    /// The postmaster's pid of a local server.
    pub fn pid(&self) -> Option<u32> {
        match &self.backend {
            Backend::Local(s) => s.pid(),
            _ => None,
        }
    }

    /// Restarts a local server: fast shutdown, then a start of the same data directory on
    /// the same port, ready when this returns. Other providers cannot (a container's mapped
    /// port could change; a URL's server is not ours).
    pub async fn restart(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Local(s) => s.restart().await,
            _ => Err(Error::Unsupported {
                what: format!("restarting a {} PostgreSQL", self.kind),
            }),
        }
    }

    /// Creates a fresh database, optionally as a copy of `template`, and returns its URL.
    pub async fn create_database(
        &self,
        name: &str,
        template: Option<&str>,
    ) -> Result<String, Error> {
        let client = connect(&self.url).await?;
        let sql = match template {
            Some(t) => format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(name),
                quote_ident(t)
            ),
            None => format!("CREATE DATABASE {}", quote_ident(name)),
        };
        client.batch_execute(&sql).await.map_err(|e| Error::Sql {
            what: format!("creating database {name}"),
            source: e,
        })?;
        Ok(self.url_for(name))
    }

    /// Drops a database (terminating its connections first).
    pub async fn drop_database(&self, name: &str) -> Result<(), Error> {
        let client = connect(&self.url).await?;
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .await
            .map_err(|e| Error::Sql {
                what: format!("dropping database {name}"),
                source: e,
            })
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) {
        match &mut self.backend {
            Backend::Local(s) => s.stop(),
            Backend::Docker(s) => s.stop(),
            Backend::Url => {}
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops every server this process started and removes their directories. Safe to call from
/// a signal-handling task or more than once.
pub fn shutdown_all() {
    registry::shutdown_all();
}

/// Connects with tokio-postgres and drives the connection on the current runtime.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| Error::Unreachable {
            target: display_target(url),
            reason: error_chain(&e),
        })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Reads the version and the durability settings back from the server itself, so reports
/// state what the server does, not what we asked for.
async fn probe(
    url: &str,
    requested_durable: bool,
    kind: ProviderKind,
) -> Result<(String, bool), Error> {
    let client = connect(url).await?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')",
            &[],
        )
        .await
        .map_err(|e| Error::Sql { what: "reading server settings".into(), source: e })?;
    let version: String = row.get(0);
    let fsync: String = row.get(1);
    let sync: String = row.get(2);
    let durable = fsync == "on" && sync != "off";
    if kind != ProviderKind::Url && durable != requested_durable {
        tracing::warn!(
            requested_durable,
            durable,
            "server durability differs from the request"
        );
    }
    Ok((version, durable))
}

/// `host:port` (or the socket) of a URL, for error messages; never the password.
pub fn display_target(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(cfg) => {
            let host = cfg
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_else(|| "localhost".into());
            let port = cfg.get_ports().first().copied().unwrap_or(5432);
            format!("{host}:{port}")
        }
        Err(_) => "<unparsable URL>".into(),
    }
}

/// The error and its sources on one line: the driver's reason is usually in a source.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        let t = src.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = src.source();
    }
    s
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Replaces the database (path) part of a postgres URL.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // scheme://authority/path: the path starts at the first '/' after "://".
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let authority_end = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..authority_end], database);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_path_and_keeps_query() {
        assert_eq!(
            with_database("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u@h:1/db?host=/tmp/s", "x"),
            "postgres://u@h:1/x?host=/tmp/s"
        );
    }

    #[test]
    fn display_target_hides_credentials() {
        assert_eq!(
            display_target("postgres://u:secret@10.1.2.3:6543/db"),
            "10.1.2.3:6543"
        );
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
