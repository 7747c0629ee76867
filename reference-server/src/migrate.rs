//! Schema migrations: plain numbered SQL files, embedded in the binary, applied in order inside
//! one transaction under an advisory lock, so two instances starting together on one database
//! neither race nor half-apply. Applied files are recorded with their SHA-256; a file edited
//! after it was applied is an error rather than a silent divergence.

use sha2::{Digest, Sha256};

use crate::Error;

/// Every migration, in order: (file name, SQL). Public for the conformance engine.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_keys_and_envelopes.sql",
        include_str!("../migrations/0001_keys_and_envelopes.sql"),
    ),
    (
        "0002_notify_after_commit.sql",
        include_str!("../migrations/0002_notify_after_commit.sql"),
    ),
];

/// Arbitrary but fixed: the advisory lock key every instance takes while migrating.
const LOCK_KEY: i64 = 0x6532_6565_7265_6673; // "e2eerefs"

/// Applies the migrations that `database_url` has not seen yet.
pub async fn migrate(database_url: &str) -> Result<(), Error> {
    let (mut client, conn) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .map_err(|source| Error::Connect {
            target: disposable_pg::display_target(database_url),
            source,
        })?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = apply(&mut client).await;
    drop(client);
    let _ = driver.await;
    result
}

/// [`migrate`] taking its URL by value, for `tokio::spawn`.
pub async fn migrate_owned(database_url: String) -> Result<(), Error> {
    migrate(&database_url).await
}

async fn apply(client: &mut tokio_postgres::Client) -> Result<(), Error> {
    let sql_err = |what: &str| {
        let what = what.to_string();
        move |source| Error::Sql { what, source }
    };
    let tx = client
        .transaction()
        .await
        .map_err(sql_err("starting the migration transaction"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(sql_err("taking the migration lock"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             name text PRIMARY KEY,
             sha256 bytea NOT NULL CHECK (octet_length(sha256) = 32),
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(sql_err("creating schema_migrations"))?;
    let applied = tx
        .query("SELECT name, sha256 FROM schema_migrations", &[])
        .await
        .map_err(sql_err("reading schema_migrations"))?;
    for (name, sql) in MIGRATIONS {
        let digest = Sha256::digest(sql.as_bytes()).to_vec();
        if let Some(row) = applied.iter().find(|r| r.get::<_, &str>(0) == *name) {
            if row.get::<_, Vec<u8>>(1) != digest {
                return Err(Error::MigrationChanged {
                    name: name.to_string(),
                });
            }
            continue;
        }
        tx.batch_execute(sql)
            .await
            .map_err(|source| Error::Migration {
                name: name.to_string(),
                source,
            })?;
        tx.execute(
            "INSERT INTO schema_migrations (name, sha256) VALUES ($1, $2)",
            &[name, &digest],
        )
        .await
        .map_err(sql_err("recording a migration"))?;
        tracing::info!(migration = name, "applied");
    }
    tx.commit()
        .await
        .map_err(sql_err("committing the migrations"))
}
