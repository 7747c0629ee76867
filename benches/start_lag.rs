//! Start lag of the load generator at 1,000 operations/s: how long after its intended start an
//! operation really starts, through the same path as the executors — the pacer thread
//! (`e2ee_harness::load::pacer`) and then
//!
//! - `dbbench`: a job on an unbounded channel, taken by one of two worker tasks from a shared
//!   receiver (db-bench's dispatcher and connection workers);
//! - `run`: a task spawned onto the runtime from the pacer thread (the open-model executor of
//!   `run`), lag taken when the task first runs.
//!
//! Criterion's "time" is the mean start lag per operation (each iteration is one operation
//! scheduled 1 ms after the previous one). The p50/p99 of 5,000 further operations per path
//! are printed to stderr.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use e2ee_harness::load::{pacer, priority, wakeup};
use hdrhistogram::Histogram;

const INTERVAL: Duration = Duration::from_millis(1);

fn runtime() -> tokio::runtime::Runtime {
    // As the CLI's runtime: workers favoured like the pacer thread.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(priority::favour_this_thread)
        .enable_all()
        .build()
        .unwrap()
}

fn schedule(n: u64) -> impl Iterator<Item = Instant> + Send {
    let t0 = Instant::now() + Duration::from_millis(5);
    (0..n as u32).map(move |i| t0 + INTERVAL * i)
}

/// db-bench's path: pacer → channel → worker tasks. Returns the sum of lags.
fn dbbench_lags(rt: &tokio::runtime::Runtime, n: u64, all: &Mutex<Histogram<u64>>) -> Duration {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<pacer::Start>();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let rx = rx.clone();
            rt.spawn(async move {
                let mut lags = Vec::new();
                loop {
                    let start = { rx.lock().await.recv().await };
                    let Some(start) = start else { break };
                    start.begin();
                    lags.push(Instant::now().saturating_duration_since(start.due));
                }
                lags
            })
        })
        .collect();
    pacer::spawn("bench-pacer", schedule(n), move |start| {
        tx.send(start).is_ok()
    })
    .join()
    .unwrap();
    let lags: Vec<Duration> = rt.block_on(async {
        let mut out = Vec::new();
        for w in workers {
            out.extend(w.await.unwrap());
        }
        out
    });
    record(all, &lags)
}

/// `run`'s path: pacer → task spawned onto the runtime. Returns the sum of lags.
fn run_lags(rt: &tokio::runtime::Runtime, n: u64, all: &Mutex<Histogram<u64>>) -> Duration {
    let handle = rt.handle().clone();
    let lags = Arc::new(Mutex::new(Vec::with_capacity(n as usize)));
    let sink = lags.clone();
    pacer::spawn("bench-pacer", schedule(n), move |start| {
        let sink = sink.clone();
        handle.spawn(async move {
            start.begin();
            let lag = Instant::now().saturating_duration_since(start.due);
            sink.lock().unwrap().push(lag);
        });
        true
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let lags = lags.lock().unwrap().clone();
    record(all, &lags)
}

fn record(all: &Mutex<Histogram<u64>>, lags: &[Duration]) -> Duration {
    let mut h = all.lock().unwrap();
    for l in lags {
        h.saturating_record(l.as_micros().max(1) as u64);
    }
    lags.iter().sum()
}

fn report(name: &str, all: &Mutex<Histogram<u64>>) {
    let h = all.lock().unwrap();
    eprintln!(
        "{name}: start lag at 1,000 operations/s over {} operations: p50 {} µs, p99 {} µs, max {} µs",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
}

fn start_lag(c: &mut Criterion) {
    // As `run` and `db-bench` do: idle CPUs polling, where permitted.
    let _awake = wakeup::hold();
    let rt = runtime();
    let mut group = c.benchmark_group("start_lag_1000_per_s");
    // Each iteration takes 1 ms of wall time but reports only its lag: keep the counts small.
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(20))
        .measurement_time(Duration::from_secs(2));
    let scratch = Mutex::new(Histogram::new(3).unwrap());
    group.bench_function("dbbench", |b| {
        b.iter_custom(|n| dbbench_lags(&rt, n, &scratch))
    });
    group.bench_function("run", |b| b.iter_custom(|n| run_lags(&rt, n, &scratch)));
    group.finish();
    // Criterion runs few operations per sample; the percentiles come from 5,000 more each.
    for (name, path) in [("dbbench", dbbench_lags as LagPath), ("run", run_lags)] {
        let all = Mutex::new(Histogram::new(3).unwrap());
        path(&rt, 5_000, &all);
        report(name, &all);
    }
}

type LagPath = fn(&tokio::runtime::Runtime, u64, &Mutex<Histogram<u64>>) -> Duration;

criterion_group!(benches, start_lag);
criterion_main!(benches);
