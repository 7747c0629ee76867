//! The closed model on goose: N virtual users, each running one flow after another, ramped
//! up and down by a goose test plan. Goose runs the users; each goose transaction runs one
//! flow of the mix, and reports the flow and each of its steps (HTTP calls, WebSocket
//! connects, drains) to goose as custom request records, so goose's own report — written
//! next to ours — shows them too. Our histograms record the same steps at microsecond
//! precision; goose's report is a second opinion, not the source of our figures.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use goose::config::GooseDefaultType;
use goose::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::client::{flows, World};
use crate::load::mix::Mix;
use crate::load::shard;
use crate::metrics::Op;
use crate::scenario::{ClosedPlan, Scenario};
use crate::Error;

/// File name of goose's report in the report directory.
pub(crate) const GOOSE_REPORT: &str = "goose-report.html";

/// The goose method label of an operation (goose shows it in its method column).
fn method(op: Op) -> &'static str {
    match op {
        Op::WsConnect | Op::Delivery | Op::OfflineDrain => "WS",
        Op::Flow(_) => "FLOW",
        _ => "HTTP",
    }
}

/// Goose's test plan (`users,timespan;…`, whole seconds) for the plan and total duration.
pub(crate) fn test_plan(plan: &ClosedPlan, duration: std::time::Duration) -> String {
    let secs = |d: std::time::Duration| d.as_secs_f64().round() as u64;
    let hold = duration.saturating_sub(plan.ramp_up + plan.ramp_down);
    format!(
        "{u},{}s;{u},{}s;0,{}s",
        secs(plan.ramp_up),
        secs(hold).max(1),
        secs(plan.ramp_down),
        u = plan.users
    )
}

/// Runs the closed model until goose's test plan ends; returns goose's report file name
/// (relative to `report_dir`).
pub(crate) async fn run(
    world: Arc<World>,
    plan: &ClosedPlan,
    mix: &Mix,
    scenario: &Scenario,
    window_start: Instant,
    report_dir: &Path,
) -> Result<String, Error> {
    std::fs::create_dir_all(report_dir).map_err(|source| Error::Io {
        path: report_dir.to_path_buf(),
        source,
    })?;
    let report_path = report_dir.join(GOOSE_REPORT);
    let iteration = Arc::new(AtomicU64::new(0));
    let seed = scenario.seed;
    let (w, m) = (world.clone(), mix.clone());
    let transaction = Transaction::new(Arc::new(move |user: &mut GooseUser| {
        let (world, mix, iteration) = (w.clone(), m.clone(), iteration.clone());
        Box::pin(async move {
            let n =
                shard::iteration_number(world.shard(), iteration.fetch_add(1, Ordering::Relaxed));
            let mut rng =
                ChaCha20Rng::seed_from_u64(seed ^ (n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let kind = mix.pick(&mut rng);
            // A closed-model flow starts when its user is free: that is its intended start.
            let intended = Instant::now();
            let counters = &world.counters;
            if intended >= window_start {
                counters.flows_intended.fetch_add(1, Ordering::Relaxed);
                counters.flows_started.fetch_add(1, Ordering::Relaxed);
            }
            counters.flow_launched();
            let outcome = flows::run(world.clone(), kind, intended, rand::Rng::gen(&mut rng)).await;
            counters.flows_in_flight.fetch_sub(1, Ordering::Relaxed);
            for step in &outcome.steps {
                let name = step.op.name();
                let error = (!step.ok).then_some("failed");
                user.record_custom_request_duration(
                    method(step.op),
                    name,
                    step.elapsed,
                    step.ok,
                    None,
                    error,
                )
                .await?;
            }
            Ok(())
        })
    }))
    .set_name("flow");
    let mut scenario_g = goose::prelude::Scenario::new("e2ee").register_transaction(transaction);
    if !plan.think_time.is_zero() {
        scenario_g = scenario_g
            .set_wait_time(plan.think_time, plan.think_time)
            .map_err(|e| Error::BadInput(format!("closed.think_time: {e}")))?;
    }
    let attack = goose_attack(&world, plan, scenario, scenario_g, &report_path)?;
    let _stdout = StdoutToStderr::redirect();
    attack.execute().await.map_err(goose_err)?;
    Ok(GOOSE_REPORT.to_string())
}

/// goose's attack for `plan`: one scenario, the target host, the test plan, the report file,
/// and goose's own output silenced.
fn goose_attack(
    world: &World,
    plan: &ClosedPlan,
    scenario: &Scenario,
    scenario_g: goose::prelude::Scenario,
    report_path: &Path,
) -> Result<Box<GooseAttack>, Error> {
    GooseAttack::initialize_with_config(goose::config::GooseConfiguration::default())
        .map_err(goose_err)?
        .register_scenario(scenario_g)
        .set_default(GooseDefault::Host, world.api.base())
        .map_err(goose_err)?
        .set_default(
            GooseDefault::TestPlan,
            test_plan(plan, scenario.duration).as_str(),
        )
        .map_err(goose_err)?
        .set_default(
            GooseDefault::ReportFile,
            report_path.to_string_lossy().as_ref(),
        )
        .map_err(goose_err)?
        .set_default(GooseDefault::NoPrintMetrics, true)
        .map_err(goose_err)?
        .set_default(GooseDefault::NoTelnet, true)
        .map_err(goose_err)?
        .set_default(GooseDefault::Quiet, 1)
        .map_err(goose_err)
}

fn goose_err(e: GooseError) -> Error {
    Error::Unavailable(format!("goose: {e}"))
}

/// goose prints its own progress ("4 users launched.") on stdout even when quiet; stdout is
/// for the summary table alone (scripts parse it), so fd 1 points at stderr while the attack
/// runs, and back when this guard drops.
struct StdoutToStderr {
    saved: libc::c_int,
}

impl StdoutToStderr {
    fn redirect() -> Option<StdoutToStderr> {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: plain descriptor calls on the process's own fds 1 and 2.
        let saved = unsafe { libc::dup(1) };
        if saved < 0 || unsafe { libc::dup2(2, 1) } < 0 {
            if saved >= 0 {
                unsafe { libc::close(saved) };
            }
            return None;
        }
        Some(StdoutToStderr { saved })
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        // SAFETY: restores the descriptor saved in `redirect`.
        unsafe {
            libc::dup2(self.saved, 1);
            libc::close(self.saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn test_plan_ramps_holds_and_ramps_down() {
        let plan = ClosedPlan {
            users: 4,
            ramp_up: Duration::from_secs(2),
            ramp_down: Duration::from_secs(1),
            think_time: Duration::ZERO,
        };
        assert_eq!(test_plan(&plan, Duration::from_secs(10)), "4,2s;4,7s;0,1s");
    }
}
