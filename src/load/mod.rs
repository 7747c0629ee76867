//! Running a scenario against a server: set up the population, apply the load (open model:
//! [`open`]; closed model on goose: [`closed`]), drain, and turn what was measured into a
//! [`RunReport`].

pub(crate) mod capability;
pub(crate) mod closed;
pub(crate) mod interrupt;
pub(crate) mod memory_probe;
pub mod mix;
pub(crate) mod open;
pub mod pacer;
pub mod priority;
pub mod schedule;
pub mod shard;
pub(crate) mod start_at;
pub mod wakeup;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::client::keys::KeyFactory;
use crate::client::{FlowConfig, ServerApi, World};
use crate::fault::{self, FaultWatch};
use crate::metrics::machine::MachineProbe;
use crate::metrics::progress::{self, Progress};
use crate::metrics::{process, GeneratorCounters, Ledger, Recorder};
use crate::report::model::{
    BudgetVerdict, Environment, GeneratorHealth, Resilience, RunReport, ScenarioInfo, StageInfo,
    Window, MAX_SOURCE_COPY, SCHEMA_VERSION,
};
use crate::scenario::{FlowKind, Load, Scenario};
use crate::Error;

pub(crate) use pacer::LATE_START_THRESHOLD;
/// Time the drain always gets after the flows ended (to reconnect devices and take their
/// queued messages), even when the flows used up the whole drain period.
pub(crate) const END_GRACE: Duration = Duration::from_secs(2);
/// The longest drain after a Ctrl-C: enough for replies already on their way.
const INTERRUPT_DRAIN: Duration = Duration::from_secs(2);
/// How long a flow waits for a peer to decrypt before giving up on the exchange.
pub(crate) const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Registrations in flight at once while setting up the population.
const SETUP_PARALLELISM: usize = 16;

/// Everything a run needs besides the scenario.
pub struct RunContext<'a> {
    pub api: Arc<dyn ServerApi>,
    pub environment: Environment,
    pub progress: progress::Mode,
    /// Where goose writes its own report (closed model).
    pub report_dir: &'a Path,
    /// This worker's slice of a sharded test (`None`: the whole scenario).
    pub shard: Option<shard::Shard>,
    /// When to start the clock (`None`: as soon as the setup is done).
    pub start_at: Option<chrono::DateTime<Utc>>,
}

/// Most key sets and spare one-time prekeys made before the clock; beyond them keys are made
/// on demand (and counted), so a huge expected number of registrations cannot exhaust memory.
const MAX_PRECOMPUTED_SETS: usize = 250_000;
const MAX_SPARE_ONE_TIME: usize = 2_000_000;
/// How often key precomputation prints its progress.
const KEY_PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Sets `flag` when dropped: the future that owns it was dropped (e.g. on SIGINT).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Makes the key material ahead of the clock on a blocking thread, with progress lines on
/// stderr for large populations; dropping the returned future stops the work.
async fn precompute_keys(
    scenario: &Scenario,
    seed: u64,
    device_sets: usize,
    spare_one_time: usize,
    mode: progress::Mode,
) -> Result<KeyFactory, Error> {
    let device_sets = device_sets.min(MAX_PRECOMPUTED_SETS);
    let spare_one_time = spare_one_time.min(MAX_SPARE_ONE_TIME);
    let otpk = scenario.population.one_time_prekeys as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let _guard = StopOnDrop(stop.clone());
    let show = !matches!(mode, progress::Mode::Quiet);
    if show {
        eprintln!("precomputing keys for {device_sets} devices");
    }
    tokio::task::spawn_blocking(move || {
        // A line every few seconds, so a large population visibly progresses.
        let last = std::sync::Mutex::new(Instant::now());
        let report = |done: usize| {
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            if show && last.elapsed() >= KEY_PROGRESS_EVERY {
                *last = Instant::now();
                eprintln!("  keys: {done}/{device_sets} devices");
            }
        };
        let f = KeyFactory::precompute(seed, device_sets, otpk, &stop, report)?;
        // In chunks, so that a stop request is seen within one chunk.
        let mut left = spare_one_time;
        while left > 0 {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let n = left.min(crate::client::keys::PROGRESS_EVERY * 10);
            f.stock_one_time(n);
            left -= n;
        }
        Some(f)
    })
    .await
    .map_err(|e| Error::Unavailable(format!("precomputing keys failed: {e}")))?
    .ok_or(Error::Interrupted)
}

/// Runs `scenario` and returns what it measured: a report without a verdict (not yet judged
/// by [`crate::verdict::judge`], not yet written).
pub async fn execute(scenario: &Scenario, ctx: RunContext<'_>) -> Result<RunReport, Error> {
    execute_with_faults(scenario, ctx, None).await
}

/// [`execute`], injecting the scenario's faults into `targets` during the measured window.
///
/// Four phases: [`prepare`] (keys and population, before the clock), [`drive`] (the
/// schedule and the faults), [`drain`] (what is still on its way) and [`measure`] (the report,
/// without a verdict: [`crate::verdict`] judges it).
pub(crate) async fn execute_with_faults(
    scenario: &Scenario,
    ctx: RunContext<'_>,
    targets: Option<&fault::Targets<'_>>,
) -> Result<RunReport, Error> {
    // Decided once: with no fault to inject, nothing watches for one.
    let targets = targets.filter(|_| !scenario.faults.is_empty());
    let started_at = Utc::now();
    let mut machine = MachineProbe::begin();
    let prepared = prepare(scenario, &ctx).await?;
    machine.clock_started();
    let mut driven = drive(scenario, &ctx, &prepared, targets).await?;
    let drained = drain(scenario, &prepared, &mut driven).await;
    Ok(measure(Measured {
        scenario,
        ctx,
        prepared,
        driven,
        drained,
        targets: targets.is_some(),
        started_at,
        machine,
    }))
}

/// What exists before the clock starts.
struct Prepared {
    world: Arc<World>,
    recorder: Arc<Recorder>,
    ledger: Arc<Ledger>,
    counters: Arc<GeneratorCounters>,
    probe: Option<memory_probe::ProbeResult>,
    /// How the start at `--start-at` went (`None`: no synchronized start).
    start_at: Option<crate::report::model::StartAtInfo>,
    /// What this worker runs of the scenario (all of it unless sharded).
    slice: shard::Slice,
}

/// Key material ahead of the clock (the population, the expected registrations and the
/// memory probe; spare one-time prekeys for the expected replenishments), then the memory
/// probe and the population, registered and connected.
async fn prepare(scenario: &Scenario, ctx: &RunContext<'_>) -> Result<Prepared, Error> {
    let pop = &scenario.population;
    let recorder = Arc::new(Recorder::unstarted());
    let ledger = Arc::new(Ledger::new());
    let counters = Arc::new(GeneratorCounters::default());
    let sharded = shard::Slice::new(scenario, ctx.shard);
    let expected_flows = expected_flows(scenario) / sharded.parts();
    let share =
        |k: FlowKind| scenario.weight(k) as f64 / scenario.weights.iter().sum::<u32>() as f64;
    let registers = (expected_flows * share(FlowKind::Register) * 1.2).ceil() as usize + 4;
    let replenish_keys = ((expected_flows * share(FlowKind::Replenish) * 1.2).ceil() as usize + 4)
        * pop.one_time_prekeys as usize;
    let device_sets = (sharded.users * pop.devices_per_user) as usize
        + registers
        + scenario.memory_probe_devices as usize;
    let keys = precompute_keys(
        scenario,
        sharded.seed,
        device_sets,
        replenish_keys,
        ctx.progress,
    )
    .await?;

    let world = World::new(
        ctx.api.clone(),
        recorder.clone(),
        ledger.clone(),
        counters.clone(),
        keys,
        flow_config(scenario),
        sharded.seed,
    );
    world.set_shard(ctx.shard);
    let probe = memory_probe::run(&world, scenario.memory_probe_devices)
        .await
        .map_err(|e| Error::Unavailable(format!("memory probe: {e}")))?;
    world
        .populate(sharded.users, pop.devices_per_user, SETUP_PARALLELISM)
        .await
        .map_err(|e| Error::Unavailable(format!("setting up {} users: {e}", sharded.users)))?;
    let start_at = match ctx.start_at {
        Some(at) => Some(start_at::wait(at, matches!(ctx.progress, progress::Mode::Quiet)).await),
        None => None,
    };
    Ok(Prepared {
        world,
        recorder,
        ledger,
        counters,
        probe,
        start_at,
        slice: sharded,
    })
}

fn flow_config(scenario: &Scenario) -> FlowConfig {
    let pop = &scenario.population;
    FlowConfig {
        converse_messages: scenario.converse_messages,
        fanout_group_size: scenario.fanout_group_size,
        offline_messages: scenario.offline_messages,
        offline_away: scenario.offline_away,
        message_size: scenario.message_size as usize,
        one_time_prekeys: pop.one_time_prekeys,
        replenish_threshold: pop.replenish_threshold,
        devices_per_user: pop.devices_per_user,
        reply_timeout: REPLY_TIMEOUT,
    }
}

/// The clock and what ran on it.
struct Driven {
    epoch: Instant,
    window_start: Instant,
    window_start_utc: chrono::DateTime<Utc>,
    /// Flows and the drain share this deadline: the run ends within duration + drain + grace.
    flow_deadline: Instant,
    load_ended: Instant,
    watch: Arc<FaultWatch>,
    measuring: interrupt::Measuring,
    progress: Option<Progress>,
    interrupted: bool,
    goose_report: Option<String>,
    closed_cut_short: bool,
    cpu0: Duration,
    server_cpu0: Duration,
}

/// Starts the clock and runs the schedule (open or closed model) with the faults beside it,
/// until it ends or a Ctrl-C drops it (its in-flight flows are cancelled and counted, and
/// everything measured so far is kept).
async fn drive(
    scenario: &Scenario,
    ctx: &RunContext<'_>,
    prepared: &Prepared,
    targets: Option<&fault::Targets<'_>>,
) -> Result<Driven, Error> {
    let measuring = interrupt::Measuring::start();
    let cpu0 = process::process_cpu().unwrap_or_default();
    let server_cpu0 = process::threads_cpu(process::SERVER_THREAD_PREFIX).unwrap_or_default();
    let epoch = Instant::now();
    let window_start = epoch + scenario.warmup;
    let window_start_utc =
        Utc::now() + chrono::Duration::from_std(scenario.warmup).unwrap_or_default();
    let flow_deadline = epoch + scenario.duration + scenario.drain;
    let recorder = &prepared.recorder;
    recorder.set_window_start(window_start);
    let watch = Arc::new(FaultWatch::new(scenario.faults.len()));
    if targets.is_some() {
        recorder.set_fault_watch(watch.clone());
    }
    let progress = Progress::start(
        ctx.progress,
        progress::Sources {
            recorder: recorder.clone(),
            ledger: prepared.ledger.clone(),
            counters: prepared.counters.clone(),
            start: epoch,
            total: scenario.duration,
            warmup: scenario.warmup,
        },
    );
    let load = run_load(scenario, ctx, prepared, epoch, window_start, flow_deadline);
    let faults = async {
        if let Some(t) = targets {
            fault::run_schedule(&scenario.faults, t, window_start, &watch).await;
        }
    };
    let (interrupted, ended) = tokio::select! {
        (loaded, ()) = async { tokio::join!(load, faults) } => (false, loaded?),
        () = measuring.requested() => (true, LoadEnd::default()),
    };
    Ok(Driven {
        epoch,
        window_start,
        window_start_utc,
        flow_deadline,
        load_ended: Instant::now(),
        watch,
        measuring,
        progress: Some(progress),
        interrupted,
        goose_report: ended.goose_report,
        closed_cut_short: ended.cut_short,
        cpu0,
        server_cpu0,
    })
}

/// How the schedule ended: Goose's report of a closed model, and whether its users were cut
/// short by the flow deadline.
#[derive(Default)]
struct LoadEnd {
    goose_report: Option<String>,
    cut_short: bool,
}

/// The schedule itself: the open model's arrivals, or the closed model's virtual users (a
/// shard runs its share of them) bounded by the flow deadline.
async fn run_load(
    scenario: &Scenario,
    ctx: &RunContext<'_>,
    prepared: &Prepared,
    epoch: Instant,
    window_start: Instant,
    flow_deadline: Instant,
) -> Result<LoadEnd, Error> {
    let world = prepared.world.clone();
    let mix = mix::Mix::new(scenario.weights);
    match &scenario.load {
        Load::Open(plan) => {
            open::run(
                world,
                plan,
                &mix,
                scenario.seed,
                epoch,
                window_start,
                flow_deadline,
            )
            .await;
            Ok(LoadEnd::default())
        }
        Load::Closed(plan) => {
            let plan = prepared.slice.closed_plan(plan);
            let users = closed::run(world, &plan, &mix, scenario, window_start, ctx.report_dir);
            // Goose waits for its users' last flows: bounded by the same deadline (dropping
            // the attack cancels them, and each cancelled flow records itself).
            match tokio::time::timeout_at(flow_deadline.into(), users).await {
                Ok(report) => Ok(LoadEnd {
                    goose_report: Some(report?),
                    cut_short: false,
                }),
                Err(_) => Ok(LoadEnd {
                    goose_report: None,
                    cut_short: true,
                }),
            }
        }
    }
}

/// CPU and wall time of the run, taken once the drain is over.
struct Drained {
    wall: Duration,
    cpu: Duration,
    server_cpu: Duration,
}

/// Every device online again, then wait for what is still on its way (briefly after a
/// Ctrl-C: the user asked to stop); then every connection closed.
async fn drain(scenario: &Scenario, prepared: &Prepared, driven: &mut Driven) -> Drained {
    let drain_deadline = if driven.interrupted {
        Instant::now() + scenario.drain.min(INTERRUPT_DRAIN)
    } else {
        driven.flow_deadline.max(Instant::now() + END_GRACE)
    };
    prepared.world.reconnect_all(drain_deadline).await;
    while prepared.ledger.outstanding() > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(progress) = driven.progress.take() {
        progress.finish().await;
    }
    let wall = driven.epoch.elapsed();
    let cpu = process::process_cpu()
        .unwrap_or_default()
        .saturating_sub(driven.cpu0);
    let server_cpu = process::threads_cpu(process::SERVER_THREAD_PREFIX)
        .unwrap_or_default()
        .saturating_sub(driven.server_cpu0);
    prepared.world.disconnect_all().await;
    Drained {
        wall,
        cpu,
        server_cpu,
    }
}

/// Everything [`measure`] turns into a report.
struct Measured<'a> {
    scenario: &'a Scenario,
    ctx: RunContext<'a>,
    prepared: Prepared,
    driven: Driven,
    drained: Drained,
    /// Faults were injected (their records belong in the report).
    targets: bool,
    started_at: chrono::DateTime<Utc>,
    machine: MachineProbe,
}

/// The report of what was measured: operations, integrity, generator health, faults. No
/// verdict: [`crate::verdict::judge`] gives it. (Over 80 lines only because it takes its
/// inputs apart field by field.)
fn measure(m: Measured<'_>) -> RunReport {
    let Measured {
        scenario,
        ctx,
        prepared,
        driven,
        drained,
        targets,
        started_at,
        machine,
    } = m;
    let Prepared {
        world: _,
        recorder,
        ledger,
        counters,
        probe,
        start_at,
        slice,
    } = prepared;
    let Driven {
        window_start,
        window_start_utc,
        load_ended,
        watch,
        measuring,
        interrupted,
        goose_report,
        closed_cut_short,
        ..
    } = driven;
    let Drained {
        wall,
        cpu,
        server_cpu,
    } = drained;
    // An interrupted run measured only until the interruption.
    let window = if interrupted {
        load_ended
            .saturating_duration_since(window_start)
            .min(scenario.duration - scenario.warmup)
            .max(Duration::from_millis(1))
    } else {
        scenario.duration - scenario.warmup
    };
    let interrupted = interrupted || measuring.was_requested();
    drop(measuring);
    let operations = recorder.finish(window);
    let integrity = ledger.finish();
    let integrity_problems = ledger.problems();
    let faults = if targets {
        watch.finish(&scenario.faults, window_start)
    } else {
        Vec::new()
    };
    let resilience = resilience(&counters, faults);

    let cpus = process::cpus();
    let generator = generator_health(GeneratorInputs {
        scenario,
        counters: &counters,
        window,
        wall,
        cpu,
        server_cpu,
        cpus,
        probe,
        bundled_server: ctx.environment.bundled_server,
        closed_cut_short,
        goose_report,
        slice: &slice,
    });
    RunReport {
        schema_version: SCHEMA_VERSION,
        scenario: scenario_info(scenario, ctx.api.dialect().name()),
        environment: Environment {
            cpus,
            machine: Some(machine.finish()),
            ..ctx.environment
        },
        started_at,
        finished_at: Utc::now(),
        window: Window {
            start: window_start_utc,
            duration_s: window.as_secs_f64(),
            interval_ms: 1000,
        },
        operations,
        budgets: configured_budgets(scenario),
        integrity,
        integrity_problems,
        generator,
        resilience,
        passed: false,
        failures: Vec::new(),
        interrupted,
        shard: slice.info(scenario),
        start_at,
        merged: None,
    }
}

/// The budgets as configured, not yet judged ([`crate::verdict`] judges them).
fn configured_budgets(scenario: &Scenario) -> Vec<BudgetVerdict> {
    scenario
        .budgets
        .iter()
        .map(|b| BudgetVerdict {
            operation: b.op.name().to_string(),
            percentile: b.label.clone(),
            limit_us: b.limit_us,
            observed_us: None,
            passed: false,
            source: b.source.label().to_string(),
        })
        .collect()
}

/// The clients' retries and reconnects, and the faults injected.
fn resilience(
    counters: &GeneratorCounters,
    faults: Vec<crate::report::model::FaultReport>,
) -> Resilience {
    Resilience {
        retries: GeneratorCounters::by_op(&counters.retries),
        retry_budget_exhausted: GeneratorCounters::by_op(&counters.retry_exhausted),
        ws_reconnects: GeneratorCounters::get(&counters.ws_reconnects),
        ws_reconnect_attempts: GeneratorCounters::get(&counters.ws_reconnect_attempts),
        faults,
    }
}

/// What the generator's health is computed from.
struct GeneratorInputs<'a> {
    scenario: &'a Scenario,
    counters: &'a GeneratorCounters,
    window: Duration,
    wall: Duration,
    cpu: Duration,
    server_cpu: Duration,
    cpus: usize,
    probe: Option<memory_probe::ProbeResult>,
    bundled_server: bool,
    closed_cut_short: bool,
    goose_report: Option<String>,
    /// This worker's slice: a closed-model worker runs its share of the users.
    slice: &'a shard::Slice,
}

/// How the generator held up: schedule, cancellations, CPU, memory, connections.
fn generator_health(i: GeneratorInputs<'_>) -> GeneratorHealth {
    let GeneratorInputs {
        scenario,
        counters,
        window,
        wall,
        cpu,
        server_cpu,
        cpus,
        probe,
        bundled_server,
        closed_cut_short,
        goose_report,
        slice,
    } = i;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (start_lag_p50_us, start_lag_p99_us) = counters.start_lags.p50_p99();
    let generator_cpu = cpu.saturating_sub(server_cpu);
    let flows_started = g(&counters.flows_started);
    GeneratorHealth {
        model: match scenario.load {
            Load::Open(_) => "open".into(),
            Load::Closed(_) => "closed".into(),
        },
        cpu_share: round4(
            generator_cpu.as_secs_f64() / (wall.as_secs_f64() * cpus as f64).max(1e-9),
        ),
        cpu_share_includes_server: false,
        process_cpu_s: round4(cpu.as_secs_f64()),
        peak_rss_bytes: process::peak_rss().unwrap_or(0),
        late_starts: g(&counters.late_starts),
        late_start_threshold_us: LATE_START_THRESHOLD.as_micros() as u64,
        max_start_lag_us: g(&counters.max_start_lag_us),
        start_lag_p50_us,
        start_lag_p99_us,
        flows_started,
        flows_intended: g(&counters.flows_intended),
        achieved_rate_per_s: round4(flows_started as f64 / window.as_secs_f64()),
        configured_rate_per_s: match &scenario.load {
            Load::Open(_) => round4(g(&counters.flows_intended) as f64 / window.as_secs_f64()),
            Load::Closed(_) => 0.0,
        },
        configured_users: match &scenario.load {
            Load::Open(_) => 0,
            Load::Closed(plan) => u64::from(slice.closed_plan(plan).users),
        },
        peak_users_busy: match &scenario.load {
            Load::Open(_) => 0,
            Load::Closed(_) => g(&counters.peak_in_flight),
        },
        flows_cancelled: g(&counters.flows_cancelled),
        flows_cancelled_by_flow: counters.cancelled_by_flow_name(),
        max_late_start_share: match scenario.load {
            Load::Open(_) => Some(scenario.max_late_start_share),
            Load::Closed(_) => None,
        },
        drain_reconnect_failures: g(&counters.drain_reconnect_failures),
        ws_close_timeouts: g(&counters.ws_close_timeouts),
        closed_users_unfinished: closed_cut_short,
        devices: g(&counters.devices),
        peak_open_websockets: g(&counters.peak_open_websockets),
        memory_per_ws_device_bytes: probe.map_or(0, |p| p.bytes_per_device),
        ws_probe_devices: probe.map_or(0, |p| p.devices),
        memory_probe_includes_server: probe.is_some() && bundled_server,
        goose_report,
    }
}

/// Flows the scenario will start (open model: exactly; closed model: a generous estimate).
fn expected_flows(scenario: &Scenario) -> f64 {
    match &scenario.load {
        Load::Open(plan) => plan.mean_rate() * scenario.duration.as_secs_f64(),
        Load::Closed(plan) => {
            let per_user =
                scenario.duration.as_secs_f64() / plan.think_time.as_secs_f64().max(0.05);
            (plan.users as f64 * per_user).min(20_000.0)
        }
    }
}

fn scenario_info(s: &Scenario, api: &str) -> ScenarioInfo {
    let stages = match &s.load {
        Load::Open(plan) => plan
            .stages
            .iter()
            .map(|st| StageInfo {
                duration_s: st.duration.as_secs_f64(),
                target: st.rate,
            })
            .collect(),
        Load::Closed(plan) => {
            let hold = s.duration - plan.ramp_up - plan.ramp_down;
            vec![
                StageInfo {
                    duration_s: plan.ramp_up.as_secs_f64(),
                    target: plan.users as f64,
                },
                StageInfo {
                    duration_s: hold.as_secs_f64(),
                    target: plan.users as f64,
                },
                StageInfo {
                    duration_s: plan.ramp_down.as_secs_f64(),
                    target: 0.0,
                },
            ]
        }
    };
    ScenarioInfo {
        name: s.name.clone(),
        path: s.path.display().to_string(),
        model: match s.load {
            Load::Open(_) => "open".into(),
            Load::Closed(_) => "closed".into(),
        },
        seed: s.seed,
        duration_s: s.duration.as_secs_f64(),
        warmup_s: s.warmup.as_secs_f64(),
        stages,
        flow_weights: FlowKind::ALL
            .iter()
            .map(|k| (k.name().to_string(), s.weight(*k)))
            .collect(),
        source: capped(&s.source, MAX_SOURCE_COPY).to_string(),
        source_sha256: hex::encode(Sha256::digest(s.source.as_bytes())),
        source_bytes: s.source.len() as u64,
        api: api.to_string(),
        skipped_flows: s
            .skipped_flows
            .iter()
            .map(|f| {
                let missing = f.missing.iter().map(|c| c.name().to_string()).collect();
                (f.flow.name().to_string(), missing)
            })
            .collect(),
        max_error_rate: Some(s.max_error_rate),
    }
}

/// The first `max` bytes of `text`, cut at a character boundary.
fn capped(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_scenario_is_stored_as_a_hash_and_a_capped_copy() {
        let smoke = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml"),
        )
        .unwrap();
        // A comment of 2 MB of multi-byte characters: the cut must land on a boundary.
        let text = format!("{smoke}\n# {}\n", "é".repeat(1_000_000));
        let s = Scenario::parse(Path::new("big.toml"), &text).unwrap();
        let info = scenario_info(&s, "reference");
        assert!(info.source.len() <= MAX_SOURCE_COPY);
        assert!(text.starts_with(&info.source));
        assert_eq!(info.source_bytes, text.len() as u64);
        assert_eq!(
            info.source_sha256,
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        let small = scenario_info(
            &Scenario::parse(Path::new("s.toml"), &smoke).unwrap(),
            "reference",
        );
        assert_eq!(small.source, smoke, "a normal file is copied whole");
    }
}
