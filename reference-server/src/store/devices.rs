//! Users and devices: registration, adding and removing devices.

use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::keys::{OneTimePrekey, SignedPrekey};
use super::Store;
use crate::error::ApiError;

/// A device as registered: its identity, first signed prekey and first one-time prekeys.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub registration_id: i32,
    pub identity_key: [u8; 32],
    pub signed_prekey: SignedPrekey,
    pub one_time_prekeys: Vec<OneTimePrekey>,
    pub token_hash: [u8; 32],
}

impl Store {
    /// A new user with device 1.
    pub async fn register_user(&self, device: &NewDevice) -> Result<Uuid, ApiError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let user_id = Uuid::new_v4();
        let stmt = tx
            .prepare_cached("INSERT INTO users (id) VALUES ($1)")
            .await?;
        tx.execute(&stmt, &[&user_id]).await?;
        insert_device(&tx, user_id, 1, device).await?;
        tx.commit().await?;
        Ok(user_id)
    }

    /// Another device for `user_id`; device ids come from the user's counter and are never reused.
    pub async fn add_device(&self, user_id: Uuid, device: &NewDevice) -> Result<i32, ApiError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let stmt = tx
            .prepare_cached(
                "UPDATE users SET next_device_id = next_device_id + 1 WHERE id = $1 RETURNING next_device_id - 1",
            )
            .await?;
        let row = tx
            .query_opt(&stmt, &[&user_id])
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("user {user_id} no longer exists")))?;
        let device_id: i32 = row.get(0);
        insert_device(&tx, user_id, device_id, device).await?;
        tx.commit().await?;
        Ok(device_id)
    }

    /// Removes a device of `user_id` with its keys and queued envelopes (ON DELETE CASCADE).
    /// Its token stops working on this instance before this returns (other instances hear the
    /// `devices_removed` notification).
    pub async fn remove_device(&self, user_id: Uuid, device_id: i32) -> Result<bool, ApiError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH gone AS (DELETE FROM devices WHERE user_id = $1 AND device_id = $2 RETURNING id, user_id, device_id),
                 ev AS (INSERT INTO key_events (user_id, device_id, kind)
                        SELECT user_id, device_id, 'device_removed' FROM gone)
                 SELECT id FROM gone",
            )
            .await?;
        let gone = client.query_opt(&stmt, &[&user_id, &device_id]).await?;
        if let Some(row) = &gone {
            self.tokens.evict(row.get(0));
        }
        Ok(gone.is_some())
    }
}

async fn insert_device(
    tx: &Transaction<'_>,
    user_id: Uuid,
    device_id: i32,
    d: &NewDevice,
) -> Result<(), ApiError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO devices (user_id, device_id, registration_id, identity_key, token_hash)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &user_id,
                &device_id,
                &d.registration_id,
                &d.identity_key.as_slice(),
                &d.token_hash.as_slice(),
            ],
        )
        .await?;
    let row_id: i64 = row.get(0);
    let (key_ids, publics) = super::keys::columns(&d.one_time_prekeys);
    let stmt = tx
        .prepare_cached(
            "WITH spk AS (
                 INSERT INTO signed_prekeys (device, key_id, public_key, signature, active)
                 VALUES ($1, $2, $3, $4, true)
             ), otk AS (
                 INSERT INTO one_time_prekeys (device, key_id, public_key)
                 SELECT $1, k, p FROM unnest($5::bigint[], $6::bytea[]) AS u(k, p)
             )
             INSERT INTO key_events (user_id, device_id, kind, detail) VALUES
                 ($7, $8, 'device_added', '{}'),
                 ($7, $8, 'keys_uploaded',
                  jsonb_build_object('signed_prekey_id', $2, 'one_time_prekeys', cardinality($5::bigint[])))",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &row_id,
            &d.signed_prekey.key_id,
            &d.signed_prekey.public_key.as_slice(),
            &d.signed_prekey.signature.as_slice(),
            &key_ids,
            &publics,
            &user_id,
            &device_id,
        ],
    )
    .await?;
    Ok(())
}
