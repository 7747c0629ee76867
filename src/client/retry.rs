//! Retries as a real client does them: idempotent operations and message sends (same
//! message id, so the server deduplicates) are tried again after a transient failure, with
//! exponential backoff and jitter, within a bounded budget. Every retry is counted.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::client::api::ApiError;
use crate::client::population::World;
use crate::metrics::Op;

/// Time an operation may keep retrying, from its first attempt.
pub(crate) const BUDGET: Duration = Duration::from_secs(20);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Exponential backoff (doubling from 50 ms, at most 1 s, ±25 % jitter) within a budget.
pub(crate) struct Backoff {
    next: Duration,
    deadline: Instant,
}

impl Backoff {
    pub(crate) fn new(budget: Duration) -> Backoff {
        Backoff {
            next: FIRST_BACKOFF,
            deadline: Instant::now() + budget,
        }
    }

    /// Sleeps before the next attempt; false (at once) when the budget would be exceeded.
    pub(crate) async fn wait(&mut self) -> bool {
        let jitter = rand::thread_rng().gen_range(0.75..1.25);
        let pause = self.next.mul_f64(jitter);
        if Instant::now() + pause > self.deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        true
    }
}

/// Whether a failure may be transient: no answer (connection refused or reset, timeout), or
/// an answer that says "not now" (429, 5xx). 4xx answers are final.
pub(crate) fn retryable(e: &ApiError) -> bool {
    match e {
        ApiError::Transport(_) => true,
        ApiError::Status { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
        ApiError::Shape { .. }
        | ApiError::Unsupported { .. }
        | ApiError::Unaddressable { .. }
        | ApiError::WrongCredential { .. } => false,
    }
}

/// Counts a retry of `op` (report and, while a fault runs, the fault's tally).
pub(crate) fn count_retry(world: &World, op: Op) {
    world.counters.retries[op.index()].fetch_add(1, Ordering::Relaxed);
    if let Some(w) = world.recorder.fault_watch() {
        w.retry(op, Instant::now());
    }
}

/// Counts an operation that gave up after its budget.
pub(crate) fn count_exhausted(world: &World, op: Op) {
    world.counters.retry_exhausted[op.index()].fetch_add(1, Ordering::Relaxed);
}

/// Calls `call` until it succeeds, fails for good, or the budget is spent.
pub(crate) async fn with_retry<T, F, Fut>(world: &World, op: Op, mut call: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut backoff = Backoff::new(BUDGET);
    loop {
        match call().await {
            Err(e) if retryable(&e) => {
                if !backoff.wait().await {
                    count_exhausted(world, op);
                    return Err(e);
                }
                count_retry(world, op);
            }
            other => return other,
        }
    }
}
