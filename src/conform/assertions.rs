//! Catalog assertions: `expect.toml`'s tables, columns, keys, checks, indexes, triggers,
//! views, materialized views and functions against a [`Catalog`] snapshot. Expected types and
//! expressions are canonicalised by PostgreSQL itself (a scratch temp table in a rolled-back
//! transaction), so `timestamptz` matches `timestamp with time zone` and `status in ('a')`
//! matches what `pg_get_expr` prints.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use crate::conform::catalog::{quote_ident, Catalog, Index, QualName, RelKind, Relation};
use crate::conform::expect::{self, Expect};
use crate::conform::index_key::{identifier, IndexKey, KeySpec, SortOrder};
use crate::conform::outcome::{Check, Kind};

const K: Kind = Kind::Catalog;

/// Asks PostgreSQL how it would print a type or an expression.
struct Canon<'a> {
    client: &'a Client,
    n: u64,
}

impl<'a> Canon<'a> {
    async fn begin(client: &'a Client) -> Result<Canon<'a>, String> {
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| e.to_string())?;
        Ok(Canon { client, n: 0 })
    }

    async fn end(self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }

    /// Runs `setup` then `query` (one text value) in a savepoint that is rolled back.
    async fn ask(&mut self, setup: &str, query: &str) -> Result<String, String> {
        self.ask_row(setup, query)
            .await?
            .into_iter()
            .next()
            .flatten()
            .ok_or_else(|| "no value".to_string())
    }

    /// Runs `setup` then `query` (one row of text values) in a savepoint that is rolled back.
    async fn ask_row(&mut self, setup: &str, query: &str) -> Result<Vec<Option<String>>, String> {
        self.n += 1;
        let sp = format!("canon_{}", self.n);
        self.client
            .batch_execute(&format!("SAVEPOINT {sp}"))
            .await
            .map_err(|e| e.to_string())?;
        let r = async {
            self.client.batch_execute(setup).await?;
            let row = self.client.query_one(query, &[]).await?;
            (0..row.len())
                .map(|i| row.try_get::<_, Option<String>>(i))
                .collect::<Result<Vec<_>, _>>()
        }
        .await;
        let _ = self
            .client
            .batch_execute(&format!(
                "ROLLBACK TO SAVEPOINT {sp}; RELEASE SAVEPOINT {sp}"
            ))
            .await;
        r.map_err(|e| match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        })
    }

    async fn type_name(&mut self, t: &str) -> Result<String, String> {
        self.ask(
            &format!("CREATE TEMP TABLE conform_canon (c {t})"),
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'conform_canon'::regclass AND attname = 'c'",
        )
        .await
    }

    async fn default(&mut self, type_name: &str, expr: &str) -> Result<String, String> {
        self.ask(
            &format!("CREATE TEMP TABLE conform_canon (c {type_name} DEFAULT {expr})"),
            "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'conform_canon'::regclass",
        )
        .await
    }

    async fn check(&mut self, table: &QualName, expr: &str) -> Result<String, String> {
        self.ask(
            &format!("CREATE TEMP TABLE conform_canon (LIKE {}); ALTER TABLE conform_canon ADD CONSTRAINT conform_c CHECK ({expr})", table.sql()),
            "SELECT pg_get_expr(conbin, conrelid, true) FROM pg_constraint WHERE conrelid = 'conform_canon'::regclass AND conname = 'conform_c'",
        )
        .await
    }

    async fn predicate(
        &mut self,
        table: &QualName,
        first_col: &str,
        expr: &str,
    ) -> Result<String, String> {
        self.ask(
            &format!(
                "CREATE TEMP TABLE conform_canon (LIKE {}); CREATE INDEX conform_i ON conform_canon ({}) WHERE {expr}",
                table.sql(),
                quote_ident(first_col)
            ),
            "SELECT pg_get_expr(indpred, indrelid, true) FROM pg_index WHERE indexrelid = 'conform_i'::regclass",
        )
        .await
    }

    /// How PostgreSQL reads one index key column or expression on `table`: the column's real
    /// name when it is a plain column (PostgreSQL turns `((col))` into one), and the key as
    /// `pg_get_indexdef` prints it.
    async fn index_key(
        &mut self,
        table: &QualName,
        expr: &str,
    ) -> Result<(Option<String>, String), String> {
        let row = self
            .ask_row(
                &format!("CREATE TEMP TABLE conform_canon (LIKE {}); CREATE INDEX conform_i ON conform_canon (({expr}))", table.sql()),
                "SELECT a.attname::text, pg_get_indexdef(i.indexrelid, 1, true)
                 FROM pg_index i LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] AND i.indkey[0] <> 0
                 WHERE i.indexrelid = 'conform_i'::regclass",
            )
            .await?;
        match row.as_slice() {
            [column, Some(printed)] => Ok((column.clone(), printed.clone())),
            _ => Err("no index key".into()),
        }
    }
}

/// An expected index key column, resolved against the table.
#[derive(Debug)]
enum WantKey {
    /// A plain column, by its real name.
    Column(String, SortOrder),
    /// An expression as PostgreSQL prints it (`canonical`), or as written when PostgreSQL
    /// could not read it.
    Expr {
        printed: String,
        canonical: bool,
        order: SortOrder,
    },
}

impl WantKey {
    async fn resolve(canon: &mut Canon<'_>, rel: &Relation, text: &str) -> WantKey {
        let spec = match KeySpec::parse(text) {
            Ok(s) => s,
            // expect.rs rejects these; kept as written so the check fails visibly.
            Err(_) => {
                return WantKey::Expr {
                    printed: text.to_string(),
                    canonical: false,
                    order: SortOrder::ASC,
                }
            }
        };
        if let Some(name) = identifier(&spec.target).filter(|n| rel.column(n).is_some()) {
            return WantKey::Column(name, spec.order);
        }
        match canon.index_key(&rel.name, &spec.target).await {
            Ok((Some(column), _)) => WantKey::Column(column, spec.order),
            Ok((None, printed)) => WantKey::Expr {
                printed,
                canonical: true,
                order: spec.order,
            },
            Err(_) => WantKey::Expr {
                printed: spec.target,
                canonical: false,
                order: spec.order,
            },
        }
    }

    fn matches(&self, key: &IndexKey) -> bool {
        match self {
            WantKey::Column(name, order) => {
                key.column.as_deref() == Some(name.as_str()) && key.order == *order
            }
            WantKey::Expr {
                printed,
                canonical,
                order,
            } => {
                key.order == *order
                    && if *canonical {
                        key.column.is_none() && key.printed == *printed
                    } else {
                        same_expr(printed, &key.printed)
                    }
            }
        }
    }
}

fn keys_match(want: &[WantKey], keys: &[IndexKey]) -> bool {
    want.len() == keys.len() && want.iter().zip(keys).all(|(w, k)| w.matches(k))
}

fn squash(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Same expression, modulo whitespace, case and one level of outer parentheses.
fn same_expr(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        let s = squash(s);
        let t = s.trim();
        if t.starts_with('(') && t.ends_with(')') {
            t[1..t.len() - 1].to_string()
        } else {
            t.to_string()
        }
    };
    squash(a) == squash(b) || strip(a) == strip(b)
}

fn action_name(c: char) -> &'static str {
    match c {
        'c' => "cascade",
        'n' => "set null",
        'd' => "set default",
        'r' => "restrict",
        _ => "no action",
    }
}

/// Runs every catalog assertion of `expect`.
pub(crate) async fn run(client: &Client, cat: &Catalog, expect: &Expect) -> Vec<Check> {
    let mut canon = match Canon::begin(client).await {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                K,
                "catalog assertions",
                format!("cannot open a transaction: {e}"),
            )]
        }
    };
    let mut out = Vec::new();
    for t in &expect.table {
        let at = expect.at(t.span());
        table(&mut canon, cat, t.get_ref(), &at, &mut out).await;
    }
    for (list, kind) in [
        (&expect.view, RelKind::View),
        (&expect.materialized_view, RelKind::MaterializedView),
    ] {
        for v in list {
            let v = v.get_ref();
            let (s, n) = expect::qualify(&v.name);
            let name = QualName::new(&s, &n);
            let label = format!("{} {}", kind.label(), name.short());
            match cat.relation(&name) {
                Some(rel) if rel.kind == kind => {
                    out.push(Check::pass(K, format!("{label} exists")));
                    if let Some(cols) = &v.columns {
                        let actual: Vec<String> =
                            rel.columns.iter().map(|c| c.name.clone()).collect();
                        out.push(Check::verdict(
                            K,
                            format!("{label} columns"),
                            &actual == cols,
                            format!(
                                "expected ({}), found ({})",
                                cols.join(", "),
                                actual.join(", ")
                            ),
                        ));
                    }
                    for idx in &v.indexes {
                        out.push(index(&mut canon, rel, idx).await);
                    }
                }
                Some(rel) => out.push(Check::fail(
                    K,
                    format!("{label} exists"),
                    format!("{} is a {}", name.short(), rel.kind.label()),
                )),
                None => out.push(Check::fail(K, format!("{label} exists"), "not found")),
            }
        }
    }
    for f in &expect.function {
        out.push(function(cat, f.get_ref()));
    }
    canon.end().await;
    out
}

async fn table(
    canon: &mut Canon<'_>,
    cat: &Catalog,
    t: &expect::Table,
    _at: &str,
    out: &mut Vec<Check>,
) {
    let (s, n) = expect::qualify(&t.name);
    let name = QualName::new(&s, &n);
    let (exists, rel) = table_exists(cat, &name);
    out.push(exists);
    let Some(rel) = rel else {
        return;
    };
    if t.exact_columns {
        out.push(no_other_columns(rel, t));
    }
    for c in &t.columns {
        out.push(column(canon, rel, c).await);
    }
    if let Some(pk) = &t.primary_key {
        out.push(primary_key(rel, pk));
    }
    for u in &t.unique {
        out.push(unique(rel, u));
    }
    for c in &t.checks {
        out.push(check(canon, rel, c).await);
    }
    for fk in &t.foreign_keys {
        out.push(foreign_key(rel, fk));
    }
    for idx in &t.indexes {
        out.push(index(canon, rel, idx).await);
    }
    for trg in &t.triggers {
        out.push(trigger(rel, trg));
    }
}

/// `name` is a table (ordinary or partitioned): the check, and the table if it is one.
fn table_exists<'c>(cat: &'c Catalog, name: &QualName) -> (Check, Option<&'c Relation>) {
    let title = format!("table {} exists", name.short());
    match cat.relation(name) {
        Some(r) if r.kind.is_table() => (Check::pass(K, title), Some(r)),
        Some(r) => (
            Check::fail(K, title, format!("it is a {}", r.kind.label())),
            None,
        ),
        None => (Check::fail(K, title, "not found"), None),
    }
}

/// `exact_columns`: the table has no column the expectation does not list.
fn no_other_columns(rel: &Relation, t: &expect::Table) -> Check {
    let expected: BTreeSet<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    let extra: Vec<&str> = rel
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .filter(|c| !expected.contains(c))
        .collect();
    Check::verdict(
        K,
        format!("table {} has no other columns", rel.name.short()),
        extra.is_empty(),
        format!("unexpected columns: {}", extra.join(", ")),
    )
}

/// The primary key is exactly `pk`, in order.
fn primary_key(rel: &Relation, pk: &[String]) -> Check {
    let actual = rel.primary_key().map(|p| p.columns.clone());
    Check::verdict(
        K,
        format!("table {} primary key ({})", rel.name.short(), pk.join(", ")),
        actual.as_deref() == Some(pk),
        match &actual {
            Some(a) => format!("primary key is ({})", a.join(", ")),
            None => "no primary key".into(),
        },
    )
}

/// Exactly the columns `u` (in any order) are unique: by a UNIQUE constraint, or by a
/// non-partial unique index on plain columns.
fn unique(rel: &Relation, u: &[String]) -> Check {
    let want: BTreeSet<&String> = u.iter().collect();
    let by_constraint = rel
        .constraints
        .iter()
        .any(|c| c.kind == 'u' && c.columns.iter().collect::<BTreeSet<_>>() == want);
    let by_index = rel.indexes.iter().any(|i| {
        i.unique
            && !i.primary
            && i.predicate.is_none()
            && i.keys.iter().all(|k| k.column.is_some())
            && i.columns.iter().collect::<BTreeSet<_>>() == want
    });
    Check::verdict(
        K,
        format!("table {} unique ({})", rel.name.short(), u.join(", ")),
        by_constraint || by_index,
        format!(
            "no UNIQUE constraint or unique index on exactly ({}) — duplicates are accepted",
            u.join(", ")
        ),
    )
}

async fn column(canon: &mut Canon<'_>, rel: &Relation, c: &expect::Column) -> Check {
    let title = format!("column {}.{}", rel.name.short(), c.name);
    let Some(col) = rel.column(&c.name) else {
        return Check::fail(K, title, "not found");
    };
    let mut problems = Vec::new();
    if let Some(t) = &c.type_name {
        match canon.type_name(t).await {
            Ok(canonical) if canonical == col.type_name => {}
            Ok(canonical) => {
                problems.push(format!("type is {}, expected {canonical}", col.type_name))
            }
            Err(e) => problems.push(format!(
                "expected type {t:?} is not a type PostgreSQL knows: {e}"
            )),
        }
    }
    if let Some(nullable) = c.nullable {
        if nullable == col.not_null {
            problems.push(format!(
                "is {}, expected {}",
                if col.not_null { "NOT NULL" } else { "nullable" },
                if nullable { "nullable" } else { "NOT NULL" }
            ));
        }
    }
    if c.no_default {
        if let Some(d) = &col.default {
            problems.push(format!("has default {d}, expected none"));
        }
    }
    if let Some(want) = &c.default {
        match &col.default {
            None => problems.push(format!("has no default, expected {want}")),
            Some(actual) => {
                let canonical = canon.default(&col.type_name, want).await;
                let ok = match &canonical {
                    Ok(cw) => same_expr(cw, actual),
                    Err(_) => same_expr(want, actual),
                };
                if !ok {
                    problems.push(format!(
                        "default is {actual}, expected {}",
                        canonical.unwrap_or_else(|_| want.clone())
                    ));
                }
            }
        }
    }
    if let Some(id) = c.identity {
        let want = match id {
            expect::Identity::Always => "a",
            expect::Identity::ByDefault => "d",
        };
        if col.identity != want {
            problems.push(format!("identity is {:?}, expected {want:?}", col.identity));
        }
    }
    if let Some(g) = &c.generated {
        if col.generated.is_empty() || !col.default.as_deref().is_some_and(|d| same_expr(d, g)) {
            problems.push(format!("is not generated as {g}"));
        }
    }
    Check::verdict(K, title, problems.is_empty(), problems.join("; "))
}

async fn check(canon: &mut Canon<'_>, rel: &Relation, c: &expect::Check) -> Check {
    let checks: Vec<_> = rel.constraints.iter().filter(|k| k.kind == 'c').collect();
    let label = c
        .name
        .clone()
        .or_else(|| c.expr.clone())
        .unwrap_or_default();
    let title = format!("check {}.{label}", rel.name.short());
    let canonical = match &c.expr {
        Some(e) => Some(
            canon
                .check(&rel.name, e)
                .await
                .unwrap_or_else(|_| e.clone()),
        ),
        None => None,
    };
    let matches = |k: &&crate::conform::catalog::Constraint| {
        c.name.as_ref().is_none_or(|n| &k.name == n)
            && canonical
                .as_ref()
                .is_none_or(|e| k.check_expr.as_deref().is_some_and(|a| same_expr(a, e)))
    };
    if checks.iter().any(matches) {
        return Check::pass(K, title);
    }
    let detail = match (
        &c.name,
        checks.iter().find(|k| c.name.as_ref() == Some(&k.name)),
    ) {
        (Some(_), Some(k)) => format!(
            "expression is {}, expected {}",
            k.def,
            canonical.unwrap_or_default()
        ),
        _ => format!(
            "no such CHECK; the table has: {}",
            if checks.is_empty() {
                "none".to_string()
            } else {
                checks
                    .iter()
                    .map(|k| format!("{} {}", k.name, k.def))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        ),
    };
    Check::fail(K, title, detail)
}

fn foreign_key(rel: &Relation, fk: &expect::ForeignKey) -> Check {
    let (s, n) = expect::qualify(&fk.references);
    let target = QualName::new(&s, &n);
    let title = format!(
        "foreign key {}({}) → {}",
        rel.name.short(),
        fk.columns.join(", "),
        target.short()
    );
    let found = rel.constraints.iter().find(|c| {
        c.kind == 'f'
            && c.columns == fk.columns
            && c.ref_table.as_ref() == Some(&target)
            && fk.name.as_ref().is_none_or(|n| &c.name == n)
            && fk.ref_columns.as_ref().is_none_or(|r| &c.ref_columns == r)
    });
    let Some(c) = found else {
        return Check::fail(K, title, "no such foreign key");
    };
    let mut problems = Vec::new();
    if let Some(a) = fk.on_delete {
        if a.code() != c.on_delete {
            problems.push(format!(
                "ON DELETE is {}, expected {}",
                action_name(c.on_delete),
                action_name(a.code())
            ));
        }
    }
    if let Some(a) = fk.on_update {
        if a.code() != c.on_update {
            problems.push(format!(
                "ON UPDATE is {}, expected {}",
                action_name(c.on_update),
                action_name(a.code())
            ));
        }
    }
    Check::verdict(K, title, problems.is_empty(), problems.join("; "))
}

async fn index(canon: &mut Canon<'_>, rel: &Relation, want: &expect::Index) -> Check {
    let label = want.name.clone().unwrap_or_else(|| {
        format!(
            "on ({})",
            want.columns.clone().unwrap_or_default().join(", ")
        )
    });
    let title = format!("index {}.{label}", rel.name.short());
    let cols = want_keys(canon, rel, want).await;
    let pred = want_predicate(canon, rel, want).await;
    let candidates: Vec<_> = rel
        .indexes
        .iter()
        .filter(|i| want.name.as_ref().is_none_or(|n| &i.name == n))
        .filter(|i| want.name.is_some() || cols.as_ref().is_none_or(|c| keys_match(c, &i.keys)))
        .collect();
    let Some(idx) = candidates.first() else {
        return Check::fail(
            K,
            title,
            format!(
                "not found; indexes on {}: {}",
                rel.name.short(),
                rel.indexes
                    .iter()
                    .map(|i| i.def.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
    };
    let problems = index_problems(idx, want, cols.as_deref(), pred.as_ref());
    Check::verdict(
        K,
        title,
        problems.is_empty(),
        format!("{}: {}", idx.def, problems.join("; ")),
    )
}

/// The expected key columns, if given: by real name, expressions as PostgreSQL prints them.
async fn want_keys(
    canon: &mut Canon<'_>,
    rel: &Relation,
    want: &expect::Index,
) -> Option<Vec<WantKey>> {
    let cs = want.columns.as_ref()?;
    let mut v = Vec::new();
    for c in cs {
        v.push(WantKey::resolve(canon, rel, c).await);
    }
    Some(v)
}

/// The expected predicate, if given, as PostgreSQL prints it: `Some(None)` for "not
/// partial" (an empty predicate).
async fn want_predicate(
    canon: &mut Canon<'_>,
    rel: &Relation,
    want: &expect::Index,
) -> Option<Option<String>> {
    match &want.predicate {
        Some(p) if !p.is_empty() => {
            let first = rel
                .columns
                .first()
                .map(|c| c.name.clone())
                .unwrap_or_default();
            Some(Some(
                canon
                    .predicate(&rel.name, &first, p)
                    .await
                    .unwrap_or_else(|_| p.clone()),
            ))
        }
        Some(_) => Some(None),
        None => None,
    }
}

/// How `idx` differs from what `want` asks for (`cols` and `pred` already resolved).
fn index_problems(
    idx: &Index,
    want: &expect::Index,
    cols: Option<&[WantKey]>,
    pred: Option<&Option<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(c) = cols {
        if !keys_match(c, &idx.keys) {
            problems.push(format!(
                "columns are ({}), expected ({})",
                idx.keys
                    .iter()
                    .map(|k| k.label())
                    .collect::<Vec<_>>()
                    .join(", "),
                want.columns.clone().unwrap_or_default().join(", ")
            ));
        }
    }
    if let Some(u) = want.unique {
        if u != idx.unique {
            problems.push(format!("is {}unique", if idx.unique { "" } else { "not " }));
        }
    }
    if let Some(p) = pred {
        let ok = match (p, &idx.predicate) {
            (None, None) => true,
            (Some(a), Some(b)) => same_expr(a, b),
            _ => false,
        };
        if !ok {
            problems.push(format!(
                "predicate is {}, expected {}",
                idx.predicate.as_deref().unwrap_or("(none: not partial)"),
                p.as_deref().unwrap_or("(none: not partial)")
            ));
        }
    }
    if let Some(m) = &want.method {
        if !m.eq_ignore_ascii_case(&idx.method) {
            problems.push(format!("method is {}, expected {m}", idx.method));
        }
    }
    if let Some(inc) = &want.include {
        if inc != &idx.include {
            problems.push(format!(
                "INCLUDE ({}), expected ({})",
                idx.include.join(", "),
                inc.join(", ")
            ));
        }
    }
    problems
}

fn trigger(rel: &Relation, want: &expect::Trigger) -> Check {
    let title = format!("trigger {}.{}", rel.name.short(), want.name);
    let Some(t) = rel.triggers.iter().find(|t| t.name == want.name) else {
        return Check::fail(K, title, "not found");
    };
    let mut problems = Vec::new();
    if let Some(timing) = want.timing {
        let w = match timing {
            expect::Timing::Before => "before",
            expect::Timing::After => "after",
            expect::Timing::InsteadOf => "instead of",
        };
        if w != t.timing {
            problems.push(format!("fires {}, expected {w}", t.timing));
        }
    }
    if let Some(level) = want.level {
        let w = match level {
            expect::Level::Row => "row",
            expect::Level::Statement => "statement",
        };
        if w != t.level {
            problems.push(format!("is FOR EACH {}, expected {w}", t.level));
        }
    }
    if let Some(events) = &want.events {
        let w: BTreeSet<&str> = events
            .iter()
            .map(|e| match e {
                expect::Event::Insert => "insert",
                expect::Event::Update => "update",
                expect::Event::Delete => "delete",
                expect::Event::Truncate => "truncate",
            })
            .collect();
        if w != t.events {
            problems.push(format!(
                "events are {}, expected {}",
                t.events.iter().copied().collect::<Vec<_>>().join("/"),
                w.into_iter().collect::<Vec<_>>().join("/")
            ));
        }
    }
    if let Some(f) = &want.function {
        let ok = if f.contains('.') {
            t.function.to_string() == *f
        } else {
            t.function.name == *f
        };
        if !ok {
            problems.push(format!("executes {}, expected {f}", t.function));
        }
    }
    Check::verdict(
        K,
        title,
        problems.is_empty(),
        format!("{}: {}", t.def, problems.join("; ")),
    )
}

fn function(cat: &Catalog, want: &expect::Function) -> Check {
    let (s, n) = expect::qualify(&want.name);
    let title = format!(
        "function {}{}",
        want.name,
        want.args
            .as_ref()
            .map(|a| format!("({a})"))
            .unwrap_or_default()
    );
    let all: Vec<_> = cat
        .functions
        .iter()
        .filter(|f| f.name.schema == s && f.name.name == n)
        .collect();
    if all.is_empty() {
        return Check::fail(K, title, "not found");
    }
    let matching: Vec<_> = all
        .iter()
        .filter(|f| {
            want.args
                .as_ref()
                .is_none_or(|a| squash(a) == squash(&f.args))
        })
        .collect();
    let Some(f) = matching.first() else {
        return Check::fail(
            K,
            title,
            format!(
                "no overload with these arguments; found ({})",
                all.iter()
                    .map(|f| f.args.clone())
                    .collect::<Vec<_>>()
                    .join("), (")
            ),
        );
    };
    let mut problems = Vec::new();
    if let Some(r) = &want.returns {
        if squash(r) != squash(&f.result) {
            problems.push(format!("returns {}, expected {r}", f.result));
        }
    }
    if let Some(l) = &want.language {
        if !l.eq_ignore_ascii_case(&f.language) {
            problems.push(format!("language {}, expected {l}", f.language));
        }
    }
    if let Some(v) = want.volatility {
        if v.code() != f.volatility {
            problems.push(format!(
                "volatility {}, expected {}",
                f.volatility,
                v.code()
            ));
        }
    }
    if let Some(sd) = want.security_definer {
        if sd != f.security_definer {
            problems.push(format!(
                "security definer is {}, expected {sd}",
                f.security_definer
            ));
        }
    }
    Check::verdict(K, title, problems.is_empty(), problems.join("; "))
}
