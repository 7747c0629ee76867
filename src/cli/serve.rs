//! `e2ee-harness serve`: the reference server alone, on a disposable PostgreSQL by default
//! (or `--db URL`), until Ctrl-C. The base URL is the only line on stdout.

use std::io::Write;
use std::net::SocketAddr;

use reference_server::ServerConfig;

use crate::cli::ServeArgs;
use crate::{Error, Outcome};

pub(crate) async fn run(args: ServeArgs) -> Result<Outcome, Error> {
    let listen: SocketAddr = args.listen.parse().map_err(|e| {
        Error::BadInput(format!(
            "--listen {:?}: not a socket address like 127.0.0.1:8080 ({e})",
            args.listen
        ))
    })?;
    // A busy address is found before PostgreSQL starts, not after.
    std::net::TcpListener::bind(listen).map_err(|e| {
        Error::BadInput(format!(
            "--listen {listen}: cannot listen there ({e}); choose another address"
        ))
    })?;
    // Durable by default, like `run`: a server measured from outside should commit as in
    // production. The description line on stderr says which it is.
    let pg = crate::cli::start_db(&args.db, true, false).await?;
    let config = ServerConfig {
        listen,
        ..ServerConfig::new(pg.url())
    };
    let server = reference_server::start(config).await.map_err(|e| match e {
        reference_server::Error::Bind { .. } => Error::BadInput(e.to_string()),
        other => Error::Unavailable(format!("reference server: {other}")),
    })?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", server.base_url());
    let _ = out.flush();
    drop(out);
    eprintln!(
        "reference server on {} until Ctrl-C (API: docs/api.md, {}/openapi.json)",
        server.base_url(),
        server.base_url()
    );
    // `serve` handles its own signals (the CLI does not race it): a SIGTERM is a graceful
    // stop — sessions closed, in-flight requests finished — as `restart_server` faults expect.
    let sig = crate::cli::shutdown_signal().await;
    eprintln!("{sig}: stopping the reference server");
    server.shutdown().await;
    drop(pg);
    Err(Error::Interrupted)
}
