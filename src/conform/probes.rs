//! Generic constraint probes (docs/conformance.md section 4): from the catalog alone, build a
//! valid row per table, then change one thing and check PostgreSQL rejects it with the right
//! SQLSTATE. Every probe runs in its own transaction, rolled back.

use tokio_postgres::Client;

use crate::conform::catalog::{
    quote_ident, quote_literal, Catalog, Constraint, QualName, Relation,
};
use crate::conform::checkexpr::{self, Assign, Val};
use crate::conform::outcome::{Check, Kind};
use crate::conform::rowgen::{literal_or_null, render, DbFailure, Recipe, RowBuilder};

const K: Kind = Kind::Probes;

/// Runs every probe on every table except those in `exclude`.
pub(crate) async fn run(client: &Client, cat: &Catalog, exclude: &[QualName]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut seed = 1_000u64;
    for rel in cat.tables() {
        if exclude.contains(&rel.name) || rel.kind != crate::conform::catalog::RelKind::Table {
            continue;
        }
        seed += 10_000;
        out.extend(probe_table(client, cat, rel, seed).await);
    }
    out
}

/// Runs `f` in a transaction that is always rolled back, with constraints checked at once.
async fn isolated<F, Fut>(client: &Client, f: F) -> Result<Check, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Check, String>>,
{
    client
        .batch_execute("BEGIN; SET CONSTRAINTS ALL IMMEDIATE")
        .await
        .map_err(|e| e.to_string())?;
    let r = f().await;
    let _ = client.batch_execute("ROLLBACK").await;
    r
}

async fn probe_table(client: &Client, cat: &Catalog, rel: &Relation, seed: u64) -> Vec<Check> {
    let t = rel.name.short();
    // Can a valid row be built at all? If not, say so once and skip this table's probes.
    let base_ok = isolated(client, || async {
        let mut b = RowBuilder::new(cat, client, seed);
        b.recipe(&rel.name, &Assign::new())
            .await
            .map(|_| Check::pass(K, format!("valid row for {t}")))
    })
    .await;
    if let Err(e) = base_ok {
        return vec![Check::skip(
            K,
            format!("probes of {t}"),
            format!("no valid row could be built: {e}"),
        )];
    }
    let mut seeds = Seeds(seed);
    let mut out = unique_probes(client, cat, rel, &mut seeds).await;
    for fk in rel.constraints.iter().filter(|c| c.kind == 'f') {
        out.push(orphan_probe(client, cat, rel, fk, seeds.next()).await);
        out.push(delete_rule_probe(client, cat, rel, fk, seeds.next()).await);
    }
    for col in rel
        .columns
        .iter()
        .filter(|c| c.not_null && c.generated.is_empty())
    {
        out.push(not_null_probe(client, cat, rel, &col.name, seeds.next()).await);
    }
    for con in rel.constraints.iter().filter(|c| c.kind == 'c') {
        out.extend(check_probe(client, cat, rel, con, seeds.next()).await);
    }
    out
}

/// One row-builder seed per probe of a table, so no two probes build the same values.
struct Seeds(u64);

impl Seeds {
    fn next(&mut self) -> u64 {
        self.0 += 100;
        self.0
    }
}

/// The primary key and unique constraints, then the unique indexes that back no constraint.
async fn unique_probes(
    client: &Client,
    cat: &Catalog,
    rel: &Relation,
    seeds: &mut Seeds,
) -> Vec<Check> {
    let mut out = Vec::new();
    for con in rel
        .constraints
        .iter()
        .filter(|c| c.kind == 'p' || c.kind == 'u')
    {
        let (rule, what) = if con.kind == 'p' {
            ("probe.primary_key", "primary key")
        } else {
            ("probe.unique", "unique")
        };
        out.push(
            unique_probe(
                client,
                cat,
                rel,
                rule,
                what,
                &con.name,
                &con.columns,
                &con.def,
                None,
                seeds.next(),
            )
            .await,
        );
    }
    for idx in rel.indexes.iter().filter(|i| i.unique && !i.primary) {
        if rel.constraints.iter().any(|c| c.name == idx.name) {
            continue; // already probed as its constraint
        }
        if idx.keys.iter().any(|k| k.column.is_none()) {
            out.push(Check::skip(
                K,
                format!("probe.unique {}.{}", rel.name.short(), idx.name),
                "expression index: no duplicate derivable",
            ));
            continue;
        }
        out.push(
            unique_probe(
                client,
                cat,
                rel,
                "probe.unique",
                "unique index",
                &idx.name,
                &idx.columns,
                &idx.def,
                idx.predicate.as_deref(),
                seeds.next(),
            )
            .await,
        );
    }
    out
}

fn flatten(name: String, r: Result<Check, String>) -> Check {
    r.unwrap_or_else(|e| Check::skip(K, name, e))
}

#[allow(clippy::too_many_arguments)]
async fn unique_probe(
    client: &Client,
    cat: &Catalog,
    rel: &Relation,
    rule: &str,
    what: &str,
    name: &str,
    columns: &[String],
    def: &str,
    predicate: Option<&str>,
    seed: u64,
) -> Check {
    let object = format!("{}.{name}", rel.name.short());
    let title = format!("{rule} {object}");
    let r = isolated(client, || async {
        let mut b = RowBuilder::new(cat, client, seed);
        // Both rows must be inside a partial index's predicate, and non-NULL on its columns.
        let mut hints: Assign = columns.iter().map(|c| (c.clone(), Val::Any)).collect();
        if let Some(p) = predicate.and_then(checkexpr::parse) {
            if let Some(first) = checkexpr::satisfactions(&p).into_iter().next() {
                hints.extend(first);
            }
        }
        let a = b.recipe(&rel.name, &hints).await?;
        let row_a = b
            .insert(&a)
            .await
            .map_err(|e| format!("first row refused: {e}"))?;
        let base = b.recipe(&rel.name, &hints).await?;
        let mut dup = base.clone();
        for c in columns {
            let col = rel.column(c).ok_or_else(|| format!("no column {c}"))?;
            dup = dup.with(
                rel,
                c,
                literal_or_null(row_a.get(c).cloned().flatten().as_deref(), col),
            );
        }
        let shown = format!("{};\n{}", a.shown(), dup.insert_sql());
        Ok(expect_rejection(
            &mut b,
            &dup,
            &["23505"],
            &title,
            &object,
            rule,
            &format!("{what} {def}"),
            &shown,
        )
        .await)
    })
    .await;
    flatten(title, r)
}

/// Inserts `recipe` and judges: rejected with one of `codes` passes; accepted is a finding.
#[allow(clippy::too_many_arguments)]
async fn expect_rejection(
    b: &mut RowBuilder<'_>,
    recipe: &Recipe,
    codes: &[&str],
    title: &str,
    object: &str,
    rule: &str,
    constraint_text: &str,
    shown: &str,
) -> Check {
    match b.exec(&recipe.insert_sql()).await {
        Err(e) if codes.contains(&e.sqlstate.as_str()) => Check::pass(K, title)
            .with_detail(format!("rejected: {} (SQLSTATE {})", e.message, e.sqlstate)),
        Err(e) => Check::skip(
            K,
            title,
            format!("inconclusive: refused for another reason: {e}"),
        ),
        Ok(_) => Check::finding(
            K,
            rule,
            object,
            format!(
                "accepted a row it should reject ({constraint_text}); expected SQLSTATE {}",
                codes.join("/")
            ),
            shown,
        ),
    }
}

async fn orphan_probe(
    client: &Client,
    cat: &Catalog,
    rel: &Relation,
    fk: &Constraint,
    seed: u64,
) -> Check {
    let object = format!("{}.{}", rel.name.short(), fk.name);
    let title = format!("probe.foreign_key {object}");
    let r = isolated(client, || async {
        let Some(parent) = fk.ref_table.as_ref().and_then(|p| cat.relation(p)) else {
            return Err("referenced table not in the pack".to_string());
        };
        let mut b = RowBuilder::new(cat, client, seed);
        let hints: Assign = fk.columns.iter().map(|c| (c.clone(), Val::Any)).collect();
        let base = b.recipe(&rel.name, &hints).await?;
        // Values no parent row has: generated far from anything the builder made.
        let mut orphan = base.clone();
        let mut conds = Vec::new();
        for (i, (c, rc)) in fk.columns.iter().zip(&fk.ref_columns).enumerate() {
            let col = rel.column(c).ok_or_else(|| format!("no column {c}"))?;
            let pcol = parent.column(rc).ok_or_else(|| format!("no column {rc}"))?;
            let v = render(cat, pcol, &Val::Any, 900_000_000 + seed + i as u64);
            orphan = orphan.with(rel, c, format!("({v})::{}", col.type_name));
            conds.push(format!("{} = {v}", quote_ident(rc)));
        }
        let exists = b
            .exec(&format!(
                "SELECT count(*) AS n FROM {} WHERE {}",
                parent.name.sql(),
                conds.join(" AND ")
            ))
            .await
            .map_err(|e| e.to_string())?;
        if exists
            .first()
            .and_then(|r| r.get("n").cloned().flatten())
            .as_deref()
            != Some("0")
        {
            return Err("could not find a value without a parent row".into());
        }
        let shown = orphan.shown();
        Ok(expect_rejection(
            &mut b,
            &orphan,
            &["23503"],
            &title,
            &object,
            "probe.foreign_key",
            &fk.def,
            &shown,
        )
        .await)
    })
    .await;
    flatten(title, r)
}

async fn count(b: &mut RowBuilder<'_>, sql: &str) -> Result<i64, String> {
    let rows = b.exec(sql).await.map_err(|e| format!("{sql}: {e}"))?;
    rows.first()
        .and_then(|r| r.values().next().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{sql}: no count"))
}

async fn delete_rule_probe(
    client: &Client,
    cat: &Catalog,
    rel: &Relation,
    fk: &Constraint,
    seed: u64,
) -> Check {
    let object = format!("{}.{}", rel.name.short(), fk.name);
    let title = format!("probe.delete_rule {object}");
    let r = isolated(client, || async {
        let mut b = RowBuilder::new(cat, client, seed);
        let hints: Assign = fk.columns.iter().map(|c| (c.clone(), Val::Any)).collect();
        let child = b.recipe(&rel.name, &hints).await?;
        let Some((parent, vals)) = child.parents.get(&fk.name).cloned() else {
            return Err("the valid row has no parent for this key".to_string());
        };
        b.insert(&child)
            .await
            .map_err(|e| format!("child row refused: {e}"))?;
        let (delete, observed) = delete_parent(&mut b, rel, fk, &parent, &vals).await?;
        let rule = match fk.on_delete {
            'c' => "CASCADE",
            'n' => "SET NULL",
            'd' => "SET DEFAULT",
            'r' => "RESTRICT",
            _ => "NO ACTION",
        };
        let ok = match fk.on_delete {
            'c' => observed == "child deleted",
            'n' => observed == "child's key set to NULL",
            'd' => observed.starts_with("child's key set"),
            _ => observed == "delete refused (23503)",
        };
        let shown = format!("{};\n{delete};", child.shown());
        Ok(if ok {
            Check::pass(K, &title).with_detail(format!("ON DELETE {rule}: {observed}"))
        } else {
            Check::fail(
                K,
                &title,
                format!("declared ON DELETE {rule}, observed: {observed}"),
            )
            .with_sql(shown)
        })
    })
    .await;
    flatten(title, r)
}

/// Deletes the `parent` row (its key columns and values in `vals`) of the child row just
/// inserted into `rel`, and says what happened to the child, counted before and after.
/// Returns the DELETE statement and the observation.
async fn delete_parent(
    b: &mut RowBuilder<'_>,
    rel: &Relation,
    fk: &Constraint,
    parent: &QualName,
    vals: &[(String, Option<String>)],
) -> Result<(String, String), String> {
    // `column` equals the parent's value, compared as text (NULL stays NULL).
    let matches = |c: &str, v: &Option<String>| match v {
        Some(v) => format!("{}::text = {}", quote_ident(c), quote_literal(v)),
        None => format!("{} IS NULL", quote_ident(c)),
    };
    let pcond: Vec<String> = vals.iter().map(|(c, v)| matches(c, v)).collect();
    let ccond: Vec<String> = fk
        .columns
        .iter()
        .zip(vals)
        .map(|(c, (_, v))| matches(c, v))
        .collect();
    let nulls: Vec<String> = fk
        .columns
        .iter()
        .map(|c| format!("{} IS NULL", quote_ident(c)))
        .collect();
    let t = rel.name.sql();
    let all = format!("SELECT count(*) FROM {t}");
    let null_keys = format!("SELECT count(*) FROM {t} WHERE {}", nulls.join(" AND "));
    let total_before = count(b, &all).await?;
    let null_before = count(b, &null_keys).await?;
    let delete = format!("DELETE FROM {} WHERE {}", parent.sql(), pcond.join(" AND "));
    let deleted = b.exec(&delete).await;
    let refs_after = count(
        b,
        &format!("SELECT count(*) FROM {t} WHERE {}", ccond.join(" AND ")),
    )
    .await?;
    let total_after = count(b, &all).await?;
    let null_after = count(b, &null_keys).await?;
    // With a self-reference the parent row is itself in this table (with a NULL key).
    let own = i64::from(*parent == rel.name);
    let observed = match &deleted {
        Err(e) if e.sqlstate == "23503" => "delete refused (23503)".to_string(),
        Err(e) => format!("delete failed: {e}"),
        Ok(_) if refs_after == 0 && total_after == total_before - 1 - own => {
            "child deleted".to_string()
        }
        Ok(_)
            if refs_after == 0
                && total_after == total_before - own
                && null_after == null_before + 1 - own =>
        {
            "child's key set to NULL".to_string()
        }
        Ok(_) if refs_after == 0 && total_after == total_before - own => {
            "child's key set to another value".to_string()
        }
        Ok(_) => format!("parent deleted, child still references it ({refs_after} rows)"),
    };
    Ok((delete, observed))
}

async fn not_null_probe(
    client: &Client,
    cat: &Catalog,
    rel: &Relation,
    column: &str,
    seed: u64,
) -> Check {
    let object = format!("{}.{column}", rel.name.short());
    let title = format!("probe.not_null {object}");
    let r = isolated(client, || async {
        let mut b = RowBuilder::new(cat, client, seed);
        let base = b.recipe(&rel.name, &Assign::new()).await?;
        let bad = base.with(rel, column, "NULL".into());
        let shown = bad.shown();
        match b.exec(&bad.insert_sql()).await {
            Err(e) if e.sqlstate == "23502" => Ok(Check::pass(K, &title)
                .with_detail(format!("rejected: {} (SQLSTATE 23502)", e.message))),
            Err(e) => Ok(Check::skip(
                K,
                &title,
                format!("inconclusive: refused for another reason: {e}"),
            )),
            Ok(rows) => {
                let stored = rows.first().and_then(|r| r.get(column).cloned().flatten());
                Ok(match stored {
                    Some(v) => Check::pass(K, &title)
                        .with_detail(format!("a trigger replaced the NULL with {v:?}")),
                    None => Check::finding(
                        K,
                        "probe.not_null",
                        &object,
                        "NULL accepted in a NOT NULL column",
                        shown,
                    ),
                })
            }
        }
    })
    .await;
    flatten(title, r)
}

/// A value written as `column = value` for messages.
fn describe_assign(cat: &Catalog, rel: &Relation, a: &Assign, n: u64) -> Vec<(String, String)> {
    a.iter()
        .filter_map(|(c, v)| rel.column(c).map(|col| (c.clone(), render(cat, col, v, n))))
        .collect()
}

async fn check_probe(
    client: &Client,
    cat: &Catalog,
    rel: &Relation,
    con: &Constraint,
    seed: u64,
) -> Vec<Check> {
    let object = format!("{}.{}", rel.name.short(), con.name);
    let title = format!("probe.check {object}");
    let Some(expr) = con.check_expr.as_deref().and_then(checkexpr::parse) else {
        return vec![Check::skip(
            K,
            title,
            format!("expression not readable by the probe: {}", con.def),
        )];
    };
    let alternatives: Vec<Assign> = checkexpr::violations(&expr)
        .into_iter()
        .filter(|a| a.keys().all(|c| rel.column(c).is_some()))
        .take(4)
        .collect();
    if alternatives.is_empty() {
        return vec![Check::skip(
            K,
            title,
            format!("no violating value derivable from {}", con.def),
        )];
    }
    let mut passes = Vec::new();
    for (k, alt) in alternatives.iter().enumerate() {
        let s = seed + k as u64 * 7;
        let r = isolated(client, || violate(client, cat, rel, con, alt, s)).await;
        let c = flatten(title.clone(), r);
        if c.status.is_bad() {
            return vec![c];
        }
        passes.push(c);
    }
    // One line per constraint: the first decisive result.
    let decisive = passes
        .iter()
        .position(|c| c.status == crate::conform::outcome::Status::Pass)
        .unwrap_or(0);
    vec![passes.swap_remove(decisive)]
}

/// Inserts a valid row changed by `alt`, which violates `con`: rejected by `con` (or by
/// another rule, which still rejects the value) passes; accepted is a finding.
async fn violate(
    client: &Client,
    cat: &Catalog,
    rel: &Relation,
    con: &Constraint,
    alt: &Assign,
    seed: u64,
) -> Result<Check, String> {
    let object = format!("{}.{}", rel.name.short(), con.name);
    let title = format!("probe.check {object}");
    let mut b = RowBuilder::new(cat, client, seed);
    let base = b.recipe(&rel.name, &Assign::new()).await?;
    let n = b.next_n();
    let assigned = describe_assign(cat, rel, alt, n);
    let mut bad = base.clone();
    for (c, v) in &assigned {
        bad = bad.with(rel, c, v.clone());
    }
    let shown = bad.shown();
    let values = assigned
        .iter()
        .map(|(c, v)| format!("{c} = {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(match b.exec(&bad.insert_sql()).await {
        Err(e) if e.sqlstate == "23514" && e.constraint.as_deref() == Some(&con.name) => {
            Check::pass(K, &title).with_detail(format!("rejected {values}"))
        }
        Err(e)
            if e.sqlstate.starts_with("23") || e.sqlstate == "22001" || e.sqlstate == "22003" =>
        {
            Check::pass(K, &title).with_detail(format!(
                "{values} rejected by another rule: {}",
                failure(&e)
            ))
        }
        Err(e) => Check::skip(K, &title, format!("inconclusive for {values}: {e}")),
        Ok(_) => Check::finding(
            K,
            "probe.check",
            &object,
            format!(
                "{} accepted {values}, a value it was evidently written to reject",
                con.def
            ),
            shown,
        ),
    })
}

fn failure(e: &DbFailure) -> String {
    match &e.constraint {
        Some(c) => format!("{} [{c}]", e),
        None => e.to_string(),
    }
}
