//! The command line: clap definitions, and the one place where errors become exit codes.
//! `anyhow` is not used here on purpose: every failure is a typed [`Error`] that knows its
//! exit code.

mod conform;
mod db;
mod db_bench;
mod report;
mod run;
mod serve;
mod vectors;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::{Error, Outcome};

const EXIT_CODES: &str = "\
Exit codes (every command):
  0  pass: every check, budget and integrity count held
  1  a check, budget or integrity count failed
  2  bad usage or bad input file (flags, scenario file, schema pack)
  3  infrastructure unavailable (no PostgreSQL provider, target unreachable)
  130  interrupted by SIGINT/SIGTERM (after cleaning up)";

const EXAMPLES: &str = "\
Examples:
  e2ee-harness run                                  # default scenario on a disposable PostgreSQL
  e2ee-harness run scenarios/smoke.toml --budget bundle_fetch.p95=5ms
  e2ee-harness run --target http://127.0.0.1:8080   # load-test a running server
  e2ee-harness conform --schema reference           # prove the reference schema's constraints
  e2ee-harness db --db local                        # a disposable PostgreSQL until Ctrl-C
  e2ee-harness serve --listen 127.0.0.1:8080        # the reference server alone
  e2ee-harness report compare reports/baseline.json reports/default-*/
  e2ee-harness vectors --seed 7";

#[derive(Debug, Parser)]
#[command(
    name = "e2ee-harness",
    version,
    about = "Load-testing and conformance harness for end-to-end-encrypted chat backends",
    after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}"),
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    /// No live progress; only the final summary and errors.
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
}

/// `--help` of each command ends with its own examples and the exit codes.
macro_rules! examples {
    ($($line:literal),+ $(,)?) => {
        concat!("Examples:\n", $("  ", $line, "\n"),+)
    };
}

const RUN_EXAMPLES: &str = examples!(
    "e2ee-harness run                                  # built-in default scenario, bundled server",
    "e2ee-harness run smoke --pg-fast                  # a built-in scenario by name (see `scenarios`)",
    "e2ee-harness run my.toml --budget bundle_fetch.p95=5ms --report-dir reports/ci",
    "e2ee-harness run --target http://127.0.0.1:8080   # a server you started (reference API)",
    "e2ee-harness run smoke --target http://server:8080 --shard 2/3 --start-at @/shared/start_at",
);
const CONFORM_EXAMPLES: &str = examples!(
    "e2ee-harness conform --schema reference           # the reference server's schema",
    "e2ee-harness conform --schema nchat --report-dir reports/nchat   # a built-in seed pack",
    "e2ee-harness conform --schema ./my-pack           # migrations/ (+ expect.toml) of your own",
    "e2ee-harness conform --schema nchat --db docker --pg-image e2ee-harness/postgres:15 --pg-image e2ee-harness/postgres:17",
    "e2ee-harness conform --target http://127.0.0.1:8080   # protocol checks against a running server",
    "e2ee-harness conform --target http://10.0.0.5:3000 --api hushnet",
);
const SERVE_EXAMPLES: &str = examples!(
    "e2ee-harness serve                                # on 127.0.0.1:8080, disposable PostgreSQL",
    "e2ee-harness serve --listen 127.0.0.1:9000 --db postgres://user@host/db",
);
const DB_EXAMPLES: &str = examples!(
    "e2ee-harness db                                   # prints the URL; Ctrl-C removes it",
    "URL=$(e2ee-harness db --db local | head -n1)     # scripting: the URL is the only stdout line",
    "e2ee-harness db --db docker --pg-image e2ee-harness/postgres:17",
);
const DB_BENCH_EXAMPLES: &str = examples!(
    "e2ee-harness db-bench --schema batch3 --scale 1000,10000 --duration 10s",
    "e2ee-harness db-bench --schema ./my-pack --scale 1000 --report-dir reports/bench",
);
const REPORT_EXAMPLES: &str = examples!(
    "e2ee-harness report compare reports/baseline.json reports/default-20260101T000000Z",
    "e2ee-harness report merge reports/worker-* --out reports/merged",
);
const VECTORS_EXAMPLES: &str =
    examples!("e2ee-harness vectors --seed 7 --messages 8 > vectors.json",);

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a load scenario (default: scenarios/default.toml) against the bundled or a given server.
    #[command(after_help = format!("{RUN_EXAMPLES}\n{EXIT_CODES}"))]
    Run(RunArgs),
    /// Conformance: a schema pack's constraints on a disposable PostgreSQL (--schema), or a
    /// running server's protocol properties (--target).
    #[command(after_help = format!("{CONFORM_EXAMPLES}\n{EXIT_CODES}"))]
    Conform(ConformArgs),
    /// Run the reference server alone.
    #[command(after_help = format!("{SERVE_EXAMPLES}\n{EXIT_CODES}"))]
    Serve(ServeArgs),
    /// Start a disposable PostgreSQL, print its URL, and keep it until Ctrl-C.
    #[command(after_help = format!("{DB_EXAMPLES}\n{EXIT_CODES}"))]
    Db(DbCmdArgs),
    /// The database-level workload of a schema pack at several table sizes.
    #[command(after_help = format!("{DB_BENCH_EXAMPLES}\n{EXIT_CODES}"))]
    DbBench(DbBenchArgs),
    /// Work with report directories: compare against a baseline, merge workers.
    #[command(after_help = format!("{REPORT_EXAMPLES}\n{EXIT_CODES}"))]
    Report(ReportArgs),
    /// Print deterministic X3DH / Double Ratchet test vectors as JSON.
    #[command(after_help = format!("{VECTORS_EXAMPLES}\n{EXIT_CODES}"))]
    Vectors(VectorsArgs),
    /// List the scenarios built into the binary (`run NAME` uses one; a file path wins), then
    /// the flows a scenario's `[mix]` can weigh and the settings each reads.
    Scenarios,
    /// List the schema packs built into the binary (`conform --schema NAME` uses one).
    Packs,
}

pub(crate) use disposable_pg::cli::DbArgs;

/// Starts the PostgreSQL the flags ask for (see [`start_database`]); `durable_by_default` is
/// the command's own default.
pub(crate) async fn start_db(
    db: &DbArgs,
    durable_by_default: bool,
    quiet: bool,
) -> Result<disposable_pg::Postgres, Error> {
    start_database(&db.options(durable_by_default)?, quiet).await
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Scenario file, or the name of a built-in scenario (`e2ee-harness scenarios` lists them).
    #[arg(default_value = "scenarios/default.toml")]
    pub(crate) scenario: PathBuf,
    /// Load-test a running server instead of the bundled one.
    #[arg(long, value_name = "URL")]
    pub(crate) target: Option<String>,
    /// The API the server speaks (default: the scenario's `api`, else `reference`).
    #[arg(long, value_name = "NAME", value_parser = crate::client::Dialect::parse)]
    pub(crate) api: Option<crate::client::Dialect>,
    /// Leave out of the mix the flows the API cannot run (the report lists them) instead of
    /// refusing the scenario.
    #[arg(long)]
    pub(crate) skip_unsupported: bool,
    /// Add or override a budget, e.g. bundle_fetch.p95=10ms (repeatable).
    #[arg(long = "budget", value_name = "OP.pNN=LIMIT")]
    pub(crate) budgets: Vec<String>,
    /// Where to write the report (default: reports/<scenario>-<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub(crate) report_dir: Option<PathBuf>,
    /// Replace the report an existing --report-dir already holds.
    #[arg(long)]
    pub(crate) force: bool,
    /// Run shard I of N (I from 1): this worker's slice of one test that N workers run
    /// together against one --target; `report merge` makes their reports one. Exit 0 means
    /// the shard ran: the test's verdict is the merged report's.
    #[arg(long, env = "E2EE_HARNESS_SHARD", value_name = "I/N")]
    pub(crate) shard: Option<String>,
    /// Run shard JOB_COMPLETION_INDEX+1 of N (a Kubernetes Indexed Job's pods, counted from 0).
    #[arg(long, value_name = "N")]
    pub(crate) shards: Option<u32>,
    /// Start the measured clock at this instant (RFC 3339, e.g. 2026-11-29T20:15:00Z), or at
    /// the one written in FILE, after the setup; so that the workers' windows line up.
    #[arg(long, env = "E2EE_HARNESS_START_AT", value_name = "TIME|@FILE")]
    pub(crate) start_at: Option<String>,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["schema", "target"])))]
pub(crate) struct ConformArgs {
    /// Schema conformance: a pack directory, a pack name under scenarios/schemas/, or a
    /// built-in pack (`reference` or a seed pack; `e2ee-harness packs` lists them).
    #[arg(long, value_name = "PACK|DIR")]
    pub(crate) schema: Option<String>,
    /// Protocol conformance: the base URL of a running server (black-box checks through its
    /// API; docs/targets.md, "Protocol conformance").
    #[arg(long, value_name = "URL", conflicts_with = "schema")]
    pub(crate) target: Option<String>,
    /// The API the --target server speaks (default: reference).
    #[arg(long, value_name = "NAME", value_parser = crate::client::Dialect::parse, requires = "target")]
    pub(crate) api: Option<crate::client::Dialect>,
    /// Where to write junit.xml and conform.json (default: reports/conform-<pack>-<UTC time>/,
    /// or reports/conform-target-<api>-<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub(crate) report_dir: Option<PathBuf>,
    /// Replace the report an existing --report-dir already holds.
    #[arg(long)]
    pub(crate) force: bool,
    /// Longest one statement of the pack (migration statement or check) may run; a statement
    /// cut by it fails naming the statement. 0 = no limit.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub(crate) statement_timeout: std::time::Duration,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub(crate) listen: String,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DbCmdArgs {
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DbBenchArgs {
    /// A pack directory, a pack name under scenarios/schemas/, or a built-in seed pack.
    #[arg(long, value_name = "PACK|DIR")]
    pub(crate) schema: String,
    /// Device counts to load before measuring, comma-separated.
    #[arg(long, default_value = "1000,10000,100000", value_delimiter = ',')]
    pub(crate) scale: Vec<u64>,
    /// How long to run the workload at each scale.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub(crate) duration: std::time::Duration,
    /// Where to write report.json and report.html (default: reports/db-bench-<pack>-<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub(crate) report_dir: Option<PathBuf>,
    /// Replace the report an existing --report-dir already holds.
    #[arg(long)]
    pub(crate) force: bool,
    /// Longest one statement (migration, seed, workload operation) may run. 0 = no limit.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub(crate) statement_timeout: std::time::Duration,
    #[command(flatten)]
    pub(crate) db: DbArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(subcommand)]
    pub(crate) command: ReportCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Compare a run against a baseline; exit 1 if any percentile regressed past the threshold.
    Compare {
        /// The baseline: a report directory or its report.json.
        baseline: PathBuf,
        /// The run to judge: a report directory or its report.json. A shell glob that matches
        /// several directories is refused with their names (pick one, or `report merge` them).
        #[arg(required = true, num_args = 1..)]
        current: Vec<PathBuf>,
        /// Largest allowed regression per operation and percentile, e.g. 10%.
        #[arg(long, default_value = "10%")]
        max_regression: String,
        /// text (a table for the terminal) or markdown (e.g. for $GITHUB_STEP_SUMMARY).
        #[arg(long, default_value = "text", value_parser = ["text", "markdown"])]
        format: String,
    },
    /// Merge the reports of several workers of one test (histograms added, never averaged).
    Merge {
        /// The workers' report directories (two or more).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the merged report.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct VectorsArgs {
    /// Seed for the deterministic key material.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// How many ratchet messages to include.
    #[arg(long, default_value_t = 4)]
    pub(crate) messages: usize,
}

/// Starts a PostgreSQL and says on stderr which one and why (unless `quiet`): every command
/// that needs a database starts it this way, so `auto`'s choice is always explained.
pub(crate) async fn start_database(
    options: &disposable_pg::Options,
    quiet: bool,
) -> Result<disposable_pg::Postgres, Error> {
    let pg = disposable_pg::Postgres::start(options).await?;
    if !quiet {
        eprintln!("{}", pg.describe());
    }
    Ok(pg)
}

/// Runs blocking input reading (scenario files, packs) on a blocking thread, so that a
/// SIGINT is seen while it blocks (a FIFO nobody writes to) and the exit need not wait for it.
pub(crate) async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("input reading was cancelled: {e}"),
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Outcome::Pass.into()
                }
                _ => Outcome::BadInput.into(),
            };
        }
    };
    init_tracing(cli.quiet);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if !matches!(cli.command, Command::Serve(_)) {
        // The generator's (and db-bench's) work runs here; a bundled server has its own.
        builder.on_thread_start(crate::load::priority::favour_this_thread);
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Outcome::Unavailable.into();
        }
    };
    // `serve` stops gracefully on a signal by itself; every other command is dropped here.
    let own_signals = matches!(cli.command, Command::Serve(_));
    // A panic must not unwind through the runtime's drop either: that waits for blocking work.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(async move {
            let outcome = if own_signals {
                dispatch(cli).await
            } else {
                let command = dispatch(cli);
                tokio::pin!(command);
                tokio::select! {
                    r = &mut command => r,
                    sig = shutdown_signal() => interrupted(sig, command).await,
                }
            };
            // Scratch databases whose owners were dropped mid-flight: dropping them terminates
            // their sessions, which cancels a hanging statement, also on a server we did not
            // start.
            disposable_pg::drop_all_sandboxes().await;
            outcome
        })
    }));
    // Whatever is still running (servers, databases) goes now, even on the signal path where
    // the futures owning them were just dropped mid-flight.
    disposable_pg::shutdown_all();
    // Blocking work still running (key precomputation, a read from a FIFO) must not hold the
    // exit: dropping the runtime would wait for it, so it is abandoned after a short grace.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    let outcome = match outcome {
        Ok(o) => o,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    match outcome {
        Ok(o) => o.into(),
        Err(Error::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {e}");
            e.outcome().into()
        }
    }
}

async fn dispatch(cli: Cli) -> Result<Outcome, Error> {
    match cli.command {
        Command::Db(args) => db::run(args).await,
        // The commands that keep a schedule: idle CPUs kept quick to wake while they run.
        Command::Run(args) => {
            let _awake = crate::load::wakeup::hold();
            run::run(args, cli.quiet).await
        }
        Command::Conform(args) => conform::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::DbBench(args) => {
            let _awake = crate::load::wakeup::hold();
            db_bench::run(args, cli.quiet).await
        }
        Command::Report(args) => report::run(args),
        Command::Vectors(args) => vectors::run(args),
        Command::Scenarios => {
            for name in crate::builtin::scenario_names() {
                println!("{name}\tbuilt-in:scenarios/{name}.toml");
            }
            print!("\n{}", crate::client::flows::mix_listing());
            Ok(Outcome::Pass)
        }
        Command::Packs => {
            for name in crate::builtin::pack_names() {
                println!("{name}");
            }
            Ok(Outcome::Pass)
        }
    }
}

/// The first signal: a run that is measuring stops its schedule and still writes its report
/// (a second signal abandons it); anything else stops at once.
async fn interrupted(
    sig: &str,
    command: std::pin::Pin<&mut impl std::future::Future<Output = Result<Outcome, Error>>>,
) -> Result<Outcome, Error> {
    // Not eprintln!: it panics when stderr is gone (a closed pipe), and the process must
    // still clean up and exit.
    use std::io::Write;
    if !crate::load::interrupt::request() {
        let _ = writeln!(
            std::io::stderr(),
            "\n{sig}: stopping; cleaning up what this run started"
        );
        return Err(Error::Interrupted);
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n{sig}: stopping the run and writing what it measured (again to abandon it)"
    );
    tokio::select! {
        r = command => r,
        sig = shutdown_signal() => {
            let _ = writeln!(std::io::stderr(), "{sig}: abandoning the run; cleaning up");
            Err(Error::Interrupted)
        }
    }
}

pub(crate) use disposable_pg::cli::shutdown_signal;

fn init_tracing(quiet: bool) {
    let default = if quiet { "error" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("E2EE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
