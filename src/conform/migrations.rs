//! Migration checks (docs/conformance.md section 2): apply in order, apply again, roll back
//! and re-apply with catalog snapshots compared, and data preservation with seeded rows.

use std::collections::BTreeMap;

use serde_spanned::Spanned;
use tokio_postgres::Client;

use crate::conform::behaviour;
use crate::conform::catalog::{diff, quote_ident, quote_literal, Catalog, Difference, QualName};
use crate::conform::checkexpr::Assign;
use crate::conform::expect::{self, Expect, Seed};
use crate::conform::outcome::{Check, Kind};
use crate::conform::rowgen::{is_constant, RowBuilder};
use crate::schema_pack::apply::{run_statements, SqlFailure};
use crate::schema_pack::{Migration, SchemaPack, SqlFile};
use crate::Error;

/// Table names a migrations table is looked for under, in order, when none is declared.
pub(crate) const MIGRATIONS_TABLES: &[&str] = &[
    "schema_migrations",
    "schema_version",
    "migrations",
    "_migrations",
    "__migrations",
];

/// The pack's migrations table, if it has one: (table, version column).
pub(crate) fn migrations_table(cat: &Catalog, expect: &Expect) -> Option<(QualName, String)> {
    let declared = expect.migrations.as_ref();
    let column = declared
        .and_then(|m| m.version_column.clone())
        .unwrap_or_else(|| "version".into());
    let name = match declared.and_then(|m| m.table.clone()) {
        Some(t) => {
            let (s, n) = expect::qualify(&t);
            QualName::new(&s, &n)
        }
        None => MIGRATIONS_TABLES
            .iter()
            .map(|t| QualName::new("public", t))
            .find(|q| cat.relation(q).is_some_and(|r| r.kind.is_table()))?,
    };
    let rel = cat.relation(&name)?;
    rel.column(&column)?;
    Some((name, column))
}

/// The `[migrations] record` SQL for `m`, placeholders filled.
fn record_sql(m: &Migration, expect: &Expect) -> Option<String> {
    let template = expect.migrations.as_ref()?.record.as_ref()?;
    Some(
        template
            .replace("{file}", &quote_literal(&m.up.name()))
            .replace("{stem}", &quote_literal(&m.stem))
            .replace("{number}", &quote_literal(&m.number.to_string()))
            .replace("{digits}", &quote_literal(&m.digits))
            .replace("{sql}", &quote_literal(&m.up.source)),
    )
}

/// Runs the `[migrations] setup` SQL, if any (before the first migration).
pub(crate) async fn setup(client: &Client, expect: &Expect) -> Result<(), Error> {
    if let Some(sql) = expect.migrations.as_ref().and_then(|m| m.setup.as_ref()) {
        client.batch_execute(sql).await.map_err(|e| {
            Error::BadPack(format!(
                "{}: [migrations] setup fails: {}",
                expect.path,
                crate::schema_pack::apply::describe(&e).1
            ))
        })?;
    }
    Ok(())
}

/// Applies `m` as the pack's runner would: in one transaction, recorded if `record` is set.
pub(crate) async fn apply_migration(
    client: &Client,
    m: &Migration,
    expect: &Expect,
) -> Result<(), SqlFailure> {
    crate::schema_pack::apply::apply_then(client, &m.up, record_sql(m, expect).as_deref()).await
}

fn db_err(what: &str, e: tokio_postgres::Error) -> String {
    format!("{what}: {}", crate::schema_pack::apply::describe(&e).1)
}

/// Row count of every table.
pub(crate) async fn row_counts(
    client: &Client,
    cat: &Catalog,
) -> Result<BTreeMap<QualName, i64>, String> {
    let mut out = BTreeMap::new();
    for rel in cat.tables() {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {}", rel.name.sql()), &[])
            .await
            .map_err(|e| db_err(&format!("counting {}", rel.name), e))?;
        out.insert(rel.name.clone(), row.get::<_, i64>(0));
    }
    Ok(out)
}

fn bad_pack(m: &Migration, f: &SqlFailure) -> Error {
    Error::BadPack(format!(
        "migration {} does not apply on a fresh database:\n{f}",
        m.up.name()
    ))
}

/// Database A: apply each migration, apply it again, roll it back and re-apply it.
/// An up migration that fails here is a bad pack (exit 2).
pub(crate) async fn check_sequence(
    client: &Client,
    pack: &SchemaPack,
    expect: &Expect,
) -> Result<Vec<Check>, Error> {
    let k = Kind::Migrations;
    let mut out = Vec::new();
    setup(client, expect).await?;
    let mut before = Catalog::read(client).await.map_err(Error::Unavailable)?;
    for m in &pack.migrations {
        apply_migration(client, m, expect)
            .await
            .map_err(|f| bad_pack(m, &f))?;
        out.push(Check::pass(k, format!("apply {}", m.up.name())));
        let after = Catalog::read(client).await.map_err(Error::Unavailable)?;

        out.push(apply_again(client, m, &after, expect).await);

        match &m.down {
            Some(down) => out.extend(check_rollback(client, m, down, &before, &after).await?),
            None => out.push(Check::skip(
                k,
                format!("rollback of {}", m.up.name()),
                "no down migration",
            )),
        }
        before = after;
    }
    Ok(out)
}

/// Down, snapshot, up again, snapshot: all in one transaction rolled back, so the database
/// stays as after `m` whatever happens. `before` and `after` are the snapshots around `m`.
async fn check_rollback(
    client: &Client,
    m: &Migration,
    down: &SqlFile,
    before: &Catalog,
    after: &Catalog,
) -> Result<Vec<Check>, Error> {
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let out = match rollback_restores(client, m, down, before).await {
        // The re-apply is judged only once the rollback ran and its result was seen.
        Ok(verdict) => vec![verdict, reapply_matches(client, m, after).await],
        Err(failure) => vec![failure],
    };
    let _ = client.batch_execute("ROLLBACK").await;
    Ok(out)
}

/// Runs `down` and compares the catalog with `before`: `Ok` with the verdict, or `Err` with a
/// failure when the rollback could not run or the catalog could not be read.
async fn rollback_restores(
    client: &Client,
    m: &Migration,
    down: &SqlFile,
    before: &Catalog,
) -> Result<Check, Check> {
    let k = Kind::Migrations;
    let title = format!("rollback {}", down.name());
    if let Err(f) = run_statements(client, down).await {
        return Err(Check::fail(k, title, format!("the rollback fails: {f}")));
    }
    let snap = Catalog::read(client)
        .await
        .map_err(|e| Check::fail(k, &title, e))?;
    let d = diff(before, &snap);
    Ok(Check::verdict(
        k,
        title,
        d.is_empty(),
        format!(
            "the catalog differs from before {}: {}",
            m.up.name(),
            differences(&d)
        ),
    ))
}

/// Runs `m` again after its rollback and compares the catalog with `after` its first apply.
async fn reapply_matches(client: &Client, m: &Migration, after: &Catalog) -> Check {
    let k = Kind::Migrations;
    let title = format!("re-apply {} after its rollback", m.up.name());
    if let Err(f) = run_statements(client, &m.up).await {
        return Check::fail(k, title, format!("{f}"));
    }
    match Catalog::read(client).await {
        Err(e) => Check::fail(k, title, e),
        Ok(snap) => {
            let d = diff(after, &snap);
            Check::verdict(
                k,
                title,
                d.is_empty(),
                format!(
                    "the catalog differs from the first apply: {}",
                    differences(&d)
                ),
            )
        }
    }
}

/// Catalog differences in one line.
fn differences(d: &[Difference]) -> String {
    d.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Applying `m` again: refused by the migrations table, or idempotent.
async fn apply_again(client: &Client, m: &Migration, after: &Catalog, expect: &Expect) -> Check {
    let k = Kind::Migrations;
    let title = format!("apply again {}", m.up.name());
    if let Some((table, column)) = migrations_table(after, expect) {
        let number = m.number.to_string();
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {}::text IN ({}, {}, {}, {})",
            table.sql(),
            quote_ident(&column),
            quote_literal(&number),
            quote_literal(&m.digits),
            quote_literal(&m.stem),
            quote_literal(&m.up.name())
        );
        if let Ok(row) = client.query_one(&sql, &[]).await {
            if row.get::<_, i64>(0) > 0 {
                return Check::pass(k, title).with_detail(format!(
                    "refused: {} records {}",
                    table.short(),
                    m.digits
                ));
            }
        }
    }
    let counts = match row_counts(client, after).await {
        Ok(c) => c,
        Err(e) => return Check::fail(k, title, e),
    };
    if let Err(e) = client.batch_execute("BEGIN").await {
        return Check::fail(k, title, e.to_string());
    }
    let result = match run_statements(client, &m.up).await {
        Err(f) => Check::fail(
            k,
            &title,
            format!(
                "neither idempotent nor recorded in a migrations table; the second run fails: {f}"
            ),
        ),
        Ok(()) => match (Catalog::read(client).await, row_counts(client, after).await) {
            (Ok(snap), Ok(c2)) => {
                let d = diff(after, &snap);
                let changed: Vec<String> = counts
                    .iter()
                    .filter(|(t, n)| c2.get(*t) != Some(*n))
                    .map(|(t, n)| format!("{t}: {n} rows → {}", c2.get(t).copied().unwrap_or(0)))
                    .collect();
                if d.is_empty() && changed.is_empty() {
                    Check::pass(k, &title).with_detail("idempotent")
                } else {
                    Check::fail(
                        k,
                        &title,
                        format!(
                            "the second run changes the database and no migrations table records it: {}",
                            d.iter().map(|x| x.to_string()).chain(changed).collect::<Vec<_>>().join("; ")
                        ),
                    )
                }
            }
            (Err(e), _) | (_, Err(e)) => Check::fail(k, &title, e),
        },
    };
    let _ = client.batch_execute("ROLLBACK").await;
    result
}

/// Database B: before each migration after the first, seed a generated row into every table
/// (and the pack's `[[seed]]` SQL), apply the migration, and check the rows survived.
pub(crate) async fn check_preservation(
    client: &Client,
    pack: &SchemaPack,
    expect: &Expect,
) -> Vec<Check> {
    let k = Kind::Preservation;
    let mut out = Vec::new();
    if let Err(e) = setup(client, expect).await {
        out.push(Check::fail(k, "[migrations] setup", e.to_string()));
        return out;
    }
    for (i, m) in pack.migrations.iter().enumerate() {
        let seeds: Vec<_> = expect
            .seed
            .iter()
            .filter(|s| s.get_ref().before == m.number)
            .collect();
        let step = if i == 0 && seeds.is_empty() {
            apply_migration(client, m, expect)
                .await
                .map_err(|f| Check::fail(k, format!("apply {}", m.up.name()), f.to_string()))
        } else {
            preserve_through(client, m, i, &seeds, expect, &mut out).await
        };
        // A failure that leaves the database in an unknown state ends the preservation checks.
        if let Err(stop) = step {
            out.push(stop);
            return out;
        }
    }
    out
}

/// Seeds rows, applies `m` (the `i`th migration), and checks what became of them. `Err` is a
/// failure after which the later migrations cannot be judged.
async fn preserve_through(
    client: &Client,
    m: &Migration,
    i: usize,
    seeds: &[&Spanned<Seed>],
    expect: &Expect,
    out: &mut Vec<Check>,
) -> Result<(), Check> {
    let k = Kind::Preservation;
    let name = m.up.name();
    let cat = Catalog::read(client)
        .await
        .map_err(|e| Check::fail(k, format!("seed before {name}"), e))?;
    let (seeded, skipped) = seed_generated_rows(client, &cat, expect, i).await;
    out.extend(run_seeds(client, m, seeds, expect).await);
    let counts = row_counts(client, &cat)
        .await
        .map_err(|e| Check::fail(k, format!("row counts before {name}"), e))?;
    let title = format!("{name} applies on tables holding rows");
    if let Err(f) = apply_migration(client, m, expect).await {
        return Err(Check::fail(
            k,
            title,
            format!("it applies on empty tables but fails once they hold rows: {f}"),
        ));
    }
    out.push(Check::pass(k, title).with_detail(format!(
        "{seeded} tables seeded{}",
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; no valid row for: {}", skipped.join("; "))
        }
    )));
    let after = Catalog::read(client)
        .await
        .map_err(|e| Check::fail(k, format!("after {name}"), e))?;
    let counts_after = row_counts(client, &after)
        .await
        .map_err(|e| Check::fail(k, format!("row counts after {name}"), e))?;
    out.push(rows_survive(m, &counts, &counts_after));
    out.extend(new_columns_filled(client, &cat, &after, &counts).await);
    out.extend(seed_after_queries(client, m, seeds, expect).await);
    Ok(())
}

/// One generated row per table where one can be built (the migrations table aside),
/// committed. Returns how many tables got one and why the others did not.
async fn seed_generated_rows(
    client: &Client,
    cat: &Catalog,
    expect: &Expect,
    i: usize,
) -> (usize, Vec<String>) {
    let exclude = migrations_table(cat, expect).map(|(t, _)| t);
    let mut skipped = Vec::new();
    let mut seeded = 0;
    if client.batch_execute("BEGIN").await.is_err() {
        return (seeded, skipped);
    }
    let mut b = RowBuilder::new(cat, client, 5_000_000 + (i as u64) * 100_000);
    for rel in cat.tables() {
        if Some(&rel.name) == exclude.as_ref()
            || rel.kind != crate::conform::catalog::RelKind::Table
        {
            continue;
        }
        let r = match b.recipe(&rel.name, &Assign::new()).await {
            Ok(r) => b.insert(&r).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match r {
            Ok(_) => seeded += 1,
            Err(e) => skipped.push(format!(
                "{}: {}",
                rel.name.short(),
                crate::schema_pack::apply::excerpt(&e, 160)
            )),
        }
    }
    let _ = client.batch_execute("COMMIT").await;
    (seeded, skipped)
}

/// The pack's `[[seed]]` SQL due before `m`.
async fn run_seeds(
    client: &Client,
    m: &Migration,
    seeds: &[&Spanned<Seed>],
    expect: &Expect,
) -> Vec<Check> {
    let k = Kind::Preservation;
    let mut out = Vec::new();
    for s in seeds {
        let title = format!("seed before {} ({})", m.up.name(), expect.at(s.span()));
        match client.batch_execute(&s.get_ref().sql).await {
            Ok(()) => out.push(Check::pass(k, title)),
            Err(e) => {
                let (code, msg) = crate::schema_pack::apply::describe(&e);
                out.push(Check::fail(
                    k,
                    title,
                    format!("the seed SQL fails: {msg} (SQLSTATE {code})"),
                ));
            }
        }
    }
    out
}

/// No table has fewer rows after `m` than before.
fn rows_survive(
    m: &Migration,
    counts: &BTreeMap<QualName, i64>,
    counts_after: &BTreeMap<QualName, i64>,
) -> Check {
    let lost: Vec<String> = counts
        .iter()
        .filter_map(|(t, n)| {
            counts_after
                .get(t)
                .filter(|a| *a < n)
                .map(|a| format!("{}: {n} → {a}", t.short()))
        })
        .collect();
    Check::verdict(
        Kind::Preservation,
        format!("rows survive {}", m.up.name()),
        lost.is_empty(),
        format!("rows lost: {}", lost.join("; ")),
    )
}

/// New columns with a default on tables that held rows: filled with their default (a
/// constant) or at least not NULL.
async fn new_columns_filled(
    client: &Client,
    cat: &Catalog,
    after: &Catalog,
    counts: &BTreeMap<QualName, i64>,
) -> Vec<Check> {
    let k = Kind::Preservation;
    let mut out = Vec::new();
    for (t, n) in counts.iter().filter(|(_, n)| **n > 0) {
        let (Some(old), Some(new)) = (cat.relation(t), after.relation(t)) else {
            continue;
        };
        for col in new.columns.iter().filter(|c| old.column(&c.name).is_none()) {
            let Some(default) = &col.default else {
                continue;
            };
            let (cond, what) = if is_constant(default) && col.generated.is_empty() {
                (
                    format!("{} IS DISTINCT FROM ({default})", quote_ident(&col.name)),
                    format!("= {default}"),
                )
            } else {
                (
                    format!("{} IS NULL", quote_ident(&col.name)),
                    "non-NULL".to_string(),
                )
            };
            let sql = format!("SELECT count(*) FROM {} WHERE {cond}", t.sql());
            let title = format!(
                "new column {}.{} filled in existing rows ({what})",
                t.short(),
                col.name
            );
            match client.query_one(&sql, &[]).await {
                Ok(row) => {
                    let bad: i64 = row.get(0);
                    out.push(
                        Check::verdict(
                            k,
                            title,
                            bad == 0,
                            format!("{bad} of {n} existing rows are not {what}"),
                        )
                        .with_sql(sql),
                    );
                }
                Err(e) => out.push(Check::fail(k, title, db_err("checking", e))),
            }
        }
    }
    out
}

/// The `after` queries of the seeds due before `m`, run once `m` is applied.
async fn seed_after_queries(
    client: &Client,
    m: &Migration,
    seeds: &[&Spanned<Seed>],
    expect: &Expect,
) -> Vec<Check> {
    let mut out = Vec::new();
    for s in seeds {
        for (j, q) in s.get_ref().after.iter().enumerate() {
            let title = format!(
                "seed after {} #{} ({})",
                m.up.name(),
                j + 1,
                expect.at(s.span())
            );
            let mut c = behaviour::query(client, q, title).await;
            c.kind = Kind::Preservation;
            out.push(c);
        }
    }
    out
}
