//! What one execution of each operation costs at one scale, counted rather than timed: run
//! alone, after seeding and before the measured run, in a transaction that is rolled back
//! (so inserts, deletes and refreshes leave nothing behind), as
//! `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`. Two counts come out of each execution:
//!
//! - **rows touched**: the transaction's own table statistics (`pg_stat_get_xact_*`, read
//!   before and after) — rows read by sequential scans, index entries read, plus rows inserted,
//!   updated and deleted, in every table and materialized view, *including what triggers do*
//!   (a trigger refreshing a materialized view reads its base tables and rewrites the view);
//! - **plan blocks**: shared blocks hit or read by the plan itself (triggers excluded).
//!
//! With the plan's sequential scans, its trigger list (name, relation, time, calls) and each
//! trigger's function (does it refresh a materialized view, lock a table), this is the
//! evidence [`super::growth`] names when an operation's cost grows with the table size.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use super::params::ParamGenerator;
use super::workload::{substitute, Workload};
use crate::Error;

/// Executions per operation and scale; the median is kept.
pub(crate) const EXECUTIONS: usize = 3;

/// One operation's counted cost at one scale.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpCost {
    pub(crate) name: String,
    /// Median over the executions.
    pub(crate) rows_touched: u64,
    pub(crate) plan_blocks: u64,
    /// Rows the statement returned (or changed), median.
    pub(crate) result_rows: u64,
    /// The median execution's details.
    pub(crate) relations: Vec<RelationRows>,
    pub(crate) seq_scans: Vec<SeqScan>,
    pub(crate) triggers: Vec<TriggerTime>,
    /// Why the operation could not be explained (e.g. a statement EXPLAIN does not accept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// Rows one execution read and wrote in one table or materialized view.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct RelationRows {
    pub(crate) relation: String,
    pub(crate) materialized_view: bool,
    pub(crate) seq_read: u64,
    pub(crate) index_read: u64,
    pub(crate) written: u64,
}

impl RelationRows {
    pub(crate) fn touched(&self) -> u64 {
        self.seq_read + self.index_read + self.written
    }
}

/// A `Seq Scan` node of the plan: rows it went through (returned + removed by its filter,
/// times loops) and its filter.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct SeqScan {
    pub(crate) relation: String,
    pub(crate) rows_scanned: u64,
    pub(crate) filter: String,
}

/// A trigger from EXPLAIN ANALYZE's trigger list, with what its function does.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct TriggerTime {
    pub(crate) name: String,
    pub(crate) relation: String,
    pub(crate) time_ms: f64,
    pub(crate) calls: u64,
    /// The trigger's function; empty for internal (foreign key) triggers.
    pub(crate) function: String,
    /// Materialized views its function refreshes, tables it locks (read from its source).
    pub(crate) refreshes: Vec<String>,
    pub(crate) locks: Vec<String>,
}

/// Every operation of `workload` executed [`EXECUTIONS`] times on `client` (the scale's
/// database, seeded), each in a rolled-back transaction.
pub(crate) async fn measure(
    client: &Client,
    workload: &Workload,
    counts: &BTreeMap<String, u64>,
    rng_seed: u64,
) -> Result<Vec<OpCost>, Error> {
    use rand::SeedableRng;
    let functions = trigger_functions(client).await?;
    let mut generator = ParamGenerator::new(
        rand_chacha::ChaCha8Rng::seed_from_u64(rng_seed),
        counts.clone(),
    );
    let mut out = Vec::new();
    for op in &workload.operations {
        let sql = format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}",
            substitute(&op.sql, counts)
        );
        let types: Vec<_> = op.params.iter().map(|p| p.pg_type()).collect();
        let mut runs = Vec::new();
        let mut error = None;
        for _ in 0..EXECUTIONS {
            let values = generator.values(&op.params);
            match execute(client, &sql, &types, &values).await {
                Ok(run) => runs.push(run),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let mut cost = median(runs);
        cost.name = op.name.clone();
        cost.error = error;
        for t in &mut cost.triggers {
            if let Some((f, refreshes, locks)) =
                functions.get(&(t.name.clone(), t.relation.clone()))
            {
                (t.function, t.refreshes, t.locks) = (f.clone(), refreshes.clone(), locks.clone());
            }
        }
        out.push(cost);
    }
    Ok(out)
}

/// The execution with the median rows touched (its details kept), with the median of each
/// count.
fn median(mut runs: Vec<OpCost>) -> OpCost {
    if runs.is_empty() {
        return OpCost::default();
    }
    let mid = |mut v: Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let blocks = mid(runs.iter().map(|r| r.plan_blocks).collect());
    let rows = mid(runs.iter().map(|r| r.result_rows).collect());
    runs.sort_by_key(|r| r.rows_touched);
    let mut chosen = runs.swap_remove(runs.len() / 2);
    chosen.plan_blocks = blocks;
    chosen.result_rows = rows;
    chosen
}

/// Per table and materialized view: rows returned by sequential scans, entries returned by
/// its indexes (index, index-only and bitmap scans alike), rows written — the same counters
/// as `pg_stat_xact_user_tables`, with index entries rather than heap fetches so that an
/// index-only scan over a whole table counts too.
const XACT_ROWS: &str = "SELECT c.oid::regclass::text, c.relkind = 'm',
        pg_stat_get_xact_tuples_returned(c.oid),
        (SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0)::int8
           FROM pg_index i WHERE i.indrelid = c.oid),
        pg_stat_get_xact_tuples_inserted(c.oid) + pg_stat_get_xact_tuples_updated(c.oid)
          + pg_stat_get_xact_tuples_deleted(c.oid)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname !~ '^pg_toast'";

async fn execute(
    client: &Client,
    sql: &str,
    types: &[tokio_postgres::types::Type],
    values: &[super::params::Value],
) -> Result<OpCost, String> {
    let db = |e: tokio_postgres::Error| crate::schema_pack::apply::describe_with_line(&e, sql);
    client.batch_execute("BEGIN").await.map_err(db)?;
    let result = async {
        // The transaction's statistics include earlier, not yet flushed transactions: the
        // difference across the statement is its own.
        let before = xact_rows(client).await.map_err(db)?;
        let stmt = client.prepare_typed(sql, types).await.map_err(db)?;
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            values.iter().map(|v| v.as_sql()).collect();
        let row = client.query_one(&stmt, &params).await.map_err(db)?;
        let after = xact_rows(client).await.map_err(db)?;
        let plan: serde_json::Value = match row.try_get::<_, serde_json::Value>(0) {
            Ok(v) => v,
            Err(_) => serde_json::from_str(&row.get::<_, String>(0)).map_err(|e| e.to_string())?,
        };
        Ok::<_, String>(from_plan(&plan, rows_delta(&before, &after)))
    }
    .await;
    let _ = client.batch_execute("ROLLBACK").await;
    result
}

async fn xact_rows(
    client: &Client,
) -> Result<BTreeMap<String, RelationRows>, tokio_postgres::Error> {
    let rows = client.query(XACT_ROWS, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let rel: String = r.get(0);
            let n = |i: usize| r.get::<_, i64>(i).max(0) as u64;
            (
                rel.clone(),
                RelationRows {
                    relation: rel,
                    materialized_view: r.get(1),
                    seq_read: n(2),
                    index_read: n(3),
                    written: n(4),
                },
            )
        })
        .collect())
}

fn rows_delta(
    before: &BTreeMap<String, RelationRows>,
    after: &BTreeMap<String, RelationRows>,
) -> Vec<RelationRows> {
    let mut out: Vec<RelationRows> = after
        .values()
        .map(|a| {
            let b = before.get(&a.relation);
            let d = |f: fn(&RelationRows) -> u64| f(a).saturating_sub(b.map(f).unwrap_or(0));
            RelationRows {
                relation: a.relation.clone(),
                materialized_view: a.materialized_view,
                seq_read: d(|r| r.seq_read),
                index_read: d(|r| r.index_read),
                written: d(|r| r.written),
            }
        })
        .filter(|r| r.touched() > 0)
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.touched()));
    out
}

/// Reads EXPLAIN's JSON: the root's blocks, result rows, sequential scans and triggers.
pub(crate) fn from_plan(explain: &serde_json::Value, relations: Vec<RelationRows>) -> OpCost {
    let top = explain.get(0).unwrap_or(explain);
    let plan = &top["Plan"];
    let n = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let mut seq_scans = Vec::new();
    walk(plan, &mut seq_scans);
    let triggers = top["Triggers"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| TriggerTime {
                    name: t["Trigger Name"].as_str().unwrap_or("").to_string(),
                    relation: t["Relation"].as_str().unwrap_or("").to_string(),
                    time_ms: n(t, "Time"),
                    calls: n(t, "Calls") as u64,
                    function: String::new(),
                    refreshes: Vec::new(),
                    locks: Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    // A ModifyTable root returns no rows unless RETURNING; its input's rows are the changes.
    let result_rows = match plan["Node Type"].as_str() {
        Some("ModifyTable") if n(plan, "Actual Rows") == 0.0 => plan["Plans"]
            .get(0)
            .map(|c| n(c, "Actual Rows") * n(c, "Actual Loops").max(1.0))
            .unwrap_or(0.0),
        _ => n(plan, "Actual Rows") * n(plan, "Actual Loops").max(1.0),
    };
    OpCost {
        name: String::new(),
        rows_touched: relations.iter().map(RelationRows::touched).sum(),
        plan_blocks: (n(plan, "Shared Hit Blocks") + n(plan, "Shared Read Blocks")) as u64,
        result_rows: result_rows as u64,
        relations,
        seq_scans,
        triggers,
        error: None,
    }
}

fn walk(node: &serde_json::Value, out: &mut Vec<SeqScan>) {
    if node["Node Type"].as_str() == Some("Seq Scan") {
        let n = |k: &str| node[k].as_f64().unwrap_or(0.0);
        out.push(SeqScan {
            relation: node["Relation Name"].as_str().unwrap_or("").to_string(),
            rows_scanned: ((n("Actual Rows") + n("Rows Removed by Filter"))
                * n("Actual Loops").max(1.0)) as u64,
            filter: node["Filter"].as_str().unwrap_or("").to_string(),
        });
    }
    if let Some(children) = node["Plans"].as_array() {
        for c in children {
            walk(c, out);
        }
    }
}

/// (trigger, table) → (function, materialized views it refreshes, tables it locks).
type Functions = BTreeMap<(String, String), (String, Vec<String>, Vec<String>)>;

async fn trigger_functions(client: &Client) -> Result<Functions, Error> {
    let rows = client
        .query(
            "SELECT t.tgname, c.relname, p.oid::regprocedure::text, coalesce(p.prosrc, '')
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal",
            &[],
        )
        .await
        .map_err(|e| Error::Unavailable(format!("reading triggers: {e}")))?;
    Ok(rows
        .iter()
        .map(|r| {
            let src: String = r.get(3);
            (
                (r.get(0), r.get(1)),
                (
                    r.get(2),
                    objects_after(&src, &["refresh", "materialized", "view"]),
                    objects_after(&src, &["lock"]),
                ),
            )
        })
        .collect())
}

/// The object named after the keyword sequence `words` in SQL `src` (case-insensitive;
/// `CONCURRENTLY`, `TABLE` and `ONLY` skipped), each once.
pub(crate) fn objects_after(src: &str, words: &[&str]) -> Vec<String> {
    let tokens: Vec<String> = src
        .split(|c: char| c.is_whitespace() || c == ';' || c == '(' || c == ')' || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| t.to_string())
        .collect();
    let mut out: Vec<String> = Vec::new();
    for i in 0..tokens.len() {
        let at = |k: usize| tokens.get(i + k).map(|t| t.to_ascii_lowercase());
        if !(0..words.len()).all(|k| at(k).as_deref() == Some(words[k])) {
            continue;
        }
        let name = tokens[i + words.len()..].iter().find(|t| {
            !matches!(
                t.to_ascii_lowercase().as_str(),
                "concurrently" | "table" | "only"
            )
        });
        if let Some(name) = name {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_named_after_keywords_are_found_in_function_source() {
        let src = "BEGIN\n  LOCK TABLE counters IN EXCLUSIVE MODE;\n  REFRESH MATERIALIZED VIEW CONCURRENTLY public.bundles;\n  RETURN NEW; END";
        assert_eq!(
            objects_after(src, &["refresh", "materialized", "view"]),
            ["public.bundles"]
        );
        assert_eq!(objects_after(src, &["lock"]), ["counters"]);
        assert!(objects_after("SELECT 1", &["lock"]).is_empty());
    }

    #[test]
    fn a_plan_gives_its_seq_scans_triggers_and_blocks() {
        let plan = serde_json::json!([{
            "Plan": { "Node Type": "ModifyTable", "Actual Rows": 0, "Actual Loops": 1,
                      "Shared Hit Blocks": 3, "Shared Read Blocks": 1,
                      "Plans": [ { "Node Type": "Seq Scan", "Relation Name": "big",
                                   "Actual Rows": 1, "Actual Loops": 1,
                                   "Rows Removed by Filter": 4999, "Filter": "(v = 7)" } ] },
            "Triggers": [ { "Trigger Name": "t", "Relation": "ev", "Time": 2.5, "Calls": 1 } ]
        }]);
        let rel = RelationRows {
            relation: "big".into(),
            materialized_view: false,
            seq_read: 5000,
            index_read: 0,
            written: 1,
        };
        let c = from_plan(&plan, vec![rel]);
        assert_eq!((c.rows_touched, c.plan_blocks, c.result_rows), (5001, 4, 1));
        assert_eq!(c.seq_scans[0].rows_scanned, 5000);
        assert_eq!(c.seq_scans[0].filter, "(v = 7)");
        assert_eq!(c.triggers[0].name, "t");
        assert_eq!(c.triggers[0].time_ms, 2.5);
    }
}
