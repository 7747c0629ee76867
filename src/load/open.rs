//! The open model: flows start at the scenario's arrival rate whatever the server's speed.
//! Each flow is handed its *intended* start and timed from it; a start that could not happen
//! on time (the generator was behind, or `max_in_flight` was reached) is counted as late.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{flows, World};
use crate::load::mix::Mix;
use crate::load::schedule::ArrivalSchedule;
use crate::load::LATE_START_THRESHOLD;
use crate::scenario::OpenPlan;

/// Runs the plan from `epoch`; returns once every flow finished or `deadline` passed (the
/// rest are cancelled and counted).
pub async fn run(
    world: Arc<World>,
    plan: &OpenPlan,
    mix: &Mix,
    seed: u64,
    epoch: Instant,
    window_start: Instant,
    deadline: Instant,
) {
    let schedule = ArrivalSchedule::new(plan);
    let counters = world.counters.clone();
    let slots = Arc::new(Semaphore::new(plan.max_in_flight as usize));
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut flows = JoinSet::new();
    let mut k = 0u64;
    while let Some(offset) = schedule.time_of(k) {
        k += 1;
        let intended = epoch + offset;
        if intended >= window_start {
            counters.flows_intended.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep_until(intended.into()).await;
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        // Reap finished flows so the set does not grow with the run.
        while flows.try_join_next().is_some() {}
        let lag = Instant::now().saturating_duration_since(intended);
        if intended >= window_start {
            counters.flows_started.fetch_add(1, Ordering::Relaxed);
            counters
                .max_start_lag_us
                .fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
            if lag > LATE_START_THRESHOLD {
                counters.late_starts.fetch_add(1, Ordering::Relaxed);
            }
        }
        let kind = mix.pick(&mut rng);
        let flow_seed: u64 = rng.gen();
        let world = world.clone();
        let counters = counters.clone();
        counters.flows_in_flight.fetch_add(1, Ordering::Relaxed);
        flows.spawn(async move {
            let _ = flows::run(world, kind, intended, flow_seed).await;
            counters.flows_in_flight.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    finish(flows, &world, deadline).await;
}

/// Waits for in-flight flows until `deadline`, then cancels the rest (each cancelled flow
/// records itself as failed: see [`flows::FlowCtx`]).
pub async fn finish(mut flows: JoinSet<()>, world: &World, deadline: Instant) {
    let wait_all = async { while flows.join_next().await.is_some() {} };
    if tokio::time::timeout_at(deadline.into(), wait_all)
        .await
        .is_err()
    {
        let left = flows.len() as u64;
        world.counters.flows_in_flight.fetch_sub(
            left.min(world.counters.flows_in_flight.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        flows.abort_all();
        while flows.join_next().await.is_some() {}
    }
}
