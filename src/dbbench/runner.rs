//! The open-model runner. Arrivals follow a fixed schedule (operation i is due at
//! `t0 + i / rate`) whatever the database does; a fixed set of connections serves them from one
//! queue. Latency is measured from each operation's *intended* start, so time spent queued
//! behind a slow operation counts (no coordinated omission); an operation that begins more
//! than [`LATE_START_THRESHOLD`] after it was due is also counted as a late start.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

use super::params::{ParamGenerator, Value};
use super::workload::Workload;
use crate::Error;

pub(crate) use crate::load::pacer::LATE_START_THRESHOLD;
/// After the schedule ends, queued operations still run for this long; the rest are counted
/// as not started (an error kind of their own), never silently dropped.
pub(crate) const DRAIN: Duration = Duration::from_secs(10);

/// What one operation did during the measured window.
#[derive(Debug, Clone)]
pub(crate) struct OpStats {
    /// From intended start to completion, successful operations only (µs).
    pub(crate) latency: Histogram<u64>,
    /// From actual start to completion (µs): what the database alone took.
    pub(crate) service: Histogram<u64>,
    /// Failed operations by SQLSTATE (or `connection`, `not_started`).
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) late: u64,
    /// Largest delay between intended and actual start (µs).
    pub(crate) max_start_lag_us: u64,
    /// Delay between intended and actual start of every measured operation (µs; 0 as 1).
    pub(crate) start_lag: Histogram<u64>,
    /// Keys handed out, for an operation that declares `claims`.
    pub(crate) claims: super::claims::Ledger,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            latency: crate::report::model::new_histogram(),
            service: crate::report::model::new_histogram(),
            errors: BTreeMap::new(),
            late: 0,
            max_start_lag_us: 0,
            start_lag: crate::report::model::new_histogram(),
            claims: Default::default(),
        }
    }

    fn merge(&mut self, other: &OpStats) {
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        self.service
            .add(&other.service)
            .expect("same histogram bounds");
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.late += other.late;
        self.max_start_lag_us = self.max_start_lag_us.max(other.max_start_lag_us);
        self.start_lag
            .add(&other.start_lag)
            .expect("same histogram bounds");
        self.claims.merge(&other.claims);
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The result of one run at one scale.
#[derive(Debug)]
pub(crate) struct RunStats {
    /// Per operation, in workload order.
    pub(crate) ops: Vec<OpStats>,
    /// Operations scheduled in the measured window.
    pub(crate) scheduled: u64,
    pub(crate) measured_seconds: f64,
}

struct Job {
    op: usize,
    values: Vec<Value>,
    due: Instant,
    /// The pacer's hand-off, begun by the worker that takes the job.
    start: crate::load::pacer::Start,
    measured: bool,
}

/// Picks and sends each operation at its due time (on the pacer thread).
struct Dispatcher {
    rng: ChaCha8Rng,
    generator: ParamGenerator,
    operations: Vec<super::workload::Operation>,
    measure_from: std::time::Instant,
    scheduled: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Job>,
}

impl Dispatcher {
    /// Sends the operation due now; false once every worker has stopped.
    fn dispatch(&mut self, start: crate::load::pacer::Start) -> bool {
        let due = start.due;
        let total_weight: u32 = self.operations.iter().map(|o| o.weight).sum();
        let mut pick = self.rng.gen_range(0..total_weight);
        let op = self
            .operations
            .iter()
            .position(|o| {
                if pick < o.weight {
                    true
                } else {
                    pick -= o.weight;
                    false
                }
            })
            .unwrap_or(0);
        let values = self.generator.values(&self.operations[op].params);
        let measured = due >= self.measure_from;
        self.scheduled
            .fetch_add(u64::from(measured), Ordering::Relaxed);
        // An error means every worker has stopped (connections lost); reported by the caller.
        self.tx
            .send(Job {
                op,
                values,
                due: due.into(),
                start,
                measured,
            })
            .is_ok()
    }
}

/// Runs `workload` on `clients` (one worker per client, statements prepared on each) for
/// warm-up plus `duration`, with parameters drawn for the given counts.
pub(crate) async fn run(
    workload: &Workload,
    clients: Vec<tokio_postgres::Client>,
    counts: BTreeMap<String, u64>,
    duration: Duration,
) -> Result<RunStats, Error> {
    let n_ops = workload.operations.len();
    let workers = prepare(workload, clients, &counts).await?;
    let (tx, rx) = mpsc::unbounded_channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let t0 = Instant::now() + Duration::from_millis(50);
    let measure_from = t0 + workload.load.warmup;
    let end = measure_from + duration;
    let drain_until = end + DRAIN;

    let claims = Arc::new(claim_columns(workload));
    let handles: Vec<_> = workers
        .into_iter()
        .map(|(client, statements)| {
            let (rx, claims) = (rx.clone(), claims.clone());
            tokio::spawn(work(client, statements, rx, claims, n_ops, drain_until))
        })
        .collect();

    // The dispatcher: a fixed schedule, operation mix by weight, parameters generated here.
    // It runs on the pacer thread: tokio's timer would start every operation up to 1 ms late.
    let scheduled = Arc::new(AtomicU64::new(0));
    let mut dispatcher = Dispatcher {
        rng: ChaCha8Rng::seed_from_u64(workload.load.rng_seed),
        generator: ParamGenerator::new(
            ChaCha8Rng::seed_from_u64(workload.load.rng_seed.wrapping_add(1)),
            counts,
        ),
        operations: workload.operations.clone(),
        measure_from: measure_from.into_std(),
        scheduled: scheduled.clone(),
        tx,
    };
    let interval = Duration::from_secs_f64(1.0 / workload.load.rate);
    let (t0, end) = (t0.into_std(), end.into_std());
    // A Ctrl-C ends the schedule early; what was measured is kept.
    let times = (0u32..)
        .map(move |i| t0 + interval * i)
        .take_while(move |due| *due < end && !crate::load::interrupt::requested_now());
    let pacer =
        crate::load::pacer::spawn("dbbench-pacer", times, move |due| dispatcher.dispatch(due));
    // Dropping the dispatcher (its sender) at the end lets the workers finish the queue.
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    let scheduled = scheduled.load(Ordering::Relaxed);

    let ops = collect(handles, &rx, n_ops).await?;
    let measured = if crate::load::interrupt::requested_now() {
        Instant::now()
            .into_std()
            .saturating_duration_since(measure_from.into_std())
            .min(duration)
    } else {
        duration
    };
    Ok(RunStats {
        ops,
        scheduled,
        measured_seconds: measured.as_secs_f64().max(0.001),
    })
}

type Prepared = (tokio_postgres::Client, Vec<tokio_postgres::Statement>);
/// Per operation, the column it claims and the indexes of its `pick` parameters.
type ClaimColumns = Vec<Option<(String, Vec<usize>)>>;

/// Every statement prepared on every connection, before the clock starts.
async fn prepare(
    workload: &Workload,
    clients: Vec<tokio_postgres::Client>,
    counts: &BTreeMap<String, u64>,
) -> Result<Vec<Prepared>, Error> {
    let mut workers = Vec::new();
    for client in clients {
        let mut statements = Vec::new();
        for op in &workload.operations {
            let types: Vec<_> = op.params.iter().map(|p| p.pg_type()).collect();
            let sql = super::workload::substitute(&op.sql, counts);
            let st = client.prepare_typed(&sql, &types).await.map_err(|e| {
                Error::BadInput(format!(
                    "{}: operation `{}` does not prepare: {}",
                    op.at,
                    op.name,
                    crate::schema_pack::apply::describe_with_line(&e, &sql)
                ))
            })?;
            statements.push(st);
        }
        workers.push((client, statements));
    }
    Ok(workers)
}

/// A key id is per device: the ledger keys a claim by the operation's `pick` parameters
/// (which address the device) and the claimed value.
fn claim_columns(workload: &Workload) -> ClaimColumns {
    workload
        .operations
        .iter()
        .map(|o| {
            o.claims.clone().map(|c| {
                let picks = o
                    .params
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| matches!(p, super::workload::Param::Pick(_)))
                    .map(|(i, _)| i)
                    .collect();
                (c, picks)
            })
        })
        .collect()
}

/// One worker: takes jobs off the queue, runs each on its connection, and times it.
async fn work(
    client: tokio_postgres::Client,
    statements: Vec<tokio_postgres::Statement>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    claims: Arc<ClaimColumns>,
    n_ops: usize,
    drain_until: Instant,
) -> Vec<OpStats> {
    let mut stats: Vec<OpStats> = (0..n_ops).map(|_| OpStats::new()).collect();
    loop {
        let job = { rx.lock().await.recv().await };
        let Some(job) = job else { break };
        let s = &mut stats[job.op];
        // Handed over early so this worker is awake: start exactly on time.
        job.start.begin();
        let started = Instant::now();
        if started > drain_until {
            if job.measured {
                *s.errors.entry("not_started".into()).or_default() += 1;
            }
            continue;
        }
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            job.values.iter().map(|v| v.as_sql()).collect();
        let result = client.query(&statements[job.op], &params).await;
        let done = Instant::now();
        if !job.measured {
            continue;
        }
        let lag = started.saturating_duration_since(job.due);
        if lag > LATE_START_THRESHOLD {
            s.late += 1;
        }
        s.max_start_lag_us = s.max_start_lag_us.max(lag.as_micros() as u64);
        s.start_lag.saturating_record(lag.as_micros().max(1) as u64);
        match result {
            Ok(rows) => {
                if let Some(claim) = &claims[job.op] {
                    record_claims(s, &job, &rows, claim);
                }
                let latency = done.saturating_duration_since(job.due).as_micros().max(1) as u64;
                let service = done.saturating_duration_since(started).as_micros().max(1) as u64;
                s.latency.saturating_record(latency);
                s.service.saturating_record(service);
            }
            Err(e) => {
                let key = e
                    .code()
                    .map(|c| c.code().to_string())
                    .unwrap_or_else(|| "connection".to_string());
                *s.errors.entry(key).or_default() += 1;
                if client.is_closed() {
                    break;
                }
            }
        }
    }
    stats
}

/// Every key an operation hands out is logged, so a repeat is counted.
fn record_claims(
    s: &mut OpStats,
    job: &Job,
    rows: &[tokio_postgres::Row],
    (col, picks): &(String, Vec<usize>),
) {
    let device: Vec<String> = picks
        .iter()
        .map(|i| match &job.values[*i] {
            Value::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    for row in rows {
        let key = super::claims::claimed_value(row, col).ok().flatten();
        s.claims
            .record(key.map(|k| format!("{} {k}", device.join(","))));
    }
}

/// The workers' stats summed; jobs left in the queue when every worker stopped (lost
/// connections) count as not started.
async fn collect(
    handles: Vec<tokio::task::JoinHandle<Vec<OpStats>>>,
    rx: &Mutex<mpsc::UnboundedReceiver<Job>>,
    n_ops: usize,
) -> Result<Vec<OpStats>, Error> {
    let mut ops: Vec<OpStats> = (0..n_ops).map(|_| OpStats::new()).collect();
    for h in handles {
        let worker = h
            .await
            .map_err(|e| Error::Unavailable(format!("a db-bench worker panicked: {e}")))?;
        for (total, w) in ops.iter_mut().zip(worker.iter()) {
            total.merge(w);
        }
    }
    let mut rx = rx.lock().await;
    while let Ok(job) = rx.try_recv() {
        if job.measured {
            *ops[job.op].errors.entry("not_started".into()).or_default() += 1;
        }
    }
    Ok(ops)
}
