//! Ctrl-C during a run keeps what was measured, as k6 and Gatling do: the first SIGINT or
//! SIGTERM while flows are running stops the schedule, drains briefly and lets the run write
//! its report, marked interrupted (the CLI still exits 130). Before the clock starts (setup,
//! key precomputation) there is nothing to keep, and the CLI stops at once. `db-bench` uses
//! the same switch from its first scale on: the current step finishes, the schedule stops,
//! and the scales measured so far are reported.
//!
//! One run measures at a time per process, so the state is process-wide: the CLI's signal
//! handler reaches the executor without threading a handle through every caller.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

static MEASURING: AtomicBool = AtomicBool::new(false);
static REQUESTED: AtomicBool = AtomicBool::new(false);
static WAKE: Notify = Notify::const_new();

/// Asks a measuring run to stop and report. `false` when no run is measuring (the caller
/// should stop the process instead).
pub(crate) fn request() -> bool {
    if !MEASURING.load(Ordering::SeqCst) {
        return false;
    }
    REQUESTED.store(true, Ordering::SeqCst);
    // notify_one keeps a permit when nobody waits yet.
    WAKE.notify_one();
    true
}

/// Marks the measured part of a run, from the clock's start until it is over; dropping the
/// guard ends it.
pub(crate) struct Measuring;

impl Measuring {
    pub(crate) fn start() -> Measuring {
        REQUESTED.store(false, Ordering::SeqCst);
        MEASURING.store(true, Ordering::SeqCst);
        Measuring
    }

    /// Resolves when [`request`] was called during this run.
    pub(crate) async fn requested(&self) {
        while !requested_now() {
            WAKE.notified().await;
        }
    }

    pub(crate) fn was_requested(&self) -> bool {
        requested_now()
    }
}

/// Whether a stop was asked for, from any thread (db-bench's pacer thread reads it between
/// operations).
pub(crate) fn requested_now() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

impl Drop for Measuring {
    fn drop(&mut self) {
        MEASURING.store(false, Ordering::SeqCst);
    }
}
