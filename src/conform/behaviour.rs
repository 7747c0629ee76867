//! Behaviour assertions (`[[succeeds]]`, `[[fails]]`, `[[query]]`, `[[notify]]`,
//! `[[cascade]]`), run in file order on one database; their effects persist.

use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::{AsyncMessage, Client, SimpleQueryMessage};

use crate::conform::expect::{Behaviour, Cascade, Expect, Fails, Notify, Query};
use crate::conform::outcome::{Check, Kind};
use crate::schema_pack::apply::{describe, excerpt};

const K: Kind = Kind::Behaviour;

pub(crate) async fn run(client: &Client, url: &str, expect: &Expect) -> Vec<Check> {
    run_until(client, url, expect, usize::MAX).await
}

/// Runs the assertions in file order up to and including the one at index `last`.
pub(crate) async fn run_until(
    client: &Client,
    url: &str,
    expect: &Expect,
    last: usize,
) -> Vec<Check> {
    let mut out = Vec::new();
    for (at, b) in expect.behaviours().into_iter().take(last.saturating_add(1)) {
        let check = match b {
            Behaviour::Succeeds(s) => {
                let title = label("succeeds", &s.name, &at, &s.sql);
                match client.batch_execute(&s.sql).await {
                    Ok(()) => Check::pass(K, title),
                    Err(e) => {
                        let (code, msg) = describe(&e);
                        Check::fail(K, title, format!("failed: {msg} (SQLSTATE {code})"))
                            .with_sql(s.sql.clone())
                    }
                }
            }
            Behaviour::Fails(f) => fails(client, &f, &at).await,
            Behaviour::Query(q) => {
                let title = label("query", &q.name, &at, &q.sql);
                query(client, &q, title).await
            }
            Behaviour::Notify(n) => notify(client, url, &n, &at).await,
            Behaviour::Cascade(c) => cascade(client, &c, &at).await,
        };
        out.push(check);
    }
    out
}

fn label(kind: &str, name: &Option<String>, at: &str, sql: &str) -> String {
    match name {
        Some(n) => format!("{kind} {n} ({at})"),
        None => format!("{kind} {at}: {}", excerpt(sql, 60)),
    }
}

async fn fails(client: &Client, f: &Fails, at: &str) -> Check {
    let title = label("fails", &f.name, at, &f.sql);
    // A savepoint-free transaction: whatever the statement does is undone.
    if let Err(e) = client.batch_execute("BEGIN").await {
        return Check::fail(K, title, format!("cannot open a transaction: {e}"));
    }
    let r = client.batch_execute(&f.sql).await;
    let _ = client.batch_execute("ROLLBACK").await;
    let check = match r {
        Ok(()) => Check::fail(
            K,
            &title,
            format!("succeeded; expected SQLSTATE {}", f.sqlstate),
        ),
        Err(e) => {
            let (code, msg) = describe(&e);
            let constraint = e
                .as_db_error()
                .and_then(|d| d.constraint())
                .map(str::to_string);
            if code != f.sqlstate {
                Check::fail(
                    K,
                    &title,
                    format!(
                        "failed with SQLSTATE {code} ({msg}); expected {}",
                        f.sqlstate
                    ),
                )
            } else if let Some(want) = &f.constraint {
                Check::verdict(
                    K,
                    &title,
                    constraint.as_deref() == Some(want.as_str()),
                    format!(
                        "failed on constraint {}, expected {want} ({msg})",
                        constraint.as_deref().unwrap_or("(none)")
                    ),
                )
            } else {
                Check::pass(K, &title).with_detail(format!("{code}: {msg}"))
            }
        }
    };
    if check.status.is_bad() {
        check.with_sql(f.sql.clone())
    } else {
        check
    }
}

/// Runs `sql`, returning its rows as text cells.
pub(crate) async fn rows(client: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    rows_named(client, sql).await.map(|(_, rows)| rows)
}

/// Runs `sql`, returning its column names (from the first row, if any) and its rows.
async fn rows_named(
    client: &Client,
    sql: &str,
) -> Result<(Vec<String>, Vec<Vec<Option<String>>>), String> {
    let msgs = client.simple_query(sql).await.map_err(|e| {
        let (code, msg) = describe(&e);
        format!("{msg} (SQLSTATE {code})")
    })?;
    let mut columns = Vec::new();
    let rows = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                if columns.is_empty() {
                    columns = r.columns().iter().map(|c| c.name().to_string()).collect();
                }
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect();
    Ok((columns, rows))
}

/// Why a `[[query]]` did not hold, for people: what it checks, the first differing cell by
/// row and column name, then both result sets in full.
fn query_mismatch(
    what: &str,
    columns: &[String],
    got: &[Vec<String>],
    want: &[Vec<String>],
) -> String {
    let column = |i: usize| {
        columns
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("column {}", i + 1))
    };
    let first = (0..got.len().max(want.len())).find_map(|r| match (got.get(r), want.get(r)) {
        (Some(g), Some(w)) => (0..g.len().max(w.len())).find_map(|c| {
            let (gv, wv) = (g.get(c), w.get(c));
            (gv != wv).then(|| {
                format!(
                    "row {}, {}: got {}, expected {}",
                    r + 1,
                    column(c),
                    gv.map_or("nothing", String::as_str),
                    wv.map_or("nothing", String::as_str)
                )
            })
        }),
        (Some(_), None) => Some(format!("row {} was not expected", r + 1)),
        (None, Some(_)) => Some(format!("row {} is missing", r + 1)),
        (None, None) => None,
    });
    format!(
        "checks: {what}\n{}\nreturned ({}): {got:?}\nexpected: {want:?}",
        first.unwrap_or_else(|| "rows differ".into()),
        columns.join(", ")
    )
}

/// A `[[query]]` (also used by `[[seed]] after`).
pub(crate) async fn query(client: &Client, q: &Query, title: String) -> Check {
    let (columns, got) = match rows_named(client, &q.sql).await {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(K, title, format!("query failed: {e}")).with_sql(q.sql.clone())
        }
    };
    let null = q.null.clone().unwrap_or_else(|| "NULL".into());
    let got: Vec<Vec<String>> = got
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|c| c.unwrap_or_else(|| null.clone()))
                .collect()
        })
        .collect();
    if let Some(n) = q.row_count {
        return Check::verdict(
            K,
            title,
            got.len() as u64 == n,
            format!("returned {} rows, expected {n}", got.len()),
        )
        .with_sql(q.sql.clone());
    }
    let mut want: Vec<Vec<String>> = q
        .rows
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|r| r.iter().map(|c| c.as_pg_text()).collect())
        .collect();
    let mut have = got.clone();
    if q.unordered {
        want.sort();
        have.sort();
    }
    let what = q
        .name
        .clone()
        .unwrap_or_else(|| crate::schema_pack::apply::excerpt(&q.sql, 100));
    let check = Check::verdict(
        K,
        title,
        want == have,
        query_mismatch(&what, &columns, &have, &want),
    );
    if check.status.is_bad() {
        check.with_sql(q.sql.clone())
    } else {
        check
    }
}

async fn notify(client: &Client, url: &str, n: &Notify, at: &str) -> Check {
    let title = label(&format!("notify {}", n.channel), &n.name, at, &n.sql);
    let timeout = Duration::from_millis(n.timeout_ms.unwrap_or(5000));
    let (listener, mut conn) = match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                K,
                title,
                format!("cannot open the listening connection: {e}"),
            )
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(AsyncMessage::Notification(note)) => {
                    let _ = tx.send((note.channel().to_string(), note.payload().to_string()));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let channel_ident = crate::conform::catalog::quote_ident(&n.channel);
    let check = async {
        if let Err(e) = listener
            .batch_execute(&format!("LISTEN {channel_ident}"))
            .await
        {
            return Check::fail(K, &title, format!("LISTEN failed: {e}"));
        }
        if let Err(e) = client.batch_execute(&n.sql).await {
            let (code, msg) = describe(&e);
            return Check::fail(
                K,
                &title,
                format!("statement failed: {msg} (SQLSTATE {code})"),
            )
            .with_sql(n.sql.clone());
        }
        await_notification(&mut rx, n, timeout, &title).await
    }
    .await;
    let _ = listener.batch_execute("UNLISTEN *").await;
    drop(listener);
    driver.abort();
    check
}

/// Waits up to `timeout` for a notification on `n`'s channel whose payload matches.
async fn await_notification(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    n: &Notify,
    timeout: Duration,
    title: &str,
) -> Check {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((channel, payload))) => {
                if channel != n.channel {
                    continue;
                }
                match payload_matches(n, &payload) {
                    Ok(()) => {
                        return Check::pass(K, title).with_detail(format!("payload {payload}"))
                    }
                    Err(why) => seen.push(why),
                }
            }
            _ => {
                let detail = if seen.is_empty() {
                    format!(
                        "no notification on channel {} within {} ms",
                        n.channel,
                        timeout.as_millis()
                    )
                } else {
                    format!(
                        "notifications arrived but none matched: {}",
                        seen.join("; ")
                    )
                };
                return Check::fail(K, title, detail).with_sql(n.sql.clone());
            }
        }
    }
}

fn payload_matches(n: &Notify, payload: &str) -> Result<(), String> {
    if let Some(p) = &n.payload {
        return if p == payload {
            Ok(())
        } else {
            Err(format!("payload {payload:?}, expected {p:?}"))
        };
    }
    if let Some(want) = &n.payload_json {
        let got: serde_json::Value = serde_json::from_str(payload)
            .map_err(|e| format!("payload {payload:?} is not JSON: {e}"))?;
        let want = serde_json::to_value(want).map_err(|e| e.to_string())?;
        return if json_contains(&got, &want) {
            Ok(())
        } else {
            Err(format!("payload {payload} does not contain {want}"))
        };
    }
    Ok(())
}

/// Whether `got` holds every key/value of `want` (objects recursively; numbers by value).
fn json_contains(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| g.get(k).is_some_and(|gv| json_contains(gv, wv))),
        (Value::Number(g), Value::Number(w)) => g.as_f64() == w.as_f64(),
        (g, w) => g == w,
    }
}

async fn count(client: &Client, sql: &str) -> Result<i64, String> {
    let r = rows(client, sql).await?;
    r.first()
        .and_then(|row| row.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("`{sql}` did not return one integer"))
}

async fn cascade(client: &Client, c: &Cascade, at: &str) -> Check {
    let title = label("cascade", &c.name, at, &c.delete);
    let shown = format!(
        "{}{};\n{};",
        c.setup
            .as_deref()
            .map(|s| format!("{s};\n"))
            .unwrap_or_default(),
        c.delete,
        c.count
    );
    if let Some(setup) = &c.setup {
        if let Err(e) = client.batch_execute(setup).await {
            let (code, msg) = describe(&e);
            return Check::fail(K, title, format!("setup failed: {msg} (SQLSTATE {code})"))
                .with_sql(shown);
        }
    }
    let before = match count(client, &c.count).await {
        Ok(n) => n,
        Err(e) => return Check::fail(K, title, e).with_sql(shown),
    };
    if before <= c.expect {
        return Check::fail(
            K,
            title,
            format!("before the delete the count was already {before} (≤ expected {}): the check proves nothing", c.expect),
        )
        .with_sql(shown);
    }
    if let Err(e) = client.batch_execute(&c.delete).await {
        let (code, msg) = describe(&e);
        return Check::fail(K, title, format!("delete failed: {msg} (SQLSTATE {code})"))
            .with_sql(shown);
    }
    match count(client, &c.count).await {
        Ok(after) => Check::verdict(
            K,
            title,
            after == c.expect,
            format!(
                "{before} before, {after} after the delete; expected {}",
                c.expect
            ),
        )
        .with_detail_if_pass(format!("{before} → {after}"))
        .with_sql_if_fail(shown),
        Err(e) => Check::fail(K, title, e).with_sql(shown),
    }
}

trait CheckExt {
    fn with_detail_if_pass(self, d: String) -> Self;
    fn with_sql_if_fail(self, s: String) -> Self;
}

impl CheckExt for Check {
    fn with_detail_if_pass(self, d: String) -> Self {
        if self.status.is_bad() {
            self
        } else {
            self.with_detail(d)
        }
    }
    fn with_sql_if_fail(self, s: String) -> Self {
        if self.status.is_bad() {
            self.with_sql(s)
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_mismatch_names_what_it_checks_and_the_first_differing_cell() {
        let cols = vec!["ok".to_string(), "n".to_string()];
        let d = query_mismatch(
            "rotation keeps one active key",
            &cols,
            &[vec!["f".into(), "2".into()]],
            &[vec!["t".into(), "2".into()]],
        );
        assert!(
            d.starts_with("checks: rotation keeps one active key\n"),
            "{d}"
        );
        assert!(d.contains("row 1, ok: got f, expected t"), "{d}");
        let d = query_mismatch("x", &cols, &[], &[vec!["t".into()]]);
        assert!(d.contains("row 1 is missing"), "{d}");
    }

    #[test]
    fn json_payloads_match_by_subset() {
        let got: serde_json::Value = serde_json::json!({"device_id": 3, "user": "u", "extra": [1]});
        assert!(json_contains(&got, &serde_json::json!({"device_id": 3})));
        assert!(json_contains(&got, &serde_json::json!({"device_id": 3.0})));
        assert!(!json_contains(&got, &serde_json::json!({"device_id": 4})));
        assert!(!json_contains(&got, &serde_json::json!({"missing": 1})));
    }
}
