//! Builds a valid row for any table from the catalog alone: a value per column from its
//! type and CHECK constraints, and parent rows (inserted first) for its foreign keys. Probes
//! then change one thing in a valid row, so whatever PostgreSQL says is about that one thing.
//! Preservation checks use the same rows as seed data.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::conform::catalog::{
    quote_ident, quote_literal, Catalog, Column, Constraint, QualName, Relation,
};
use crate::conform::checkexpr::{self, Assign, Val};

/// A row as PostgreSQL returned it: column → text (None for NULL).
pub(crate) type Row = BTreeMap<String, Option<String>>;

/// A parent row: its table and the referenced columns' values.
pub(crate) type Parent = (QualName, Vec<(String, Option<String>)>);

/// How to insert one row: column → SQL expression, plus the inserts of its parents.
#[derive(Debug, Clone)]
pub(crate) struct Recipe {
    pub(crate) table: QualName,
    pub(crate) values: BTreeMap<String, String>,
    pub(crate) overriding: bool,
    /// Per foreign key (constraint name): the parent's table and its referenced values.
    pub(crate) parents: BTreeMap<String, Parent>,
    /// The parents' INSERTs, in the order they ran (for showing a finding's SQL).
    pub(crate) setup_sql: Vec<String>,
}

impl Recipe {
    pub(crate) fn insert_sql(&self) -> String {
        if self.values.is_empty() {
            return format!(
                "INSERT INTO {} DEFAULT VALUES RETURNING *",
                self.table.sql()
            );
        }
        let cols: Vec<String> = self.values.keys().map(|c| quote_ident(c)).collect();
        let vals: Vec<&str> = self.values.values().map(String::as_str).collect();
        format!(
            "INSERT INTO {} ({}){} VALUES ({}) RETURNING *",
            self.table.sql(),
            cols.join(", "),
            if self.overriding {
                " OVERRIDING SYSTEM VALUE"
            } else {
                ""
            },
            vals.join(", ")
        )
    }

    /// The same row with `column` set to the SQL expression `expr`.
    pub(crate) fn with(&self, rel: &Relation, column: &str, expr: String) -> Recipe {
        let mut r = self.clone();
        if rel.column(column).is_some_and(|c| c.identity == "a") {
            r.overriding = true;
        }
        r.values.insert(column.to_string(), expr);
        r
    }

    /// Everything needed to reproduce the row: parents' inserts, then this one.
    pub(crate) fn shown(&self) -> String {
        let mut lines = self.setup_sql.clone();
        lines.push(self.insert_sql());
        lines.join(";\n") + ";"
    }
}

/// What PostgreSQL said when it refused a statement.
#[derive(Debug, Clone)]
pub(crate) struct DbFailure {
    pub(crate) sqlstate: String,
    pub(crate) message: String,
    pub(crate) constraint: Option<String>,
}

impl std::fmt::Display for DbFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.sqlstate)
    }
}

impl From<tokio_postgres::Error> for DbFailure {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => DbFailure {
                sqlstate: db.code().code().to_string(),
                message: db.message().to_string(),
                constraint: db.constraint().map(str::to_string),
            },
            None => DbFailure {
                sqlstate: e
                    .code()
                    .map(|c| c.code().to_string())
                    .unwrap_or_else(|| "-----".into()),
                message: e.to_string(),
                constraint: None,
            },
        }
    }
}

/// Builds rows inside the caller's open transaction (savepoints keep failures local).
pub(crate) struct RowBuilder<'a> {
    pub(crate) cat: &'a Catalog,
    pub(crate) client: &'a Client,
    counter: u64,
    savepoints: u64,
}

const MAX_DEPTH: usize = 8;

impl<'a> RowBuilder<'a> {
    /// `seed` offsets the generated values, so rows built by different builders differ.
    pub(crate) fn new(cat: &'a Catalog, client: &'a Client, seed: u64) -> RowBuilder<'a> {
        RowBuilder {
            cat,
            client,
            counter: seed,
            savepoints: 0,
        }
    }

    pub(crate) fn next_n(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Runs `sql` in a savepoint: on success its effects stay, on failure they are undone.
    pub(crate) async fn exec(&mut self, sql: &str) -> Result<Vec<Row>, DbFailure> {
        self.savepoints += 1;
        let sp = format!("conform_sp_{}", self.savepoints);
        self.client
            .batch_execute(&format!("SAVEPOINT {sp}"))
            .await?;
        match self.client.simple_query(sql).await {
            Ok(msgs) => {
                self.client
                    .batch_execute(&format!("RELEASE SAVEPOINT {sp}"))
                    .await?;
                Ok(rows(&msgs))
            }
            Err(e) => {
                self.client
                    .batch_execute(&format!(
                        "ROLLBACK TO SAVEPOINT {sp}; RELEASE SAVEPOINT {sp}"
                    ))
                    .await?;
                Err(e.into())
            }
        }
    }

    /// Runs `sql` and undoes it whatever happens: "would PostgreSQL accept this?"
    pub(crate) async fn trial(&mut self, sql: &str) -> Result<Vec<Row>, DbFailure> {
        self.savepoints += 1;
        let sp = format!("conform_sp_{}", self.savepoints);
        self.client
            .batch_execute(&format!("SAVEPOINT {sp}"))
            .await?;
        let r = self.client.simple_query(sql).await;
        self.client
            .batch_execute(&format!(
                "ROLLBACK TO SAVEPOINT {sp}; RELEASE SAVEPOINT {sp}"
            ))
            .await?;
        Ok(rows(&r?))
    }

    /// Inserts a recipe's row (keeps it) and returns it as stored.
    pub(crate) async fn insert(&mut self, recipe: &Recipe) -> Result<Row, DbFailure> {
        let mut rows = self.exec(&recipe.insert_sql()).await?;
        Ok(rows.pop().unwrap_or_default())
    }

    /// A recipe for a valid row of `table` (checked by inserting it and undoing that); its
    /// parent rows are inserted and stay. `hints` fix some columns (e.g. `Val::Any` to make
    /// them non-NULL).
    pub(crate) fn recipe<'s>(
        &'s mut self,
        table: &'s QualName,
        hints: &'s Assign,
    ) -> Pin<Box<dyn Future<Output = Result<Recipe, String>> + Send + 's>> {
        Box::pin(self.recipe_at(table, hints, 0))
    }

    fn recipe_boxed<'s>(
        &'s mut self,
        table: &'s QualName,
        hints: &'s Assign,
        depth: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Recipe, String>> + Send + 's>> {
        Box::pin(self.recipe_at(table, hints, depth))
    }

    async fn recipe_at(
        &mut self,
        table: &QualName,
        hints: &Assign,
        depth: usize,
    ) -> Result<Recipe, String> {
        let cat = self.cat;
        let rel = cat
            .relation(table)
            .ok_or_else(|| format!("no table {table}"))?;
        let n = self.next_n();
        let parents = self.parents_for(rel, hints, depth).await?;
        let check_alts = check_alternatives(rel);
        let widest = check_alts.iter().map(Vec::len).max().unwrap_or(1).min(4);
        let unique_cols = unique_columns(rel);

        // Each way of satisfying the CHECKs, first as a full row, then as a minimal one.
        let mut last_err = String::from("no candidate");
        for attempt in 0..(2 * widest) {
            let full = attempt % 2 == 0;
            let merged = merge_checks(hints, &check_alts, attempt / 2);
            let recipe = candidate(cat, rel, &parents, &merged, &unique_cols, full, n);
            match self.trial(&recipe.insert_sql()).await {
                Ok(_) => return Ok(recipe),
                Err(e) => last_err = format!("{e}; tried: {}", recipe.insert_sql()),
            }
        }
        Err(last_err)
    }

    /// A parent row (inserted, and kept) for each foreign key of `rel` that `hints` leave
    /// open, widest keys first; NULL keys where no parent can be built and the key allows it.
    async fn parents_for(
        &mut self,
        rel: &Relation,
        hints: &Assign,
        depth: usize,
    ) -> Result<Parents, String> {
        let table = &rel.name;
        let mut out = Parents::default();
        let mut fks: Vec<_> = rel.constraints.iter().filter(|c| c.kind == 'f').collect();
        fks.sort_by_key(|c| std::cmp::Reverse(c.columns.len()));
        for fk in fks {
            if fk
                .columns
                .iter()
                .any(|c| out.fixed.contains_key(c) || hints.get(c).is_some_and(|v| *v != Val::Any))
            {
                continue;
            }
            let all_nullable = fk
                .columns
                .iter()
                .all(|c| rel.column(c).is_some_and(|c| !c.not_null));
            let Some(ref_table) = fk.ref_table.clone() else {
                continue;
            };
            let parent = if depth >= MAX_DEPTH || (ref_table == *table && !all_nullable) {
                Err(format!(
                    "foreign key {} forms a cycle or nests deeper than {MAX_DEPTH} levels",
                    fk.name
                ))
            } else {
                self.parent_row(fk, &ref_table, table, depth).await
            };
            match parent {
                Ok((p, row)) => {
                    let mut vals = Vec::new();
                    for (c, rc) in fk.columns.iter().zip(&fk.ref_columns) {
                        let v = row.get(rc).cloned().flatten();
                        let col = rel.column(c).ok_or_else(|| format!("no column {c}"))?;
                        out.fixed
                            .insert(c.clone(), literal_or_null(v.as_deref(), col));
                        vals.push((rc.clone(), v));
                    }
                    out.setup_sql.extend(p.setup_sql.iter().cloned());
                    out.setup_sql.push(p.insert_sql());
                    out.by_fk.insert(fk.name.clone(), (ref_table.clone(), vals));
                }
                Err(_) if all_nullable => {
                    for c in &fk.columns {
                        out.fixed.insert(c.clone(), "NULL".into());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Builds and inserts a row of `ref_table` for `fk` of `table`, returning it as stored. A
    /// self-reference gets a parent row of its own table whose key is NULL.
    async fn parent_row(
        &mut self,
        fk: &Constraint,
        ref_table: &QualName,
        table: &QualName,
        depth: usize,
    ) -> Result<(Recipe, Row), String> {
        let parent_hints: Assign = if ref_table == table {
            fk.columns.iter().map(|c| (c.clone(), Val::Null)).collect()
        } else {
            Assign::new()
        };
        match self.recipe_boxed(ref_table, &parent_hints, depth + 1).await {
            Ok(p) => match self.insert(&p).await {
                Ok(row) => Ok((p, row)),
                Err(e) => Err(format!("parent row in {ref_table}: {e}")),
            },
            Err(e) => Err(format!("parent row in {ref_table}: {e}")),
        }
    }
}

/// What a row's parents decide: column values they fix, and the parents themselves.
#[derive(Default)]
struct Parents {
    /// Column → SQL expression: a parent's referenced value, or NULL.
    fixed: BTreeMap<String, String>,
    /// Per foreign key (constraint name), as in [`Recipe::parents`].
    by_fk: BTreeMap<String, Parent>,
    /// The parents' INSERTs, in the order they ran.
    setup_sql: Vec<String>,
}

/// Per readable CHECK constraint of `rel`, the ways of satisfying it.
fn check_alternatives(rel: &Relation) -> Vec<Vec<Assign>> {
    rel.constraints
        .iter()
        .filter(|c| c.kind == 'c')
        .filter_map(|c| c.check_expr.as_deref().and_then(checkexpr::parse))
        .map(|e| checkexpr::satisfactions(&e))
        .filter(|a| !a.is_empty())
        .collect()
}

/// `hints` plus, for each CHECK, its `alt`th way of being satisfied (or the next one that
/// agrees with what is already chosen).
fn merge_checks(hints: &Assign, check_alts: &[Vec<Assign>], alt: usize) -> Assign {
    let mut merged: Assign = hints.clone();
    for alts in check_alts {
        for k in 0..alts.len() {
            let candidate = &alts[(alt + k) % alts.len()];
            if let Some(m) = merge_soft(&merged, candidate) {
                merged = m;
                break;
            }
        }
    }
    merged
}

/// A row of `rel` to try: parents' values, then `merged` choices, then generated values (or
/// defaults, see [`omit`]), for every column that is not generated.
fn candidate(
    cat: &Catalog,
    rel: &Relation,
    parents: &Parents,
    merged: &Assign,
    unique_cols: &BTreeSet<String>,
    full: bool,
    n: u64,
) -> Recipe {
    let mut recipe = Recipe {
        table: rel.name.clone(),
        values: BTreeMap::new(),
        overriding: false,
        parents: parents.by_fk.clone(),
        setup_sql: parents.setup_sql.clone(),
    };
    for col in &rel.columns {
        if !col.generated.is_empty() {
            continue;
        }
        let expr = if let Some(v) = parents.fixed.get(&col.name) {
            v.clone()
        } else if let Some(v) = merged.get(&col.name) {
            render(cat, col, v, n)
        } else if omit(col, unique_cols, full) {
            continue;
        } else {
            render(cat, col, &Val::Any, n)
        };
        if col.identity == "a" {
            recipe.overriding = true;
        }
        recipe.values.insert(col.name.clone(), expr);
    }
    recipe
}

/// Whether a valid row leaves `col` to its default (or NULL): identity columns and defaults,
/// except constant defaults on unique columns (every row would collide on them) and random
/// defaults, and nullable columns when building a minimal row.
fn omit(col: &Column, unique_cols: &BTreeSet<String>, full: bool) -> bool {
    let defaulted = col.default.is_some() || col.identity == "d";
    let constant_on_unique =
        unique_cols.contains(&col.name) && col.default.as_deref().is_some_and(is_constant);
    let random = col.default.as_deref().is_some_and(is_random);
    col.identity == "a" || (defaulted && !constant_on_unique && !random) || (!col.not_null && !full)
}

/// A default that draws a random value (`gen_random_uuid()`, `uuid_generate_v4()`,
/// `random()`). The builder supplies its own value instead, so every run builds the same rows:
/// a probe whose outcome hangs on the order of two random keys (e.g. `CHECK (a < b)`) would
/// otherwise give a different verdict from run to run and from provider to provider.
fn is_random(default: &str) -> bool {
    let d = default.to_ascii_lowercase();
    ["gen_random_uuid(", "uuid_generate_v4(", "random("]
        .iter()
        .any(|f| d.contains(f))
}

/// Adds check hints to `base`; a column whose hints contradict keeps the first.
fn merge_soft(base: &Assign, extra: &Assign) -> Option<Assign> {
    let mut out = base.clone();
    for (k, v) in extra {
        let m = match out.get(k) {
            None => v.clone(),
            Some(w) => checkexpr::merge_val(w, v)?,
        };
        out.insert(k.clone(), m);
    }
    Some(out)
}

fn rows(msgs: &[SimpleQueryMessage]) -> Vec<Row> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), r.get(i).map(str::to_string)))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Columns covered by a primary key, UNIQUE constraint or unique index.
pub(crate) fn unique_columns(rel: &Relation) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for c in rel
        .constraints
        .iter()
        .filter(|c| c.kind == 'p' || c.kind == 'u')
    {
        s.extend(c.columns.iter().cloned());
    }
    for i in rel.indexes.iter().filter(|i| i.unique) {
        s.extend(
            i.columns
                .iter()
                .filter(|c| rel.column(c).is_some())
                .cloned(),
        );
    }
    s
}

/// A default that gives every row the same value (no function call).
pub(crate) fn is_constant(default: &str) -> bool {
    !default.contains('(')
}

/// `'text'::type`, or NULL.
pub(crate) fn literal_or_null(v: Option<&str>, col: &Column) -> String {
    match v {
        Some(v) => format!("{}::{}", quote_literal(v), col.type_name),
        None => "NULL".into(),
    }
}

/// The length limit of `character varying(n)` / `character(n)`.
fn char_limit(type_name: &str) -> Option<usize> {
    if !(type_name.starts_with("character varying(") || type_name.starts_with("character(")) {
        return None;
    }
    let inner = type_name.split('(').nth(1)?.split(')').next()?;
    inner.parse().ok()
}

#[derive(Debug, PartialEq, Eq)]
enum TypeClass {
    Int(i128),
    Numeric,
    Text,
    Bool,
    Uuid,
    Bytea,
    Json,
    Timestamp,
    Date,
    Time,
    Interval,
    Inet,
    Cidr,
    Enum,
    Array,
    Other,
}

fn classify(cat: &Catalog, col: &Column) -> TypeClass {
    let t = col.type_name.as_str();
    if t.ends_with("[]") {
        return TypeClass::Array;
    }
    if cat.enum_labels.contains_key(&col.type_oid) {
        return TypeClass::Enum;
    }
    match t {
        "smallint" => TypeClass::Int(i16::MAX as i128),
        "integer" => TypeClass::Int(i32::MAX as i128),
        "bigint" => TypeClass::Int(i64::MAX as i128),
        "real" | "double precision" => TypeClass::Numeric,
        "text" | "citext" | "name" | "\"char\"" | "character varying" | "character" => {
            TypeClass::Text
        }
        "boolean" => TypeClass::Bool,
        "uuid" => TypeClass::Uuid,
        "bytea" => TypeClass::Bytea,
        "json" | "jsonb" => TypeClass::Json,
        "date" => TypeClass::Date,
        "interval" => TypeClass::Interval,
        "inet" => TypeClass::Inet,
        "cidr" => TypeClass::Cidr,
        _ if t.starts_with("numeric") => TypeClass::Numeric,
        _ if t.starts_with("character") => TypeClass::Text,
        _ if t.starts_with("timestamp") => TypeClass::Timestamp,
        _ if t.starts_with("time") => TypeClass::Time,
        _ if t.starts_with("interval") => TypeClass::Interval,
        _ => TypeClass::Other,
    }
}

fn cast(v: &str, col: &Column) -> String {
    format!("{}::{}", quote_literal(v), col.type_name)
}

/// Text that is unique per `n` and exactly `len` characters long.
fn text_of_len(n: u64, len: usize) -> String {
    let mut s = format!("v{n}");
    if s.len() > len {
        s = s
            .chars()
            .rev()
            .take(len)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
    }
    while s.len() < len {
        s.push('x');
    }
    s
}

/// `len` bytes as bytea hex input, unique per `n`.
fn bytes_of_len(n: u64, len: usize) -> String {
    let mut hex = format!("{n:016x}");
    hex = hex[hex.len().saturating_sub(2 * len)..].to_string();
    while hex.len() < 2 * len {
        hex.push_str("ab");
    }
    hex.truncate(2 * len);
    format!("\\x{hex}")
}

/// The SQL expression for `val` in `col`, unique per `n` where the type allows.
pub(crate) fn render(cat: &Catalog, col: &Column, val: &Val, n: u64) -> String {
    let class = classify(cat, col);
    match val {
        Val::Null => "NULL".into(),
        Val::Literal(s) => cast(s, col),
        Val::Any => any_value(cat, col, &class, n),
        Val::NotIn(list) => not_in(cat, col, &class, list, n),
        Val::Range(lo, hi) => in_range(col, lo.as_deref(), hi.as_deref(), n),
        Val::LengthRange(lo, hi) => {
            let want = if class == TypeClass::Bytea { 32 } else { 8 };
            let len = (want.max(*lo)).min(hi.unwrap_or(u64::MAX));
            render(cat, col, &Val::Length(len, String::new()), n)
        }
        Val::Length(len, _) => of_length(cat, col, &class, *len as usize, n),
    }
}

/// A value of `col` outside `list`.
fn not_in(cat: &Catalog, col: &Column, class: &TypeClass, list: &[String], n: u64) -> String {
    match class {
        TypeClass::Int(_) | TypeClass::Numeric => {
            let max = list
                .iter()
                .filter_map(|v| v.parse::<f64>().ok())
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            match max {
                Some(m) if m.fract() == 0.0 => cast(&((m as i128) + 1).to_string(), col),
                Some(m) => cast(&(m + 1.0).to_string(), col),
                None => any_value(cat, col, class, n),
            }
        }
        TypeClass::Enum => {
            let labels = cat
                .enum_labels
                .get(&col.type_oid)
                .cloned()
                .unwrap_or_default();
            match labels.iter().find(|l| !list.contains(l)) {
                Some(l) => cast(l, col),
                None => cast("zz_not_a_label", col),
            }
        }
        TypeClass::Bool => {
            let has_true = list.iter().any(|v| matches!(v.as_str(), "true" | "t"));
            cast(if has_true { "false" } else { "true" }, col)
        }
        TypeClass::Text => {
            let limit = char_limit(&col.type_name).unwrap_or(64);
            let mut v = format!("zz_probe_{n}");
            v.truncate(limit.max(1));
            let mut k = 0;
            while list.contains(&v) {
                k += 1;
                v = text_of_len(n + k, limit.clamp(1, 12));
            }
            cast(&v, col)
        }
        _ => any_value(cat, col, class, n + 1_000_000),
    }
}

/// A number between the bounds `lo` and `hi` (either may be open), varied by `n`.
fn in_range(col: &Column, lo: Option<&str>, hi: Option<&str>, n: u64) -> String {
    let p = |s: Option<&str>| s.and_then(|v| v.parse::<f64>().ok());
    let v = match (p(lo), p(hi)) {
        (Some(l), Some(h)) => {
            let span = (h - l).floor();
            if span >= 1.0 {
                l + (n as f64 % (span + 1.0)).floor()
            } else {
                l
            }
        }
        (Some(l), None) => l + (n % 1000) as f64,
        (None, Some(h)) => h - (n % 1000) as f64,
        (None, None) => (n + 1) as f64,
    };
    let text = if v.fract() == 0.0 {
        format!("{}", v as i128)
    } else {
        v.to_string()
    };
    cast(&text, col)
}

/// A text, bytea or array value of `len` characters, bytes or elements.
fn of_length(cat: &Catalog, col: &Column, class: &TypeClass, len: usize, n: u64) -> String {
    match class {
        TypeClass::Text => cast(&text_of_len(n, len), col),
        TypeClass::Bytea => cast(&bytes_of_len(n, len), col),
        TypeClass::Array => {
            let elem = if col.type_name.starts_with("integer")
                || col.type_name.starts_with("bigint")
                || col.type_name.starts_with("smallint")
            {
                "1"
            } else {
                "x"
            };
            cast(&format!("{{{}}}", vec![elem; len].join(",")), col)
        }
        _ => any_value(cat, col, class, n),
    }
}

fn any_value(cat: &Catalog, col: &Column, class: &TypeClass, n: u64) -> String {
    match class {
        TypeClass::Int(max) => cast(&((n as i128 % max) + 1).to_string(), col),
        TypeClass::Numeric => cast(&(n + 1).to_string(), col),
        TypeClass::Text => cast(
            &text_of_len(n, char_limit(&col.type_name).unwrap_or(8).min(8)),
            col,
        ),
        TypeClass::Bool => cast("true", col),
        TypeClass::Uuid => cast(&format!("00000000-0000-4000-8000-{:012x}", n), col),
        TypeClass::Bytea => cast(&bytes_of_len(n, 32), col),
        TypeClass::Json => cast(&format!("{{\"probe\": {n}}}"), col),
        TypeClass::Timestamp => {
            format!(
                "(timestamptz '2024-01-01 00:00:00+00' + interval '1 second' * {n})::{}",
                col.type_name
            )
        }
        TypeClass::Date => format!("(date '2024-01-01' + {})", n % 10_000),
        TypeClass::Time => format!(
            "(time '00:00:00' + interval '1 second' * {})::{}",
            n % 86_000,
            col.type_name
        ),
        TypeClass::Interval => format!("(interval '1 second' * {n})::{}", col.type_name),
        TypeClass::Inet => cast(
            &format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
            col,
        ),
        TypeClass::Cidr => cast(&format!("10.{}.{}.0/24", (n >> 8) & 255, n & 255), col),
        TypeClass::Enum => {
            let labels = cat
                .enum_labels
                .get(&col.type_oid)
                .cloned()
                .unwrap_or_default();
            match labels.first() {
                Some(l) => cast(l, col),
                None => "NULL".into(),
            }
        }
        TypeClass::Array => cast("{}", col),
        TypeClass::Other => {
            if col.not_null {
                cast(&format!("v{n}"), col)
            } else {
                "NULL".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_values_have_the_asked_length_and_differ_per_n() {
        assert_eq!(text_of_len(7, 5), "v7xxx");
        assert_eq!(text_of_len(123456, 3), "456");
        assert_eq!(bytes_of_len(1, 2), "\\x0001");
        assert_eq!(bytes_of_len(1, 32).len(), 2 + 64);
        assert_ne!(bytes_of_len(1, 32), bytes_of_len(2, 32));
        assert_eq!(char_limit("character varying(64)"), Some(64));
        assert_eq!(char_limit("text"), None);
    }
}
