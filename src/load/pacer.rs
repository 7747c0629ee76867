//! Starting work on time. Tokio's timer wheel has a 1 ms resolution, so `sleep_until` wakes
//! up to a millisecond late: at 1,000 operations/s every start would be late by most of an
//! interval. The pacer runs the schedule on a thread of its own instead, sleeps with the
//! kernel's timer (its slack lowered to 1 µs) until shortly before each start, and spins the
//! rest of the way.
//!
//! Handing work to a runtime wakes one of its parked worker threads, which takes tens to
//! hundreds of microseconds on a busy 2-core machine: that wake-up, not the pacer, was most
//! of the start lag. So the pacer hands each start over a little early, and the task that
//! runs it waits the rest ([`Start::begin`]) and starts on time.
//!
//! Both waits sleep with the kernel's timer and spin only the last stretch: spinning is CPU
//! the generator takes from the server on every operation (with fixed margins, 80 µs for the
//! pacer's sleep and 250 µs of spinning after each hand-off, it was most of the generator's
//! cost per request on a quiet machine; with real-time generator threads, it could not even
//! be preempted). So each margin is a [`Margin`] that follows what it covers (the kernel's
//! oversleep, the worker's wake-up), measured on every operation: its typical value plus
//! twice its typical spread.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Work (a flow, a db-bench operation) that starts more than this after its intended start
/// counts as a late start: one threshold for `run` and `db-bench`.
pub(crate) const LATE_START_THRESHOLD: Duration = Duration::from_millis(1);

/// The most a start is handed over ahead of its time (and so the most a task spins).
pub(crate) const HANDOFF_AHEAD: Duration = Duration::from_micros(500);

/// A margin that covers a latency observed again and again (a thread's wake-up after a
/// sleep or a hand-off), estimated as TCP estimates its retransmission timeout (Jacobson and
/// Karels): a smoothed mean plus `k` smoothed mean deviations, plus a floor, at most `max`.
/// It follows the typical latency and its spread rather than the worst case: the worst case
/// would have every operation spin for the rare slow wake-up, and spinning is the
/// generator's CPU; a wake-up slower than the margin starts late by the difference.
#[derive(Debug)]
pub struct Margin {
    /// (mean, mean deviation) in nanoseconds.
    estimate: Mutex<(f64, f64)>,
    floor: f64,
    max: f64,
    k: f64,
}

impl Margin {
    pub fn new(initial: Duration, floor: Duration, max: Duration, k: f64) -> Margin {
        let initial = initial.as_nanos() as f64;
        Margin {
            estimate: Mutex::new((initial / 2.0, initial / 4.0)),
            floor: floor.as_nanos() as f64,
            max: max.as_nanos() as f64,
            k,
        }
    }

    pub fn get(&self) -> Duration {
        let (mean, dev) = *self.estimate.lock().unwrap_or_else(|p| p.into_inner());
        let ns = (mean + self.k * dev + self.floor).clamp(self.floor, self.max);
        Duration::from_nanos(ns as u64)
    }

    /// Takes one observed latency into account (gains 1/8 and 1/4, as TCP's).
    pub fn observe(&self, latency: Duration) {
        let x = (latency.as_nanos() as f64).min(self.max);
        let mut e = self.estimate.lock().unwrap_or_else(|p| p.into_inner());
        let (mean, dev) = *e;
        *e = (
            mean + (x - mean) / 8.0,
            dev + ((x - mean).abs() - dev) / 4.0,
        );
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
    /// How late a worker's timer wakes it (shared by the tasks of one pacer).
    oversleep: Arc<Margin>,
}

impl Start {
    /// Called first by the task that runs the work: reports how long the hand-off took to
    /// reach it (so the next one is handed over early enough, and no earlier), then waits
    /// until the intended start; never returns before it. It sleeps most of the wait and
    /// spins only the last stretch, as the pacer does: a hand-off can arrive hundreds of
    /// microseconds early (a worker's wake-up is that slow at times), and spinning all of it
    /// was CPU taken from the server on every operation.
    pub fn begin(&self) {
        self.handoff
            .observe(Instant::now().saturating_duration_since(self.handed));
        sleep_until(self.due, &self.oversleep);
    }
}

/// The margin for a thread's own timer wake-up (the pacer's, or a worker's in
/// [`Start::begin`]).
fn oversleep_margin() -> Margin {
    Margin::new(
        Duration::from_micros(80),
        Duration::from_micros(10),
        Duration::from_micros(200),
        2.0,
    )
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
            super::priority::favour_this_thread();
            // Every margin: mean + 2 deviations + 10 µs.
            let oversleep = oversleep_margin();
            let handoff = Arc::new(Margin::new(
                Duration::from_micros(250),
                Duration::from_micros(10),
                HANDOFF_AHEAD,
                2.0,
            ));
            let worker_oversleep = Arc::new(oversleep_margin());
            for due in schedule {
                let at = due.checked_sub(handoff.get()).unwrap_or(due);
                sleep_until(at, &oversleep);
                let start = Start {
                    due,
                    handed: Instant::now(),
                    handoff: handoff.clone(),
                    oversleep: worker_oversleep.clone(),
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
    fn a_margin_follows_the_typical_latency_and_its_spread_within_bounds() {
        let us = Duration::from_micros;
        let m = Margin::new(us(250), us(10), us(500), 2.0);
        for _ in 0..200 {
            m.observe(us(30));
        }
        let steady = m.get();
        assert!(
            steady >= us(39) && steady <= us(41),
            "steady 30 µs: 30 + 10, got {steady:?}"
        );
        for i in 0..200 {
            m.observe(us(if i % 2 == 0 { 20 } else { 60 }));
        }
        let noisy = m.get();
        assert!(
            noisy > us(60) && noisy < us(120),
            "spread widens it: {noisy:?}"
        );
        m.observe(us(100_000));
        let after_one = m.get();
        assert!(
            after_one > noisy && after_one < us(500),
            "one outlier moves it, partly: {after_one:?}"
        );
        for _ in 0..50 {
            m.observe(us(100_000));
        }
        assert_eq!(m.get(), us(500), "never above the ceiling");
        let floor = Margin::new(us(0), us(10), us(500), 2.0);
        assert_eq!(floor.get(), us(10), "never below the floor");
    }
}
