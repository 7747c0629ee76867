//! Well-known schema hazards, read from the catalog alone (docs/conformance.md section 5).
//! Each finding carries a catalog query that shows it.

use crate::conform::catalog::{quote_ident, quote_literal, Catalog, Index, QualName};
use crate::conform::outcome::{Check, Kind};

const K: Kind = Kind::Hazards;

/// Every rule, so a clean schema prints one PASS line per rule.
pub const RULES: &[&str] = &[
    "hazard.fk_unindexed",
    "hazard.no_primary_key",
    "hazard.duplicate_index",
    "hazard.redundant_index",
    "hazard.fk_type_mismatch",
    "hazard.timestamp_without_tz",
    "hazard.char_n",
    "hazard.money",
    "hazard.constraint_not_valid",
    "hazard.rule",
];

fn lit(q: &QualName) -> (String, String) {
    (quote_literal(&q.schema), quote_literal(&q.name))
}

fn rel_filter(q: &QualName) -> String {
    let (s, n) = lit(q);
    format!("c.relnamespace = {s}::regnamespace AND c.relname = {n}")
}

/// An index "covers" a foreign key when the key's columns (real names) are its leading columns
/// (any order, any sort direction) and it is not partial.
fn covers(idx: &Index, columns: &[String]) -> bool {
    if idx.predicate.is_some() || idx.keys.len() < columns.len() {
        return false;
    }
    let lead = &idx.keys[..columns.len()];
    columns
        .iter()
        .all(|c| lead.iter().any(|k| k.column.as_deref() == Some(c.as_str())))
}

/// `a`'s keys are the leading keys of `b` (same operator classes and collations), with the same
/// sort orders or all of them reversed (a btree is scanned in both directions, so `(x)` is
/// served by `(x DESC, y)`, but `(x text_pattern_ops)` is not served by `(x)`).
fn leading_prefix(a: &Index, b: &Index) -> bool {
    if a.keys.len() > b.keys.len() {
        return false;
    }
    let pairs = || a.keys.iter().zip(&b.keys);
    pairs().all(|(x, y)| x.same_key(y))
        && (pairs().all(|(x, y)| x.order == y.order)
            || pairs().all(|(x, y)| x.order == y.order.reversed()))
}

fn key_labels(idx: &Index) -> String {
    idx.keys
        .iter()
        .map(|k| k.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An index definition without its name, for comparing indexes.
fn shape(idx: &Index) -> String {
    match idx.def.find(" ON ") {
        Some(p) => format!(
            "{}{}",
            if idx.unique { "UNIQUE" } else { "" },
            &idx.def[p..]
        ),
        None => idx.def.clone(),
    }
}

pub fn run(cat: &Catalog) -> Vec<Check> {
    let mut found: Vec<Check> = Vec::new();
    for rel in cat.tables() {
        let t = rel.name.short();
        // hazard.fk_unindexed
        for fk in rel.constraints.iter().filter(|c| c.kind == 'f') {
            if !rel.indexes.iter().any(|i| covers(i, &fk.columns)) {
                found.push(Check::finding(
                    K,
                    "hazard.fk_unindexed",
                    format!("{t}.{}", fk.name),
                    format!(
                        "foreign key ({}) has no index with these leading columns: every delete or key update in {} scans {t}",
                        fk.columns.join(", "),
                        fk.ref_table.as_ref().map(|r| r.short()).unwrap_or_default()
                    ),
                    format!(
                        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = '{}'::regclass AND conname = {};\n\
                         SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = '{}'::regclass;\n\
                         -- fix: CREATE INDEX ON {} ({});",
                        rel.name.sql(),
                        quote_literal(&fk.name),
                        rel.name.sql(),
                        rel.name.sql(),
                        fk.columns
                            .iter()
                            .map(|c| quote_ident(c))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        // hazard.no_primary_key
        if rel.primary_key().is_none() {
            found.push(Check::finding(
                K,
                "hazard.no_primary_key",
                t.clone(),
                "table has no primary key: rows cannot be identified, logical replication cannot update or delete them",
                format!(
                    "SELECT c.relname FROM pg_class c WHERE {} AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p');",
                    rel_filter(&rel.name)
                ),
            ));
        }
        // hazard.duplicate_index / hazard.redundant_index
        let idx = &rel.indexes;
        for (i, a) in idx.iter().enumerate() {
            for b in idx.iter().skip(i + 1) {
                if shape(a) == shape(b) {
                    found.push(Check::finding(
                        K,
                        "hazard.duplicate_index",
                        format!("{t}.{}", b.name),
                        format!("{} duplicates {}: {}", b.name, a.name, b.def),
                        index_sql(&rel.name),
                    ));
                }
            }
            for b in idx.iter() {
                if std::ptr::eq(a, b) || a.unique || a.method != "btree" || b.method != "btree" {
                    continue;
                }
                let prefix = leading_prefix(a, b);
                let same = a.keys.len() == b.keys.len();
                let backs_constraint = rel.constraints.iter().any(|c| c.name == a.name);
                if prefix
                    && a.predicate == b.predicate
                    && !backs_constraint
                    && (!same || b.unique)
                    && shape(a) != shape(b)
                {
                    found.push(Check::finding(
                        K,
                        "hazard.redundant_index",
                        format!("{t}.{}", a.name),
                        format!(
                            "{} ({}) is a leading prefix of {} ({})",
                            a.name,
                            key_labels(a),
                            b.name,
                            key_labels(b)
                        ),
                        index_sql(&rel.name),
                    ));
                    break;
                }
            }
        }
        // hazard.fk_type_mismatch
        for fk in rel.constraints.iter().filter(|c| c.kind == 'f') {
            let Some(parent) = fk.ref_table.as_ref().and_then(|p| cat.relation(p)) else {
                continue;
            };
            for (c, rc) in fk.columns.iter().zip(&fk.ref_columns) {
                let (Some(col), Some(pcol)) = (rel.column(c), parent.column(rc)) else {
                    continue;
                };
                if col.type_oid != pcol.type_oid {
                    found.push(Check::finding(
                        K,
                        "hazard.fk_type_mismatch",
                        format!("{t}.{c}"),
                        format!(
                            "{t}.{c} is {} but references {}.{rc}, which is {}",
                            col.type_name,
                            parent.name.short(),
                            pcol.type_name
                        ),
                        column_sql(&rel.name, c) + "\n" + &column_sql(&parent.name, rc),
                    ));
                }
            }
        }
        // Column type rules.
        for col in &rel.columns {
            let base = col.type_name.trim_end_matches("[]");
            let rule = if base.starts_with("timestamp") && base.contains("without time zone") {
                Some((
                    "hazard.timestamp_without_tz",
                    "an instant stored without its zone is ambiguous; use timestamptz",
                ))
            } else if base == "character" || base.starts_with("character(") {
                Some((
                    "hazard.char_n",
                    "it pads with blanks and compares surprisingly; use text or varchar",
                ))
            } else if base == "money" {
                Some((
                    "hazard.money",
                    "it depends on lc_monetary and has fixed fraction digits; use numeric",
                ))
            } else {
                None
            };
            if let Some((rule, why)) = rule {
                found.push(Check::finding(
                    K,
                    rule,
                    format!("{t}.{}", col.name),
                    format!("{t}.{} is {}: {why}", col.name, col.type_name),
                    column_sql(&rel.name, &col.name),
                ));
            }
        }
        // hazard.constraint_not_valid
        for con in rel.constraints.iter().filter(|c| !c.validated) {
            found.push(Check::finding(
                K,
                "hazard.constraint_not_valid",
                format!("{t}.{}", con.name),
                format!("{} is NOT VALID: rows that existed when it was added were never checked", con.def),
                format!(
                    "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = '{}'::regclass AND NOT convalidated;",
                    rel.name.sql()
                ),
            ));
        }
        // hazard.rule
        for (name, def) in &rel.rules {
            found.push(Check::finding(
                K,
                "hazard.rule",
                format!("{t}.{name}"),
                format!("rewrite rule on a table: {def}"),
                format!(
                    "SELECT rulename, pg_get_ruledef(oid) FROM pg_rewrite WHERE ev_class = '{}'::regclass AND rulename <> '_RETURN';",
                    rel.name.sql()
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for rule in RULES {
        let hits: Vec<Check> = found
            .iter()
            .filter(|c| c.rule.as_deref() == Some(*rule))
            .cloned()
            .collect();
        if hits.is_empty() {
            out.push(Check::pass(K, format!("{rule}: none")));
        } else {
            out.extend(hits);
        }
    }
    out
}

fn index_sql(table: &QualName) -> String {
    format!(
        "SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = '{}'::regclass;",
        table.sql()
    )
}

fn column_sql(table: &QualName, column: &str) -> String {
    format!(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '{}'::regclass AND attname = {};",
        table.sql(),
        quote_literal(column)
    )
}
