//! `detect.otpk_claimed_once`: a one-time prekey reaches one fetcher only (X3DH: the server
//! deletes a one-time prekey once it has handed it out).
//!
//! Two sources. (1) The catalog: a view or materialized view that exposes a column naming a
//! one-time prekey hands it out by reading, and a read never consumes. (2) The pack's
//! workload: each operation declaring `claims = "<column>"` is run by several sessions for
//! the same device, each in its own open transaction, one after the other; a session seen
//! waiting for a lock lets the earliest open transaction commit. A key id returned to two
//! sessions is reported with both fetches.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::conform::catalog::{Catalog, RelKind};
use crate::conform::outcome::{Check, Kind};
use crate::conform::rules::interleave::{finish, watch, Session, Watched};
use crate::conform::rules::names::Name;
use crate::conform::rules::{Context, Template};
use crate::dbbench::claims::claimed_value;
use crate::dbbench::params::{ParamGenerator, Value};
use crate::dbbench::seed;
use crate::dbbench::workload::{self, Operation, Param, Workload};
use crate::Error;

const K: Kind = Kind::Detection;
pub(crate) const RULE: &str = "detect.otpk_claimed_once";

/// Concurrent fetchers of one device.
const FETCHERS: usize = 4;
/// Devices seeded for the claim probe (the workload's counts are derived from it).
const SCALE: u64 = 4;

/// Views exposing a one-time prekey (not a count of them).
pub(crate) fn static_views(cat: &Catalog) -> Vec<Check> {
    let mut out = Vec::new();
    for rel in cat.relations.values() {
        if !matches!(rel.kind, RelKind::View | RelKind::MaterializedView) {
            continue;
        }
        for col in &rel.columns {
            let n = Name::new(&col.name);
            if !n.one_time_prekey()
                || n.last_word_is(&["count", "total", "available", "remaining", "left", "num"])
                || col.type_name.starts_with("integer") && n.joined.contains("count")
            {
                continue;
            }
            let t = rel.name.short();
            out.push(Check::finding(
                K,
                RULE,
                format!("{t}.{}", col.name),
                format!(
                    "{} {t} exposes a one-time prekey in {}: reading it never consumes the key, so every fetcher of the device's bundle gets the same key until something else removes it, and two concurrent fetchers always do",
                    rel.kind.label(),
                    col.name
                ),
                format!(
                    "SELECT pg_get_viewdef('{}'::regclass, true);\n-- two sessions: SELECT {} FROM {} WHERE <device> = …; both return the same key",
                    rel.name.sql(),
                    crate::conform::catalog::quote_ident(&col.name),
                    rel.name.sql()
                ),
            ));
        }
    }
    out
}

/// The workload's claiming operations, each run by concurrent fetchers of one device.
pub(crate) async fn claims(ctx: &Context<'_>, template: &Template) -> Result<Vec<Check>, Error> {
    let path = ctx.pack.dir.join("workload.toml");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let wl = workload::load(&path)?;
    let mut out = Vec::new();
    for op in wl.operations.iter().filter(|o| o.claims.is_some()) {
        let copy = template.clone_db("otpk").await?;
        let r = probe(&wl, op, copy.url()).await;
        copy.drop().await;
        out.push(r?);
    }
    Ok(out)
}

/// One fetch: which session, what it ran with, what it got.
struct Fetch {
    session: usize,
    values: Vec<Value>,
    got: Vec<Option<String>>,
    waited: Option<String>,
}

/// Seeds the workload's data, then runs the claiming operation in [`FETCHERS`] sessions for
/// device 1, one after the other, and judges whether a key went to two of them.
async fn probe(wl: &Workload, op: &Operation, url: &str) -> Result<Check, Error> {
    let column = op.claims.clone().unwrap_or_default();
    let object = format!("workload operation {}", op.name);
    let counts = workload::resolve_counts(&wl.seed.counts, SCALE).map_err(Error::BadInput)?;
    // Phase 1: the workload's own data, at a handful of devices.
    let setup = disposable_pg::connect(url).await?;
    seed::load(&setup, wl, &counts).await?;
    let sql = workload::substitute(&op.sql, &counts);
    let mut gen = ParamGenerator::new(ChaCha8Rng::seed_from_u64(wl.load.rng_seed), counts.clone());
    // Phase 2: the fetchers, all for device ordinal 1.
    let mut fetchers = Fetchers::open(url, setup, op, &sql).await?;
    let mut fetches = Vec::new();
    for k in 0..FETCHERS {
        let values = device_one_values(op, &mut gen);
        let (rows, waited) = fetchers.claim(k, values.clone()).await?;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                return Ok(Check::skip(
                    K,
                    format!("{RULE} {object}"),
                    format!("fetcher {} failed: {e}\n  {}", k + 1, sql.trim()),
                ))
            }
        };
        let got = rows
            .iter()
            .map(|row| {
                claimed_value(row, &column).map_err(|e| Error::BadInput(format!("{}: {e}", op.at)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        fetches.push(Fetch {
            session: k,
            values,
            got,
            waited,
        });
        fetchers.open.push(k);
    }
    fetchers.commit_all().await;
    Ok(verdict(op, &object, &sql, &fetches))
}

/// The operation's parameters from the workload's generator, every device pick pinned to
/// device ordinal 1 so that all fetchers claim from the same device.
fn device_one_values(op: &Operation, gen: &mut ParamGenerator) -> Vec<Value> {
    op.params
        .iter()
        .zip(gen.values(&op.params))
        .map(|(p, v)| {
            if matches!(p, Param::Pick(_)) {
                Value::Int(1)
            } else {
                v
            }
        })
        .collect()
}

/// The fetcher sessions of one probe, the monitor that watches their locks, and which of
/// them still hold an open transaction (earliest first).
struct Fetchers<'a> {
    monitor: tokio_postgres::Client,
    sessions: Vec<Session>,
    open: Vec<usize>,
    op: &'a Operation,
    sql: &'a str,
}

impl<'a> Fetchers<'a> {
    /// [`FETCHERS`] sessions on `url`; `monitor` is a separate connection.
    async fn open(
        url: &str,
        monitor: tokio_postgres::Client,
        op: &'a Operation,
        sql: &'a str,
    ) -> Result<Fetchers<'a>, Error> {
        let mut sessions = Vec::new();
        for _ in 0..FETCHERS {
            sessions.push(Session::open(url).await?);
        }
        Ok(Fetchers {
            monitor,
            sessions,
            open: Vec::new(),
            op,
            sql,
        })
    }

    /// Session `k` begins a transaction and runs the claim with `values`. Whenever it is seen
    /// waiting for a lock, the earliest open transaction commits; with none left, it is
    /// waited out. Its rows (or error) and what it first waited for.
    async fn claim(
        &mut self,
        k: usize,
        values: Vec<Value>,
    ) -> Result<(Result<Vec<tokio_postgres::Row>, String>, Option<String>), Error> {
        let s = &self.sessions[k];
        s.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let types = self.op.params.iter().map(Param::pg_type).collect();
        let mut running = s.start(self.sql.to_string(), types, values);
        let mut waited = None;
        loop {
            match watch(&self.monitor, s.pid, &mut running).await? {
                Watched::Finished(r) => return Ok((r, waited)),
                Watched::Waiting(w) => {
                    let names = |pid: i32| fetcher_name(&self.sessions, pid);
                    waited.get_or_insert_with(|| w.describe(&names));
                    if self.open.is_empty() {
                        return Ok((finish(&mut running).await, waited));
                    }
                    let first = self.open.remove(0);
                    let _ = self.sessions[first].client.batch_execute("COMMIT").await;
                }
            }
        }
    }

    /// Commits every transaction still open.
    async fn commit_all(self) {
        for k in self.open {
            let _ = self.sessions[k].client.batch_execute("COMMIT").await;
        }
    }
}

fn fetcher_name(sessions: &[Session], pid: i32) -> String {
    sessions
        .iter()
        .position(|s| s.pid == pid)
        .map(|i| format!("fetcher {}", i + 1))
        .unwrap_or_else(|| format!("backend {pid}"))
}

fn verdict(op: &Operation, object: &str, sql: &str, fetches: &[Fetch]) -> Check {
    let mut first_seen: BTreeMap<&str, &Fetch> = BTreeMap::new();
    let mut repeats = Vec::new();
    for f in fetches {
        for key in f.got.iter().flatten() {
            match first_seen.get(key.as_str()) {
                Some(prev) => repeats.push(format!(
                    "key {key} went to fetcher {} ({}) and again to fetcher {} ({}){}",
                    prev.session + 1,
                    shown(&prev.values),
                    f.session + 1,
                    shown(&f.values),
                    f.waited
                        .as_ref()
                        .map(|w| format!(" — fetcher {} first {w}", f.session + 1))
                        .unwrap_or_default()
                )),
                None => {
                    first_seen.insert(key, f);
                }
            }
        }
    }
    let handed: usize = fetches.iter().map(|f| f.got.iter().flatten().count()).sum();
    if repeats.is_empty() {
        let detail = format!(
            "{} concurrent fetchers of one device got {handed} keys, all distinct{}",
            fetches.len(),
            fetches
                .iter()
                .find_map(|f| f
                    .waited
                    .as_ref()
                    .map(|w| format!(" (fetcher {} {w})", f.session + 1)))
                .unwrap_or_default()
        );
        return Check::pass(K, format!("{RULE} {object}")).with_detail(detail);
    }
    Check::finding(
        K,
        RULE,
        object.to_string(),
        format!(
            "{} ({}) claims `{}`; {} fetchers of device 1, each in its own transaction opened before the previous one committed: {}",
            op.name,
            op.at,
            op.claims.as_deref().unwrap_or_default(),
            fetches.len(),
            repeats.join("; ")
        ),
        format!("-- each fetcher: BEGIN; then\n{};\n-- with the parameters shown, before any fetcher commits", sql.trim()),
    )
}

fn shown(values: &[Value]) -> String {
    let v: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = match v {
                Value::Int(n) => n.to_string(),
                Value::Text(t) => format!("'{t}'"),
                Value::Uuid(u) => format!("'{u}'"),
                Value::Bytes(b) => format!("'\\x{}'", hex::encode(b)),
            };
            format!("${}={s}", i + 1)
        })
        .collect();
    v.join(", ")
}
