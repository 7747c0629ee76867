//! `detect.writer_lock`: in a table with INSERT triggers, a second writer must not wait for
//! the first. Two valid rows (distinct keys, parents committed beforehand) are inserted by two
//! sessions: the first keeps its transaction open, the second is watched until it finishes
//! or the server reports it waiting for a lock — then who blocks it, on what lock and
//! relation, and the first session's statement are the evidence. Typical cause: a trigger that
//! refreshes a materialized view or updates one shared row on every insert.

use crate::conform::catalog::{Catalog, RelKind, Relation};
use crate::conform::checkexpr::Assign;
use crate::conform::outcome::{Check, Kind};
use crate::conform::rowgen::{Recipe, RowBuilder};
use crate::conform::rules::interleave::{finish, watch, Session, Wait, Watched};
use crate::conform::rules::{Context, Template};
use crate::Error;

const K: Kind = Kind::Detection;
pub(crate) const RULE: &str = "detect.writer_lock";

fn insert_triggered(rel: &Relation) -> bool {
    rel.kind == RelKind::Table
        && rel
            .triggers
            .iter()
            .any(|t| t.events.contains("insert") && t.enabled != "D")
}

pub(crate) async fn run(ctx: &Context<'_>, template: &Template) -> Result<Vec<Check>, Error> {
    let tables: Vec<&Relation> = ctx.cat.tables().filter(|r| insert_triggered(r)).collect();
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let copy = template.clone_db("lock").await?;
    let result = async {
        let mut out = Vec::new();
        for (i, rel) in tables.iter().enumerate() {
            out.push(probe(ctx.cat, rel, copy.url(), 500_000 + 10_000 * i as u64).await?);
        }
        Ok::<_, Error>(out)
    }
    .await;
    copy.drop().await;
    result
}

/// Two recipes with committed parents, or why none could be built.
async fn two_rows(
    cat: &Catalog,
    rel: &Relation,
    url: &str,
    seed: u64,
) -> Result<Result<(Recipe, Recipe), String>, Error> {
    let setup = disposable_pg::connect(url).await?;
    setup
        .batch_execute("BEGIN")
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let mut b = RowBuilder::new(cat, &setup, seed);
    let hints = Assign::new();
    let rows = match b.recipe(&rel.name, &hints).await {
        Ok(r1) => b.recipe(&rel.name, &hints).await.map(|r2| (r1, r2)),
        Err(e) => Err(e),
    };
    setup
        .batch_execute(if rows.is_ok() { "COMMIT" } else { "ROLLBACK" })
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    Ok(rows)
}

async fn probe(cat: &Catalog, rel: &Relation, url: &str, seed: u64) -> Result<Check, Error> {
    let t = rel.name.short();
    let name = format!("{RULE} {t}");
    let (r1, r2) = match two_rows(cat, rel, url, seed).await? {
        Ok(rows) => rows,
        Err(e) => {
            return Ok(Check::skip(
                K,
                name,
                format!("no valid row could be built: {e}"),
            ))
        }
    };
    let monitor = disposable_pg::connect(url).await?;
    let (a, b) = (Session::open(url).await?, Session::open(url).await?);
    let sql_a = r1.insert_sql();
    let sql_b = r2.insert_sql();
    let begin = |s: &Session| {
        let c = s.client.clone();
        async move {
            c.batch_execute("BEGIN")
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))
        }
    };
    begin(&a).await?;
    let mut first = a.start(sql_a.clone(), Vec::new(), Vec::new());
    match watch(&monitor, a.pid, &mut first).await? {
        Watched::Waiting(_) => {
            let _ = a.client.batch_execute("ROLLBACK").await;
            return Ok(Check::skip(
                K,
                name,
                "the first insert alone waits for a lock",
            ));
        }
        Watched::Finished(Err(e)) => {
            let _ = a.client.batch_execute("ROLLBACK").await;
            return Ok(Check::skip(
                K,
                name,
                format!("the first insert failed: {e}"),
            ));
        }
        Watched::Finished(Ok(_)) => {}
    }
    begin(&b).await?;
    let mut second = b.start(sql_b.clone(), Vec::new(), Vec::new());
    let watched = watch(&monitor, b.pid, &mut second).await?;
    let _ = a.client.batch_execute("ROLLBACK").await;
    let _ = finish(&mut second).await;
    let _ = b.client.batch_execute("ROLLBACK").await;
    Ok(match watched {
        Watched::Finished(Ok(_)) => Check::pass(K, name)
            .with_detail("a second insert proceeded while the first was uncommitted"),
        Watched::Finished(Err(e)) => Check::skip(K, name, format!("the second insert failed: {e}")),
        Watched::Waiting(w) => serialized(rel, &w, a.pid, (&r1, &r2)),
    })
}

/// The finding when the second insert (`rows.1`) waits for the first (`rows.0`, in the
/// transaction of backend `first_pid`): who blocks it on what, and the table's insert triggers.
fn serialized(rel: &Relation, w: &Wait, first_pid: i32, rows: (&Recipe, &Recipe)) -> Check {
    let t = rel.name.short();
    let (r1, r2) = rows;
    let names = |pid: i32| {
        if pid == first_pid {
            "the first insert's transaction".to_string()
        } else {
            format!("backend {pid}")
        }
    };
    let triggers: Vec<String> = rel
        .triggers
        .iter()
        .filter(|tr| tr.events.contains("insert"))
        .map(|tr| format!("{} ({})", tr.name, tr.function.short()))
        .collect();
    Check::finding(
        K,
        RULE,
        t.clone(),
        format!(
            "a second insert into {t} {} — writers are serialized; insert triggers: {}",
            w.describe(&names),
            triggers.join(", ")
        ),
        format!(
            "{}\n-- session 1: BEGIN;\n{};\n-- session 2 (waits until session 1 ends):\nBEGIN;\n{};",
            r1.setup_sql.iter().chain(&r2.setup_sql).map(|s| format!("{s};")).collect::<Vec<_>>().join("\n"),
            r1.insert_sql(),
            r2.insert_sql()
        ),
    )
}
