//! Counters of the load generator itself (not of the server): how many flows were meant to
//! start, how many did, how late, how many were cut short, and how many WebSockets are open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::metrics::Op;
use crate::scenario::FlowKind;

/// Shared by the executors and the virtual clients; read by progress and the report.
#[derive(Debug, Default)]
pub struct GeneratorCounters {
    pub(crate) flows_intended: AtomicU64,
    pub(crate) flows_started: AtomicU64,
    /// Flows (started in the measured window) whose actual start lagged their intended start
    /// by more than the threshold.
    pub(crate) late_starts: AtomicU64,
    pub(crate) max_start_lag_us: AtomicU64,
    /// Start lag of every flow started in the measured window.
    pub(crate) start_lags: StartLags,
    pub(crate) flows_in_flight: AtomicU64,
    /// Every flow launched, warm-up included: what live progress counts (the measured
    /// counters start at the window, so a rate from them reads 0 while ramping).
    pub(crate) flows_launched: AtomicU64,
    /// Most flows in flight at once: in the closed model, the virtual users actually busy.
    pub(crate) peak_in_flight: AtomicU64,
    pub(crate) flows_cancelled: AtomicU64,
    /// Cancelled flows per kind, indexed by `FlowKind as usize`.
    pub(crate) cancelled_by_flow: [AtomicU64; FlowKind::COUNT],
    pub(crate) flows_failed: AtomicU64,
    pub(crate) devices: AtomicU64,
    pub(crate) open_websockets: AtomicU64,
    pub(crate) peak_open_websockets: AtomicU64,
    /// Devices whose WebSocket could not be reopened for the drain.
    pub(crate) drain_reconnect_failures: AtomicU64,
    /// WebSockets whose close handshake did not finish in time (the task was aborted).
    pub(crate) ws_close_timeouts: AtomicU64,
    /// Attempts after the first, per operation (indexed by `Op::index`).
    pub(crate) retries: [AtomicU64; crate::metrics::Op::COUNT],
    /// Operations that ran out of retry budget, per operation.
    pub(crate) retry_exhausted: [AtomicU64; crate::metrics::Op::COUNT],
    /// Dropped WebSockets that reconnected by themselves, and the attempts it took.
    pub ws_reconnects: AtomicU64,
    pub(crate) ws_reconnect_attempts: AtomicU64,
}

/// Start lags (intended start → real start), in microseconds, for the report's percentiles.
pub(crate) struct StartLags(Mutex<Histogram<u64>>);

impl Default for StartLags {
    fn default() -> Self {
        StartLags(Mutex::new(crate::report::model::new_histogram()))
    }
}

impl std::fmt::Debug for StartLags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartLags")
    }
}

impl StartLags {
    pub(crate) fn record(&self, lag: Duration) {
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        h.saturating_record(crate::report::model::clamp_us(lag.as_micros()));
    }

    /// `(p50, p99)` in microseconds (hdrhistogram's `value_at_quantile`); zeros when empty.
    pub(crate) fn p50_p99(&self) -> (u64, u64) {
        let h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if h.is_empty() {
            return (0, 0);
        }
        (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
    }
}

impl GeneratorCounters {
    /// A flow starts (any phase): counted for live progress and the in-flight peak.
    pub(crate) fn flow_launched(&self) {
        self.flows_launched.fetch_add(1, Ordering::Relaxed);
        let now = self.flows_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn ws_opened(&self) {
        let now = self.open_websockets.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_open_websockets.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn ws_closed(&self) {
        self.open_websockets.fetch_sub(1, Ordering::Relaxed);
    }

    /// A flow of `kind` was cancelled before it finished.
    pub(crate) fn flow_cancelled(&self, kind: FlowKind) {
        self.flows_cancelled.fetch_add(1, Ordering::Relaxed);
        self.cancelled_by_flow[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Cancelled flows per flow operation name (`flow_<kind>`), only those above zero.
    pub(crate) fn cancelled_by_flow_name(&self) -> std::collections::BTreeMap<String, u64> {
        FlowKind::ALL
            .iter()
            .map(|k| {
                (
                    Op::Flow(*k).name().to_string(),
                    Self::get(&self.cancelled_by_flow[*k as usize]),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Per operation name, only those above zero.
    pub(crate) fn by_op(
        counts: &[AtomicU64; crate::metrics::Op::COUNT],
    ) -> std::collections::BTreeMap<String, u64> {
        crate::metrics::Op::ALL
            .iter()
            .map(|op| (op.name().to_string(), Self::get(&counts[op.index()])))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    pub(crate) fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}
