//! Well-known schema hazards, read from the catalog alone (docs/conformance.md section 5).
//! [`RULES`] is the rule list: each rule's id, the text the docs table lists for it, and its
//! check; a test keeps docs/conformance.md in step with it. Each finding carries a catalog
//! query that shows it.

use crate::conform::catalog::{quote_ident, quote_literal, Catalog, Index, QualName, Relation};
use crate::conform::outcome::{Check, Kind};

const K: Kind = Kind::Hazards;

/// One hazard rule.
pub(crate) struct Rule {
    pub(crate) id: &'static str,
    /// What it finds: the "what" column of docs/conformance.md section 5, word for word.
    #[cfg_attr(not(test), allow(dead_code))] // read by the test that compares it with the docs
    pub(crate) doc: &'static str,
    /// The findings on one table.
    check: fn(&Table) -> Vec<Hit>,
}

/// Every rule, in report order; a rule without findings prints one PASS line.
pub(crate) const RULES: &[Rule] = &[
    Rule {
        id: "hazard.fk_unindexed",
        doc: "an FK whose columns (by real name, in any order and sort direction) are not the leading columns of any non-partial index on the referencing table",
        check: fk_unindexed,
    },
    Rule {
        id: "hazard.no_primary_key",
        doc: "a table without a primary key",
        check: no_primary_key,
    },
    Rule {
        id: "hazard.duplicate_index",
        doc: "two indexes with the same table, columns, method, predicate and expressions",
        check: duplicate_index,
    },
    Rule {
        id: "hazard.redundant_index",
        doc: "a non-unique btree index whose key columns (with their operator classes and collations: `(x text_pattern_ops)` is not served by `(x)`) are a leading prefix of another btree index with the same predicate, with the same sort orders or all of them reversed (`(x)` is served by `(x DESC, y)` scanned backwards; `(x, y)` is not served by `(x, y DESC)`)",
        check: redundant_index,
    },
    Rule {
        id: "hazard.fk_type_mismatch",
        doc: "an FK column whose type differs from the referenced column's type",
        check: fk_type_mismatch,
    },
    Rule {
        id: "hazard.timestamp_without_tz",
        doc: "a `timestamp without time zone` column",
        check: timestamp_without_tz,
    },
    Rule {
        id: "hazard.char_n",
        doc: "a `character(n)` column",
        check: char_n,
    },
    Rule {
        id: "hazard.money",
        doc: "a `money` column",
        check: money,
    },
    Rule {
        id: "hazard.constraint_not_valid",
        doc: "a CHECK or FK constraint marked `NOT VALID`",
        check: constraint_not_valid,
    },
    Rule {
        id: "hazard.rule",
        doc: "a rewrite rule on a table (not a view's `_RETURN`)",
        check: rewrite_rule,
    },
];

/// Runs every rule on every table of the pack.
pub(crate) fn run(cat: &Catalog) -> Vec<Check> {
    let mut out = Vec::new();
    for rule in RULES {
        let before = out.len();
        for rel in cat.tables() {
            let table = Table {
                cat,
                rel,
                short: rel.name.short(),
            };
            for hit in (rule.check)(&table) {
                out.push(Check::finding(K, rule.id, hit.object, hit.detail, hit.sql));
            }
        }
        if out.len() == before {
            out.push(Check::pass(K, format!("{}: none", rule.id)));
        }
    }
    out
}

/// The table a rule looks at, with the catalog for what it references.
struct Table<'a> {
    cat: &'a Catalog,
    rel: &'a Relation,
    /// How findings name it (see [`QualName::short`]).
    short: String,
}

/// One finding of a rule: the object, what is wrong with it, the SQL that shows it.
struct Hit {
    object: String,
    detail: String,
    sql: String,
}

fn fk_unindexed(t: &Table) -> Vec<Hit> {
    let (rel, short) = (t.rel, &t.short);
    let mut hits = Vec::new();
    for fk in rel.constraints.iter().filter(|c| c.kind == 'f') {
        if rel.indexes.iter().any(|i| covers(i, &fk.columns)) {
            continue;
        }
        hits.push(Hit {
            object: format!("{short}.{}", fk.name),
            detail: format!(
                "foreign key ({}) has no index with these leading columns: every delete or key update in {} scans {short}",
                fk.columns.join(", "),
                fk.ref_table.as_ref().map(|r| r.short()).unwrap_or_default()
            ),
            sql: format!(
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
        });
    }
    hits
}

fn no_primary_key(t: &Table) -> Vec<Hit> {
    if t.rel.primary_key().is_some() {
        return Vec::new();
    }
    vec![Hit {
        object: t.short.clone(),
        detail: "table has no primary key: rows cannot be identified, logical replication cannot update or delete them".into(),
        sql: format!(
            "SELECT c.relname FROM pg_class c WHERE {} AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = c.oid AND contype = 'p');",
            rel_filter(&t.rel.name)
        ),
    }]
}

/// Each later index whose definition, name aside, equals an earlier one's.
fn duplicate_index(t: &Table) -> Vec<Hit> {
    let idx = &t.rel.indexes;
    let mut hits = Vec::new();
    for (i, a) in idx.iter().enumerate() {
        for b in idx.iter().skip(i + 1) {
            if shape(a) == shape(b) {
                hits.push(Hit {
                    object: format!("{}.{}", t.short, b.name),
                    detail: format!("{} duplicates {}: {}", b.name, a.name, b.def),
                    sql: index_sql(&t.rel.name),
                });
            }
        }
    }
    hits
}

/// Each index served by another one (the first such other index is named).
fn redundant_index(t: &Table) -> Vec<Hit> {
    let rel = t.rel;
    let mut hits = Vec::new();
    for a in &rel.indexes {
        if let Some(b) = rel.indexes.iter().find(|b| serves(rel, a, b)) {
            hits.push(Hit {
                object: format!("{}.{}", t.short, a.name),
                detail: format!(
                    "{} ({}) is a leading prefix of {} ({})",
                    a.name,
                    key_labels(a),
                    b.name,
                    key_labels(b)
                ),
                sql: index_sql(&rel.name),
            });
        }
    }
    hits
}

/// `b` serves every lookup `a` serves, and `a` is not needed for a constraint or uniqueness.
fn serves(rel: &Relation, a: &Index, b: &Index) -> bool {
    if std::ptr::eq(a, b) || a.unique || a.method != "btree" || b.method != "btree" {
        return false;
    }
    let same = a.keys.len() == b.keys.len();
    let backs_constraint = rel.constraints.iter().any(|c| c.name == a.name);
    leading_prefix(a, b)
        && a.predicate == b.predicate
        && !backs_constraint
        && (!same || b.unique)
        && shape(a) != shape(b)
}

fn fk_type_mismatch(t: &Table) -> Vec<Hit> {
    let (rel, short) = (t.rel, &t.short);
    let mut hits = Vec::new();
    for fk in rel.constraints.iter().filter(|c| c.kind == 'f') {
        let Some(parent) = fk.ref_table.as_ref().and_then(|p| t.cat.relation(p)) else {
            continue;
        };
        for (c, rc) in fk.columns.iter().zip(&fk.ref_columns) {
            let (Some(col), Some(pcol)) = (rel.column(c), parent.column(rc)) else {
                continue;
            };
            if col.type_oid != pcol.type_oid {
                hits.push(Hit {
                    object: format!("{short}.{c}"),
                    detail: format!(
                        "{short}.{c} is {} but references {}.{rc}, which is {}",
                        col.type_name,
                        parent.name.short(),
                        pcol.type_name
                    ),
                    sql: column_sql(&rel.name, c) + "\n" + &column_sql(&parent.name, rc),
                });
            }
        }
    }
    hits
}

fn timestamp_without_tz(t: &Table) -> Vec<Hit> {
    column_type_hits(
        t,
        |base| base.starts_with("timestamp") && base.contains("without time zone"),
        "an instant stored without its zone is ambiguous; use timestamptz",
    )
}

fn char_n(t: &Table) -> Vec<Hit> {
    column_type_hits(
        t,
        |base| base == "character" || base.starts_with("character("),
        "it pads with blanks and compares surprisingly; use text or varchar",
    )
}

fn money(t: &Table) -> Vec<Hit> {
    column_type_hits(
        t,
        |base| base == "money",
        "it depends on lc_monetary and has fixed fraction digits; use numeric",
    )
}

/// The columns whose type (arrays by their element type) matches `bad`, with `why` it is a
/// hazard.
fn column_type_hits(t: &Table, bad: fn(&str) -> bool, why: &str) -> Vec<Hit> {
    t.rel
        .columns
        .iter()
        .filter(|col| bad(col.type_name.trim_end_matches("[]")))
        .map(|col| Hit {
            object: format!("{}.{}", t.short, col.name),
            detail: format!("{}.{} is {}: {why}", t.short, col.name, col.type_name),
            sql: column_sql(&t.rel.name, &col.name),
        })
        .collect()
}

fn constraint_not_valid(t: &Table) -> Vec<Hit> {
    t.rel
        .constraints
        .iter()
        .filter(|c| !c.validated)
        .map(|con| Hit {
            object: format!("{}.{}", t.short, con.name),
            detail: format!(
                "{} is NOT VALID: rows that existed when it was added were never checked",
                con.def
            ),
            sql: format!(
                "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = '{}'::regclass AND NOT convalidated;",
                t.rel.name.sql()
            ),
        })
        .collect()
}

fn rewrite_rule(t: &Table) -> Vec<Hit> {
    t.rel
        .rules
        .iter()
        .map(|(name, def)| Hit {
            object: format!("{}.{name}", t.short),
            detail: format!("rewrite rule on a table: {def}"),
            sql: format!(
                "SELECT rulename, pg_get_ruledef(oid) FROM pg_rewrite WHERE ev_class = '{}'::regclass AND rulename <> '_RETURN';",
                t.rel.name.sql()
            ),
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::RULES;

    /// The rows of docs/conformance.md's hazard table: rule id → its "what" column.
    fn documented() -> BTreeMap<String, &'static str> {
        include_str!("../../docs/conformance.md")
            .lines()
            .filter_map(|l| l.strip_prefix("| `hazard."))
            .map(|row| {
                let (id, rest) = row.split_once("` | ").expect("a table row");
                let what = rest.split(" | ").next().expect("a what column");
                (format!("hazard.{id}"), what)
            })
            .collect()
    }

    #[test]
    fn the_rule_table_is_the_documented_list() {
        let docs = documented();
        let code: BTreeMap<String, _> = RULES.iter().map(|r| (r.id.to_string(), r.doc)).collect();
        assert_eq!(code.len(), RULES.len(), "duplicate rule ids");
        assert!(!docs.is_empty(), "no hazard table in docs/conformance.md");
        for (id, what) in &code {
            assert_eq!(
                docs.get(id),
                Some(what),
                "{id}: not in docs/conformance.md section 5, or its text differs"
            );
        }
        for id in docs.keys() {
            assert!(code.contains_key(id), "{id} is documented but not a rule");
        }
    }
}
