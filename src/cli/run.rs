//! `e2ee-harness run [SCENARIO]`: check the scenario, get a server (the bundled one on a
//! disposable PostgreSQL, or `--target`), run the load, print the summary, write
//! `report.json`, and exit 0 only if every budget and integrity count held.

use std::time::Duration;

use crate::cli::RunArgs;
use crate::client::api::ApiError;
use crate::client::Dialect;
use crate::fault;
use crate::load::shard::{self, Shard};
use crate::load::{self, start_at, RunContext};
use crate::metrics::{process, progress};
use crate::report::model::{Environment, RunReport};
use crate::report::{outdir, summary};
use crate::scenario::Scenario;
use crate::{Error, Outcome};

/// HTTP timeout of one API call during a run: slower than this is an error, not a sample.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the bundled server gets to shut down gracefully at the end of a run.
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long `--target` gets to answer `/healthz` before the run is refused.
const TARGET_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks the inputs, runs the load against `--target` or the bundled server, and reports.
pub(crate) async fn run(args: RunArgs, quiet: bool) -> Result<Outcome, Error> {
    let mut checked = check_inputs(&args, quiet).await?;
    let (mode, report_dir) = (checked.mode, &checked.report_dir);
    let report = match &args.target {
        Some(target) => {
            let run = TargetRun {
                target,
                dialect: checked.dialect,
                skip_unsupported: args.skip_unsupported,
                shard: checked.shard,
                start_at: checked.start_at,
            };
            run_against_target(&mut checked.scenario, run, mode, report_dir, quiet).await?
        }
        None => {
            run_on_database(
                &checked.scenario,
                &checked.db_options,
                mode,
                report_dir,
                quiet,
            )
            .await?
        }
    };
    finish(report, report_dir)
}

/// Everything `run` needs that is known before anything starts.
struct Checked {
    scenario: Scenario,
    db_options: disposable_pg::Options,
    shard: Option<Shard>,
    start_at: Option<chrono::DateTime<chrono::Utc>>,
    report_dir: std::path::PathBuf,
    mode: progress::Mode,
    dialect: Dialect,
}

/// Bad input first: nothing starts for a scenario or flag that is wrong.
async fn check_inputs(args: &RunArgs, quiet: bool) -> Result<Checked, Error> {
    let path = args.scenario.clone();
    let mut scenario = crate::cli::off_thread(move || Scenario::load(&path)).await?;
    scenario.apply_budget_flags(&args.budgets)?;
    let db_options = args.db.options(true)?;
    if let Some(target) = &args.target {
        check_target_url(target)?;
    }
    check_open_files(&scenario, args.target.is_none())?;
    let (shard, start_at) = sharding(args, &scenario)?;
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| outdir::default_dir("", &scenario.name));
    outdir::check(&report_dir, crate::report::json::REPORT_FILE, args.force)?;
    let mode = progress::Mode::detect(quiet);
    let dialect = args.api.or(scenario.api).unwrap_or(Dialect::Reference);
    if args.target.is_none() && dialect != Dialect::Reference {
        return Err(Error::BadInput(format!(
            "--api {dialect}: the bundled server speaks the reference API; \
             point --target at a {dialect} server"
        )));
    }
    Ok(Checked {
        scenario,
        db_options,
        shard,
        start_at,
        report_dir,
        mode,
        dialect,
    })
}

/// What a run against `--target` is given besides the scenario.
struct TargetRun<'a> {
    target: &'a str,
    dialect: Dialect,
    skip_unsupported: bool,
    shard: Option<Shard>,
    start_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The load against `--target`: its faults and capabilities checked, its health asked, then
/// driven. Once it has answered, a target that fails is a failed run (exit 1).
async fn run_against_target(
    scenario: &mut Scenario,
    run: TargetRun<'_>,
    mode: progress::Mode,
    report_dir: &std::path::Path,
    quiet: bool,
) -> Result<RunReport, Error> {
    let target = run.target;
    fault::check(
        scenario,
        fault::Setup {
            bundled: false,
            db: None,
        },
    )?;
    let api = run
        .dialect
        .client(target, REQUEST_TIMEOUT)
        .map_err(|e| Error::BadInput(format!("--target {target}: {e}")))?;
    load::capability::fit(scenario, api.as_ref(), run.skip_unsupported)?;
    let durable = check_target(target, run.dialect).await?;
    let environment = environment("external", None, durable, api.base(), false);
    if !quiet {
        eprintln!("running {} against {}", scenario.path.display(), api.base());
    }
    let targets = fault::Targets {
        server: None,
        db: None,
        db_name: None,
    };
    load::execute_with_faults(
        scenario,
        RunContext {
            api,
            environment,
            progress: mode,
            report_dir,
            shard: run.shard,
            start_at: run.start_at,
        },
        Some(&targets),
    )
    .await
    .map_err(|e| match e {
        Error::Unavailable(m) => Error::RunFailed(format!("against {target}: {m}")),
        other => other,
    })
}

/// The load against the bundled server on a fresh database of a disposable (or given)
/// PostgreSQL; a database on somebody else's server is dropped afterwards.
async fn run_on_database(
    scenario: &Scenario,
    db_options: &disposable_pg::Options,
    mode: progress::Mode,
    report_dir: &std::path::Path,
    quiet: bool,
) -> Result<RunReport, Error> {
    let pg = crate::cli::start_database(db_options, quiet).await?;
    // Which faults the provider can inject is known now; nothing is created yet.
    fault::check(
        scenario,
        fault::Setup {
            bundled: true,
            db: Some(pg.kind()),
        },
    )?;
    let db_name = format!("e2ee_run_{}", uuid::Uuid::new_v4().simple());
    let url = pg.create_database(&db_name, None).await?;
    let result = run_bundled(scenario, &pg, &db_name, url, mode, report_dir, quiet).await;
    if pg.kind() == disposable_pg::ProviderKind::Url {
        // Somebody else's server: leave it as we found it.
        let _ = pg.drop_database(&db_name).await;
    }
    drop(pg);
    result
}

/// Judges the report, writes its files, prints the summary, and turns the verdict into the
/// exit: interrupted, a shard that ran (judged only when merged), pass or fail.
fn finish(mut report: RunReport, report_dir: &std::path::Path) -> Result<Outcome, Error> {
    crate::verdict::judge(&mut report);
    let files = crate::report::write_report_dir(report_dir, &report)?;
    print!("{}", summary::render(&report));
    println!(
        "report: {} (report.json, report.html, summary.md, junit.xml, latency.hlog)",
        files.dir.display()
    );
    if report.interrupted {
        // Written and shown; the exit code still says it was interrupted.
        return Err(Error::Interrupted);
    }
    if let Some(s) = &report.shard {
        // One worker's verdict is not the test's: exit 0 says the shard ran.
        println!(
            "shard {}/{} ran: the test's budgets and verdict are judged on the merged report \
             (e2ee-harness report merge DIR... --out DIR)",
            s.index, s.count
        );
        return Ok(Outcome::Pass);
    }
    Ok(if report.passed {
        Outcome::Pass
    } else {
        Outcome::Failed
    })
}

/// This worker's shard (`--shard`, `--shards` with JOB_COMPLETION_INDEX) and agreed start
/// (`--start-at`), checked before anything starts.
fn sharding(
    args: &RunArgs,
    scenario: &Scenario,
) -> Result<(Option<Shard>, Option<chrono::DateTime<chrono::Utc>>), Error> {
    let bad = |e: &dyn std::fmt::Display| Error::BadInput(e.to_string());
    let job_index = std::env::var(shard::JOB_INDEX_ENV).ok();
    // clap reads the variable into the flag; the message names whichever it was.
    let from_env = args.shard.is_some() && std::env::var(shard::SHARD_ENV).ok() == args.shard;
    let shard_from = if from_env {
        shard::SHARD_ENV
    } else {
        "--shard"
    };
    let shard = Shard::resolve(
        args.shard.as_deref(),
        shard_from,
        args.shards,
        job_index.as_deref(),
    )
    .map_err(|e| bad(&e))?;
    if let Some(s) = shard {
        if args.target.is_none() {
            return Err(bad(&shard::ShardError::NoTarget));
        }
        s.check(scenario).map_err(|e| bad(&e))?;
    }
    if args.start_at.is_some() && args.target.is_none() {
        return Err(bad(&start_at::StartAtError::NoTarget));
    }
    let start_at = args
        .start_at
        .as_deref()
        .map(start_at::parse)
        .transpose()
        .map_err(|e| bad(&e))?;
    Ok((shard, start_at))
}

/// The bundled server on `pg`: in this process, or, when the scenario injects faults, as a
/// child process that can really be killed.
async fn run_bundled(
    scenario: &Scenario,
    pg: &disposable_pg::Postgres,
    db_name: &str,
    url: String,
    mode: progress::Mode,
    report_dir: &std::path::Path,
    quiet: bool,
) -> Result<RunReport, Error> {
    let server = if scenario.faults.is_empty() {
        Server::InProcess(BundledServer::start(url).await?)
    } else {
        Server::Child(
            fault::ChildServer::start(&url)
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?,
        )
    };
    let base_url = server.base_url();
    let api = Dialect::Reference
        .client(&base_url, REQUEST_TIMEOUT)
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let mut environment = environment(
        &pg.kind().to_string(),
        Some(pg.version().to_string()),
        Some(pg.durable()),
        &base_url,
        true,
    );
    environment.server_in_child = matches!(server, Server::Child(_));
    if !quiet {
        eprintln!(
            "running {} against the bundled server at {base_url}{}",
            scenario.path.display(),
            if scenario.faults.is_empty() {
                String::new()
            } else {
                format!(" (child process; {} faults)", scenario.faults.len())
            }
        );
    }
    let targets = fault::Targets {
        server: match &server {
            Server::Child(c) => Some(c),
            Server::InProcess(_) => None,
        },
        db: Some(pg),
        db_name: Some(db_name.to_string()),
    };
    let result = load::execute_with_faults(
        scenario,
        RunContext {
            api,
            environment,
            progress: mode,
            report_dir,
            shard: None,
            start_at: None,
        },
        Some(&targets),
    )
    .await;
    // A server stuck on its database must not hold the run: bounded, then dropped.
    let _ = tokio::time::timeout(SERVER_STOP_TIMEOUT, server.stop()).await;
    result
}

/// The bundled server, wherever it runs.
enum Server {
    InProcess(BundledServer),
    Child(fault::ChildServer),
}

impl Server {
    fn base_url(&self) -> String {
        match self {
            Server::InProcess(s) => s.base_url.clone(),
            Server::Child(c) => c.base_url(),
        }
    }

    async fn stop(self) {
        match self {
            Server::InProcess(s) => s.stop().await,
            Server::Child(c) => c.terminate().await,
        }
    }
}

fn environment(
    provider: &str,
    version: Option<String>,
    durable: Option<bool>,
    target: &str,
    bundled: bool,
) -> Environment {
    Environment {
        db_provider: provider.to_string(),
        postgres_version: version,
        durable,
        target: target.to_string(),
        bundled_server: bundled,
        server_in_child: false,
        cpus: process::cpus(),
        harness_version: env!("CARGO_PKG_VERSION").to_string(),
        platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string()),
        machine: None,
    }
}

/// `--target` must be an http(s) URL with a host: anything else is bad usage (exit 2), not an
/// unreachable server.
pub(crate) fn check_target_url(target: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Error::BadInput(format!(
            "--target {target:?}: {why}; expected a URL like http://127.0.0.1:8080"
        ))
    };
    let url = reqwest::Url::parse(target).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!(
            "scheme `{}` is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    Ok(())
}

/// `--target` must answer the dialect's health check before any load starts: no answer or
/// an unhealthy one is exit 3; an answer in another API's shape (no such route, another
/// body) is exit 2, since `--api` or `--target` is wrong. Returns what it says of its
/// database's durability, if anything.
async fn check_target(target: &str, dialect: Dialect) -> Result<Option<bool>, Error> {
    let api = dialect
        .client(target, TARGET_CHECK_TIMEOUT)
        .map_err(|e| Error::BadInput(format!("--target {target}: {e}")))?;
    api.health().await.map_err(|e| match e {
        ApiError::Shape { .. }
        | ApiError::Status {
            status: 404 | 405, ..
        } => Error::BadInput(format!(
            "--target {target} answers, but not as a {dialect} server ({e}); \
                 is --api right?"
        )),
        e => Error::Unavailable(format!(
            "--target {target} is unreachable or unhealthy: {e}"
        )),
    })
}

/// The bundled reference server, on a runtime of its own whose threads are named
/// [`process::SERVER_THREAD_PREFIX`], so its CPU time can be told apart from the generator's.
struct BundledServer {
    runtime: Option<tokio::runtime::Runtime>,
    server: Option<reference_server::RunningServer>,
    base_url: String,
}

impl BundledServer {
    async fn start(database_url: String) -> Result<BundledServer, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(process::SERVER_THREAD_PREFIX)
            // Created by a favoured generator thread: the server runs at normal priority.
            .on_thread_start(crate::load::priority::normal_for_this_thread)
            .enable_all()
            .build()
            .map_err(|e| Error::Unavailable(format!("cannot start the server's runtime: {e}")))?;
        let mut config = reference_server::ServerConfig::new(database_url);
        config.pool_size = 16;
        let server = runtime
            .spawn(reference_server::start(config))
            .await
            .map_err(|e| {
                Error::Unavailable(format!("the bundled server panicked while starting: {e}"))
            })?
            .map_err(|e| Error::Unavailable(format!("the bundled server did not start: {e}")))?;
        let base_url = server.base_url();
        Ok(BundledServer {
            runtime: Some(runtime),
            server: Some(server),
            base_url,
        })
    }

    async fn stop(mut self) {
        if let (Some(rt), Some(server)) = (&self.runtime, self.server.take()) {
            let _ = rt.spawn(server.shutdown()).await;
        }
    }
}

impl Drop for BundledServer {
    fn drop(&mut self) {
        // Dropping a runtime from async code would panic; let it go in the background.
        drop(self.server.take());
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// File descriptors a run needs besides its WebSockets (database, HTTP pools, files).
const FD_RESERVE: u64 = 512;

/// Every device holds a WebSocket (two descriptors when the bundled server is in this
/// process): a population past the descriptor limit would fail halfway through setup, so
/// it is refused first. The soft limit is raised to the hard one, as servers do.
fn check_open_files(scenario: &Scenario, bundled: bool) -> Result<(), Error> {
    let pop = &scenario.population;
    let devices = u64::from(pop.users) * u64::from(pop.devices_per_user)
        + u64::from(scenario.memory_probe_devices);
    let needed = devices * if bundled { 2 } else { 1 } + FD_RESERVE;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a valid struct for this process only.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Ok(());
        }
        if lim.rlim_cur < needed && lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max.min(needed.max(lim.rlim_cur)),
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    if lim.rlim_cur < needed {
        return Err(Error::BadInput(format!(
            "{}: population.users × devices_per_user + memory_probe_devices = {devices} devices \
             need about {needed} open files, above this process's limit of {} (ulimit -n)",
            scenario.path.display(),
            lim.rlim_cur
        )));
    }
    Ok(())
}
