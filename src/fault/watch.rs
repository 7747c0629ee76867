//! What each fault did to the clients: errors and retries by operation while it lasted and
//! in the [`AFTER`] that followed, and the first success of each operation once it was over
//! (time to recovery). Fed by the recorder and the retry loops; cheap when no fault runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::metrics::Op;
use crate::report::model::FaultReport;
use crate::scenario::Fault;

/// How long after a fault its errors still count as "after" it.
pub(crate) const AFTER: Duration = Duration::from_secs(10);
/// A fault is recovered when each of these operations succeeded again after it ended: a
/// message was stored and a message was delivered and decrypted.
pub(crate) const RECOVERY_OPS: [Op; 2] = [Op::MessageInsert, Op::Delivery];

#[derive(Default)]
struct Slot {
    started: Option<Instant>,
    ended: Option<Instant>,
    error: Option<String>,
    errors_during: [u64; Op::COUNT],
    errors_after: [u64; Op::COUNT],
    retries_during: [u64; Op::COUNT],
    retries_after: [u64; Op::COUNT],
    first_success: [Option<Instant>; Op::COUNT],
}

/// Shared by the fault schedule, the recorder and the clients' retry loops.
pub(crate) struct FaultWatch {
    /// Whether any fault has started (before that, hooks return at once).
    armed: AtomicBool,
    slots: Mutex<Vec<Slot>>,
}

enum Phase {
    During,
    After,
}

impl FaultWatch {
    pub(crate) fn new(faults: usize) -> FaultWatch {
        FaultWatch {
            armed: AtomicBool::new(false),
            slots: Mutex::new((0..faults).map(|_| Slot::default()).collect()),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn began(&self, i: usize, at: Instant) {
        self.slots()[i].started = Some(at);
        self.armed.store(true, Ordering::Release);
    }

    pub(crate) fn ended(&self, i: usize, at: Instant, error: Option<String>) {
        let mut slots = self.slots();
        slots[i].ended = Some(at);
        slots[i].error = error;
    }

    fn each(&self, now: Instant, mut f: impl FnMut(&mut Slot, Phase)) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        for s in self.slots().iter_mut() {
            match (s.started, s.ended) {
                (Some(st), None) if now >= st => f(s, Phase::During),
                (Some(_), Some(end)) if now < end => f(s, Phase::During),
                (Some(_), Some(end)) if now < end + AFTER => f(s, Phase::After),
                _ => {}
            }
        }
    }

    /// An operation failed (recorded at `now`).
    pub(crate) fn error(&self, op: Op, now: Instant) {
        self.each(now, |s, p| match p {
            Phase::During => s.errors_during[op.index()] += 1,
            Phase::After => s.errors_after[op.index()] += 1,
        });
    }

    /// A client retried an operation (or reconnected, for `ws_connect`).
    pub(crate) fn retry(&self, op: Op, now: Instant) {
        self.each(now, |s, p| match p {
            Phase::During => s.retries_during[op.index()] += 1,
            Phase::After => s.retries_after[op.index()] += 1,
        });
    }

    /// An operation succeeded, ending at `end`: the first after a fault ended is its recovery.
    pub(crate) fn success(&self, op: Op, end: Instant) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        for s in self.slots().iter_mut() {
            if let Some(ended) = s.ended {
                let first = &mut s.first_success[op.index()];
                if end >= ended && first.is_none() {
                    *first = Some(end);
                }
            }
        }
    }

    /// One report entry per fault, times as seconds from `window_start`.
    pub(crate) fn finish(&self, faults: &[Fault], window_start: Instant) -> Vec<FaultReport> {
        let secs = |t: Instant| round3(t.saturating_duration_since(window_start).as_secs_f64());
        let by_op = |a: &[u64; Op::COUNT]| -> BTreeMap<String, u64> {
            Op::ALL
                .iter()
                .filter(|op| a[op.index()] > 0)
                .map(|op| (op.name().to_string(), a[op.index()]))
                .collect()
        };
        let slots = self.slots();
        faults
            .iter()
            .zip(slots.iter())
            .map(|(f, s)| {
                let first_success_after_s: BTreeMap<String, f64> = match s.ended {
                    None => BTreeMap::new(),
                    Some(end) => Op::ALL
                        .iter()
                        .filter_map(|op| {
                            let t = s.first_success[op.index()]?;
                            Some((op.name().to_string(), round3((t - end).as_secs_f64())))
                        })
                        .collect(),
                };
                let recovered = RECOVERY_OPS
                    .iter()
                    .map(|op| s.first_success[op.index()])
                    .collect::<Option<Vec<Instant>>>()
                    .and_then(|ts| ts.into_iter().max());
                FaultReport {
                    kind: f.kind.name().to_string(),
                    command: f.command.clone(),
                    line: f.position.0,
                    at_s: round3(f.at.as_secs_f64()),
                    hold_s: round3(f.hold.as_secs_f64()),
                    started_s: s.started.map(secs),
                    ended_s: s.ended.map(secs),
                    error: s.error.clone(),
                    recovery_s: match (s.started, recovered) {
                        (Some(st), Some(r)) => Some(round3((r - st).as_secs_f64())),
                        _ => None,
                    },
                    errors_during: by_op(&s.errors_during),
                    errors_after: by_op(&s.errors_after),
                    retries_during: by_op(&s.retries_during),
                    retries_after: by_op(&s.retries_after),
                    first_success_after_s,
                }
            })
            .collect()
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
