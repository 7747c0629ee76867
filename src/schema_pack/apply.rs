//! Runs a pack's SQL files statement by statement, so a failure names the file, the statement
//! and PostgreSQL's error position as `file:line:column`.

use tokio_postgres::Client;

use super::{Migration, SchemaPack, SqlFile};
use crate::Error;

/// A statement PostgreSQL refused.
#[derive(Debug, Clone)]
pub(crate) struct SqlFailure {
    /// `file:line:column` of the error position (or of the statement's start).
    pub(crate) location: String,
    pub(crate) statement_index: usize,
    pub(crate) statement: String,
    pub(crate) sqlstate: String,
    pub(crate) message: String,
}

impl std::fmt::Display for SqlFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: statement {} failed: {} (SQLSTATE {})\n  statement: {}",
            self.location,
            self.statement_index,
            self.message,
            self.sqlstate,
            excerpt(&self.statement, 300)
        )?;
        if let Some(hint) = hint(&self.sqlstate) {
            write!(f, "\n  {hint}")?;
        }
        Ok(())
    }
}

/// Why a SQLSTATE is the harness's doing rather than the pack's mistake, in words.
pub(crate) fn hint(sqlstate: &str) -> Option<&'static str> {
    match sqlstate {
        // insufficient_privilege: the sandbox said no (docs/conformance.md, "Trust model").
        "42501" => Some(
            "refused: a pack runs as a role that only owns its scratch database; this statement \
             needs more privilege (superuser, another database, server settings, the host)",
        ),
        // query_canceled: the role's statement_timeout (or an interruption) cut it.
        "57014" => Some("cut by the statement timeout (--statement-timeout; default 60s)"),
        _ => None,
    }
}

/// The first `max` characters of a statement, on one line.
pub(crate) fn excerpt(sql: &str, max: usize) -> String {
    let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

/// The SQLSTATE and message of an error (the driver's text when the server sent none).
pub(crate) fn describe(e: &tokio_postgres::Error) -> (String, String) {
    match e.as_db_error() {
        Some(db) => {
            let mut msg = db.message().to_string();
            if let Some(d) = db.detail() {
                msg.push_str(&format!(" ({d})"));
            }
            (db.code().code().to_string(), msg)
        }
        None => (
            e.code()
                .map(|c| c.code().to_string())
                .unwrap_or_else(|| "-----".into()),
            e.to_string(),
        ),
    }
}

/// Runs each statement of `file` in the current session (no transaction control).
pub(crate) async fn run_statements(client: &Client, file: &SqlFile) -> Result<(), SqlFailure> {
    for stmt in &file.statements {
        if let Err(e) = client.batch_execute(&stmt.text).await {
            let position = e.as_db_error().and_then(|db| match db.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
                _ => None,
            });
            let (sqlstate, message) = describe(&e);
            return Err(SqlFailure {
                location: file.locate(stmt, position),
                statement_index: stmt.index,
                statement: stmt.text.clone(),
                sqlstate,
                message,
            });
        }
    }
    Ok(())
}

/// Applies `file` in one transaction, as migration runners do (on failure nothing is left),
/// then runs `record` (the runner's bookkeeping) in the same transaction.
pub(crate) async fn apply_then(
    client: &Client,
    file: &SqlFile,
    record: Option<&str>,
) -> Result<(), SqlFailure> {
    let infra = |e: tokio_postgres::Error| {
        let (sqlstate, message) = describe(&e);
        SqlFailure {
            location: file.path.display().to_string(),
            statement_index: 0,
            statement: String::new(),
            sqlstate,
            message,
        }
    };
    client.batch_execute("BEGIN").await.map_err(infra)?;
    let mut result = run_statements(client, file).await;
    if let (Ok(()), Some(sql)) = (&result, record) {
        if let Err(e) = client.batch_execute(sql).await {
            let (sqlstate, message) = describe(&e);
            result = Err(SqlFailure {
                location: format!(
                    "{} (recording it with [migrations] record)",
                    file.path.display()
                ),
                statement_index: 0,
                statement: sql.to_string(),
                sqlstate,
                message,
            });
        }
    }
    match result {
        Ok(()) => client.batch_execute("COMMIT").await.map_err(infra),
        Err(f) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(f)
        }
    }
}

/// A migration that does not apply on a fresh database makes the pack bad.
pub(crate) fn not_applied(m: &Migration, failure: SqlFailure) -> Error {
    Error::BadPack(format!(
        "migration {} does not apply:\n{failure}",
        m.up.name()
    ))
}

/// Every up migration in order, each in its own transaction, with no bookkeeping table (what
/// db-bench needs before it seeds).
pub(crate) async fn apply_ups(client: &Client, pack: &SchemaPack) -> Result<(), Error> {
    for m in &pack.migrations {
        apply_then(client, &m.up, None)
            .await
            .map_err(|f| not_applied(m, f))?;
    }
    Ok(())
}

/// PostgreSQL's message, SQLSTATE and, when it gives a position, the line it points at, for
/// SQL that is not a pack file (a workload's seed and operations).
pub(crate) fn describe_with_line(e: &tokio_postgres::Error, sql: &str) -> String {
    let Some(db) = e.as_db_error() else {
        return e.to_string();
    };
    let mut out = format!("{} ({})", db.message(), db.code().code());
    if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) = db.position() {
        let shifted = (*pos as usize).saturating_sub(1);
        let text: String = sql.chars().take(shifted).collect();
        let line = text.matches('\n').count() + 1;
        out.push_str(&format!(" at line {line}"));
    }
    out
}
