//! Lock waits between the workload's own operations, sampled while a scale runs.
//!
//! A monitor connection of its own reads `pg_locks` joined with `pg_stat_activity` and
//! `pg_blocking_pids()` every [`SAMPLE_EVERY`]: every backend of the workload (recognised by
//! the `application_name` each worker connection sets, [`APP_PREFIX`]) that waits for a
//! heavyweight lock, the lock (type, mode, relation), how long it has waited (`pg_locks.waitstart`)
//! and who holds or queues ahead of it. Statements are mapped back to operation names by their
//! text (each operation is one prepared statement). Sampling sees waits longer than the
//! interval reliably and shorter ones by chance: counts are lower bounds, durations are the
//! longest seen of each wait.
//!
//! A wait on a lock of a whole relation, object or advisory key is a *finding*: ordinary
//! reads and writes take relation locks that never conflict with each other, so such a wait
//! means some operation (or its trigger: `LOCK TABLE`, `REFRESH MATERIALIZED VIEW`, DDL, or
//! `NOTIFY`, whose transactions commit one at a time) serializes every writer. Row-level waits (`transactionid`, `tuple`) are reported but are no
//! finding: two operations of a random workload may pick the same row.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use crate::Error;

/// The rule id of a finding (docs/conformance.md 6.3).
pub(crate) const RULE: &str = "dbbench.lock_wait";
/// Interval between two samples of `pg_locks`.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// `application_name` of every workload connection: `<prefix><worker number>`.
pub(crate) const APP_PREFIX: &str = "e2ee-harness db-bench w";

/// Lock types whose waits do not mean that a whole relation is serialized.
const ROW_LEVEL: [&str; 6] = [
    "transactionid",
    "tuple",
    "virtualxid",
    "extend",
    "page",
    "spectoken",
];

/// Waits of one operation for another on one lock, at one scale.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LockWait {
    /// The waiting operation.
    pub waiter: String,
    /// The operation holding (or queued ahead for) the lock, or `outside the workload (…)`.
    pub blocker: String,
    pub locktype: String,
    pub mode: String,
    /// The locked relation (empty for row and transaction locks without one).
    pub relation: String,
    /// Distinct waits seen (a statement waiting for one lock is one wait however many samples
    /// saw it).
    pub waits: u64,
    /// Sightings: one per wait per sample that saw it waiting.
    pub(crate) sightings: u64,
    /// The longest wait seen, and the sum over waits of each one's longest sampled duration.
    pub max_wait_ms: f64,
    pub(crate) total_wait_ms: f64,
    /// The blocker's statement when it was first seen blocking.
    pub blocker_statement: String,
    /// Both operations belong to the workload and the lock is not row-level.
    pub finding: bool,
}

impl LockWait {
    /// One line for people.
    pub(crate) fn describe(&self) -> String {
        let on = if self.relation.is_empty() {
            String::new()
        } else {
            format!(" on {}", self.relation)
        };
        format!(
            "{} waited for {}: {} ({}{on}), {} wait(s) seen {} time(s), longest {:.1} ms, {:.1} ms in all; {} was running: {}",
            self.waiter,
            self.blocker,
            self.mode,
            self.locktype,
            self.waits,
            self.sightings,
            self.max_wait_ms,
            self.total_wait_ms,
            self.blocker,
            self.blocker_statement
        )
    }
}

/// What the sampler saw during one scale.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LockReport {
    pub samples: u64,
    pub(crate) sample_interval_ms: u64,
    pub waits: Vec<LockWait>,
}

/// A running sampler; [`Sampler::stop`] ends it and returns what it saw.
pub(crate) struct Sampler {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<LockReport, Error>>,
}

/// `operations`: (name, SQL as sent) of every workload operation.
pub(crate) async fn start(url: &str, operations: Vec<(String, String)>) -> Result<Sampler, Error> {
    let monitor = disposable_pg::connect(url).await?;
    let version: i32 = monitor
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| Error::Unavailable(format!("lock sampler: server version: {e}")))?
        .get(0);
    let sql = sample_sql(version >= 140_000);
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut seen = Seen::new(operations);
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => break,
            }
            sample(&monitor, &sql, &mut seen).await?;
        }
        Ok(seen.report())
    });
    Ok(Sampler { stop, task })
}

impl Sampler {
    pub(crate) async fn stop(self) -> Result<LockReport, Error> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| Error::Unavailable(format!("the lock sampler panicked: {e}")))?
    }
}

/// What a lock protects, for people: the relation; for `NOTIFY`'s commit lock (an object
/// lock on database 0 of `pg_database`, held by every transaction that sent a notification
/// from its commit to its end) the notify queue; otherwise the catalog and object id.
const LOCKED: &str = "CASE WHEN l.relation IS NOT NULL THEN l.relation::regclass::text
      WHEN l.locktype = 'object' AND l.classid = 'pg_database'::regclass::oid AND l.objid = 0
        THEN 'the NOTIFY queue'
      WHEN l.locktype = 'object' THEN coalesce(l.classid::regclass::text, '') || ' ' || l.objid
      WHEN l.locktype = 'advisory' THEN 'advisory key ' || l.classid || ':' || l.objid
      ELSE '' END";

/// Every workload backend waiting for a lock: the lock, seconds waited, the statement's start
/// (identifies one execution) and its blockers (pid, application, statement, itself waiting).
fn sample_sql(has_waitstart: bool) -> String {
    let waited = if has_waitstart {
        "extract(epoch FROM clock_timestamp() - coalesce(l.waitstart, clock_timestamp()))::float8"
    } else {
        "0::float8"
    };
    format!(
        "SELECT a.pid, a.query, a.query_start::text, l.locktype, l.mode,
                {LOCKED}, {waited},
                coalesce(b.pids, '{{}}'), coalesce(b.apps, '{{}}'), coalesce(b.queries, '{{}}'),
                coalesce(b.waiting, '{{}}')
         FROM pg_stat_activity a
         JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
         LEFT JOIN LATERAL (
           SELECT array_agg(s.pid) AS pids,
                  array_agg(coalesce(nullif(s.application_name, ''), s.backend_type, '')) AS apps,
                  array_agg(coalesce(s.query, '')) AS queries,
                  array_agg(coalesce(s.wait_event_type = 'Lock', false)) AS waiting
           FROM pg_stat_activity s WHERE s.pid = ANY (pg_blocking_pids(a.pid))) b ON true
         WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'
           AND a.application_name LIKE '{APP_PREFIX}%'"
    )
}

/// One wait: a waiter's statement execution waiting for one lock.
#[derive(PartialEq, Eq, Hash)]
struct Episode {
    pid: i32,
    query_start: String,
    lock: (String, String, String),
}

struct Seen {
    operations: Vec<(String, String)>,
    samples: u64,
    /// Per episode: its group and the longest wait seen.
    episodes: HashMap<Episode, (GroupKey, f64)>,
    groups: BTreeMap<GroupKey, LockWait>,
}

type GroupKey = (String, String, String, String, String);

async fn sample(monitor: &Client, sql: &str, seen: &mut Seen) -> Result<(), Error> {
    let rows = monitor
        .query(sql, &[])
        .await
        .map_err(|e| Error::Unavailable(format!("lock sampler: reading pg_locks: {e}")))?;
    seen.samples += 1;
    for r in rows {
        let pids: Vec<i32> = r.get(7);
        let apps: Vec<String> = r.get(8);
        let queries: Vec<String> = r.get(9);
        let waiting: Vec<bool> = r.get(10);
        let blockers: Vec<Blocker> = (0..pids.len())
            .map(|i| Blocker {
                app: apps.get(i).cloned().unwrap_or_default(),
                query: queries.get(i).cloned().unwrap_or_default(),
                waiting: waiting.get(i).copied().unwrap_or(false),
            })
            .collect();
        let query: String = r.get::<_, Option<String>>(1).unwrap_or_default();
        seen.observe(
            Episode {
                pid: r.get(0),
                query_start: r.get::<_, Option<String>>(2).unwrap_or_default(),
                lock: (r.get(3), r.get(4), r.get(5)),
            },
            &query,
            r.get::<_, f64>(6) * 1000.0,
            &blockers,
        );
    }
    Ok(())
}

struct Blocker {
    app: String,
    query: String,
    waiting: bool,
}

impl Seen {
    fn new(operations: Vec<(String, String)>) -> Seen {
        Seen {
            operations,
            samples: 0,
            episodes: HashMap::new(),
            groups: BTreeMap::new(),
        }
    }

    /// The operation whose SQL this statement text is (the server may truncate long text).
    fn operation(&self, query: &str) -> String {
        let q = flat(query);
        self.operations
            .iter()
            .find(|(_, sql)| {
                let s = flat(sql);
                !q.is_empty() && (s == q || s.starts_with(&q) || q.starts_with(&s))
            })
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| format!("unknown statement ({})", excerpt(query)))
    }

    /// The blocker named: the first workload backend holding the lock (not itself waiting),
    /// else the first workload backend queued ahead, else whatever else blocks.
    fn blocker(&self, blockers: &[Blocker]) -> (String, String, bool) {
        let ours = |b: &&Blocker| b.app.starts_with(APP_PREFIX);
        let chosen = blockers
            .iter()
            .filter(ours)
            .find(|b| !b.waiting)
            .or_else(|| blockers.iter().find(ours));
        match chosen {
            Some(b) => (self.operation(&b.query), excerpt(&b.query), true),
            None => match blockers.first() {
                Some(b) => (
                    format!("outside the workload ({})", b.app),
                    excerpt(&b.query),
                    false,
                ),
                None => (
                    "unknown (the lock was released)".into(),
                    String::new(),
                    false,
                ),
            },
        }
    }

    fn observe(&mut self, episode: Episode, query: &str, waited_ms: f64, blockers: &[Blocker]) {
        if let Some((key, longest)) = self.episodes.get_mut(&episode) {
            let g = self.groups.get_mut(key).expect("an episode's group exists");
            g.sightings += 1;
            g.total_wait_ms += (waited_ms - *longest).max(0.0);
            *longest = longest.max(waited_ms);
            g.max_wait_ms = g.max_wait_ms.max(*longest);
            return;
        }
        let waiter = self.operation(query);
        let (blocker, statement, ours) = self.blocker(blockers);
        let (locktype, mode, relation) = episode.lock.clone();
        let key = (
            waiter.clone(),
            blocker.clone(),
            locktype.clone(),
            mode.clone(),
            relation.clone(),
        );
        let g = self.groups.entry(key.clone()).or_insert_with(|| LockWait {
            finding: ours && !ROW_LEVEL.contains(&locktype.as_str()),
            waiter,
            blocker,
            locktype,
            mode,
            relation,
            waits: 0,
            sightings: 0,
            max_wait_ms: 0.0,
            total_wait_ms: 0.0,
            blocker_statement: statement,
        });
        g.waits += 1;
        g.sightings += 1;
        g.total_wait_ms += waited_ms;
        g.max_wait_ms = g.max_wait_ms.max(waited_ms);
        self.episodes.insert(episode, (key, waited_ms));
    }

    fn report(self) -> LockReport {
        let mut waits: Vec<LockWait> = self.groups.into_values().collect();
        waits.sort_by(|a, b| b.finding.cmp(&a.finding).then(b.waits.cmp(&a.waits)));
        LockReport {
            samples: self.samples,
            sample_interval_ms: SAMPLE_EVERY.as_millis() as u64,
            waits,
        }
    }
}

/// The terminal section: every wait seen, per scale.
pub(crate) fn summary(scales: &[super::report::ScaleReport]) -> String {
    let mut out = String::new();
    for s in scales {
        out.push_str(&format!(
            "\nlock waits at {} devices ({} samples of pg_locks, every {} ms): {}\n",
            s.devices,
            s.locks.samples,
            s.locks.sample_interval_ms,
            if s.locks.waits.is_empty() { "none" } else { "" }
        ));
        for w in &s.locks.waits {
            out.push_str(&format!(
                "  {:<8} {}\n",
                if w.finding { "FINDING" } else { "seen" },
                w.describe()
            ));
        }
    }
    out
}

fn flat(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn excerpt(sql: &str) -> String {
    crate::schema_pack::apply::excerpt(sql, 160)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Vec<(String, String)> {
        vec![
            ("insert".into(), "INSERT INTO t\n  VALUES ($1)".into()),
            ("fetch".into(), "SELECT * FROM t WHERE id = $1".into()),
        ]
    }

    fn ep(pid: i32, start: &str, mode: &str) -> Episode {
        Episode {
            pid,
            query_start: start.into(),
            lock: ("relation".into(), mode.into(), "counter".into()),
        }
    }

    fn holder(query: &str) -> Blocker {
        Blocker {
            app: format!("{APP_PREFIX}1"),
            query: query.into(),
            waiting: false,
        }
    }

    #[test]
    fn one_wait_sampled_twice_counts_once_with_its_longest_duration() {
        let mut seen = Seen::new(ops());
        let b = [holder("INSERT INTO t VALUES ($1)")];
        seen.observe(
            ep(7, "t1", "ExclusiveLock"),
            "INSERT INTO t VALUES ($1)",
            5.0,
            &b,
        );
        seen.observe(
            ep(7, "t1", "ExclusiveLock"),
            "INSERT INTO t VALUES ($1)",
            15.0,
            &b,
        );
        seen.observe(
            ep(8, "t2", "ExclusiveLock"),
            "INSERT INTO t VALUES ($1)",
            2.0,
            &b,
        );
        let r = seen.report();
        assert_eq!(r.waits.len(), 1);
        let w = &r.waits[0];
        assert_eq!(
            (w.waiter.as_str(), w.blocker.as_str()),
            ("insert", "insert")
        );
        assert_eq!((w.waits, w.sightings), (2, 3));
        assert_eq!(w.max_wait_ms, 15.0);
        assert_eq!(w.total_wait_ms, 17.0);
        assert!(w.finding);
    }

    #[test]
    fn row_locks_and_outside_blockers_are_reported_but_no_finding() {
        let mut seen = Seen::new(ops());
        let mut row = ep(7, "t1", "ShareLock");
        row.lock.0 = "transactionid".into();
        seen.observe(
            row,
            "SELECT * FROM t WHERE id = $1",
            1.0,
            &[holder("INSERT INTO t VALUES ($1)")],
        );
        let outside = Blocker {
            app: "psql".into(),
            query: "LOCK t".into(),
            waiting: false,
        };
        seen.observe(
            ep(8, "t2", "RowExclusiveLock"),
            "INSERT INTO t VALUES ($1)",
            1.0,
            &[outside],
        );
        let r = seen.report();
        assert_eq!(r.waits.len(), 2);
        assert!(r.waits.iter().all(|w| !w.finding), "{:?}", r.waits);
        assert!(r
            .waits
            .iter()
            .any(|w| w.blocker == "outside the workload (psql)"));
        assert!(r
            .waits
            .iter()
            .any(|w| w.waiter == "fetch" && w.blocker == "insert"));
    }
}
