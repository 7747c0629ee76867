//! The open model: flows start at the scenario's arrival rate whatever the server's speed.
//! Each flow is handed its *intended* start and timed from it; a start that could not happen
//! on time (the generator was behind, or `max_in_flight` was reached) is counted as late.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{flows, World};
use crate::load::mix::Mix;
use crate::load::pacer;
use crate::load::schedule::ArrivalSchedule;
use crate::load::shard::ArrivalDraws;
use crate::load::LATE_START_THRESHOLD;
use crate::scenario::OpenPlan;

/// Runs the plan from `epoch`; returns once every flow finished or `deadline` passed (the
/// rest are cancelled and counted).
///
/// The schedule runs on the [`pacer`] thread (tokio's timer would start every flow up to
/// 1 ms late); it spawns each flow onto this runtime just before its intended start, and the
/// task waits for that instant. A flow's start lag is measured when it really starts.
pub(crate) async fn run(
    world: Arc<World>,
    plan: &OpenPlan,
    mix: &Mix,
    seed: u64,
    epoch: Instant,
    window_start: Instant,
    deadline: Instant,
) {
    let schedule = ArrivalSchedule::new(plan);
    // A shard starts only its own arrivals, at their times in the whole schedule.
    let shard = world.shard();
    let times = (0..)
        .map_while(move |k| schedule.time_of(k).map(|t| (k, t)))
        .filter(move |(k, _)| shard.is_none_or(|s| s.owns_arrival(*k)))
        .map(move |(_, offset)| epoch + offset);
    let flows = Arc::new(Mutex::new(JoinSet::new()));
    let mut start = Starter {
        world: world.clone(),
        runtime: tokio::runtime::Handle::current(),
        slots: Arc::new(Semaphore::new(plan.max_in_flight as usize)),
        draws: ArrivalDraws::new(seed, mix.clone(), shard),
        window_start,
        flows: flows.clone(),
    };
    let pacer = pacer::spawn("e2ee-pacer", times, move |intended| {
        start.flow(intended);
        true
    });
    // The pacer blocks its own thread; wait for it without blocking this runtime.
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    let flows = std::mem::take(&mut *flows.lock().unwrap_or_else(|p| p.into_inner()));
    finish(flows, &world, deadline).await;
}

/// What the pacer thread does at each intended start.
struct Starter {
    world: Arc<World>,
    runtime: tokio::runtime::Handle,
    slots: Arc<Semaphore>,
    draws: ArrivalDraws,
    window_start: Instant,
    flows: Arc<Mutex<JoinSet<()>>>,
}

impl Starter {
    fn flow(&mut self, start: pacer::Start) {
        let intended = start.due;
        let counters = self.world.counters.clone();
        let measured = intended >= self.window_start;
        if measured {
            counters.flows_intended.fetch_add(1, Ordering::Relaxed);
        }
        // `max_in_flight` reached: wait (the wait shows as start lag).
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => self
                .runtime
                .block_on(self.slots.clone().acquire_owned())
                .expect("the semaphore is never closed"),
        };
        let (kind, flow_seed) = self.draws.next_flow();
        let world = self.world.clone();
        counters.flow_launched();
        let mut flows = self.flows.lock().unwrap_or_else(|p| p.into_inner());
        // Reap finished flows so the set does not grow with the run.
        while flows.try_join_next().is_some() {}
        flows.spawn_on(
            async move {
                // Handed over early so this worker is awake: start exactly on time.
                start.begin();
                let lag = Instant::now().saturating_duration_since(intended);
                if measured {
                    counters.flows_started.fetch_add(1, Ordering::Relaxed);
                    counters.start_lags.record(lag);
                    counters
                        .max_start_lag_us
                        .fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
                    if lag > LATE_START_THRESHOLD {
                        counters.late_starts.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = flows::run(world, kind, intended, flow_seed).await;
                counters.flows_in_flight.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            },
            &self.runtime,
        );
    }
}

/// Waits for in-flight flows until `deadline`, then cancels the rest (each cancelled flow
/// records itself as failed: see [`flows::FlowCtx`]).
pub(crate) async fn finish(mut flows: JoinSet<()>, world: &World, deadline: Instant) {
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
