//! Prekeys: replenishing, rotating, counting, and the bundle fetch with its atomic claim.

use uuid::Uuid;

use super::Store;
use crate::auth::Device;
use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct SignedPrekey {
    pub key_id: i64,
    pub public_key: [u8; 32],
    pub signature: [u8; 64],
}

#[derive(Debug, Clone)]
pub struct OneTimePrekey {
    pub key_id: i64,
    pub public_key: [u8; 32],
}

/// One device's bundle as read (and, for the one-time prekey, claimed).
#[derive(Debug, Clone)]
pub struct Bundle {
    pub device_id: i32,
    pub registration_id: i32,
    pub identity_key: Vec<u8>,
    pub signed_prekey_id: i64,
    pub signed_prekey: Vec<u8>,
    pub signature: Vec<u8>,
    pub one_time_prekey: Option<(i64, Vec<u8>)>,
}

/// Column arrays for `unnest`, so a whole batch is one statement.
pub(super) fn columns(keys: &[OneTimePrekey]) -> (Vec<i64>, Vec<&[u8]>) {
    keys.iter()
        .map(|k| (k.key_id, k.public_key.as_slice()))
        .unzip()
}

/// Reads the bundles of a user's devices (all, or one) and claims at most one one-time prekey
/// per device, in one statement: the claim is `DELETE … RETURNING` of a row picked with
/// `FOR UPDATE SKIP LOCKED`, so concurrent fetches never get the same prekey and never wait
/// for each other.
const BUNDLES: &str = "
WITH d AS (
    SELECT dv.id, dv.device_id, dv.registration_id, dv.identity_key,
           s.key_id AS spk_id, s.public_key AS spk, s.signature
    FROM devices dv
    JOIN signed_prekeys s ON s.device = dv.id AND s.active
    WHERE dv.user_id = $1 AND ($2::integer IS NULL OR dv.device_id = $2)
), claimed AS (
    DELETE FROM one_time_prekeys o
    USING (SELECT p.device, p.key_id
           FROM d CROSS JOIN LATERAL (
               SELECT device, key_id FROM one_time_prekeys
               WHERE device = d.id
               ORDER BY key_id
               LIMIT 1
               FOR UPDATE SKIP LOCKED) p) pick
    WHERE o.device = pick.device AND o.key_id = pick.key_id
    RETURNING o.device, o.key_id, o.public_key
)
SELECT d.device_id, d.registration_id, d.identity_key, d.spk_id, d.spk, d.signature, c.key_id, c.public_key
FROM d LEFT JOIN claimed c ON c.device = d.id
ORDER BY d.device_id";

impl Store {
    pub async fn bundles(
        &self,
        user_id: Uuid,
        device_id: Option<i32>,
    ) -> Result<Vec<Bundle>, ApiError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(BUNDLES).await?;
        let rows = client.query(&stmt, &[&user_id, &device_id]).await?;
        Ok(rows
            .into_iter()
            .map(|r| Bundle {
                device_id: r.get(0),
                registration_id: r.get(1),
                identity_key: r.get(2),
                signed_prekey_id: r.get(3),
                signed_prekey: r.get(4),
                signature: r.get(5),
                one_time_prekey: r.get::<_, Option<i64>>(6).map(|id| (id, r.get(7))),
            })
            .collect())
    }

    /// Stores a batch of one-time prekeys; returns (stored, available afterwards). A key id the
    /// device already has fails the whole statement (nothing stored).
    pub async fn add_one_time_prekeys(
        &self,
        device: &Device,
        keys: &[OneTimePrekey],
    ) -> Result<(i64, i64), ApiError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "WITH ins AS (
                     INSERT INTO one_time_prekeys (device, key_id, public_key)
                     SELECT $1, k, p FROM unnest($2::bigint[], $3::bytea[]) AS u(k, p)
                     RETURNING 1
                 ), ev AS (
                     INSERT INTO key_events (user_id, device_id, kind, detail)
                     SELECT $4, $5, 'prekeys_replenished', jsonb_build_object('count', count(*)) FROM ins
                 )
                 SELECT (SELECT count(*) FROM ins),
                        (SELECT count(*) FROM one_time_prekeys WHERE device = $1)",
            )
            .await?;
        let (ids, publics) = columns(keys);
        let row = client
            .query_one(
                &stmt,
                &[
                    &device.row,
                    &ids,
                    &publics,
                    &device.user_id,
                    &device.device_id,
                ],
            )
            .await?;
        let stored: i64 = row.get(0);
        // The count's snapshot predates this statement's own inserts.
        let before: i64 = row.get(1);
        Ok((stored, before + stored))
    }

    pub async fn count_one_time_prekeys(&self, device: &Device) -> Result<i64, ApiError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT count(*) FROM one_time_prekeys WHERE device = $1")
            .await?;
        Ok(client.query_one(&stmt, &[&device.row]).await?.get(0))
    }

    /// Makes `key` the active signed prekey. The previous one is retired but kept for the grace
    /// period; retired keys past it are deleted.
    pub async fn rotate_signed_prekey(
        &self,
        device: &Device,
        key: &SignedPrekey,
    ) -> Result<(), ApiError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Rotations of one device are serialised on its row: without the lock, two concurrent
        // rotations both retire the old key and both insert an active one, and the second
        // insert breaks the one-active-key index. After the wait, the next statements see the
        // other rotation's key and retire it in turn.
        let lock = tx
            .prepare_cached("SELECT 1 FROM devices WHERE id = $1 FOR UPDATE")
            .await?;
        tx.execute(&lock, &[&device.row]).await?;
        let grace_secs = self.signed_prekey_grace.as_secs_f64();
        let retire = tx
            .prepare_cached(
                "WITH expired AS (
                     DELETE FROM signed_prekeys
                     WHERE device = $1 AND NOT active AND retired_at < now() - make_interval(secs => $2)
                 )
                 UPDATE signed_prekeys SET active = false, retired_at = now()
                 WHERE device = $1 AND active RETURNING key_id",
            )
            .await?;
        let previous: Option<i64> = tx
            .query_opt(&retire, &[&device.row, &grace_secs])
            .await?
            .map(|r| r.get(0));
        let insert = tx
            .prepare_cached(
                "WITH spk AS (
                     INSERT INTO signed_prekeys (device, key_id, public_key, signature, active)
                     VALUES ($1, $2, $3, $4, true)
                 )
                 INSERT INTO key_events (user_id, device_id, kind, detail)
                 VALUES ($5, $6, 'signed_prekey_rotated',
                         jsonb_build_object('key_id', $2, 'previous_key_id', $7::bigint))",
            )
            .await?;
        tx.execute(
            &insert,
            &[
                &device.row,
                &key.key_id,
                &key.public_key.as_slice(),
                &key.signature.as_slice(),
                &device.user_id,
                &device.device_id,
                &previous,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
