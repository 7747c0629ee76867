//! The reference E2EE key and message server: users and devices with their identity keys,
//! signed and one-time prekeys, prekey bundles with an atomic one-time prekey claim, and
//! per-device encrypted envelopes delivered over WebSocket (LISTEN/NOTIFY, so any number of
//! instances can share one database).
//!
//! Layers: [`api`] (HTTP/WebSocket, validation) → [`store`] (one transaction per request) →
//! PostgreSQL (schema in `migrations/`, applied by [`migrate()`]). Beside them: [`auth`]
//! (bearer tokens, remembered by [`token_cache`]), [`delivery`] (LISTEN fan-out and token
//! evictions), [`metrics`].
//!
//! Embedding (what the harness and the tests do):
//! ```no_run
//! # async fn f() -> Result<(), reference_server::Error> {
//! let server = reference_server::start(reference_server::ServerConfig::new("postgres://…")).await?;
//! println!("listening on {}", server.addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod auth;
pub mod config;
pub mod delivery;
pub mod error;
pub mod metrics;
pub mod migrate;
pub mod store;
pub mod token_cache;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::ServerConfig;
pub use error::{ApiError, Error};
pub use migrate::{migrate, migrate_owned, MIGRATIONS};

/// A server running on the current tokio runtime. Dropping it stops it abruptly; prefer
/// [`RunningServer::shutdown`].
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    http: Option<JoinHandle<std::io::Result<()>>>,
    listener: Option<JoinHandle<()>>,
    store: store::Store,
}

impl RunningServer {
    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes WebSocket sessions, lets in-flight requests finish, and closes
    /// the database connections.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(http) = self.http.take() {
            if let Ok(Err(e)) = http.await {
                tracing::warn!(error = %e, "HTTP server ended with an error");
            }
        }
        if let Some(listener) = self.listener.take() {
            let _ = listener.await;
        }
        self.store.close();
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(h) = self.http.take() {
            h.abort();
        }
        if let Some(h) = self.listener.take() {
            h.abort();
        }
    }
}

/// Migrates the database, opens the pool and the LISTEN connection, binds, and serves.
/// Returns once the server accepts connections and hears notifications.
pub async fn start(config: ServerConfig) -> Result<RunningServer, Error> {
    migrate(&config.database_url).await?;
    let store = store::Store::new(
        &config.database_url,
        config.pool_size,
        config.signed_prekey_grace,
    )?;
    store.check().await?;
    let hub = Arc::new(delivery::Hub::default());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let listener_task = delivery::spawn_listener(
        config.database_url.clone(),
        hub.clone(),
        store.tokens(),
        shutdown_rx.clone(),
    )
    .await?;
    let state = api::AppState {
        store: store.clone(),
        hub,
        metrics: Arc::new(metrics::Metrics::default()),
        shutdown: shutdown_rx.clone(),
        test_nondurable_ack: config.test_nondurable_ack,
    };
    if config.test_nondurable_ack {
        tracing::warn!(
            "{}=1: acknowledgements are NOT durable (test only)",
            config::TEST_NONDURABLE_ACK_ENV
        );
    }
    let app = api::router(state);
    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = tcp.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let mut stop = shutdown_rx;
    let http = tokio::spawn(async move {
        axum::serve(tcp, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|v| *v).await;
            })
            .await
    });
    tracing::info!(%addr, "reference server listening");
    Ok(RunningServer {
        addr,
        shutdown: shutdown_tx,
        http: Some(http),
        listener: Some(listener_task),
        store,
    })
}
