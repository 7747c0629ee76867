//! The open-model runner. Arrivals follow a fixed schedule (operation i is due at
//! `t0 + i / rate`) whatever the database does; a fixed set of connections serves them from one
//! queue. Latency is measured from each operation's *intended* start, so time spent queued
//! behind a slow operation counts (no coordinated omission); an operation that begins more
//! than [`LATE_AFTER`] after it was due is also counted as a late start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;

use super::params::{Generator, Value};
use super::workload::Workload;
use crate::Error;

/// An operation that starts more than this after its intended start is a late start.
pub const LATE_AFTER: Duration = Duration::from_millis(1);
/// After the schedule ends, queued operations still run for this long; the rest are counted
/// as not started (an error kind of their own), never silently dropped.
pub const DRAIN: Duration = Duration::from_secs(10);
/// Histograms cover 1 µs to 10 min at 3 significant digits.
const HIGHEST_US: u64 = 600_000_000;

/// What one operation did during the measured window.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// From intended start to completion, successful operations only (µs).
    pub latency: Histogram<u64>,
    /// From actual start to completion (µs): what the database alone took.
    pub service: Histogram<u64>,
    /// Failed operations by SQLSTATE (or `connection`, `not_started`).
    pub errors: BTreeMap<String, u64>,
    pub late: u64,
    /// Largest delay between intended and actual start (µs).
    pub max_start_lag_us: u64,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            latency: Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds"),
            service: Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds"),
            errors: BTreeMap::new(),
            late: 0,
            max_start_lag_us: 0,
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
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The result of one run at one scale.
#[derive(Debug)]
pub struct RunStats {
    /// Per operation, in workload order.
    pub ops: Vec<OpStats>,
    /// Operations scheduled in the measured window.
    pub scheduled: u64,
    pub measured_seconds: f64,
}

struct Job {
    op: usize,
    values: Vec<Value>,
    due: Instant,
    measured: bool,
}

/// Runs `workload` on `clients` (one worker per client, statements prepared on each) for
/// warm-up plus `duration`, with parameters drawn for the given counts.
pub async fn run(
    workload: &Workload,
    clients: Vec<tokio_postgres::Client>,
    counts: BTreeMap<String, u64>,
    duration: Duration,
) -> Result<RunStats, Error> {
    let n_ops = workload.operations.len();
    // Prepare every statement on every connection before the clock starts.
    let mut workers = Vec::new();
    for client in clients {
        let mut statements = Vec::new();
        for op in &workload.operations {
            let types: Vec<_> = op.params.iter().map(|p| p.pg_type()).collect();
            let sql = super::workload::substitute(&op.sql, &counts);
            let st = client.prepare_typed(&sql, &types).await.map_err(|e| {
                Error::BadInput(format!(
                    "{}: operation `{}` does not prepare: {}",
                    op.at,
                    op.name,
                    super::pack::describe_db_error(&e, &sql, 0)
                ))
            })?;
            statements.push(st);
        }
        workers.push((client, statements));
    }

    let (tx, rx) = mpsc::unbounded_channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let t0 = Instant::now() + Duration::from_millis(50);
    let measure_from = t0 + workload.load.warmup;
    let end = measure_from + duration;
    let drain_until = end + DRAIN;

    let mut handles = Vec::new();
    for (client, statements) in workers {
        let rx = rx.clone();
        handles.push(tokio::spawn(async move {
            let mut stats: Vec<OpStats> = (0..n_ops).map(|_| OpStats::new()).collect();
            loop {
                let job = { rx.lock().await.recv().await };
                let Some(job) = job else { break };
                let s = &mut stats[job.op];
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
                if lag > LATE_AFTER {
                    s.late += 1;
                }
                s.max_start_lag_us = s.max_start_lag_us.max(lag.as_micros() as u64);
                match result {
                    Ok(_) => {
                        let latency =
                            done.saturating_duration_since(job.due).as_micros().max(1) as u64;
                        let service =
                            done.saturating_duration_since(started).as_micros().max(1) as u64;
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
        }));
    }

    // The dispatcher: a fixed schedule, operation mix by weight, parameters generated here.
    let mut rng = ChaCha8Rng::seed_from_u64(workload.load.rng_seed);
    let gen_rng = ChaCha8Rng::seed_from_u64(workload.load.rng_seed.wrapping_add(1));
    let mut generator = Generator::new(gen_rng, counts);
    let total_weight: u32 = workload.operations.iter().map(|o| o.weight).sum();
    let interval = Duration::from_secs_f64(1.0 / workload.load.rate);
    let mut scheduled = 0u64;
    let mut i: u32 = 0;
    loop {
        let due = t0 + interval * i;
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due).await;
        let mut pick = rng.gen_range(0..total_weight);
        let op = workload
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
        let values = generator.values(&workload.operations[op].params);
        let measured = due >= measure_from;
        scheduled += u64::from(measured);
        if tx
            .send(Job {
                op,
                values,
                due,
                measured,
            })
            .is_err()
        {
            break; // every worker has stopped (connections lost); reported below
        }
        i += 1;
    }
    drop(tx);

    let mut ops: Vec<OpStats> = (0..n_ops).map(|_| OpStats::new()).collect();
    for h in handles {
        let worker = h
            .await
            .map_err(|e| Error::Unavailable(format!("a db-bench worker panicked: {e}")))?;
        for (total, w) in ops.iter_mut().zip(worker.iter()) {
            total.merge(w);
        }
    }
    // Jobs left in the queue when every worker stopped (lost connections) are not started.
    let mut rx = rx.lock().await;
    while let Ok(job) = rx.try_recv() {
        if job.measured {
            *ops[job.op].errors.entry("not_started".into()).or_default() += 1;
        }
    }
    Ok(RunStats {
        ops,
        scheduled,
        measured_seconds: duration.as_secs_f64(),
    })
}
