//! `expect.toml`: what a pack declares about its final schema and its behaviour
//! (docs/conformance.md, section 3). Every key is checked (`deny_unknown_fields`), and errors
//! carry `file:line:column` from the TOML spans, so a typo never silently drops a check.

use std::path::Path;

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::conform::index_key::{column_name, KeySpec};
use crate::schema_pack::line_col;
use crate::Error;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub(crate) migrations: Option<MigrationsTable>,
    #[serde(default)]
    pub(crate) table: Vec<Spanned<Table>>,
    #[serde(default)]
    pub(crate) view: Vec<Spanned<View>>,
    #[serde(default)]
    pub(crate) materialized_view: Vec<Spanned<View>>,
    #[serde(default)]
    pub(crate) function: Vec<Spanned<Function>>,
    #[serde(default)]
    pub(crate) seed: Vec<Spanned<Seed>>,
    #[serde(default)]
    pub(crate) waive: Vec<Spanned<Waiver>>,
    #[serde(default)]
    pub(crate) succeeds: Vec<Spanned<Succeeds>>,
    #[serde(default)]
    pub(crate) fails: Vec<Spanned<Fails>>,
    #[serde(default)]
    pub(crate) query: Vec<Spanned<Query>>,
    #[serde(default)]
    pub(crate) notify: Vec<Spanned<Notify>>,
    #[serde(default)]
    pub(crate) cascade: Vec<Spanned<Cascade>>,
    /// Filled after parsing: 1-based line of each span start, for messages.
    #[serde(skip)]
    pub(crate) source: String,
    #[serde(skip)]
    pub(crate) path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MigrationsTable {
    pub(crate) table: Option<String>,
    pub(crate) version_column: Option<String>,
    /// SQL a migration runner runs once before the first migration (creating its table).
    pub(crate) setup: Option<String>,
    /// SQL a migration runner runs after each migration, in its transaction, to record it;
    /// `{file}`, `{stem}`, `{number}`, `{digits}`, `{sql}` become SQL literals.
    pub(crate) record: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Table {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) exact_columns: bool,
    #[serde(default)]
    pub(crate) columns: Vec<Column>,
    pub(crate) primary_key: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) unique: Vec<Vec<String>>,
    #[serde(default)]
    pub(crate) checks: Vec<Check>,
    #[serde(default)]
    pub(crate) foreign_keys: Vec<ForeignKey>,
    #[serde(default)]
    pub(crate) indexes: Vec<Index>,
    #[serde(default)]
    pub(crate) triggers: Vec<Trigger>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Column {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) type_name: Option<String>,
    pub(crate) nullable: Option<bool>,
    pub(crate) default: Option<String>,
    #[serde(default)]
    pub(crate) no_default: bool,
    pub(crate) identity: Option<Identity>,
    pub(crate) generated: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum Identity {
    #[serde(rename = "always")]
    Always,
    #[serde(rename = "by default")]
    ByDefault,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Check {
    pub name: Option<String>,
    pub(crate) expr: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForeignKey {
    pub(crate) name: Option<String>,
    pub(crate) columns: Vec<String>,
    pub(crate) references: String,
    pub(crate) ref_columns: Option<Vec<String>>,
    pub(crate) on_delete: Option<Action>,
    pub(crate) on_update: Option<Action>,
}

/// A referential action, as written in `expect.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum Action {
    #[serde(rename = "cascade")]
    Cascade,
    #[serde(rename = "set null")]
    SetNull,
    #[serde(rename = "set default")]
    SetDefault,
    #[serde(rename = "restrict")]
    Restrict,
    #[serde(rename = "no action")]
    #[allow(clippy::enum_variant_names)] // PostgreSQL's name for it
    NoAction,
}

impl Action {
    /// pg_constraint.confdeltype / confupdtype letter.
    pub(crate) fn code(self) -> char {
        match self {
            Action::Cascade => 'c',
            Action::SetNull => 'n',
            Action::SetDefault => 'd',
            Action::Restrict => 'r',
            Action::NoAction => 'a',
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Index {
    pub(crate) name: Option<String>,
    pub(crate) columns: Option<Vec<String>>,
    pub(crate) unique: Option<bool>,
    #[serde(rename = "where")]
    pub(crate) predicate: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) include: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trigger {
    pub(crate) name: String,
    pub(crate) timing: Option<Timing>,
    pub(crate) level: Option<Level>,
    pub(crate) events: Option<Vec<Event>>,
    pub(crate) function: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum Timing {
    #[serde(rename = "before")]
    Before,
    #[serde(rename = "after")]
    After,
    #[serde(rename = "instead of")]
    InsteadOf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum Level {
    #[serde(rename = "row")]
    Row,
    #[serde(rename = "statement")]
    Statement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub(crate) enum Event {
    #[serde(rename = "insert")]
    Insert,
    #[serde(rename = "update")]
    Update,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "truncate")]
    Truncate,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct View {
    pub(crate) name: String,
    pub(crate) columns: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) indexes: Vec<Index>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Function {
    pub(crate) name: String,
    pub(crate) args: Option<String>,
    pub(crate) returns: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) volatility: Option<Volatility>,
    pub(crate) security_definer: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

impl Volatility {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Volatility::Immutable => "i",
            Volatility::Stable => "s",
            Volatility::Volatile => "v",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Seed {
    pub(crate) before: u64,
    pub(crate) sql: String,
    #[serde(default)]
    pub(crate) after: Vec<Query>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Waiver {
    pub(crate) rule: String,
    pub(crate) object: String,
    pub(crate) reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Succeeds {
    pub(crate) name: Option<String>,
    pub(crate) sql: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fails {
    pub(crate) name: Option<String>,
    pub(crate) sql: String,
    pub(crate) sqlstate: String,
    pub(crate) constraint: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Query {
    pub(crate) name: Option<String>,
    pub(crate) sql: String,
    pub(crate) rows: Option<Vec<Vec<Cell>>>,
    pub(crate) row_count: Option<u64>,
    #[serde(default)]
    pub(crate) unordered: bool,
    pub(crate) null: Option<String>,
}

/// A cell of an expected row: compared with PostgreSQL's text output.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Cell {
    pub(crate) fn as_pg_text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Bool(b) => if *b { "t" } else { "f" }.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Notify {
    pub(crate) name: Option<String>,
    pub(crate) channel: String,
    pub(crate) sql: String,
    pub(crate) payload: Option<String>,
    pub(crate) payload_json: Option<toml::Value>,
    pub(crate) timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cascade {
    pub(crate) name: Option<String>,
    pub(crate) setup: Option<String>,
    pub(crate) delete: String,
    pub(crate) count: String,
    #[serde(default)]
    pub(crate) expect: i64,
}

/// One behaviour assertion, in file order.
#[derive(Debug, Clone)]
pub(crate) enum Behaviour {
    Succeeds(Succeeds),
    Fails(Fails),
    Query(Query),
    Notify(Notify),
    Cascade(Cascade),
}

impl Expect {
    /// Reads `path`; a missing file is an empty expectation set.
    pub(crate) fn load(path: &Path) -> Result<Expect, Error> {
        if !path.exists() {
            return Ok(Expect {
                path: path.display().to_string(),
                ..Expect::default()
            });
        }
        let source = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        Expect::parse(&source, &path.display().to_string())
    }

    /// Parses and validates; errors read `path:line:column: message`.
    pub(crate) fn parse(source: &str, path: &str) -> Result<Expect, Error> {
        let mut expect: Expect = toml::from_str(source).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|s| line_col(source, s.start))
                .unwrap_or((1, 1));
            Error::BadPack(format!("{path}:{line}:{col}: {}", e.message()))
        })?;
        expect.source = source.to_string();
        expect.path = path.to_string();
        expect.validate()?;
        expect.unquote_column_names();
        Ok(expect)
    }

    /// Column names may be written quoted (`"conversationId"`); the engine compares real names.
    fn unquote_column_names(&mut self) {
        let unquote = |names: &mut Vec<String>| {
            for n in names.iter_mut() {
                *n = column_name(n);
            }
        };
        for t in &mut self.table {
            let t = t.get_mut();
            for c in &mut t.columns {
                c.name = column_name(&c.name);
            }
            if let Some(pk) = &mut t.primary_key {
                unquote(pk);
            }
            t.unique.iter_mut().for_each(unquote);
            for fk in &mut t.foreign_keys {
                unquote(&mut fk.columns);
                if let Some(rc) = &mut fk.ref_columns {
                    unquote(rc);
                }
            }
            for i in &mut t.indexes {
                if let Some(inc) = &mut i.include {
                    unquote(inc);
                }
            }
        }
        for v in self
            .view
            .iter_mut()
            .chain(self.materialized_view.iter_mut())
        {
            let v = v.get_mut();
            if let Some(cols) = &mut v.columns {
                unquote(cols);
            }
            for i in &mut v.indexes {
                if let Some(inc) = &mut i.include {
                    unquote(inc);
                }
            }
        }
    }

    /// `path:line` of a span start.
    pub(crate) fn at(&self, span: std::ops::Range<usize>) -> String {
        format!("{}:{}", self.path, line_col(&self.source, span.start).0)
    }

    /// Every key column parses: a column or expression, then `[ASC|DESC] [NULLS FIRST|LAST]`.
    fn validate_index_columns(
        &self,
        i: &Index,
        relation: &str,
        span: std::ops::Range<usize>,
    ) -> Result<(), Error> {
        for c in i.columns.iter().flatten() {
            if let Err(e) = KeySpec::parse(c) {
                return self.bad(span, format!("{relation}: {e}"));
            }
        }
        Ok(())
    }

    fn bad<T>(
        &self,
        span: std::ops::Range<usize>,
        msg: impl std::fmt::Display,
    ) -> Result<T, Error> {
        let (line, col) = line_col(&self.source, span.start);
        Err(Error::BadPack(format!("{}:{line}:{col}: {msg}", self.path)))
    }

    /// Rules serde cannot express (either/or keys, value formats).
    fn validate(&self) -> Result<(), Error> {
        for t in &self.table {
            for c in &t.get_ref().checks {
                if c.name.is_none() && c.expr.is_none() {
                    return self.bad(
                        t.span(),
                        format!(
                            "table {}: a check needs `name`, `expr` or both",
                            t.get_ref().name
                        ),
                    );
                }
            }
            for c in &t.get_ref().columns {
                if c.no_default && c.default.is_some() {
                    return self.bad(
                        t.span(),
                        format!(
                            "table {} column {}: `default` and `no_default` contradict",
                            t.get_ref().name,
                            c.name
                        ),
                    );
                }
            }
            for i in &t.get_ref().indexes {
                if i.name.is_none() && i.columns.is_none() {
                    return self.bad(
                        t.span(),
                        format!(
                            "table {}: an index needs `name` or `columns`",
                            t.get_ref().name
                        ),
                    );
                }
                self.validate_index_columns(i, &t.get_ref().name, t.span())?;
            }
        }
        for v in self.view.iter().chain(&self.materialized_view) {
            for i in &v.get_ref().indexes {
                self.validate_index_columns(i, &v.get_ref().name, v.span())?;
            }
        }
        for f in &self.fails {
            let s = &f.get_ref().sqlstate;
            if s.len() != 5 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                return self.bad(
                    f.span(),
                    format!("sqlstate {s:?} is not a 5-character SQLSTATE such as \"23505\""),
                );
            }
        }
        for q in &self.query {
            self.validate_query(q.get_ref(), q.span())?;
        }
        for s in &self.seed {
            for q in &s.get_ref().after {
                self.validate_query(q, s.span())?;
            }
        }
        for n in &self.notify {
            let n2 = n.get_ref();
            if n2.payload.is_some() && n2.payload_json.is_some() {
                return self.bad(n.span(), "give `payload` or `payload_json`, not both");
            }
        }
        Ok(())
    }

    fn validate_query(&self, q: &Query, span: std::ops::Range<usize>) -> Result<(), Error> {
        match (&q.rows, q.row_count) {
            (Some(_), Some(_)) => self.bad(span, "give `rows` or `row_count`, not both"),
            (None, None) => self.bad(span, "a query needs `rows` or `row_count`"),
            _ => Ok(()),
        }
    }

    /// Behaviour assertions in the order they appear in the file, with their `path:line`.
    pub(crate) fn behaviours(&self) -> Vec<(String, Behaviour)> {
        let mut all: Vec<(usize, Behaviour)> = Vec::new();
        all.extend(
            self.succeeds
                .iter()
                .map(|s| (s.span().start, Behaviour::Succeeds(s.get_ref().clone()))),
        );
        all.extend(
            self.fails
                .iter()
                .map(|s| (s.span().start, Behaviour::Fails(s.get_ref().clone()))),
        );
        all.extend(
            self.query
                .iter()
                .map(|s| (s.span().start, Behaviour::Query(s.get_ref().clone()))),
        );
        all.extend(
            self.notify
                .iter()
                .map(|s| (s.span().start, Behaviour::Notify(s.get_ref().clone()))),
        );
        all.extend(
            self.cascade
                .iter()
                .map(|s| (s.span().start, Behaviour::Cascade(s.get_ref().clone()))),
        );
        all.sort_by_key(|(start, _)| *start);
        all.into_iter()
            .map(|(start, b)| (self.at(start..start), b))
            .collect()
    }
}

/// Splits `schema.name` (default schema `public`).
pub(crate) fn qualify(name: &str) -> (String, String) {
    match name.split_once('.') {
        Some((s, n)) => (s.to_string(), n.to_string()),
        None => ("public".to_string(), name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_reported_with_line_and_column() {
        let err = Expect::parse(
            "[[table]]\nname = \"users\"\ncolums = []\n",
            "p/expect.toml",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("p/expect.toml:3:1"), "{msg}");
        assert!(msg.contains("colums"), "{msg}");
    }

    #[test]
    fn behaviours_keep_file_order_across_kinds() {
        let e = Expect::parse(
            "[[fails]]\nsql = \"a\"\nsqlstate = \"23505\"\n[[succeeds]]\nsql = \"b\"\n[[fails]]\nsql = \"c\"\nsqlstate = \"23503\"\n",
            "x.toml",
        )
        .unwrap();
        let order: Vec<String> = e
            .behaviours()
            .into_iter()
            .map(|(_, b)| match b {
                Behaviour::Succeeds(s) => s.sql,
                Behaviour::Fails(f) => f.sql,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, vec!["a", "b", "c"]);
    }

    #[test]
    fn bad_sqlstate_and_query_shape_are_rejected() {
        assert!(Expect::parse("[[fails]]\nsql = \"x\"\nsqlstate = \"235\"\n", "x").is_err());
        assert!(Expect::parse("[[query]]\nsql = \"x\"\n", "x").is_err());
        assert!(Expect::parse("[[query]]\nsql = \"x\"\nrows = [[1, \"a\", true]]\n", "x").is_ok());
    }

    #[test]
    fn the_documented_example_parses() {
        let doc = include_str!("../../docs/conformance.md");
        let start = doc
            .find("### 3.10 A complete example")
            .expect("example section");
        let body = &doc[start..];
        let toml_start = body.find("```toml\n").unwrap() + 8;
        let toml_end = body[toml_start..].find("```").unwrap() + toml_start;
        let e = Expect::parse(&body[toml_start..toml_end], "docs/conformance.md").unwrap();
        assert_eq!(e.table.len(), 3);
        assert_eq!(e.behaviours().len(), 5);
    }
}
