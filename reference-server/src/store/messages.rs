//! Envelopes: sending one logical message as one envelope per recipient device, reading a
//! device's queue, and acknowledging (deleting) envelopes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Store;
use crate::auth::Device;
use crate::error::ApiError;

/// One envelope of a send request, already validated.
#[derive(Debug, Clone)]
pub struct OutgoingEnvelope {
    pub device_id: i32,
    pub kind: &'static str,
    pub header: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Stored(i64),
    /// The same sender already sent this message id to this user: nothing written.
    Duplicate,
    /// The envelopes do not cover exactly the recipient's devices: nothing written.
    Mismatched {
        missing: Vec<i32>,
        extra: Vec<i32>,
    },
    UnknownUser,
}

#[derive(Debug, Clone)]
pub struct StoredEnvelope {
    pub id: i64,
    pub message_id: Uuid,
    pub sender_user: Uuid,
    pub sender_device: i32,
    pub kind: String,
    pub header: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// The whole send in one statement (its own transaction): the device check, the idempotency
/// record and the envelopes either all happen or none does. The recipient's devices exclude
/// the sending device itself (sending to one's own other devices).
const SEND: &str = "
WITH recipient AS (
    SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) AS known
), cur AS (
    SELECT id, device_id FROM devices WHERE user_id = $1 AND id <> $2
), req AS (
    SELECT * FROM unnest($6::integer[], $7::text[], $8::bytea[], $9::bytea[]) AS r(device_id, kind, header, ciphertext)
), seen AS (
    SELECT EXISTS (SELECT 1 FROM messages
                   WHERE sender_user = $3 AND sender_device = $4 AND message_id = $5 AND recipient_user = $1) AS dup
), fit AS (
    SELECT NOT EXISTS (SELECT 1 FROM cur FULL JOIN req USING (device_id)
                       WHERE cur.id IS NULL OR req.kind IS NULL) AS ok
), msg AS (
    INSERT INTO messages (message_id, sender_user, sender_device, recipient_user)
    SELECT $5, $3, $4, $1 FROM fit, seen, recipient WHERE fit.ok AND NOT seen.dup AND recipient.known
    ON CONFLICT ON CONSTRAINT messages_idempotency_key DO NOTHING
    RETURNING id
), env AS (
    INSERT INTO envelopes (message, recipient_device, kind, header, ciphertext)
    SELECT msg.id, cur.id, req.kind, req.header, req.ciphertext
    FROM msg CROSS JOIN req JOIN cur USING (device_id)
    RETURNING 1
)
SELECT (SELECT known FROM recipient), (SELECT dup FROM seen), (SELECT ok FROM fit),
       (SELECT count(*) FROM env), ARRAY(SELECT device_id FROM cur ORDER BY device_id)";

/// Wakes every device the send addressed, on every server instance, once the send has
/// committed: one notification per device on the `envelopes` channel, payload its row id.
/// Not a trigger inside the send (migration 0002 says why: a NOTIFY inside a durable commit
/// holds PostgreSQL's global notification lock through the commit's WAL flush, so sends could
/// not share flushes). Sent right behind the send on the same connection (pipelined), so it
/// runs after the send's commit and costs no extra round trip; it writes nothing, so its own
/// commit waits for no flush. Sent also for a duplicate (a resend after a lost answer wakes
/// the devices again, in case the first attempt never got to notify).
const NOTIFY: &str = "
SELECT count(pg_notify('envelopes', id::text)) FROM devices WHERE user_id = $1 AND id <> $2";

/// A device's queued envelopes except those in `$2` (already pushed to this session, not yet
/// acknowledged), oldest first, marking first delivery. `$3` rows are returned; the last
/// column says whether more were waiting.
///
/// Why not `id > cursor`: identity ids are taken at insert but become visible at commit, so a
/// transaction holding id N can commit after N+1 was read; a cursor past N+1 skips N forever.
/// Re-reading everything unacknowledged has no such window, whatever the commit order.
/// Cost: one round trip per wake-up (bursts coalesce into one read) plus one per ack; the read
/// walks `envelopes_recipient_queue_idx` over the device's unacknowledged envelopes, which a
/// client that acks promptly keeps to a handful.
const QUEUE: &str = "
WITH pick AS (
    SELECT id FROM envelopes WHERE recipient_device = $1 AND id <> ALL($2::bigint[])
    ORDER BY id LIMIT $3::bigint + 1
), taken AS (
    UPDATE envelopes e SET delivered_at = coalesce(e.delivered_at, clock_timestamp())
    FROM messages m
    WHERE e.id IN (SELECT id FROM pick ORDER BY id LIMIT $3) AND m.id = e.message
    RETURNING e.id, m.message_id, m.sender_user, m.sender_device, e.kind, e.header, e.ciphertext, e.created_at
)
SELECT taken.*, (SELECT count(*) FROM pick) > $3 FROM taken ORDER BY id";

/// [`QUEUE`] without marking delivery, for WebSocket sessions: a read writes nothing, so it
/// costs no WAL and no commit flush. The session marks what it pushed with
/// [`MARK_DELIVERED`] only if the device has not acknowledged it soon after (the usual case
/// is an ack within milliseconds, which deletes the envelope and makes the mark moot).
const PEEK: &str = "
SELECT e.id, m.message_id, m.sender_user, m.sender_device, e.kind, e.header, e.ciphertext, e.created_at
FROM envelopes e JOIN messages m ON m.id = e.message
WHERE e.recipient_device = $1 AND e.id <> ALL($2::bigint[])
ORDER BY e.id LIMIT $3::bigint + 1";

/// Records first delivery of pushed envelopes at the time they were pushed (never before
/// they were created, whatever the clocks of server and database say).
const MARK_DELIVERED: &str = "
UPDATE envelopes e SET delivered_at = greatest(e.created_at, m.at)
FROM unnest($2::bigint[], $3::timestamptz[]) AS m(id, at)
WHERE e.id = m.id AND e.recipient_device = $1 AND e.delivered_at IS NULL";

/// A row of [`QUEUE`] or [`PEEK`] (same leading columns).
fn stored(r: tokio_postgres::Row) -> StoredEnvelope {
    StoredEnvelope {
        id: r.get(0),
        message_id: r.get(1),
        sender_user: r.get(2),
        sender_device: r.get(3),
        kind: r.get(4),
        header: r.get(5),
        ciphertext: r.get(6),
        created_at: r.get(7),
    }
}

impl Store {
    pub async fn send(
        &self,
        sender: &Device,
        recipient_user: Uuid,
        message_id: Uuid,
        envelopes: &[OutgoingEnvelope],
    ) -> Result<SendOutcome, ApiError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(SEND).await?;
        let notify = client.prepare_cached(NOTIFY).await?;
        let devices: Vec<i32> = envelopes.iter().map(|e| e.device_id).collect();
        let kinds: Vec<&str> = envelopes.iter().map(|e| e.kind).collect();
        let headers: Vec<&[u8]> = envelopes.iter().map(|e| e.header.as_slice()).collect();
        let bodies: Vec<&[u8]> = envelopes.iter().map(|e| e.ciphertext.as_slice()).collect();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &recipient_user,
            &sender.row,
            &sender.user_id,
            &sender.device_id,
            &message_id,
            &devices,
            &kinds,
            &headers,
            &bodies,
        ];
        let notify_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&recipient_user, &sender.row];
        // Both requests go out at once, in this order; PostgreSQL runs them one after the other.
        let (row, notified) = tokio::join!(
            client.query_one(&stmt, &params),
            client.query_one(&notify, &notify_params)
        );
        let row = row?;
        // A send stored but not announced is answered with the error, so the client resends
        // (same message id: a duplicate, which notifies again).
        notified?;
        let (known, dup, fits, stored): (bool, bool, bool, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if !known {
            return Ok(SendOutcome::UnknownUser);
        }
        if dup {
            return Ok(SendOutcome::Duplicate);
        }
        if !fits {
            let current: Vec<i32> = row.get(4);
            let missing = current
                .iter()
                .copied()
                .filter(|d| !devices.contains(d))
                .collect();
            let extra = devices
                .iter()
                .copied()
                .filter(|d| !current.contains(d))
                .collect();
            return Ok(SendOutcome::Mismatched { missing, extra });
        }
        // Fits, not seen before, yet nothing inserted: a concurrent identical send won.
        Ok(if stored == 0 {
            SendOutcome::Duplicate
        } else {
            SendOutcome::Stored(stored)
        })
    }

    /// Up to `limit` queued envelopes not in `exclude`, oldest first, and whether more wait.
    pub async fn queue(
        &self,
        device: &Device,
        exclude: &[i64],
        limit: i64,
    ) -> Result<(Vec<StoredEnvelope>, bool), ApiError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(QUEUE).await?;
        let rows = client
            .query(&stmt, &[&device.row, &exclude, &limit])
            .await?;
        let more = rows.first().map(|r| r.get::<_, bool>(8)).unwrap_or(false);
        Ok((rows.into_iter().map(stored).collect(), more))
    }

    /// Like [`Store::queue`], but marks nothing (see [`PEEK`]).
    pub async fn peek_queue(
        &self,
        device: &Device,
        exclude: &[i64],
        limit: i64,
    ) -> Result<(Vec<StoredEnvelope>, bool), ApiError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(PEEK).await?;
        let mut rows = client
            .query(&stmt, &[&device.row, &exclude, &limit])
            .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        Ok((rows.into_iter().map(stored).collect(), more))
    }

    /// Marks pushed envelopes delivered at the given times (those still queued and unmarked).
    pub async fn mark_delivered(
        &self,
        device: &Device,
        pushed: &[(i64, DateTime<Utc>)],
    ) -> Result<(), ApiError> {
        if pushed.is_empty() {
            return Ok(());
        }
        let (ids, times): (Vec<i64>, Vec<DateTime<Utc>>) = pushed.iter().copied().unzip();
        let client = self.client().await?;
        let stmt = client.prepare_cached(MARK_DELIVERED).await?;
        client.execute(&stmt, &[&device.row, &ids, &times]).await?;
        Ok(())
    }

    /// Deletes one of the device's envelopes; false if it has no such envelope.
    pub async fn acknowledge(&self, device: &Device, envelope_id: i64) -> Result<bool, ApiError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("DELETE FROM envelopes WHERE id = $1 AND recipient_device = $2")
            .await?;
        Ok(client.execute(&stmt, &[&envelope_id, &device.row]).await? == 1)
    }

    /// Records that the device came online (WebSocket connect or poll), at most once a minute.
    pub async fn touch(&self, device: &Device) -> Result<(), ApiError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE devices SET last_seen_at = now()
                 WHERE id = $1 AND last_seen_at < now() - interval '1 minute'",
            )
            .await?;
        client.execute(&stmt, &[&device.row]).await?;
        Ok(())
    }
}
