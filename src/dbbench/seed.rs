//! Populating a pack's schema for a scale: the workload's seed statements (set-based SQL with
//! generate_series, so a 100k-device load takes seconds, not hours), then ANALYZE so the
//! planner sees the real table sizes before anything is measured.

use std::collections::BTreeMap;
use std::time::Instant;

use super::workload::{substitute, Workload};
use crate::schema_pack::apply::describe_with_line;
use crate::Error;

/// What loading produced: time taken and the rows each table holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Loaded {
    pub(crate) seconds: f64,
    pub rows: BTreeMap<String, i64>,
}

pub(crate) async fn load(
    client: &tokio_postgres::Client,
    workload: &Workload,
    counts: &BTreeMap<String, u64>,
) -> Result<Loaded, Error> {
    let started = Instant::now();
    for stmt in &workload.seed.statements {
        let sql = substitute(&stmt.sql, counts);
        client.batch_execute(&sql).await.map_err(|e| {
            Error::BadInput(format!(
                "{}: seed statement failed: {}",
                stmt.at,
                describe_with_line(&e, &sql)
            ))
        })?;
    }
    client
        .batch_execute("ANALYZE")
        .await
        .map_err(|e| Error::Unavailable(format!("ANALYZE after seeding: {e}")))?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Loaded {
        seconds,
        rows: row_counts(client).await?,
    })
}

/// Exact row counts of every ordinary table and materialized view of the public schema.
pub(crate) async fn row_counts(
    client: &tokio_postgres::Client,
) -> Result<BTreeMap<String, i64>, Error> {
    let rels = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm') ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| Error::Unavailable(format!("listing tables: {e}")))?;
    let mut out = BTreeMap::new();
    for r in rels {
        let name: String = r.get(0);
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {quoted}"), &[])
            .await
            .map_err(|e| Error::Unavailable(format!("counting {name}: {e}")))?
            .get(0);
        out.insert(name, n);
    }
    Ok(out)
}
