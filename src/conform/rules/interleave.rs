//! Deterministic interleavings of concurrent sessions. A statement is started in its own
//! session's open transaction and watched until it either finishes or is seen waiting for a
//! lock (pg_stat_activity), so a probe never depends on timing: it proceeds from states the
//! server reports, and says who blocks whom, on what, with which statement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};

use crate::dbbench::params::Value;
use crate::Error;

/// One backend: a client and its server process id.
pub(crate) struct Session {
    pub(crate) client: Arc<Client>,
    pub(crate) pid: i32,
}

impl Session {
    pub(crate) async fn open(url: &str) -> Result<Session, Error> {
        let client = disposable_pg::connect(url).await?;
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| Error::Unavailable(format!("pg_backend_pid: {e}")))?
            .get(0);
        Ok(Session {
            client: Arc::new(client),
            pid,
        })
    }

    /// Starts `sql` with typed parameters; the caller watches it with [`watch`].
    /// Parameters are sent with the types of `types` (as db-bench prepares them).
    pub(crate) fn start(&self, sql: String, types: Vec<Type>, values: Vec<Value>) -> Running {
        let client = self.client.clone();
        Running(Some(tokio::spawn(async move {
            let stmt = client.prepare_typed(&sql, &types).await?;
            let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_sql()).collect();
            client.query(&stmt, &params).await
        })))
    }
}

/// A started statement; its result is taken once, by [`watch`] or [`finish`].
pub(crate) struct Running(Option<JoinHandle<Result<Vec<Row>, tokio_postgres::Error>>>);

/// What a session waits for, as the server reports it.
#[derive(Debug, Clone)]
pub(crate) struct Wait {
    pub(crate) locktype: String,
    pub(crate) mode: String,
    pub(crate) relation: String,
    pub(crate) blockers: Vec<(i32, String)>,
}

impl Wait {
    pub(crate) fn describe(&self, names: &dyn Fn(i32) -> String) -> String {
        let by: Vec<String> = self
            .blockers
            .iter()
            .map(|(pid, q)| {
                format!(
                    "{} (its last statement: {})",
                    names(*pid),
                    crate::schema_pack::apply::excerpt(q, 160)
                )
            })
            .collect();
        format!(
            "waits for a {} lock ({}{}) held by {}",
            self.mode,
            self.locktype,
            if self.relation.is_empty() {
                String::new()
            } else {
                format!(" on {}", self.relation)
            },
            by.join(", ")
        )
    }
}

pub(crate) enum Watched {
    Finished(Result<Vec<Row>, String>),
    Waiting(Wait),
}

/// Polls until the statement finishes or its backend waits on a lock.
pub(crate) async fn watch(
    monitor: &Client,
    pid: i32,
    running: &mut Running,
) -> Result<Watched, Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if running.0.as_ref().is_none_or(|h| h.is_finished()) {
            return Ok(Watched::Finished(finish(running).await));
        }
        if let Some(w) = lock_wait(monitor, pid).await? {
            return Ok(Watched::Waiting(w));
        }
        if Instant::now() > deadline {
            return Err(Error::Unavailable(format!(
                "backend {pid} neither finished nor waited on a lock within 60 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits the statement's end (no rows if its result was already taken).
pub(crate) async fn finish(running: &mut Running) -> Result<Vec<Row>, String> {
    let Some(handle) = running.0.take() else {
        return Ok(Vec::new());
    };
    match handle.await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(e)) => {
            let (code, msg) = crate::schema_pack::apply::describe(&e);
            Err(format!("{msg} (SQLSTATE {code})"))
        }
        Err(e) => Err(format!("task: {e}")),
    }
}

async fn lock_wait(monitor: &Client, pid: i32) -> Result<Option<Wait>, Error> {
    let rows = monitor
        .query(
            "SELECT l.locktype, l.mode, coalesce(l.relation::regclass::text, ''),
                    coalesce(b.pids, '{}'), coalesce(b.queries, '{}')
             FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
             LEFT JOIN LATERAL (
               SELECT array_agg(s.pid) AS pids, array_agg(coalesce(s.query, '')) AS queries
               FROM pg_stat_activity s WHERE s.pid = ANY (pg_blocking_pids(a.pid))) b ON true
             WHERE a.pid = $1 AND a.wait_event_type = 'Lock'",
            &[&pid],
        )
        .await
        .map_err(|e| Error::Unavailable(format!("reading pg_locks: {e}")))?;
    Ok(rows.first().map(|r| {
        let pids: Vec<i32> = r.get(3);
        let queries: Vec<String> = r.get(4);
        Wait {
            locktype: r.get(0),
            mode: r.get(1),
            relation: r.get(2),
            blockers: pids.into_iter().zip(queries).collect(),
        }
    }))
}
