//! A snapshot of a database's schema, read from `pg_catalog` (information_schema misses
//! materialized views and indexes). Snapshots compare without OIDs, so "the rollback restored
//! the catalog exactly" is a plain equality of two [`Catalog::items`] maps.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use crate::conform::index_key::{IndexKey, SortOrder};

/// Schemas that belong to PostgreSQL, never to a pack.
const SYSTEM_SCHEMAS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
     AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'";

/// `schema.name`, as the engine prints it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct QualName {
    pub(crate) schema: String,
    pub(crate) name: String,
}

impl QualName {
    pub(crate) fn new(schema: &str, name: &str) -> QualName {
        QualName {
            schema: schema.to_string(),
            name: name.to_string(),
        }
    }

    /// Quoted for SQL: `"schema"."name"`.
    pub(crate) fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    /// `name` for the public schema, else `schema.name`: how findings name objects.
    pub(crate) fn short(&self) -> String {
        if self.schema == "public" {
            self.name.clone()
        } else {
            format!("{}.{}", self.schema, self.name)
        }
    }
}

impl std::fmt::Display for QualName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

pub(crate) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelKind {
    Table,
    PartitionedTable,
    View,
    MaterializedView,
    ForeignTable,
    Sequence,
    CompositeType,
}

impl RelKind {
    fn from_code(c: &str) -> Option<RelKind> {
        Some(match c {
            "r" => RelKind::Table,
            "p" => RelKind::PartitionedTable,
            "v" => RelKind::View,
            "m" => RelKind::MaterializedView,
            "f" => RelKind::ForeignTable,
            "S" => RelKind::Sequence,
            "c" => RelKind::CompositeType,
            _ => return None,
        })
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            RelKind::Table => "table",
            RelKind::PartitionedTable => "partitioned table",
            RelKind::View => "view",
            RelKind::MaterializedView => "materialized view",
            RelKind::ForeignTable => "foreign table",
            RelKind::Sequence => "sequence",
            RelKind::CompositeType => "composite type",
        }
    }

    pub(crate) fn is_table(self) -> bool {
        matches!(self, RelKind::Table | RelKind::PartitionedTable)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) attnum: i16,
    pub(crate) type_oid: u32,
    /// `format_type(atttypid, atttypmod)`.
    pub(crate) type_name: String,
    pub(crate) not_null: bool,
    pub(crate) default: Option<String>,
    /// `a` (always), `d` (by default) or empty.
    pub(crate) identity: String,
    /// `s` for stored generated columns.
    pub(crate) generated: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    pub(crate) name: String,
    /// `p`, `u`, `f`, `c`, `x`, `t`.
    pub(crate) kind: char,
    /// `pg_get_constraintdef(oid, true)`.
    pub(crate) def: String,
    pub(crate) columns: Vec<String>,
    pub(crate) ref_table: Option<QualName>,
    pub(crate) ref_columns: Vec<String>,
    pub(crate) on_delete: char,
    pub(crate) on_update: char,
    pub(crate) validated: bool,
    /// For CHECK: `pg_get_expr(conbin, conrelid, true)`.
    pub(crate) check_expr: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub(crate) name: String,
    pub(crate) def: String,
    /// Key columns in order: real column names, expressions as PostgreSQL prints them, each
    /// with its sort order.
    pub(crate) keys: Vec<IndexKey>,
    /// The key columns' names or expressions, without sort order (see [`IndexKey::target`]).
    pub(crate) columns: Vec<String>,
    /// INCLUDE columns, by name.
    pub(crate) include: Vec<String>,
    pub(crate) unique: bool,
    pub(crate) primary: bool,
    pub(crate) predicate: Option<String>,
    pub(crate) method: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub(crate) name: String,
    pub(crate) timing: &'static str,
    pub(crate) level: &'static str,
    pub(crate) events: BTreeSet<&'static str>,
    pub(crate) function: QualName,
    pub(crate) def: String,
    pub(crate) enabled: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub(crate) name: QualName,
    pub(crate) kind: RelKind,
    pub(crate) persistence: String,
    pub(crate) row_security: bool,
    /// View / materialized view query, sequence parameters.
    pub(crate) definition: Option<String>,
    pub(crate) columns: Vec<Column>,
    pub(crate) constraints: Vec<Constraint>,
    pub(crate) indexes: Vec<Index>,
    pub(crate) triggers: Vec<Trigger>,
    pub(crate) rules: Vec<(String, String)>,
}

impl Relation {
    pub(crate) fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub(crate) fn primary_key(&self) -> Option<&Constraint> {
        self.constraints.iter().find(|c| c.kind == 'p')
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub(crate) name: QualName,
    pub(crate) args: String,
    pub(crate) result: String,
    pub(crate) language: String,
    pub(crate) volatility: String,
    pub(crate) security_definer: bool,
    pub(crate) kind: String,
    pub(crate) def: Option<String>,
}

/// A schema snapshot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub(crate) relations: BTreeMap<QualName, Relation>,
    pub(crate) functions: Vec<Function>,
    /// Enums, domains: name → description.
    pub(crate) types: BTreeMap<QualName, String>,
    /// Enum labels by type OID (for building valid rows).
    pub(crate) enum_labels: BTreeMap<u32, Vec<String>>,
    pub(crate) schemas: BTreeSet<String>,
    pub(crate) extensions: BTreeMap<String, String>,
}

fn sql_err(what: &str, e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{what}: {}", db.message()),
        None => format!("{what}: {e}"),
    }
}

impl Catalog {
    /// Reads the snapshot, one catalog query after another. Objects owned by extensions are
    /// left out: they are the extension's, not the pack's.
    pub(crate) async fn read(client: &Client) -> Result<Catalog, String> {
        let mut cat = Catalog::default();
        let mut oids = read_relations(client, &mut cat).await?;
        read_columns(client, &mut oids, &mut cat).await?;
        read_constraints(client, &oids, &mut cat).await?;
        read_indexes(client, &oids, &mut cat).await?;
        read_triggers(client, &oids, &mut cat).await?;
        read_rules(client, &oids, &mut cat).await?;
        read_functions(client, &mut cat).await?;
        read_types(client, &mut cat).await?;
        read_schemas(client, &mut cat).await?;
        read_extensions(client, &mut cat).await?;
        Ok(cat)
    }

    /// Every object as `kind name` → its definition, without OIDs: equal maps mean equal
    /// schemas, and a diff names what changed.
    pub(crate) fn items(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for s in &self.schemas {
            m.insert(format!("schema {s}"), String::new());
        }
        for (e, v) in &self.extensions {
            m.insert(format!("extension {e}"), v.clone());
        }
        for (t, d) in &self.types {
            m.insert(format!("type {t}"), d.clone());
        }
        for f in &self.functions {
            m.insert(format!("function {}({})", f.name, f.args), function_item(f));
        }
        for r in self.relations.values() {
            relation_items(r, &mut m);
        }
        m
    }

    pub(crate) fn relation(&self, name: &QualName) -> Option<&Relation> {
        self.relations.get(name)
    }

    /// Ordinary and partitioned tables of the pack.
    pub(crate) fn tables(&self) -> impl Iterator<Item = &Relation> {
        self.relations.values().filter(|r| r.kind.is_table())
    }
}

/// The pack's relations by OID while a snapshot is read, and their column names by number:
/// the later queries name relations and columns by number only.
#[derive(Default)]
struct Oids {
    relations: BTreeMap<u32, QualName>,
    columns: BTreeMap<u32, BTreeMap<i16, String>>,
}

impl Oids {
    fn all(&self) -> Vec<u32> {
        self.relations.keys().copied().collect()
    }

    fn column(&self, oid: u32, attnum: i16) -> Option<&String> {
        self.columns.get(&oid).and_then(|m| m.get(&attnum))
    }

    /// Column names for attribute numbers; `#n` for a number the relation does not have.
    fn column_names(&self, oid: u32, nums: &[i16]) -> Vec<String> {
        nums.iter()
            .map(|n| {
                self.column(oid, *n)
                    .cloned()
                    .unwrap_or_else(|| format!("#{n}"))
            })
            .collect()
    }

    fn relation_mut<'c>(&self, cat: &'c mut Catalog, oid: u32) -> Option<&'c mut Relation> {
        self.relations
            .get(&oid)
            .and_then(|n| cat.relations.get_mut(n))
    }
}

/// `NOT EXISTS` a dependency of the object `col` (of catalog `classid`) on an extension.
fn not_from_extension(col: &str, classid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = {col} AND d.classid = '{classid}'::regclass AND d.deptype = 'e')"
    )
}

/// Runs one catalog query; an error names `what` was being read.
async fn query(
    client: &Client,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, String> {
    client
        .query(sql, params)
        .await
        .map_err(|e| sql_err(&format!("reading {what}"), e))
}

async fn read_relations(client: &Client, cat: &mut Catalog) -> Result<Oids, String> {
    let sql = format!(
        "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence::text, c.relrowsecurity,
                CASE WHEN c.relkind IN ('v','m') THEN pg_get_viewdef(c.oid, true)
                     WHEN c.relkind = 'S' THEN (SELECT format('%s start %s increment %s min %s max %s cache %s cycle %s',
                          format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
                          FROM pg_sequence s WHERE s.seqrelid = c.oid) END
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r','p','v','m','f','S','c') AND {SYSTEM_SCHEMAS} AND {}",
        not_from_extension("c.oid", "pg_class")
    );
    let mut oids = Oids::default();
    for row in query(client, "relations", &sql, &[]).await? {
        let oid: u32 = row.get(0);
        let name = QualName::new(row.get(1), row.get(2));
        let Some(kind) = RelKind::from_code(row.get::<_, &str>(3)) else {
            continue;
        };
        oids.relations.insert(oid, name.clone());
        cat.relations.insert(
            name.clone(),
            Relation {
                name,
                kind,
                persistence: row.get(4),
                row_security: row.get(5),
                definition: row.get(6),
                columns: Vec::new(),
                constraints: Vec::new(),
                indexes: Vec::new(),
                triggers: Vec::new(),
                rules: Vec::new(),
            },
        );
    }
    Ok(oids)
}

/// Reads the columns and records their names by number in `oids`.
async fn read_columns(client: &Client, oids: &mut Oids, cat: &mut Catalog) -> Result<(), String> {
    let sql = "SELECT a.attrelid, a.attname::text, a.attnum, a.atttypid, format_type(a.atttypid, a.atttypmod),
                      a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
               FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
               WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
               ORDER BY a.attrelid, a.attnum";
    for row in query(client, "columns", sql, &[&oids.all()]).await? {
        let oid: u32 = row.get(0);
        let col = Column {
            name: row.get(1),
            attnum: row.get(2),
            type_oid: row.get(3),
            type_name: row.get(4),
            not_null: row.get(5),
            default: row.get(6),
            identity: row.get(7),
            generated: row.get(8),
        };
        oids.columns
            .entry(oid)
            .or_default()
            .insert(col.attnum, col.name.clone());
        if let Some(rel) = oids.relation_mut(cat, oid) {
            rel.columns.push(col);
        }
    }
    Ok(())
}

async fn read_constraints(client: &Client, oids: &Oids, cat: &mut Catalog) -> Result<(), String> {
    let sql = "SELECT con.conrelid, con.conname::text, con.contype::text, pg_get_constraintdef(con.oid, true),
                      con.conkey, con.confrelid, con.confkey, con.confdeltype::text, con.confupdtype::text,
                      con.convalidated, pg_get_expr(con.conbin, con.conrelid, true)
               FROM pg_constraint con WHERE con.conrelid = ANY($1) AND con.contype <> 'n'
               ORDER BY con.conrelid, con.conname";
    for row in query(client, "constraints", sql, &[&oids.all()]).await? {
        let oid: u32 = row.get(0);
        let kind: String = row.get(2);
        let conkey: Option<Vec<i16>> = row.get(4);
        let confrelid: u32 = row.get(5);
        let confkey: Option<Vec<i16>> = row.get(6);
        let con = Constraint {
            name: row.get(1),
            kind: kind.chars().next().unwrap_or('?'),
            def: row.get(3),
            columns: oids.column_names(oid, &conkey.unwrap_or_default()),
            ref_table: (confrelid != 0)
                .then(|| oids.relations.get(&confrelid).cloned())
                .flatten(),
            ref_columns: oids.column_names(confrelid, &confkey.unwrap_or_default()),
            on_delete: row.get::<_, String>(7).chars().next().unwrap_or(' '),
            on_update: row.get::<_, String>(8).chars().next().unwrap_or(' '),
            validated: row.get(9),
            check_expr: row.get(10),
        };
        if let Some(rel) = oids.relation_mut(cat, oid) {
            rel.constraints.push(con);
        }
    }
    Ok(())
}

async fn read_indexes(client: &Client, oids: &Oids, cat: &mut Catalog) -> Result<(), String> {
    let sql = "SELECT i.indrelid, ic.relname::text, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
                      i.indnkeyatts::int4, i.indkey::int2[], am.amname::text, pg_get_expr(i.indpred, i.indrelid, true),
                      ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnatts) k ORDER BY k),
                      i.indoption::int2[], i.indclass::oid[], i.indcollation::oid[]
               FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
               WHERE i.indrelid = ANY($1) ORDER BY i.indrelid, ic.relname";
    for row in query(client, "indexes", sql, &[&oids.all()]).await? {
        let oid: u32 = row.get(0);
        let idx = index_from_row(&row, oids);
        if let Some(rel) = oids.relation_mut(cat, oid) {
            rel.indexes.push(idx);
        }
    }
    Ok(())
}

/// One row of the index query: key columns by their real name (pg_attribute), expressions as
/// PostgreSQL prints them; the sort order comes from indoption (key columns only).
fn index_from_row(row: &Row, oids: &Oids) -> Index {
    let oid: u32 = row.get(0);
    let nkey = row.get::<_, i32>(5) as usize;
    let printed: Vec<String> = row.get(9);
    let attnums: Vec<i16> = row.get(6);
    let options: Vec<i16> = row.get(10);
    let opclasses: Vec<u32> = row.get(11);
    let collations: Vec<u32> = row.get(12);
    let all_keys: Vec<IndexKey> = printed
        .into_iter()
        .enumerate()
        .map(|(k, printed)| {
            let attnum = attnums.get(k).copied().unwrap_or(0);
            IndexKey {
                column: (attnum != 0)
                    .then(|| oids.column(oid, attnum))
                    .flatten()
                    .cloned(),
                printed,
                order: if k < nkey {
                    SortOrder::from_indoption(options.get(k).copied().unwrap_or(0))
                } else {
                    SortOrder::ASC
                },
                opclass: opclasses.get(k).copied().unwrap_or(0),
                collation: collations.get(k).copied().unwrap_or(0),
            }
        })
        .collect();
    let keys: Vec<IndexKey> = all_keys.iter().take(nkey).cloned().collect();
    Index {
        name: row.get(1),
        def: row.get(2),
        unique: row.get(3),
        primary: row.get(4),
        columns: keys.iter().map(|k| k.target().to_string()).collect(),
        include: all_keys
            .iter()
            .skip(nkey)
            .map(|k| k.target().to_string())
            .collect(),
        keys,
        method: row.get(7),
        predicate: row.get(8),
    }
}

async fn read_triggers(client: &Client, oids: &Oids, cat: &mut Catalog) -> Result<(), String> {
    let sql = "SELECT t.tgrelid, t.tgname::text, t.tgtype::int4, pn.nspname::text, p.proname::text,
                      pg_get_triggerdef(t.oid, true), t.tgenabled::text
               FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
               WHERE t.tgrelid = ANY($1) AND NOT t.tgisinternal ORDER BY t.tgrelid, t.tgname";
    for row in query(client, "triggers", sql, &[&oids.all()]).await? {
        let oid: u32 = row.get(0);
        let (timing, level, events) = decode_tgtype(row.get(2));
        let trg = Trigger {
            name: row.get(1),
            timing,
            level,
            events,
            function: QualName::new(row.get(3), row.get(4)),
            def: row.get(5),
            enabled: row.get(6),
        };
        if let Some(rel) = oids.relation_mut(cat, oid) {
            rel.triggers.push(trg);
        }
    }
    Ok(())
}

/// Rewrite rules, without the `_RETURN` rule every view has.
async fn read_rules(client: &Client, oids: &Oids, cat: &mut Catalog) -> Result<(), String> {
    let sql = "SELECT r.ev_class, r.rulename::text, pg_get_ruledef(r.oid, true) FROM pg_rewrite r
               WHERE r.ev_class = ANY($1) AND r.rulename <> '_RETURN' ORDER BY r.ev_class, r.rulename";
    for row in query(client, "rules", sql, &[&oids.all()]).await? {
        let oid: u32 = row.get(0);
        if let Some(rel) = oids.relation_mut(cat, oid) {
            rel.rules.push((row.get(1), row.get(2)));
        }
    }
    Ok(())
}

async fn read_functions(client: &Client, cat: &mut Catalog) -> Result<(), String> {
    let sql = format!(
        "SELECT n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
                l.lanname::text, p.provolatile::text, p.prosecdef, p.prokind::text,
                CASE WHEN p.prokind IN ('f','p','w') THEN pg_get_functiondef(p.oid) END
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
         WHERE {SYSTEM_SCHEMAS} AND {} ORDER BY 1, 2, 3",
        not_from_extension("p.oid", "pg_proc")
    );
    for row in query(client, "functions", &sql, &[]).await? {
        cat.functions.push(Function {
            name: QualName::new(row.get(0), row.get(1)),
            args: row.get(2),
            result: row.get::<_, Option<String>>(3).unwrap_or_default(),
            language: row.get(4),
            volatility: row.get(5),
            security_definer: row.get(6),
            kind: row.get(7),
            def: row.get(8),
        });
    }
    Ok(())
}

/// Enums, domains and ranges, each described in one line; enum labels kept apart for
/// building valid rows.
async fn read_types(client: &Client, cat: &mut Catalog) -> Result<(), String> {
    let sql = format!(
        "SELECT t.oid, n.nspname::text, t.typname::text, t.typtype::text,
                CASE t.typtype
                  WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
                  WHEN 'd' THEN 'domain over ' || format_type(t.typbasetype, t.typtypmod)
                       || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END
                       || coalesce(' default ' || t.typdefault, '')
                       || coalesce((SELECT ' ' || string_agg(c.conname || ' ' || pg_get_constraintdef(c.oid, true), '; ' ORDER BY c.conname)
                                    FROM pg_constraint c WHERE c.contypid = t.oid), '')
                  WHEN 'r' THEN 'range of ' || (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid)
                END,
                ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE t.typtype IN ('e','d','r') AND {SYSTEM_SCHEMAS} AND {}",
        not_from_extension("t.oid", "pg_type")
    );
    for row in query(client, "types", &sql, &[]).await? {
        let oid: u32 = row.get(0);
        let name = QualName::new(row.get(1), row.get(2));
        let desc: Option<String> = row.get(4);
        let labels: Vec<String> = row.get(5);
        if !labels.is_empty() {
            cat.enum_labels.insert(oid, labels);
        }
        cat.types.insert(name, desc.unwrap_or_default());
    }
    Ok(())
}

async fn read_schemas(client: &Client, cat: &mut Catalog) -> Result<(), String> {
    let sql = format!("SELECT n.nspname::text FROM pg_namespace n WHERE {SYSTEM_SCHEMAS}");
    for row in query(client, "schemas", &sql, &[]).await? {
        cat.schemas.insert(row.get(0));
    }
    Ok(())
}

async fn read_extensions(client: &Client, cat: &mut Catalog) -> Result<(), String> {
    let sql = "SELECT extname::text, extversion FROM pg_extension";
    for row in query(client, "extensions", sql, &[]).await? {
        cat.extensions.insert(row.get(0), row.get(1));
    }
    Ok(())
}

/// A function's snapshot entry: signature facts, then its definition.
fn function_item(f: &Function) -> String {
    format!(
        "returns {} language {} volatility {} security_definer {} kind {}\n{}",
        f.result,
        f.language,
        f.volatility,
        f.security_definer,
        f.kind,
        f.def.as_deref().unwrap_or("")
    )
}

/// A relation's snapshot entries: itself, its columns, constraints, indexes, triggers, rules.
fn relation_items(r: &Relation, m: &mut BTreeMap<String, String>) {
    let name = &r.name;
    m.insert(
        format!("{} {name}", r.kind.label()),
        format!(
            "persistence {} rls {}{}",
            r.persistence,
            r.row_security,
            r.definition
                .as_deref()
                .map(|d| format!("\n{d}"))
                .unwrap_or_default()
        ),
    );
    // A sequence's "columns" are its state (last_value, …), not schema.
    let columns: &[Column] = if r.kind == RelKind::Sequence {
        &[]
    } else {
        &r.columns
    };
    for (pos, c) in columns.iter().enumerate() {
        m.insert(format!("column {name}.{}", c.name), column_item(pos, c));
    }
    for c in &r.constraints {
        m.insert(
            format!("constraint {name}.{}", c.name),
            format!(
                "{}{}",
                c.def,
                if c.validated { "" } else { " (not validated)" }
            ),
        );
    }
    for i in &r.indexes {
        m.insert(format!("index {}.{}", name.schema, i.name), i.def.clone());
    }
    for t in &r.triggers {
        m.insert(
            format!("trigger {name}.{}", t.name),
            format!("{} enabled {}", t.def, t.enabled),
        );
    }
    for (rn, rd) in &r.rules {
        m.insert(format!("rule {name}.{rn}"), rd.clone());
    }
}

/// A column's snapshot entry; `pos` counts from 0 among the relation's live columns.
fn column_item(pos: usize, c: &Column) -> String {
    let tagged = |tag: &str, v: &str| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" {tag} {v}")
        }
    };
    format!(
        "position {} type {}{}{}{}{}",
        pos + 1,
        c.type_name,
        if c.not_null { " not null" } else { "" },
        c.default
            .as_deref()
            .map(|d| format!(" default {d}"))
            .unwrap_or_default(),
        tagged("identity", &c.identity),
        tagged("generated", &c.generated),
    )
}

/// One difference between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Difference {
    Missing {
        key: String,
        before: String,
    },
    Extra {
        key: String,
        after: String,
    },
    Changed {
        key: String,
        before: String,
        after: String,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing { key, .. } => write!(f, "{key} is missing"),
            Difference::Extra { key, .. } => write!(f, "{key} is left behind"),
            Difference::Changed { key, before, after } => {
                write!(
                    f,
                    "{key} changed: was `{}`, now `{}`",
                    one_line(before),
                    one_line(after)
                )
            }
        }
    }
}

fn one_line(s: &str) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 160 {
        format!("{}…", flat.chars().take(160).collect::<String>())
    } else {
        flat
    }
}

/// What `after` has that `before` did not, and the reverse.
pub(crate) fn diff(before: &Catalog, after: &Catalog) -> Vec<Difference> {
    let (b, a) = (before.items(), after.items());
    let mut out = Vec::new();
    for (k, v) in &b {
        match a.get(k) {
            None => out.push(Difference::Missing {
                key: k.clone(),
                before: v.clone(),
            }),
            Some(w) if w != v => out.push(Difference::Changed {
                key: k.clone(),
                before: v.clone(),
                after: w.clone(),
            }),
            _ => {}
        }
    }
    for (k, v) in &a {
        if !b.contains_key(k) {
            out.push(Difference::Extra {
                key: k.clone(),
                after: v.clone(),
            });
        }
    }
    out
}

/// `pg_trigger.tgtype` bits: ROW 1, BEFORE 2, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32, INSTEAD 64.
pub(crate) fn decode_tgtype(t: i32) -> (&'static str, &'static str, BTreeSet<&'static str>) {
    let level = if t & 1 != 0 { "row" } else { "statement" };
    let timing = if t & 64 != 0 {
        "instead of"
    } else if t & 2 != 0 {
        "before"
    } else {
        "after"
    };
    let mut events = BTreeSet::new();
    for (bit, name) in [
        (4, "insert"),
        (8, "delete"),
        (16, "update"),
        (32, "truncate"),
    ] {
        if t & bit != 0 {
            events.insert(name);
        }
    }
    (timing, level, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tgtype_bits_decode() {
        let (timing, level, events) = decode_tgtype(1 | 2 | 4 | 16);
        assert_eq!((timing, level), ("before", "row"));
        assert_eq!(
            events.into_iter().collect::<Vec<_>>(),
            vec!["insert", "update"]
        );
        let (timing, level, _) = decode_tgtype(64 | 1 | 8);
        assert_eq!((timing, level), ("instead of", "row"));
        assert_eq!(decode_tgtype(32).0, "after");
    }
}
