//! What an embedding (the harness, the binaries, tests) decides about a server instance.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of one server instance. Build with [`ServerConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `postgres://` URL of the database the server owns (migrated on start).
    pub database_url: String,
    /// Where to listen; port 0 picks a free port (read it back with `RunningServer::addr`).
    pub listen: SocketAddr,
    /// Connections in the request pool (the LISTEN connection is one more).
    pub pool_size: usize,
    /// How long a replaced signed prekey is kept before it is deleted: sessions being set up
    /// from a bundle fetched just before the rotation may still name it.
    pub signed_prekey_grace: Duration,
    /// TEST ONLY — breaks the server on purpose. Acknowledge a send (200) *before* storing
    /// it, storing it a moment later in the background, so a crash in between loses
    /// acknowledged messages. Exists so the harness can prove its integrity ledger catches a
    /// loss. Set only from the [`TEST_NONDURABLE_ACK_ENV`] environment variable; no flag
    /// reaches it.
    pub test_nondurable_ack: bool,
}

/// TEST ONLY: `E2EE_REFSERVER_TEST_NONDURABLE_ACK=1` makes acknowledgements non-durable
/// (see [`ServerConfig::test_nondurable_ack`]). Never set it outside the harness's tests.
pub const TEST_NONDURABLE_ACK_ENV: &str = "E2EE_REFSERVER_TEST_NONDURABLE_ACK";

impl ServerConfig {
    /// Defaults: loopback with a free port, 16 pooled connections, 7 days of grace.
    pub fn new(database_url: impl Into<String>) -> ServerConfig {
        ServerConfig {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pool_size: 16,
            signed_prekey_grace: Duration::from_secs(7 * 24 * 3600),
            test_nondurable_ack: std::env::var(TEST_NONDURABLE_ACK_ENV).is_ok_and(|v| v == "1"),
        }
    }
}
