//! Latency recording: one set of HDR histograms per worker thread (a shard), merged only when
//! read, never averaged. Each shard also keeps per-second interval histograms for the time
//! series; a finished second is serialized (HdrHistogram V2) right away so memory stays flat
//! however long the run is.
//!
//! A sample belongs to the measured window when its (intended) start is at or after the end
//! of warm-up. Its interval is the second, counted from the window start, in which it
//! *completed*, which is when a reader of a time series expects to see it.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

use crate::metrics::Op;
use crate::report::model::{clamp_us, new_histogram, IntervalStats, OperationStats};

/// Width of an interval histogram.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// The run's latency recorder. Shared (`Arc`) by every task; recording locks only the
/// calling thread's shard, which no other thread normally touches.
pub struct Recorder {
    /// End of warm-up; everything is warm-up until it is set.
    window_start: OnceLock<Instant>,
    shards: Box<[Mutex<Shard>]>,
    /// Told of every success and failure while faults are injected (recovery, errors).
    fault_watch: OnceLock<std::sync::Arc<crate::fault::FaultWatch>>,
}

struct Shard {
    ops: Vec<OpShard>,
}

struct OpShard {
    window: Histogram<u64>,
    errors: u64,
    /// Samples and errors before the window (warm-up), for progress only.
    warmup_count: u64,
    warmup_errors: u64,
    current_sec: u64,
    current: Histogram<u64>,
    current_errors: u64,
    /// Finished seconds: (second, V2 bytes, errors).
    done: Vec<(u64, Vec<u8>, u64)>,
}

impl OpShard {
    fn new() -> Self {
        OpShard {
            window: new_histogram(),
            errors: 0,
            warmup_count: 0,
            warmup_errors: 0,
            current_sec: 0,
            current: new_histogram(),
            current_errors: 0,
            done: Vec::new(),
        }
    }

    /// Moves to second `sec`, serializing the current one if it had anything. A sample for an
    /// earlier second (a thread raced past a boundary) lands in the current one: off by at
    /// most one interval, never lost.
    fn roll_to(&mut self, sec: u64) {
        if sec <= self.current_sec {
            return;
        }
        if !self.current.is_empty() || self.current_errors > 0 {
            let mut bytes = Vec::new();
            V2Serializer::new()
                .serialize(&self.current, &mut bytes)
                .expect("V2 into a Vec");
            self.done
                .push((self.current_sec, bytes, self.current_errors));
            self.current.reset();
            self.current_errors = 0;
        }
        self.current_sec = sec;
    }
}

/// A moment's view for live progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Per operation (indexed by [`Op::index`]): window samples, errors (warm-up included), p95.
    pub(crate) count: Vec<u64>,
    pub(crate) errors: Vec<u64>,
    pub(crate) p95_us: Vec<Option<u64>>,
}

thread_local! {
    static SHARD_INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

impl Recorder {
    /// A recorder whose window starts at `window_start` (the end of warm-up). Shards: two per
    /// CPU, enough for the worker threads and some blocking threads.
    pub fn new(window_start: Instant) -> Self {
        let r = Self::unstarted();
        r.set_window_start(window_start);
        r
    }

    /// A recorder that counts everything as warm-up until [`Recorder::set_window_start`]
    /// (for setup, before the run's clock is known).
    pub(crate) fn unstarted() -> Self {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Shard {
                    ops: (0..Op::COUNT).map(|_| OpShard::new()).collect(),
                })
            })
            .collect();
        Recorder {
            window_start: OnceLock::new(),
            shards,
            fault_watch: OnceLock::new(),
        }
    }

    /// Sets the end of warm-up (once; later calls are ignored).
    pub(crate) fn set_window_start(&self, at: Instant) {
        let _ = self.window_start.set(at);
    }

    /// From now on every sample is also shown to `watch` (once; later calls are ignored).
    pub(crate) fn set_fault_watch(&self, watch: std::sync::Arc<crate::fault::FaultWatch>) {
        let _ = self.fault_watch.set(watch);
    }

    /// The fault watch, if faults are injected in this run.
    pub(crate) fn fault_watch(&self) -> Option<&crate::fault::FaultWatch> {
        self.fault_watch.get().map(|w| &**w)
    }

    /// End of warm-up, if set.
    pub(crate) fn window_start(&self) -> Option<Instant> {
        self.window_start.get().copied()
    }

    fn in_window(&self, start: Instant) -> Option<Instant> {
        let ws = self.window_start()?;
        (start >= ws).then_some(ws)
    }

    fn shard(&self) -> std::sync::MutexGuard<'_, Shard> {
        let i = SHARD_INDEX.with(|c| match c.get() {
            Some(i) => i,
            None => {
                let i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
                c.set(Some(i));
                i
            }
        });
        self.shards[i % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records a success that started (or was intended to start) at `start` and ended at `end`.
    pub(crate) fn record(&self, op: Op, start: Instant, end: Instant) {
        if let Some(w) = self.fault_watch.get() {
            w.success(op, end);
        }
        let us = clamp_us(end.saturating_duration_since(start).as_micros());
        let window = self.in_window(start);
        let mut shard = self.shard();
        let s = &mut shard.ops[op.index()];
        let Some(ws) = window else {
            s.warmup_count += 1;
            return;
        };
        let sec = end.saturating_duration_since(ws).as_secs();
        // `record`, not `saturating_record`: only `record` grows an auto-resizing histogram
        // (`us` is already clamped to the harness's range, so it cannot fail).
        let _ = s.window.record(us);
        s.roll_to(sec);
        let _ = s.current.record(us);
    }

    /// Records a failure of an operation that started at `start`.
    pub(crate) fn record_error(&self, op: Op, start: Instant) {
        if let Some(w) = self.fault_watch.get() {
            w.error(op, Instant::now());
        }
        let window = self.in_window(start);
        let mut shard = self.shard();
        let s = &mut shard.ops[op.index()];
        let Some(ws) = window else {
            s.warmup_errors += 1;
            return;
        };
        let sec = Instant::now().saturating_duration_since(ws).as_secs();
        s.errors += 1;
        s.roll_to(sec);
        s.current_errors += 1;
    }

    /// Merges the shards' window histograms for live progress.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut merged: Vec<Histogram<u64>> = (0..Op::COUNT).map(|_| new_histogram()).collect();
        let mut snap = Snapshot {
            count: vec![0; Op::COUNT],
            errors: vec![0; Op::COUNT],
            p95_us: vec![None; Op::COUNT],
        };
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for (i, s) in shard.ops.iter().enumerate() {
                let _ = merged[i].add(&s.window);
                snap.errors[i] += s.errors + s.warmup_errors;
            }
        }
        for (i, h) in merged.iter().enumerate() {
            snap.count[i] = h.len();
            snap.p95_us[i] = (!h.is_empty()).then(|| h.value_at_quantile(0.95));
        }
        snap
    }

    /// Merges everything into per-operation statistics over a window of `window` length.
    /// Operations with neither samples nor errors are left out.
    pub fn finish(&self, window: Duration) -> BTreeMap<String, OperationStats> {
        let window_s = window.as_secs_f64();
        let mut out = BTreeMap::new();
        let mut decoder = Deserializer::new();
        for op in Op::ALL {
            let mut total = new_histogram();
            let mut errors = 0;
            let mut seconds: BTreeMap<u64, (Histogram<u64>, u64)> = BTreeMap::new();
            for shard in self.shards.iter() {
                let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                let s = &shard.ops[op.index()];
                total
                    .add(&s.window)
                    .expect("auto-resizing histograms always add");
                errors += s.errors;
                let mut add_second = |sec: u64, h: &Histogram<u64>, e: u64| {
                    let slot = seconds.entry(sec).or_insert_with(|| (new_histogram(), 0));
                    slot.0.add(h).expect("auto-resizing histograms always add");
                    slot.1 += e;
                };
                for (sec, bytes, e) in &s.done {
                    let h: Histogram<u64> = decoder
                        .deserialize(&mut bytes.as_slice())
                        .expect("our own V2 bytes decode");
                    add_second(*sec, &h, *e);
                }
                if !s.current.is_empty() || s.current_errors > 0 {
                    add_second(s.current_sec, &s.current, s.current_errors);
                }
            }
            if total.is_empty() && errors == 0 {
                continue;
            }
            let intervals = seconds
                .iter()
                .map(|(sec, (h, e))| {
                    IntervalStats::from_histogram(sec * INTERVAL.as_millis() as u64, h, *e)
                })
                .collect();
            out.insert(
                op.name().to_string(),
                OperationStats::from_histogram(&total, errors, window_s, intervals),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::decode_histogram;

    #[test]
    fn merges_threads_and_excludes_warmup() {
        let t0 = Instant::now();
        let window_start = t0 + Duration::from_secs(1);
        let rec = std::sync::Arc::new(Recorder::new(window_start));
        // A warm-up sample and error: not in the results.
        rec.record(Op::BundleFetch, t0, t0 + Duration::from_millis(5));
        rec.record_error(Op::BundleFetch, t0);
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for i in 0..250u64 {
                        let start = window_start + Duration::from_millis(i * 8);
                        rec.record(
                            Op::BundleFetch,
                            start,
                            start + Duration::from_micros(100 * (t + 1)),
                        );
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        rec.record_error(Op::KeyInsert, window_start);
        let ops = rec.finish(Duration::from_secs(2));
        let bf = &ops["bundle_fetch"];
        assert_eq!(bf.count, 1000);
        assert_eq!(bf.errors, 0);
        assert_eq!(bf.rate_per_s, 500.0);
        assert_eq!(decode_histogram(&bf.histogram).unwrap().len(), 1000);
        // Samples ended within seconds 0 and 1 (and maybe 2) of the window; intervals add up.
        assert!(bf.intervals.len() >= 2);
        assert_eq!(bf.intervals.iter().map(|i| i.count).sum::<u64>(), 1000);
        assert_eq!(bf.intervals[0].offset_ms, 0);
        let ki = &ops["key_insert"];
        assert_eq!((ki.count, ki.errors), (0, 1));
        assert!(!ops.contains_key("delivery"));
        // Per-thread histograms were merged: the slowest thread's 400us is the max, not an average.
        assert!(bf.max_us >= 399 && bf.max_us <= 401, "{}", bf.max_us);
        assert!(bf.p50_us >= 199 && bf.p50_us <= 301, "{}", bf.p50_us);
    }

    #[test]
    fn snapshot_shows_running_p95() {
        let now = Instant::now();
        let rec = Recorder::new(now);
        for i in 1..=100u64 {
            rec.record(Op::MessageInsert, now, now + Duration::from_micros(i * 10));
        }
        let snap = rec.snapshot();
        let i = Op::MessageInsert.index();
        assert_eq!(snap.count[i], 100);
        let p95 = snap.p95_us[i].unwrap();
        assert!((945..=955).contains(&p95), "{p95}");
        assert_eq!(snap.p95_us[Op::Delivery.index()], None);
    }
}
