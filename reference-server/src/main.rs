//! `reference-server`: the reference E2EE key and message server on its own. By default it
//! starts an embedded disposable PostgreSQL (stopped on Ctrl-C/SIGTERM); `--db URL` uses an
//! existing database instead. The database flags are the harness's own (`disposable_pg::cli`).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use disposable_pg::cli::{shutdown_signal, DbArgs};
use disposable_pg::Postgres;
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
    #[command(flatten)]
    db: DbArgs,
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
    // Durable unless --pg-fast: this is a server that keeps what it acknowledges.
    let options = match args.db.options(true) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(e.exit_code() as u8);
        }
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
