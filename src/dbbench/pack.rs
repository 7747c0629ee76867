//! A schema pack as db-bench sees it: its directory, its up migrations in numeric order, and
//! its `workload.toml`. (The conformance engine reads the same layout: docs/conformance.md.)

use std::path::{Path, PathBuf};

use crate::Error;

/// Where packs live, relative to the working directory or the crate root.
pub const PACKS_DIR: &str = "scenarios/schemas";

#[derive(Debug, Clone)]
pub struct Pack {
    pub name: String,
    pub dir: PathBuf,
    /// Up migrations, ordered by their number.
    pub migrations: Vec<Migration>,
}

#[derive(Debug, Clone)]
pub struct Migration {
    pub number: u64,
    pub path: PathBuf,
}

impl Pack {
    /// `name_or_dir` is a directory, a pack name under `scenarios/schemas/`, or a built-in
    /// pack's name.
    pub fn resolve(name_or_dir: &str) -> Result<Pack, Error> {
        let root = std::env::current_dir().map_err(|e| Error::Io {
            path: PathBuf::from("."),
            source: e,
        })?;
        let dir = crate::conform::pack::locate(name_or_dir, &root)?;
        if !dir.join("migrations").is_dir() {
            return Err(Error::BadInput(format!(
                "--schema {name_or_dir}: no pack there ({} has no migrations/ directory)",
                dir.display()
            )));
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| name_or_dir.to_string());
        let migrations = list_migrations(&dir.join("migrations"))?;
        if migrations.is_empty() {
            return Err(Error::BadInput(format!(
                "{}: no NNN_name.sql migrations",
                dir.join("migrations").display()
            )));
        }
        Ok(Pack {
            name,
            dir,
            migrations,
        })
    }

    pub fn workload_path(&self) -> PathBuf {
        self.dir.join("workload.toml")
    }
}

/// Up migrations: `NNN_name.sql`, not `*_down.sql` / `*.down.sql`, ordered numerically.
fn list_migrations(dir: &Path) -> Result<Vec<Migration>, Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out: Vec<Migration> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        if stem.ends_with("_down") || stem.ends_with(".down") {
            continue;
        }
        let digits: String = stem.chars().take_while(|c| c.is_ascii_digit()).collect();
        let number = match (digits.parse::<u64>(), stem[digits.len()..].starts_with('_')) {
            (Ok(n), true) => n,
            _ => {
                return Err(Error::BadInput(format!(
                    "{}: a migration is named NNN_name.sql",
                    path.display()
                )))
            }
        };
        if let Some(other) = out.iter().find(|m| m.number == number) {
            return Err(Error::BadInput(format!(
                "{} and {}: two migrations numbered {number}",
                other.path.display(),
                path.display()
            )));
        }
        out.push(Migration { number, path });
    }
    out.sort_by_key(|m| m.number);
    Ok(out)
}

/// Applies every up migration in order, each in its own transaction. A failure names the
/// file and PostgreSQL's message and position.
pub async fn apply(client: &tokio_postgres::Client, pack: &Pack) -> Result<(), Error> {
    for m in &pack.migrations {
        let sql = std::fs::read_to_string(&m.path).map_err(|source| Error::Io {
            path: m.path.clone(),
            source,
        })?;
        let wrapped = format!("BEGIN;\n{sql}\n;COMMIT;");
        if let Err(e) = client.batch_execute(&wrapped).await {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(Error::BadInput(format!(
                "{}: migration failed: {}",
                m.path.display(),
                describe_db_error(&e, &sql, "BEGIN;\n".len())
            )));
        }
    }
    Ok(())
}

/// PostgreSQL's message, SQLSTATE and, when it gives a position, the line it points at.
/// `prefix` is the number of characters sent before `sql` (a wrapper such as `BEGIN;`).
pub fn describe_db_error(e: &tokio_postgres::Error, sql: &str, prefix: usize) -> String {
    let Some(db) = e.as_db_error() else {
        return e.to_string();
    };
    let mut out = format!("{} ({})", db.message(), db.code().code());
    if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) = db.position() {
        let shifted = (*pos as usize).saturating_sub(1).saturating_sub(prefix);
        let text: String = sql.chars().take(shifted).collect();
        let line = text.matches('\n').count() + 1;
        out.push_str(&format!(" at line {line}"));
    }
    out
}
