//! `reference-server`: the reference E2EE key and message server on its own. By default it
//! starts an embedded disposable PostgreSQL (stopped on Ctrl-C/SIGTERM); `--db URL` uses an
//! existing database instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use disposable_pg::{Choice, Durability, Options, Postgres};
use reference_server::ServerConfig;

#[derive(Debug, Parser)]
#[command(
    name = "reference-server",
    version,
    about = "Reference E2EE key and message server (HTTP + WebSocket over PostgreSQL)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// auto | local | docker | a postgres:// URL (auto: a disposable PostgreSQL).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "auto",
        value_name = "auto|local|docker|URL"
    )]
    db: String,
    /// Directory holding initdb and postgres (local provider).
    #[arg(long, value_name = "DIR")]
    pg_bin: Option<PathBuf>,
    /// PostgreSQL image for the docker provider (and for auto, which uses Docker only when
    /// the engine has or can pull it). Offline: docker/postgres/build-image.sh builds
    /// e2ee-harness/postgres:15 from Debian's packages.
    #[arg(
        long,
        env = "E2EE_HARNESS_PG_IMAGE",
        default_value = disposable_pg::DEFAULT_IMAGE,
        value_name = "IMAGE"
    )]
    pg_image: String,
    /// fsync and synchronous_commit off for the disposable PostgreSQL (default: durable).
    #[arg(long)]
    pg_fast: bool,
    /// Pooled database connections.
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("E2EE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let code = runtime.block_on(run(args));
    disposable_pg::shutdown_all();
    code
}

async fn run(args: Args) -> ExitCode {
    let choice: Choice = match args.db.parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: --db: {e}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        choice,
        pg_bin: args.pg_bin,
        image: args.pg_image,
        durability: if args.pg_fast {
            Durability::Fast
        } else {
            Durability::Durable
        },
        ..Options::default()
    };
    let pg = match Postgres::start(&options).await {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
    };
    eprintln!("{}", pg.describe());
    let config = ServerConfig {
        listen: args.listen,
        pool_size: args.pool_size,
        ..ServerConfig::new(pg.url())
    };
    let server = match reference_server::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    eprintln!("reference server on {} (Ctrl-C to stop)", server.base_url());
    let signal = shutdown_signal().await;
    eprintln!("{signal}: shutting down");
    server.shutdown().await;
    drop(pg);
    ExitCode::SUCCESS
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
