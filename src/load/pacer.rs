//! Starting work on time. Tokio's timer wheel has a 1 ms resolution, so `sleep_until` wakes
//! up to a millisecond late: at 1,000 operations/s every start would be late by most of an
//! interval. The pacer runs the schedule on a thread of its own instead, sleeps with the
//! kernel's timer (its slack lowered to 1 µs) until shortly before each start, and spins the
//! rest of the way.
//!
//! Handing work to a runtime wakes one of its parked worker threads, which takes tens to
//! hundreds of microseconds on a busy 2-core machine: that wake-up, not the pacer, was most
//! of the start lag. So the pacer hands each start over a little early, and the task that
//! runs it waits the rest awake ([`Start::begin`]) and starts on time.
//!
//! Both waits spin, and spinning is CPU the generator spends per operation: with fixed
//! margins (80 µs for the pacer's sleep, 250 µs for the hand-off) it was most of the
//! generator's cost per request on a quiet machine. So each margin is a [`Margin`] that
//! follows what it covers (the kernel's oversleep, the worker's wake-up), measured on every
//! operation: a little more than the recent worst, rising at once and falling slowly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Work (a flow, a db-bench operation) that starts more than this after its intended start
/// counts as a late start: one threshold for `run` and `db-bench`.
pub(crate) const LATE_START_THRESHOLD: Duration = Duration::from_millis(1);

/// The most a start is handed over ahead of its time (and so the most a task spins).
pub(crate) const HANDOFF_AHEAD: Duration = Duration::from_micros(500);

/// A margin that covers a latency observed again and again (a thread's wake-up after a
/// sleep or a hand-off): `scale` times the recent worst plus a floor, within `[min, max]`.
/// It rises at once to cover a slower wake-up and decays by 1/16 of the excess per
/// observation, so one spike costs a few dozen operations of longer spinning, not the run.
#[derive(Debug)]
pub struct Margin {
    ns: AtomicU64,
    min: u64,
    max: u64,
    scale: u64,
}

impl Margin {
    pub fn new(initial: Duration, min: Duration, max: Duration, scale: u64) -> Margin {
        Margin {
            ns: AtomicU64::new(initial.as_nanos() as u64),
            min: min.as_nanos() as u64,
            max: max.as_nanos() as u64,
            scale,
        }
    }

    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.ns.load(Ordering::Relaxed))
    }

    /// Takes one observed latency into account. Races between observers lose an update at
    /// worst, which the next observation makes up.
    pub fn observe(&self, latency: Duration) {
        let target = (self.scale * latency.as_nanos() as u64 + self.min).clamp(self.min, self.max);
        let current = self.ns.load(Ordering::Relaxed);
        let next = if target >= current {
            target
        } else {
            current - (current - target) / 16
        };
        self.ns.store(next, Ordering::Relaxed);
    }
}

/// One start handed over by the pacer: its intended time and what the task that runs it
/// reports back.
#[derive(Debug, Clone)]
pub struct Start {
    /// The intended start.
    pub due: Instant,
    handed: Instant,
    handoff: Arc<Margin>,
}

impl Start {
    /// Called first by the task that runs the work: reports how long the hand-off took to
    /// reach it (so the next one is handed over early enough, and no earlier), then waits,
    /// awake, until the intended start; never returns before it.
    pub fn begin(&self) {
        self.handoff
            .observe(Instant::now().saturating_duration_since(self.handed));
        spin_until(self.due);
    }
}

/// Spins until `due`: the start of work handed over early, never before its time.
fn spin_until(due: Instant) {
    while Instant::now() < due {
        std::hint::spin_loop();
    }
}

/// Blocks the calling (non-async) thread until `due`, to within a few microseconds: it
/// sleeps until `margin` before `due`, learns from how late the kernel woke it, and spins
/// the rest.
fn sleep_until(due: Instant, margin: &Margin) {
    let now = Instant::now();
    let spin = margin.get();
    if due > now + spin {
        let wake = due - spin;
        std::thread::sleep(wake - now);
        margin.observe(Instant::now().saturating_duration_since(wake));
    }
    spin_until(due);
}

/// Runs `at_each(start)` shortly before every time of `schedule` (in order) on a new thread
/// named `name`, until the schedule ends or `at_each` returns false; whoever runs the work
/// calls [`Start::begin`] first. Returns the thread's handle.
pub fn spawn<S, F>(name: &str, schedule: S, mut at_each: F) -> std::thread::JoinHandle<()>
where
    S: IntoIterator<Item = Instant> + Send + 'static,
    F: FnMut(Start) -> bool + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_timer_slack();
            // The kernel's oversleep is steady: its recent worst plus 10 µs. A worker's
            // wake-up varies more (it may be busy): twice its recent worst plus 20 µs.
            let oversleep = Margin::new(
                Duration::from_micros(80),
                Duration::from_micros(10),
                Duration::from_micros(200),
                1,
            );
            let handoff = Arc::new(Margin::new(
                Duration::from_micros(250),
                Duration::from_micros(20),
                HANDOFF_AHEAD,
                2,
            ));
            for due in schedule {
                let at = due.checked_sub(handoff.get()).unwrap_or(due);
                sleep_until(at, &oversleep);
                let start = Start {
                    due,
                    handed: Instant::now(),
                    handoff: handoff.clone(),
                };
                if !at_each(start) {
                    break;
                }
            }
        })
        .expect("spawning the pacer thread")
}

/// Linux wakes a sleeping thread up to its timer slack (50 µs by default) late: ask for 1 µs.
fn lower_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_over_every_due_time_in_order_and_work_never_starts_early() {
        let t0 = Instant::now() + Duration::from_millis(5);
        let times: Vec<Instant> = (0..20)
            .map(|i| t0 + Duration::from_micros(500 * i))
            .collect();
        let (tx, rx) = std::sync::mpsc::channel();
        spawn("pacer-test", times.clone(), move |start| {
            let handed = Instant::now();
            start.begin();
            tx.send((start.due, handed, Instant::now())).is_ok()
        })
        .join()
        .unwrap();
        let seen: Vec<(Instant, Instant, Instant)> = rx.try_iter().collect();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), times);
        assert!(
            seen.iter()
                .all(|(due, handed, _)| *handed + HANDOFF_AHEAD >= *due),
            "handed over at most HANDOFF_AHEAD early"
        );
        assert!(
            seen.iter().all(|(due, _, started)| started >= due),
            "never started before its time"
        );
    }

    #[test]
    fn a_margin_rises_at_once_decays_slowly_and_stays_in_bounds() {
        let us = Duration::from_micros;
        let m = Margin::new(us(250), us(20), us(500), 2);
        m.observe(us(5));
        assert!(
            m.get() < us(250) && m.get() > us(200),
            "one quick wake-up: a small step down"
        );
        for _ in 0..200 {
            m.observe(us(5));
        }
        assert!(
            m.get() <= us(31),
            "quick wake-ups: twice the latency plus the floor"
        );
        assert!(m.get() >= us(20), "never below the floor");
        m.observe(us(100));
        assert_eq!(m.get(), us(220), "a slow wake-up: covered at once");
        m.observe(us(10_000));
        assert_eq!(m.get(), us(500), "never above the ceiling");
    }
}
