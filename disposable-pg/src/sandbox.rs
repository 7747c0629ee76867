//! Sandboxes: a scratch database owned by a login role of its own that has no other
//! privilege. Untrusted SQL (a schema pack's migrations, its expectations, its workload) runs
//! as that role, so it cannot reach the host (`COPY … TO PROGRAM`, `lo_import`), the server's
//! settings (`ALTER SYSTEM`), other databases or other roles; the superuser connection of the
//! provider is kept for creating and dropping sandboxes only.
//!
//! Every live sandbox is also recorded process-wide, so that a SIGINT can drop it (which
//! terminates its sessions and so cancels a hanging statement) even on a server the harness
//! did not start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::{connect, quote_ident, Error, Postgres};

/// A scratch database and its owner role, dropped by [`Sandbox::drop`] or [`drop_all`].
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Database name.
    pub database: String,
    /// The owner role's name.
    pub role: String,
    /// URL connecting to the database as the owner role.
    pub url: String,
    /// URL of the maintenance database as the provider's (super)user.
    admin_url: String,
    /// The task that cancels statements running past the timeout (see [`watchdog`]).
    watchdog: Option<tokio::task::AbortHandle>,
    /// False for a [`Sandbox::copy`]: the role belongs to the original, which drops it.
    owns_role: bool,
}

/// Sandboxes created and not yet dropped, for [`drop_all`].
static LIVE: Mutex<Vec<Sandbox>> = Mutex::new(Vec::new());

/// How long dropping one sandbox may take on the signal path before it is abandoned.
const DROP_TIMEOUT: Duration = Duration::from_secs(5);

impl Postgres {
    /// Creates a role (LOGIN, no SUPERUSER/CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS) and a
    /// database it owns; every statement of the role's sessions is cut after
    /// `statement_timeout` (0: none). `label` becomes part of both names.
    pub async fn create_sandbox(
        &self,
        label: &str,
        statement_timeout: Duration,
    ) -> Result<Sandbox, Error> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let base = format!("e2ee_sbx_{}_{n}_{}", std::process::id(), ident_part(label));
        let mut sandbox = Sandbox {
            database: base.clone(),
            role: base.clone(),
            url: with_user(&self.url_for(&base), &base, &password()?),
            admin_url: self.url().to_string(),
            watchdog: None,
            owns_role: true,
        };
        if !statement_timeout.is_zero() {
            sandbox.watchdog = Some(
                tokio::spawn(watchdog(
                    sandbox.admin_url.clone(),
                    sandbox.role.clone(),
                    statement_timeout,
                ))
                .abort_handle(),
            );
        }
        // Recorded before anything exists, so an interruption mid-way still cleans up.
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sandbox.clone());
        if let Err(e) = sandbox.create(statement_timeout).await {
            sandbox.drop().await;
            return Err(e);
        }
        Ok(sandbox)
    }
}

impl Sandbox {
    async fn create(&self, statement_timeout: Duration) -> Result<(), Error> {
        let admin = connect(&self.admin_url).await?;
        let role = quote_ident(&self.role);
        let db = quote_ident(&self.database);
        let password = password_of(&self.url);
        let steps = [
            format!(
                "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
                 NOBYPASSRLS PASSWORD '{password}'"
            ),
            // A default the pack can lower but that protects every check the harness runs.
            format!(
                "ALTER ROLE {role} SET statement_timeout = {}",
                statement_timeout.as_millis()
            ),
            // CREATE DATABASE … OWNER needs the creator to be able to act as the role.
            format!("GRANT {role} TO CURRENT_USER"),
            format!("CREATE DATABASE {db} OWNER {role}"),
            format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"),
        ];
        for sql in steps {
            if let Err(e) = admin.batch_execute(&sql).await {
                // Superusers are members of every role already; a repeated grant is harmless.
                if sql.starts_with("GRANT") {
                    continue;
                }
                return Err(Error::Sql {
                    what: format!(
                        "creating sandbox {} (the --db user needs CREATEROLE and CREATEDB, or superuser)",
                        self.database
                    ),
                    source: e,
                });
            }
        }
        Ok(())
    }

    /// A copy of this sandbox's database (which must have no open connection), owned by the
    /// same role, so the role still owns every object in it and can change them. The original's
    /// watchdog covers the copy (it watches the role); dropping the copy drops its database
    /// only.
    pub async fn copy(&self) -> Result<Sandbox, Error> {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let suffix = format!("_c{n}");
        let keep = 63usize
            .saturating_sub(suffix.len())
            .min(self.database.len());
        let database = format!("{}{suffix}", &self.database[..keep]);
        let copy = Sandbox {
            url: crate::with_database(&self.url, &database),
            database,
            role: self.role.clone(),
            admin_url: self.admin_url.clone(),
            watchdog: None,
            owns_role: false,
        };
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(copy.clone());
        let created = async {
            let admin = connect(&self.admin_url).await?;
            // Two round trips: CREATE DATABASE cannot run in the implicit transaction of a
            // multi-statement query.
            for sql in [
                format!(
                    "CREATE DATABASE {} TEMPLATE {} OWNER {}",
                    quote_ident(&copy.database),
                    quote_ident(&self.database),
                    quote_ident(&self.role)
                ),
                format!(
                    "REVOKE ALL ON DATABASE {} FROM PUBLIC",
                    quote_ident(&copy.database)
                ),
            ] {
                admin.batch_execute(&sql).await.map_err(|e| Error::Sql {
                    what: format!("copying sandbox {}", self.database),
                    source: e,
                })?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = created {
            copy.drop().await;
            return Err(e);
        }
        Ok(copy)
    }

    /// Drops the database (terminating its sessions) and the role. Never fails: what cannot
    /// be dropped is reported as a warning, since the caller is on its way out.
    pub async fn drop(&self) {
        if let Some(w) = &self.watchdog {
            w.abort();
        }
        let result = async {
            let admin = connect(&self.admin_url).await?;
            let mut steps = vec![format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&self.database)
            )];
            if self.owns_role {
                steps.push(format!("DROP ROLE IF EXISTS {}", quote_ident(&self.role)));
            }
            for sql in steps {
                admin.batch_execute(&sql).await.map_err(|e| Error::Sql {
                    what: format!("dropping sandbox {}", self.database),
                    source: e,
                })?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(sandbox = %self.database, "could not drop sandbox: {e}");
        }
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| s.database != self.database);
    }
}

/// Drops every sandbox this process still holds (the CLI's signal path), each bounded by a
/// timeout so that an unresponsive server cannot hold the exit.
pub async fn drop_all() {
    let live: Vec<Sandbox> = LIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Newest first: copies go before the original whose role owns them.
    for s in live.into_iter().rev() {
        let _ = tokio::time::timeout(DROP_TIMEOUT, s.drop()).await;
    }
}

/// How often the watchdog looks, and how long past the timeout it lets a statement run
/// (the server's own statement_timeout, with its clearer message, normally fires first).
const WATCHDOG_TICK: Duration = Duration::from_secs(1);

/// The role's statement_timeout is only a default: the pack may `SET statement_timeout = 0`.
/// So the superuser also cancels any of the role's statements that has run longer than the
/// timeout (plus one tick), which the role cannot prevent.
async fn watchdog(admin_url: String, role: String, timeout: Duration) {
    let sql = "SELECT pg_cancel_backend(pid) FROM pg_stat_activity \
               WHERE usename = $1 AND state = 'active' AND pid <> pg_backend_pid() \
               AND now() - query_start > make_interval(secs => $2)";
    let limit = (timeout + WATCHDOG_TICK).as_secs_f64();
    let mut client = None;
    loop {
        tokio::time::sleep(WATCHDOG_TICK).await;
        if client.is_none() {
            client = connect(&admin_url).await.ok();
        }
        if let Some(c) = &client {
            if c.execute(sql, &[&role, &limit]).await.is_err() {
                client = None;
            }
        }
    }
}

/// Lower-case ASCII letters, digits and `_` from `label`, at most 20 of them, so that names
/// stay valid unquoted identifiers within PostgreSQL's 63 bytes.
fn ident_part(label: &str) -> String {
    label
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(20)
        .collect()
}

/// 32 hex digits from the kernel's random source: the role's password (needed where the
/// server asks for one, e.g. Docker images with scram-sha-256).
fn password() -> Result<String, Error> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| Error::Io {
            path: "/dev/urandom".into(),
            source,
        })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn password_of(url: &str) -> String {
    url.parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|c| {
            c.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        })
        .unwrap_or_default()
}

/// Replaces the user and password of a postgres URL (`scheme://user:pw@host…`).
pub(crate) fn with_user(url: &str, user: &str, password: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let rest = &url[after_scheme..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_start = rest[..authority_end].rfind('@').map(|i| i + 1).unwrap_or(0);
    format!(
        "{}{user}:{password}@{}",
        &url[..after_scheme],
        &rest[host_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_user_replaces_or_adds_credentials() {
        assert_eq!(
            with_user("postgres://a:b@h:1/db?x=1", "r", "p"),
            "postgres://r:p@h:1/db?x=1"
        );
        assert_eq!(
            with_user("postgres://h:1/db", "r", "p"),
            "postgres://r:p@h:1/db"
        );
        assert_eq!(
            with_user("postgresql://a@h/db", "r", "p"),
            "postgresql://r:p@h/db"
        );
    }

    #[test]
    fn ident_part_keeps_identifier_characters() {
        assert_eq!(ident_part("Conform A; DROP"), "conformadrop");
    }
}
