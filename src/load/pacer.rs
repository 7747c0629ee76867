//! Starting work on time. Tokio's timer wheel has a 1 ms resolution, so `sleep_until` wakes
//! up to a millisecond late: at 1,000 operations/s every start would be late by most of an
//! interval. The pacer runs the schedule on a thread of its own instead, sleeps with the
//! kernel's timer (its slack lowered to 1 µs) until shortly before each start, and spins the
//! rest of the way. At 1,000 operations/s that spin is at most [`SPIN`] per operation.
//!
//! Handing work to a runtime wakes one of its parked worker threads, which takes tens to
//! hundreds of microseconds on a busy 2-core machine: that wake-up, not the pacer, was most
//! of the start lag. So the pacer hands each start over [`HANDOFF_AHEAD`] early, and the
//! task that runs it waits the rest with [`spin_until`], awake, and starts on time.

use std::time::{Duration, Instant};

/// The last stretch before a start that is spun rather than slept (covers the kernel's
/// wake-up latency).
pub(crate) const SPIN: Duration = Duration::from_micros(80);

/// Work (a flow, a db-bench operation) that starts more than this after its intended start
/// counts as a late start: one threshold for `run` and `db-bench`.
pub(crate) const LATE_START_THRESHOLD: Duration = Duration::from_millis(1);

/// How long before its due time a start is handed to the task that runs it (which then
/// spins the rest with [`spin_until`]): covers a parked worker thread's wake-up.
pub(crate) const HANDOFF_AHEAD: Duration = Duration::from_micros(250);

/// Spins until `due` (at most [`HANDOFF_AHEAD`] after a handoff): the start of work handed
/// over early, never before its time.
pub fn spin_until(due: Instant) {
    while Instant::now() < due {
        std::hint::spin_loop();
    }
}

/// Blocks the calling (non-async) thread until `due`, to within a few microseconds.
pub(crate) fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now + SPIN {
        std::thread::sleep(due - now - SPIN);
    }
    while Instant::now() < due {
        std::hint::spin_loop();
    }
}

/// Runs `at_each(due)` [`HANDOFF_AHEAD`] before every time of `schedule` (in order) on a new
/// thread named `name`, until the schedule ends or `at_each` returns false; whoever starts
/// the work waits for `due` with [`spin_until`]. Returns the thread's handle.
pub fn spawn<S, F>(name: &str, schedule: S, mut at_each: F) -> std::thread::JoinHandle<()>
where
    S: IntoIterator<Item = Instant> + Send + 'static,
    F: FnMut(Instant) -> bool + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_timer_slack();
            for due in schedule {
                sleep_until(due.checked_sub(HANDOFF_AHEAD).unwrap_or(due));
                if !at_each(due) {
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
        spawn("pacer-test", times.clone(), move |due| {
            let handed = Instant::now();
            spin_until(due);
            tx.send((due, handed, Instant::now())).is_ok()
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
}
