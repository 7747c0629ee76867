//! Migration checks (docs/conformance.md section 2): apply in order, apply again, roll back
//! and re-apply with catalog snapshots compared, and data preservation with seeded rows.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use crate::conform::behaviour;
use crate::conform::catalog::{diff, quote_ident, quote_literal, Catalog, QualName};
use crate::conform::checkexpr::Assign;
use crate::conform::expect::{self, Expect};
use crate::conform::outcome::{Check, Kind};
use crate::conform::pack::{Migration, Pack};
use crate::conform::rowgen::{is_constant, RowBuilder};
use crate::conform::runner::{run_statements, SqlFailure};
use crate::Error;

/// Table names a migrations table is looked for under, in order, when none is declared.
pub const MIGRATIONS_TABLES: &[&str] = &[
    "schema_migrations",
    "schema_version",
    "migrations",
    "_migrations",
    "__migrations",
];

/// The pack's migrations table, if it has one: (table, version column).
pub fn migrations_table(cat: &Catalog, expect: &Expect) -> Option<(QualName, String)> {
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
pub async fn setup(client: &Client, expect: &Expect) -> Result<(), Error> {
    if let Some(sql) = expect.migrations.as_ref().and_then(|m| m.setup.as_ref()) {
        client.batch_execute(sql).await.map_err(|e| {
            Error::BadPack(format!(
                "{}: [migrations] setup fails: {}",
                expect.path,
                crate::conform::runner::describe(&e).1
            ))
        })?;
    }
    Ok(())
}

/// Applies `m` as the pack's runner would: in one transaction, recorded if `record` is set.
pub async fn apply_migration(
    client: &Client,
    m: &Migration,
    expect: &Expect,
) -> Result<(), SqlFailure> {
    crate::conform::runner::apply_then(client, &m.up, record_sql(m, expect).as_deref()).await
}

fn db_err(what: &str, e: tokio_postgres::Error) -> String {
    format!("{what}: {}", crate::conform::runner::describe(&e).1)
}

/// Row count of every table.
pub async fn row_counts(client: &Client, cat: &Catalog) -> Result<BTreeMap<QualName, i64>, String> {
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
pub async fn check_sequence(
    client: &Client,
    pack: &Pack,
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

        if let Some(down) = &m.down {
            // Down, snapshot, up again, snapshot: all in one transaction rolled back, so the
            // database stays as after `m` whatever happens.
            let title = format!("rollback {}", down.name());
            client
                .batch_execute("BEGIN")
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            let rolled = run_statements(client, down).await;
            let check = match rolled {
                Err(f) => {
                    out.push(Check::fail(k, title, format!("the rollback fails: {f}")));
                    None
                }
                Ok(()) => match Catalog::read(client).await {
                    Err(e) => {
                        out.push(Check::fail(k, title, e));
                        None
                    }
                    Ok(snap) => {
                        let d = diff(&before, &snap);
                        out.push(Check::verdict(
                            k,
                            title,
                            d.is_empty(),
                            format!(
                                "the catalog differs from before {}: {}",
                                m.up.name(),
                                d.iter()
                                    .map(|x| x.to_string())
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            ),
                        ));
                        Some(())
                    }
                },
            };
            if check.is_some() {
                let title = format!("re-apply {} after its rollback", m.up.name());
                match run_statements(client, &m.up).await {
                    Err(f) => out.push(Check::fail(k, title, format!("{f}"))),
                    Ok(()) => match Catalog::read(client).await {
                        Err(e) => out.push(Check::fail(k, title, e)),
                        Ok(snap) => {
                            let d = diff(&after, &snap);
                            out.push(Check::verdict(
                                k,
                                title,
                                d.is_empty(),
                                format!(
                                    "the catalog differs from the first apply: {}",
                                    d.iter()
                                        .map(|x| x.to_string())
                                        .collect::<Vec<_>>()
                                        .join("; ")
                                ),
                            ));
                        }
                    },
                }
            }
            let _ = client.batch_execute("ROLLBACK").await;
        } else {
            out.push(Check::skip(
                k,
                format!("rollback of {}", m.up.name()),
                "no down migration",
            ));
        }
        before = after;
    }
    Ok(out)
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
pub async fn check_preservation(client: &Client, pack: &Pack, expect: &Expect) -> Vec<Check> {
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
        if i == 0 && seeds.is_empty() {
            if let Err(f) = apply_migration(client, m, expect).await {
                out.push(Check::fail(
                    k,
                    format!("apply {}", m.up.name()),
                    f.to_string(),
                ));
                return out;
            }
            continue;
        }
        let cat = match Catalog::read(client).await {
            Ok(c) => c,
            Err(e) => {
                out.push(Check::fail(k, format!("seed before {}", m.up.name()), e));
                return out;
            }
        };
        // Generated rows, one per table where one can be built.
        let exclude = migrations_table(&cat, expect).map(|(t, _)| t);
        let mut skipped = Vec::new();
        let mut seeded = 0;
        if client.batch_execute("BEGIN").await.is_ok() {
            let mut b = RowBuilder::new(&cat, client, 5_000_000 + (i as u64) * 100_000);
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
                        crate::conform::runner::excerpt(&e, 160)
                    )),
                }
            }
            let _ = client.batch_execute("COMMIT").await;
        }
        for s in &seeds {
            let title = format!("seed before {} ({})", m.up.name(), expect.at(s.span()));
            match client.batch_execute(&s.get_ref().sql).await {
                Ok(()) => out.push(Check::pass(k, title)),
                Err(e) => {
                    let (code, msg) = crate::conform::runner::describe(&e);
                    out.push(Check::fail(
                        k,
                        title,
                        format!("the seed SQL fails: {msg} (SQLSTATE {code})"),
                    ));
                }
            }
        }
        let counts = match row_counts(client, &cat).await {
            Ok(c) => c,
            Err(e) => {
                out.push(Check::fail(
                    k,
                    format!("row counts before {}", m.up.name()),
                    e,
                ));
                return out;
            }
        };
        let title = format!("{} applies on tables holding rows", m.up.name());
        if let Err(f) = apply_migration(client, m, expect).await {
            out.push(Check::fail(
                k,
                title,
                format!("it applies on empty tables but fails once they hold rows: {f}"),
            ));
            return out;
        }
        out.push(Check::pass(k, title).with_detail(format!(
            "{seeded} tables seeded{}",
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; no valid row for: {}", skipped.join("; "))
            }
        )));
        let after = match Catalog::read(client).await {
            Ok(c) => c,
            Err(e) => {
                out.push(Check::fail(k, format!("after {}", m.up.name()), e));
                return out;
            }
        };
        let counts_after = match row_counts(client, &after).await {
            Ok(c) => c,
            Err(e) => {
                out.push(Check::fail(
                    k,
                    format!("row counts after {}", m.up.name()),
                    e,
                ));
                return out;
            }
        };
        let lost: Vec<String> = counts
            .iter()
            .filter_map(|(t, n)| {
                counts_after
                    .get(t)
                    .filter(|a| *a < n)
                    .map(|a| format!("{}: {n} → {a}", t.short()))
            })
            .collect();
        out.push(Check::verdict(
            k,
            format!("rows survive {}", m.up.name()),
            lost.is_empty(),
            format!("rows lost: {}", lost.join("; ")),
        ));
        // New columns on tables that held rows: filled with their default.
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
        for s in &seeds {
            for (j, q) in s.get_ref().after.iter().enumerate() {
                let title = format!(
                    "seed after {} #{} ({})",
                    m.up.name(),
                    j + 1,
                    expect.at(s.span())
                );
                let mut c = behaviour::query(client, q, title).await;
                c.kind = k;
                out.push(c);
            }
        }
    }
    out
}
