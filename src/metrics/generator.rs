//! Counters of the load generator itself (not of the server): how many flows were meant to
//! start, how many did, how late, and how many WebSockets are open.

use std::sync::atomic::{AtomicU64, Ordering};

/// Shared by the executors and the virtual clients; read by progress and the report.
#[derive(Debug, Default)]
pub struct GeneratorCounters {
    pub flows_intended: AtomicU64,
    pub flows_started: AtomicU64,
    /// Flows (started in the measured window) whose actual start lagged their intended start
    /// by more than the threshold.
    pub late_starts: AtomicU64,
    pub max_start_lag_us: AtomicU64,
    pub flows_in_flight: AtomicU64,
    pub flows_cancelled: AtomicU64,
    pub flows_failed: AtomicU64,
    pub devices: AtomicU64,
    pub open_websockets: AtomicU64,
    pub peak_open_websockets: AtomicU64,
}

impl GeneratorCounters {
    pub fn ws_opened(&self) {
        let now = self.open_websockets.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_open_websockets.fetch_max(now, Ordering::Relaxed);
    }

    pub fn ws_closed(&self) {
        self.open_websockets.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}
