//! `detect.session_default`: a column default whose stored value depends on the inserting
//! session's settings. The default is inserted into a scratch column of the column's own
//! type (the same assignment cast the table applies) under two TimeZone settings and two
//! DateStyle settings, in one transaction (so `now()` is one instant), and the stored values
//! are compared as the column's type sees them. A default that differs between two runs
//! under the same settings (random, clock_timestamp) proves nothing and is left alone.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::conform::catalog::{Catalog, Column, Relation};
use crate::conform::outcome::{Check, Kind};

const K: Kind = Kind::Detection;
pub(crate) const RULE: &str = "detect.session_default";

/// Two settings of one parameter, far apart, and the neutral one values are compared under.
struct Setting {
    param: &'static str,
    a: &'static str,
    b: &'static str,
    neutral: &'static str,
}

const SETTINGS: [Setting; 2] = [
    Setting {
        param: "TimeZone",
        a: "UTC",
        b: "Pacific/Kiritimati",
        neutral: "UTC",
    },
    Setting {
        param: "DateStyle",
        a: "ISO, MDY",
        b: "SQL, DMY",
        neutral: "ISO, MDY",
    },
];

pub(crate) async fn run(client: &Client, cat: &Catalog) -> Vec<Check> {
    let mut out = Vec::new();
    for rel in cat.tables() {
        for col in &rel.columns {
            let Some(default) = candidate(col) else {
                continue;
            };
            for s in &SETTINGS {
                match probe(client, rel, col, default, s).await {
                    Ok(Some(check)) => {
                        out.push(check);
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        out.push(Check::skip(
                            K,
                            format!("{RULE} {}.{}", rel.name.short(), col.name),
                            format!("the default could not be evaluated: {e}"),
                        ));
                        break;
                    }
                }
            }
        }
    }
    out
}

/// Every default but sequences and identities (they cannot read a setting, and evaluating
/// them consumes values). Keyword defaults such as `CURRENT_TIMESTAMP` are evaluated too.
fn candidate(col: &Column) -> Option<&str> {
    let d = col.default.as_deref()?;
    (!d.contains("nextval(") && col.generated.is_empty()).then_some(d)
}

/// The script: the default stored twice under setting `a`, once under `b`, read back under the
/// neutral setting. Shown with a finding; `ROLLBACK` leaves nothing.
fn script(rel: &Relation, col: &Column, default: &str, s: &Setting) -> String {
    format!(
        "BEGIN;\n\
         CREATE TEMP TABLE conform_session_default (setting text, v {ty}) ON COMMIT DROP;\n\
         SET LOCAL {p} = '{a}';\n\
         INSERT INTO conform_session_default VALUES ('a1', {default}), ('a2', {default});  -- default of {t}.{c}\n\
         SET LOCAL {p} = '{b}';\n\
         INSERT INTO conform_session_default VALUES ('b', {default});\n\
         SET LOCAL {p} = '{n}';\n\
         SELECT setting, v::text FROM conform_session_default ORDER BY setting;\n\
         ROLLBACK;",
        ty = col.type_name,
        p = s.param,
        a = s.a,
        b = s.b,
        n = s.neutral,
        t = rel.name.short(),
        c = col.name
    )
}

async fn probe(
    client: &Client,
    rel: &Relation,
    col: &Column,
    default: &str,
    s: &Setting,
) -> Result<Option<Check>, String> {
    let sql = script(rel, col, default, s);
    let result = client.simple_query(&sql).await;
    // The script ends in ROLLBACK only when every statement ran; undo a half-run one.
    let _ = client.batch_execute("ROLLBACK").await;
    let msgs = result.map_err(|e| e.to_string())?;
    let values: Vec<(String, Option<String>)> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((
                r.get(0).unwrap_or_default().to_string(),
                r.get(1).map(str::to_string),
            )),
            _ => None,
        })
        .collect();
    let get = |k: &str| {
        values
            .iter()
            .find(|(s, _)| s == k)
            .and_then(|(_, v)| v.clone())
    };
    let (a1, a2, b) = (get("a1"), get("a2"), get("b"));
    // Different under the same settings: volatile, not session-dependent.
    if a1 != a2 || a1 == b {
        return Ok(None);
    }
    let t = rel.name.short();
    Ok(Some(Check::finding(
        K,
        RULE,
        format!("{t}.{}", col.name),
        format!(
            "{t}.{} ({}) DEFAULT {default} stores a value that depends on the session's {}: within one transaction (one now()), stored under {} = '{}' it reads {} and under {} = '{}' it reads {} (both read with {} = '{}')",
            col.name,
            col.type_name,
            s.param,
            s.param,
            s.a,
            a1.as_deref().unwrap_or("NULL"),
            s.param,
            s.b,
            b.as_deref().unwrap_or("NULL"),
            s.param,
            s.neutral
        ),
        sql,
    )))
}
