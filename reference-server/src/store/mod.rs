//! Everything the server keeps, in PostgreSQL. Each public method is one request's worth of
//! work in one transaction (a single statement where possible: a statement is its own
//! transaction and saves the BEGIN/COMMIT round trips). SQL is only ever parameterised, and
//! statements are prepared once per pooled connection.

mod devices;
mod keys;
mod messages;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use uuid::Uuid;

use crate::error::ApiError;
use crate::token_cache::TokenCache;
use crate::Error;

pub use devices::NewDevice;
pub use keys::{Bundle, OneTimePrekey, SignedPrekey};
pub use messages::{OutgoingEnvelope, SendOutcome, StoredEnvelope};

/// The connection pool and the settings the queries need.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    signed_prekey_grace: Duration,
    tokens: Arc<TokenCache>,
}

impl Store {
    pub fn new(
        database_url: &str,
        pool_size: usize,
        signed_prekey_grace: Duration,
    ) -> Result<Store, Error> {
        let config: tokio_postgres::Config = database_url
            .parse()
            .map_err(|e: tokio_postgres::Error| Error::BadUrl(e.to_string()))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            // Fast recycling costs no round trip: a connection whose session the server ended
            // (restart, pg_terminate_backend) is marked closed by its connection task and
            // discarded at checkout; one that dies mid-request fails that request (503) and is
            // discarded. Proven by an_open_socket_survives_terminated_database_sessions.
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        Ok(Store {
            pool,
            signed_prekey_grace,
            tokens: Arc::default(),
        })
    }

    async fn client(&self) -> Result<Object, ApiError> {
        Ok(self.pool.get().await?)
    }

    /// Opens one connection now, so a bad URL fails at start rather than on the first request.
    pub async fn check(&self) -> Result<(), Error> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| Error::Pool(e.to_string()))?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|source| Error::Sql {
                what: "checking the pool".into(),
                source,
            })?;
        Ok(())
    }

    /// For `/healthz`.
    /// Reaches the database and reads whether it commits durably (fsync on and
    /// synchronous_commit not off), so clients can report what they measured against.
    pub async fn ping(&self) -> Result<bool, ApiError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT current_setting('fsync') = 'on' \
                 AND current_setting('synchronous_commit') <> 'off'",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The device a token hash belongs to, if any: from the [`TokenCache`] when it knows the
    /// token, else one indexed SELECT whose answer the cache keeps.
    pub async fn authenticate(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<crate::auth::Device>, ApiError> {
        if let Some(device) = self.tokens.get(token_hash) {
            return Ok(Some(device));
        }
        let generation = self.tokens.generation();
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, user_id, device_id, identity_key FROM devices WHERE token_hash = $1",
            )
            .await?;
        let row = client.query_opt(&stmt, &[&token_hash.as_slice()]).await?;
        let device = row.map(|r| crate::auth::Device {
            row: r.get(0),
            user_id: r.get::<_, Uuid>(1),
            device_id: r.get(2),
            identity_key: r.get::<_, Vec<u8>>(3).try_into().unwrap_or([0; 32]),
        });
        if let Some(d) = &device {
            self.tokens.insert(*token_hash, d.clone(), generation);
        }
        Ok(device)
    }

    /// The cache [`Store::authenticate`] answers from; the delivery listener evicts from it.
    pub fn tokens(&self) -> Arc<TokenCache> {
        self.tokens.clone()
    }

    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    pub fn close(&self) {
        self.pool.close();
    }
}
