//! The `workload.toml` of a schema pack: how to populate the schema for N devices and which
//! parameterised operations to run against it, at what rate, under which budgets.
//! The format is documented in `docs/workload.md`. Every error names `file:line:column`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::Error;

/// A parsed, validated workload.
#[derive(Debug, Clone)]
pub struct Workload {
    pub(crate) path: PathBuf,
    pub seed: Seed,
    pub(crate) load: Load,
    pub operations: Vec<Operation>,
}

/// How to populate the schema for a scale of N devices.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Named counts derived from the scale, in declaration order; `devices` is always present.
    pub(crate) counts: Vec<(String, CountExpr)>,
    /// Statements run in order; `${name}` is replaced by the integer count `name` (operation
    /// SQL may use `${name}` too).
    pub statements: Vec<SeedStatement>,
}

#[derive(Debug, Clone)]
pub struct SeedStatement {
    pub(crate) sql: String,
    /// `file:line:column` of the statement in workload.toml, for error messages.
    pub(crate) at: String,
}

/// `devices`, `devices / 10`, `devices * 5`, `users * 2 + 1` is not supported: one name, an
/// optional `*` or `/` by a positive integer, or a plain integer. Small on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CountExpr {
    Literal(u64),
    Scaled { name: String, op: ScaleOp, by: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScaleOp {
    Times,
    Div,
    Same,
}

/// Arrival process and connections.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    /// Operations per second, all operations together (open model: arrivals do not wait for
    /// completions).
    pub(crate) rate: f64,
    pub(crate) connections: usize,
    pub(crate) warmup: Duration,
    /// Largest share of failed operations (per operation) that still passes.
    pub(crate) max_error_rate: f64,
    /// Seed of the operation mix and the generated parameters, so runs are repeatable.
    pub(crate) rng_seed: u64,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub(crate) weight: u32,
    pub(crate) sql: String,
    pub(crate) params: Vec<Param>,
    pub(crate) budget_p95: Option<Duration>,
    /// Where the budget comes from (seed document and section).
    pub(crate) source: Option<String>,
    /// The result column holding the one-time prekey this operation hands out (`claims`): a
    /// value returned twice in a run is an integrity failure.
    pub(crate) claims: Option<String>,
    /// `file:line:column` of the operation's `sql`.
    pub(crate) at: String,
}

/// One generated positional parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Param {
    /// A uniformly random ordinal in `1..=count` (int8).
    Pick(String),
    /// A uniformly random integer in `min..=max` (int8).
    Int(i64, i64),
    /// A run-wide unique, increasing integer starting at 1 (int8).
    Seq,
    /// Random bytes (bytea).
    Bytes(usize),
    /// Random bytes as lower-case hex text (text).
    Hex(usize),
    /// Random bytes as standard base64 text (text).
    Base64(usize),
    /// A random UUID v4 (uuid).
    Uuid,
}

impl Param {
    /// The PostgreSQL type the parameter is sent as.
    pub(crate) fn pg_type(&self) -> tokio_postgres::types::Type {
        use tokio_postgres::types::Type;
        match self {
            Param::Pick(_) | Param::Int(..) | Param::Seq => Type::INT8,
            Param::Bytes(_) => Type::BYTEA,
            Param::Hex(_) | Param::Base64(_) => Type::TEXT,
            Param::Uuid => Type::UUID,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Raw TOML shape
// ------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    seed: RawSeed,
    load: RawLoad,
    #[serde(rename = "operation")]
    operations: Vec<RawOperation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    #[serde(default)]
    counts: BTreeMap<String, Spanned<toml::Value>>,
    sql: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    rate: Spanned<f64>,
    connections: Spanned<i64>,
    #[serde(default)]
    warmup: Option<Spanned<String>>,
    #[serde(default)]
    max_error_rate: Option<Spanned<f64>>,
    #[serde(default)]
    rng_seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    name: Spanned<String>,
    #[serde(default)]
    weight: Option<Spanned<i64>>,
    sql: Spanned<String>,
    #[serde(default)]
    params: Vec<Spanned<RawParam>>,
    #[serde(default)]
    budget: Option<RawBudget>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    claims: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    p95: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    pick: Option<String>,
    int: Option<[i64; 2]>,
    seq: Option<bool>,
    bytes: Option<usize>,
    hex: Option<usize>,
    base64: Option<usize>,
    uuid: Option<bool>,
}

// ------------------------------------------------------------------------------------------
// Parsing and validation
// ------------------------------------------------------------------------------------------

/// Reads and validates a workload file.
pub(crate) fn load(path: &Path) -> Result<Workload, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Where the workload text is, for messages: `file:line:column`.
struct Src<'a> {
    path: &'a Path,
    text: &'a str,
}

type Span = std::ops::Range<usize>;

impl Src<'_> {
    fn at(&self, span: Span) -> String {
        location(self.path, self.text, span.start)
    }

    fn bad(&self, span: Span, msg: String) -> Error {
        Error::BadInput(format!("{}: {msg}", self.at(span)))
    }
}

/// Parses workload text; `path` is only used in messages. One phase per section.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Workload, Error> {
    let src = Src { path, text };
    let raw: RawWorkload = toml::from_str(text).map_err(|e| {
        let start = e.span().map(|s| s.start).unwrap_or(0);
        src.bad(start..start, e.message().to_string())
    })?;
    let counts = seed_counts(&raw.seed, &src)?;
    let names: Vec<String> = counts.iter().map(|(n, _)| n.clone()).collect();
    let statements = seed_statements(&raw.seed, &names, &src)?;
    let load = load_section(&raw.load, &src)?;
    if raw.operations.is_empty() {
        return Err(src.bad(0..0, "a workload needs at least one [[operation]]".into()));
    }
    let mut operations: Vec<Operation> = Vec::new();
    for op in raw.operations {
        let name = op.name.get_ref();
        if operations.iter().any(|o| &o.name == name) {
            return Err(src.bad(
                op.name.span(),
                format!("operation `{name}` is defined twice"),
            ));
        }
        operations.push(operation(op, &names, &src)?);
    }
    Ok(Workload {
        path: path.to_path_buf(),
        seed: Seed { counts, statements },
        load,
        operations,
    })
}

/// `[seed.counts]`: `devices` first, then each count, every reference to a known count.
fn seed_counts(raw: &RawSeed, src: &Src) -> Result<Vec<(String, CountExpr)>, Error> {
    let mut counts: Vec<(String, CountExpr)> = vec![(
        "devices".to_string(),
        CountExpr::Scaled {
            name: "devices".into(),
            op: ScaleOp::Same,
            by: 1,
        },
    )];
    for (name, value) in &raw.counts {
        let span = value.span();
        if name == "devices" {
            return Err(src.bad(
                span,
                "`devices` is the scale itself and cannot be redefined".into(),
            ));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(src.bad(
                span,
                format!("count name `{name}`: use letters, digits and `_`"),
            ));
        }
        let expr = match value.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => CountExpr::Literal(*n as u64),
            toml::Value::String(s) => parse_count(s).map_err(|m| src.bad(span.clone(), format!("count `{name}`: {m}")))?,
            _ => return Err(src.bad(span, format!("count `{name}`: expected a string like \"devices / 2\" or a non-negative integer"))),
        };
        counts.push((name.clone(), expr));
    }
    // Every count refers only to counts that exist (no cycles: references go to `devices`
    // or to another count, resolved iteratively at evaluation; reject unknown names here).
    let names: Vec<String> = counts.iter().map(|(n, _)| n.clone()).collect();
    for (name, value) in &raw.counts {
        if let Ok(CountExpr::Scaled { name: r, .. }) = value
            .get_ref()
            .as_str()
            .map(parse_count)
            .unwrap_or(Ok(CountExpr::Literal(0)))
        {
            if !names.contains(&r) {
                return Err(src.bad(
                    value.span(),
                    format!(
                        "count `{name}` refers to unknown count `{r}` (known: {})",
                        names.join(", ")
                    ),
                ));
            }
            if r == *name {
                return Err(src.bad(value.span(), format!("count `{name}` refers to itself")));
            }
        }
    }
    // Resolve once with a dummy scale to catch cycles early.
    resolve_counts(&counts, 1000).map_err(|m| src.bad(0..0, m))?;
    Ok(counts)
}

/// `[seed] sql`: at least one statement, each using only known counts.
fn seed_statements(
    raw: &RawSeed,
    names: &[String],
    src: &Src,
) -> Result<Vec<SeedStatement>, Error> {
    if raw.sql.is_empty() {
        return Err(src.bad(0..0, "[seed] sql must hold at least one statement".into()));
    }
    let mut statements = Vec::new();
    for stmt in &raw.sql {
        known_counts(stmt, names, "seed SQL", src)?;
        statements.push(SeedStatement {
            sql: stmt.get_ref().clone(),
            at: src.at(stmt.span()),
        });
    }
    Ok(statements)
}

/// Every `${name}` in `sql` is a count.
fn known_counts(
    sql: &Spanned<String>,
    names: &[String],
    what: &str,
    src: &Src,
) -> Result<(), Error> {
    match placeholders_named(sql.get_ref())
        .into_iter()
        .find(|var| !names.contains(var))
    {
        Some(var) => Err(src.bad(
            sql.span(),
            format!(
                "{what} uses ${{{var}}}, which is not a count (known: {})",
                names.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// `[load]`: rate, connections, warm-up and error rate within their bounds.
fn load_section(raw: &RawLoad, src: &Src) -> Result<Load, Error> {
    let rate = *raw.rate.get_ref();
    let max_rate = crate::scenario::limits::MAX_RATE;
    if !(rate.is_finite() && rate > 0.0 && rate <= max_rate) {
        return Err(src.bad(
            raw.rate.span(),
            format!(
                "rate must be above 0 and at most {max_rate} operations per second, got {rate}"
            ),
        ));
    }
    let connections = *raw.connections.get_ref();
    if !(1..=512).contains(&connections) {
        return Err(src.bad(
            raw.connections.span(),
            "connections must be between 1 and 512".into(),
        ));
    }
    let warmup = match &raw.warmup {
        Some(w) => humantime::parse_duration(w.get_ref())
            .map_err(|e| src.bad(w.span(), format!("warmup: {e}")))?,
        None => Duration::from_secs(1),
    };
    let max_wait = crate::scenario::limits::MAX_WAIT;
    if warmup > max_wait {
        let span = raw.warmup.as_ref().map(|w| w.span()).unwrap_or(0..0);
        return Err(src.bad(
            span,
            format!(
                "warmup is above the bound of {}",
                crate::scenario::limits::show(max_wait)
            ),
        ));
    }
    let max_error_rate = match &raw.max_error_rate {
        Some(r) if (0.0..=1.0).contains(r.get_ref()) => *r.get_ref(),
        Some(r) => return Err(src.bad(r.span(), "max_error_rate must be between 0 and 1".into())),
        None => 0.0,
    };
    Ok(Load {
        rate,
        connections: connections as usize,
        warmup,
        max_error_rate,
        rng_seed: raw.rng_seed.unwrap_or(1),
    })
}

/// One `[[operation]]`: name, weight, params matching the SQL's placeholders, budget, claims.
fn operation(op: RawOperation, names: &[String], src: &Src) -> Result<Operation, Error> {
    let name = op.name.get_ref().clone();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(src.bad(
            op.name.span(),
            format!("operation name `{name}`: use letters, digits, `_` and `-`"),
        ));
    }
    let weight = match &op.weight {
        Some(w) if *w.get_ref() >= 1 && *w.get_ref() <= 1_000_000 => *w.get_ref() as u32,
        Some(w) => return Err(src.bad(w.span(), "weight must be between 1 and 1000000".into())),
        None => 1,
    };
    let mut params = Vec::new();
    for p in &op.params {
        params.push(
            param(p.get_ref(), names)
                .map_err(|m| src.bad(p.span(), format!("operation `{name}`: {m}")))?,
        );
    }
    known_counts(&op.sql, names, &format!("operation `{name}`"), src)?;
    let highest = highest_positional(op.sql.get_ref());
    if highest != params.len() {
        return Err(src.bad(
            op.sql.span(),
            format!("operation `{name}`: the SQL uses ${highest} as its highest parameter but {} params are declared", params.len()),
        ));
    }
    let budget_p95 = match &op.budget {
        Some(b) => Some(
            humantime::parse_duration(b.p95.get_ref())
                .map_err(|e| src.bad(b.p95.span(), format!("budget p95: {e}")))?,
        ),
        None => None,
    };
    let claims = match &op.claims {
        Some(c) if c.get_ref().trim().is_empty() => {
            return Err(src.bad(
                c.span(),
                format!("operation `{name}`: claims names no column"),
            ))
        }
        Some(c) => Some(c.get_ref().trim().to_string()),
        None => None,
    };
    Ok(Operation {
        name,
        weight,
        sql: op.sql.get_ref().clone(),
        params,
        budget_p95,
        source: op.source,
        claims,
        at: src.at(op.sql.span()),
    })
}

fn param(raw: &RawParam, counts: &[String]) -> Result<Param, String> {
    let set = [
        raw.pick.is_some(),
        raw.int.is_some(),
        raw.seq.is_some(),
        raw.bytes.is_some(),
        raw.hex.is_some(),
        raw.base64.is_some(),
        raw.uuid.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set != 1 {
        return Err(
            "a parameter is exactly one of pick, int, seq, bytes, hex, base64, uuid".into(),
        );
    }
    let len_ok = |n: usize| {
        if (1..=1 << 20).contains(&n) {
            Ok(n)
        } else {
            Err(format!("length {n} must be between 1 and 1048576"))
        }
    };
    Ok(if let Some(c) = &raw.pick {
        if !counts.contains(c) {
            return Err(format!(
                "pick = \"{c}\" is not a count (known: {})",
                counts.join(", ")
            ));
        }
        Param::Pick(c.clone())
    } else if let Some([lo, hi]) = raw.int {
        if lo > hi {
            return Err(format!(
                "int = [{lo}, {hi}]: the first bound must not exceed the second"
            ));
        }
        Param::Int(lo, hi)
    } else if let Some(b) = raw.seq {
        if !b {
            return Err("seq = false means nothing; write seq = true".into());
        }
        Param::Seq
    } else if let Some(n) = raw.bytes {
        Param::Bytes(len_ok(n)?)
    } else if let Some(n) = raw.hex {
        Param::Hex(len_ok(n)?)
    } else if let Some(n) = raw.base64 {
        Param::Base64(len_ok(n)?)
    } else {
        if raw.uuid != Some(true) {
            return Err("uuid = false means nothing; write uuid = true".into());
        }
        Param::Uuid
    })
}

fn parse_count(s: &str) -> Result<CountExpr, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(CountExpr::Literal(n));
    }
    let (name, op, by) = if let Some((l, r)) = s.split_once('*') {
        (l.trim(), ScaleOp::Times, r.trim())
    } else if let Some((l, r)) = s.split_once('/') {
        (l.trim(), ScaleOp::Div, r.trim())
    } else {
        (s, ScaleOp::Same, "1")
    };
    let by: u64 = by.parse().map_err(|_| {
        format!("`{s}`: expected `name`, `name * N` or `name / N` with N a positive integer")
    })?;
    if by == 0 || name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "`{s}`: expected `name`, `name * N` or `name / N` with N a positive integer"
        ));
    }
    Ok(CountExpr::Scaled {
        name: name.to_string(),
        op,
        by,
    })
}

/// Evaluates every count for a scale of `devices`. Counts never drop below 1 when derived from
/// a non-zero scale, so a tiny scale still has a user, a chat, ....
pub(crate) fn resolve_counts(
    counts: &[(String, CountExpr)],
    devices: u64,
) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    out.insert("devices".to_string(), devices);
    for _ in 0..=counts.len() {
        let mut progressed = false;
        for (name, expr) in counts {
            if out.contains_key(name) {
                continue;
            }
            let value = match expr {
                CountExpr::Literal(n) => Some(*n),
                CountExpr::Scaled { name: r, op, by } => out.get(r).map(|v| match op {
                    ScaleOp::Same => *v,
                    ScaleOp::Times => v.saturating_mul(*by),
                    ScaleOp::Div => (*v / by).max(u64::from(*v > 0)),
                }),
            };
            if let Some(v) = value {
                out.insert(name.clone(), v);
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    let missing: Vec<&str> = counts
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !out.contains_key(*n))
        .collect();
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "[seed.counts] refer to each other in a cycle: {}",
            missing.join(", ")
        ))
    }
}

/// Substitutes `${name}` by the count's value.
pub(crate) fn substitute(sql: &str, counts: &BTreeMap<String, u64>) -> String {
    let mut out = sql.to_string();
    for (name, value) in counts {
        out = out.replace(&format!("${{{name}}}"), &value.to_string());
    }
    out
}

/// Names used as `${name}` in seed SQL.
fn placeholders_named(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        match rest.find('}') {
            Some(j) => {
                out.push(rest[..j].to_string());
                rest = &rest[j + 1..];
            }
            None => break,
        }
    }
    out
}

/// The highest `$n` in the SQL, skipping string literals, quoted identifiers and comments
/// (dollar-quoted bodies are not expected in a single operation).
fn highest_positional(sql: &str) -> usize {
    let b = sql.as_bytes();
    let (mut i, mut max) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'$' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if j > start {
                    max = max.max(sql[start..j].parse().unwrap_or(0));
                }
                i = j.max(i + 1);
            }
            _ => i += 1,
        }
    }
    max
}

pub(crate) use crate::source::location;

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[seed]
counts = { users = "devices / 2", chats = "users" }
sql = ["INSERT INTO t SELECT g FROM generate_series(1, ${users}) g"]

[load]
rate = 100
connections = 4
warmup = "1s"

[[operation]]
name = "fetch"
weight = 3
sql = "SELECT * FROM t WHERE id = $1 AND k = $2"
params = [{ pick = "users" }, { bytes = 32 }]
budget = { p95 = "10ms" }
source = "doc"
"#;

    fn p(text: &str) -> Result<Workload, Error> {
        parse(text, Path::new("w.toml"))
    }

    #[test]
    fn parses_a_complete_workload() {
        let w = p(GOOD).unwrap();
        assert_eq!(w.operations.len(), 1);
        assert_eq!(
            w.operations[0].params,
            vec![Param::Pick("users".into()), Param::Bytes(32)]
        );
        assert_eq!(w.operations[0].budget_p95, Some(Duration::from_millis(10)));
        assert_eq!(w.operations[0].at, "w.toml:14:7");
        let counts = resolve_counts(&w.seed.counts, 1000).unwrap();
        assert_eq!(counts["users"], 500);
        assert_eq!(counts["chats"], 500);
        assert_eq!(
            substitute(&w.seed.statements[0].sql, &counts),
            "INSERT INTO t SELECT g FROM generate_series(1, 500) g"
        );
    }

    #[test]
    fn a_parameter_count_mismatch_names_the_sql() {
        let text = GOOD.replace("AND k = $2", "AND k = $3");
        let e = p(&text).unwrap_err().to_string();
        assert!(e.starts_with("w.toml:14:7:"), "{e}");
        assert!(e.contains("$3"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_reported_with_its_position() {
        let text = GOOD.replace("weight = 3", "wieght = 3");
        let e = p(&text).unwrap_err().to_string();
        assert!(e.starts_with("w.toml:13:1:"), "{e}");
        assert!(e.contains("wieght"), "{e}");
    }

    #[test]
    fn unknown_counts_and_bad_params_are_rejected() {
        let e = p(&GOOD.replace("{ pick = \"users\" }", "{ pick = \"groups\" }"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pick = \"groups\" is not a count"), "{e}");
        let e = p(&GOOD.replace("${users}", "${groups}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.toml:4:8:") && e.contains("${groups}"),
            "{e}"
        );
        let e = p(&GOOD.replace("{ bytes = 32 }", "{ bytes = 32, hex = 2 }"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one of"), "{e}");
        let e = p(&GOOD.replace("\"10ms\"", "\"ten\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("w.toml:16:18:") && e.contains("budget p95"),
            "{e}"
        );
        let e = p(&GOOD.replace("rate = 100", "rate = 0"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("w.toml:7:8:"), "{e}");
    }

    #[test]
    fn count_cycles_are_rejected() {
        let text = GOOD.replace(
            r#"counts = { users = "devices / 2", chats = "users" }"#,
            r#"counts = { users = "chats", chats = "users" }"#,
        );
        let e = p(&text).unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");
    }

    #[test]
    fn positional_parameters_inside_literals_are_ignored() {
        assert_eq!(highest_positional("SELECT '$9', \"$8\" -- $7\n, $2, $1"), 2);
        assert_eq!(highest_positional("SELECT 1"), 0);
    }
}
