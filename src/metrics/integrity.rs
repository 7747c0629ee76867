//! Integrity accounting: every envelope a virtual client sends is followed until its
//! recipient device decrypts it, so the run can prove nothing was lost, duplicated or
//! mangled — and every one-time prekey handed out is remembered, so a prekey given to two
//! initiators is caught.
//!
//! The ledger is keyed by (message id, recipient device): one logical message fans out to one
//! envelope per device, and each is accounted for on its own.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::report::model::{EnvelopeRef, Integrity, IntegrityProblems};

/// A device of a user: the unit that receives envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceAddr {
    pub(crate) user: Uuid,
    pub(crate) device: u32,
}

type Key = (Uuid, DeviceAddr);
/// A one-time prekey: the device that owns it and its key id.
type PrekeyId = (DeviceAddr, u32);

struct Entry {
    /// When the sender intended to start sending (delivery latency counts from here).
    intended: Instant,
    /// The server acknowledged storing it (or it arrived, which proves the same).
    confirmed: bool,
    delivered: bool,
    /// The server's envelope id of the first arrival: another id for the same message and
    /// device means the server stored it twice.
    envelope_id: Option<i64>,
    /// The connection whose ack frame for it was written, if one was.
    acked_on: Option<ConnId>,
    /// The recipient's verdict: decrypted to exactly what was sent, or not.
    verdict: Option<bool>,
    waiters: Vec<oneshot::Sender<bool>>,
}

/// A delivery WebSocket connection of this run (each connect gets a new one).
pub(crate) type ConnId = u64;

/// What an arriving envelope is, as far as the ledger knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// First arrival of an envelope this run sent; the sender intended to start at `intended`.
    Fresh { intended: Instant },
    /// The same envelope again on a later connection because its acknowledgement was not
    /// known to have reached the server (the API sends unacknowledged envelopes again):
    /// counted as redelivered, not a failure; ack it again, do not decrypt twice.
    Redelivered,
    /// Delivered again although its ack reached the server (its connection was closed
    /// cleanly after the ack, or it came twice on one connection), or stored twice under
    /// another envelope id: counted as duplicated, a failure; do not decrypt twice.
    Duplicate,
    /// Nobody in this run sent it.
    Unexpected,
}

const SHARDS: usize = 64;

/// Shared by every virtual client of a run.
pub struct Ledger {
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<Key, Entry>>]>,
    prekeys: Box<[Mutex<HashSet<PrekeyId>>]>,
    sent: AtomicU64,
    delivered: AtomicU64,
    decrypted: AtomicU64,
    duplicated: AtomicU64,
    redelivered: AtomicU64,
    /// Connections closed by us with the server's close reply: every ack written before
    /// was read by the server (WebSocket frames are processed in order).
    clean_closes: Mutex<HashSet<ConnId>>,
    /// The envelopes that arrived as duplicates (for the report's list).
    duplicates: Mutex<Vec<Key>>,
    decrypt_failures: AtomicU64,
    prekeys_reused: AtomicU64,
    signature_failures: AtomicU64,
    unexpected: AtomicU64,
}

impl Default for Ledger {
    fn default() -> Self {
        Self::new()
    }
}

impl Ledger {
    pub fn new() -> Self {
        Ledger {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            prekeys: (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect(),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            decrypted: AtomicU64::new(0),
            duplicated: AtomicU64::new(0),
            redelivered: AtomicU64::new(0),
            clean_closes: Mutex::new(HashSet::new()),
            duplicates: Mutex::new(Vec::new()),
            decrypt_failures: AtomicU64::new(0),
            prekeys_reused: AtomicU64::new(0),
            signature_failures: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
        }
    }

    fn shard_of<T: Hash>(&self, key: &T) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn with_entry<R>(&self, key: &Key, f: impl FnOnce(Option<&mut Entry>) -> R) -> R {
        let mut shard = self.shards[self.shard_of(key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        f(shard.get_mut(key))
    }

    /// Announces envelopes about to be sent (before the request, so a fast recipient never
    /// sees an envelope the ledger does not know yet).
    pub(crate) fn expect(&self, message_id: Uuid, recipients: &[DeviceAddr], intended: Instant) {
        for r in recipients {
            let key = (message_id, *r);
            let mut shard = self.shards[self.shard_of(&key)]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            shard.entry(key).or_insert_with(|| Entry {
                intended,
                confirmed: false,
                delivered: false,
                envelope_id: None,
                acked_on: None,
                verdict: None,
                waiters: Vec::new(),
            });
        }
    }

    /// The server acknowledged storing the envelopes of `message_id` for `recipients`.
    pub(crate) fn confirm(&self, message_id: Uuid, recipients: &[DeviceAddr]) {
        for r in recipients {
            self.with_entry(&(message_id, *r), |e| {
                if let Some(e) = e {
                    if !e.confirmed {
                        e.confirmed = true;
                        self.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }

    /// A send was refused for these recipients (e.g. `409 mismatched_devices` for a device that
    /// no longer exists): forget them, since the server stored nothing.
    pub(crate) fn withdraw(&self, message_id: Uuid, recipients: &[DeviceAddr]) {
        for r in recipients {
            let key = (message_id, *r);
            let mut shard = self.shards[self.shard_of(&key)]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if shard
                .get(&key)
                .is_some_and(|e| !e.confirmed && !e.delivered)
            {
                shard.remove(&key);
            }
        }
    }

    /// Envelope `envelope_id` of `message_id` arrived at `recipient` on connection `conn`.
    pub(crate) fn arrived(
        &self,
        message_id: Uuid,
        recipient: DeviceAddr,
        envelope_id: i64,
        conn: ConnId,
    ) -> Arrival {
        let arrival = self.with_entry(&(message_id, recipient), |e| match e {
            None => Arrival::Unexpected,
            Some(e) if e.delivered => self.again(e, envelope_id, conn),
            Some(e) => {
                e.delivered = true;
                e.envelope_id = Some(envelope_id);
                if !e.confirmed {
                    // The request failed on our side (timeout) but the server stored it.
                    e.confirmed = true;
                    self.sent.fetch_add(1, Ordering::Relaxed);
                }
                Arrival::Fresh {
                    intended: e.intended,
                }
            }
        });
        match arrival {
            Arrival::Unexpected => self.unexpected.fetch_add(1, Ordering::Relaxed),
            Arrival::Duplicate => {
                self.duplicates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((message_id, recipient));
                self.duplicated.fetch_add(1, Ordering::Relaxed)
            }
            Arrival::Redelivered => self.redelivered.fetch_add(1, Ordering::Relaxed),
            Arrival::Fresh { .. } => self.delivered.fetch_add(1, Ordering::Relaxed),
        };
        arrival
    }

    /// A second arrival: a redelivery only if it is the same envelope, on another
    /// connection, and no ack of it is known to have reached the server.
    fn again(&self, e: &Entry, envelope_id: i64, conn: ConnId) -> Arrival {
        if e.envelope_id != Some(envelope_id) {
            return Arrival::Duplicate;
        }
        match e.acked_on {
            Some(c) if c == conn || self.closed_cleanly(c) => Arrival::Duplicate,
            _ => Arrival::Redelivered,
        }
    }

    fn closed_cleanly(&self, conn: ConnId) -> bool {
        self.clean_closes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&conn)
    }

    /// The ack frame for `message_id` at `recipient` was written on connection `conn`.
    pub(crate) fn ack_written(&self, message_id: Uuid, recipient: DeviceAddr, conn: ConnId) {
        self.with_entry(&(message_id, recipient), |e| {
            if let Some(e) = e {
                e.acked_on = Some(conn);
            }
        });
    }

    /// We closed `conn` and the server replied to the close: it read every ack before.
    pub(crate) fn closed_cleanly_after_acks(&self, conn: ConnId) {
        self.clean_closes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(conn);
    }

    /// The recipient's verdict on a fresh arrival: `ok` when it decrypted to exactly what was
    /// sent. Wakes anyone waiting for it.
    pub(crate) fn decrypted(&self, message_id: Uuid, recipient: DeviceAddr, ok: bool) {
        let waiters = self.with_entry(&(message_id, recipient), |e| match e {
            Some(e) => {
                e.verdict = Some(ok);
                std::mem::take(&mut e.waiters)
            }
            None => Vec::new(),
        });
        if ok {
            self.decrypted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.decrypt_failures.fetch_add(1, Ordering::Relaxed);
        }
        for w in waiters {
            let _ = w.send(ok);
        }
    }

    /// Resolves with the decryption verdict once the recipient has processed the envelope
    /// (at once if it already has). `None` if the envelope is not in the ledger.
    pub fn wait_decrypted(
        &self,
        message_id: Uuid,
        recipient: DeviceAddr,
    ) -> Option<oneshot::Receiver<bool>> {
        let (tx, rx) = oneshot::channel();
        self.with_entry(&(message_id, recipient), |e| {
            let e = e?;
            match e.verdict {
                Some(ok) => {
                    let _ = tx.send(ok);
                }
                None => e.waiters.push(tx),
            }
            Some(())
        })?;
        Some(rx)
    }

    /// Hands out a one-time prekey (device, key id) to an initiator. Returns false, and counts
    /// a reuse, if it was already handed out in this run.
    pub(crate) fn claim_prekey(&self, device: DeviceAddr, key_id: u32) -> bool {
        let key = (device, key_id);
        let fresh = self.prekeys[self.shard_of(&key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        if !fresh {
            self.prekeys_reused.fetch_add(1, Ordering::Relaxed);
        }
        fresh
    }

    pub(crate) fn signature_failure(&self) {
        self.signature_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Acknowledged envelopes not yet delivered.
    pub(crate) fn outstanding(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .filter(|e| e.confirmed && !e.delivered)
                    .count() as u64
            })
            .sum()
    }

    /// Messages sent so far (for progress).
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Failure counts so far (for progress).
    pub(crate) fn failures_so_far(&self) -> u64 {
        self.snapshot_counts(0)
            .failure_counts()
            .iter()
            .map(|(_, n)| n)
            .sum()
    }

    fn snapshot_counts(&self, lost: u64) -> Integrity {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Integrity {
            messages_sent: l(&self.sent),
            messages_delivered: l(&self.delivered),
            messages_decrypted: l(&self.decrypted),
            messages_lost: lost,
            messages_duplicated: l(&self.duplicated),
            messages_redelivered: l(&self.redelivered),
            decrypt_failures: l(&self.decrypt_failures),
            prekeys_reused: l(&self.prekeys_reused),
            signature_failures: l(&self.signature_failures),
            messages_unexpected: l(&self.unexpected),
        }
    }

    /// Which envelopes were lost (acknowledged, never arrived), duplicated or undecryptable,
    /// sorted, each list at most [`IntegrityProblems::LIMIT`] long.
    pub(crate) fn problems(&self) -> IntegrityProblems {
        let as_ref = |(m, d): &Key| EnvelopeRef {
            message_id: *m,
            recipient_user: d.user,
            recipient_device: d.device,
        };
        let mut p = IntegrityProblems::default();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for (k, e) in shard.iter() {
                if e.confirmed && !e.delivered {
                    p.lost.push(as_ref(k));
                }
                if e.verdict == Some(false) {
                    p.undecryptable.push(as_ref(k));
                }
            }
        }
        p.duplicated = self
            .duplicates
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(as_ref)
            .collect();
        for list in [&mut p.lost, &mut p.duplicated, &mut p.undecryptable] {
            list.sort();
            list.truncate(IntegrityProblems::LIMIT);
        }
        p
    }

    /// The final accounting, after the drain period: what is still outstanding is lost.
    pub fn finish(&self) -> Integrity {
        self.snapshot_counts(self.outstanding())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(n: u32) -> DeviceAddr {
        DeviceAddr {
            user: Uuid::from_u128(7),
            device: n,
        }
    }

    #[test]
    fn accounts_for_sent_delivered_lost_duplicated() {
        let l = Ledger::new();
        let (m1, m2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let now = Instant::now();
        l.expect(m1, &[dev(1), dev(2)], now);
        l.confirm(m1, &[dev(1), dev(2)]);
        l.expect(m2, &[dev(1)], now);
        l.confirm(m2, &[dev(1)]);
        assert_eq!(l.outstanding(), 3);
        assert_eq!(
            l.arrived(m1, dev(1), 10, 1),
            Arrival::Fresh { intended: now }
        );
        l.decrypted(m1, dev(1), true);
        l.ack_written(m1, dev(1), 1);
        assert_eq!(l.arrived(m1, dev(1), 10, 1), Arrival::Duplicate);
        assert_eq!(
            l.arrived(m1, dev(2), 11, 2),
            Arrival::Fresh { intended: now }
        );
        l.decrypted(m1, dev(2), false);
        assert_eq!(
            l.arrived(Uuid::from_u128(9), dev(1), 12, 1),
            Arrival::Unexpected
        );
        let i = l.finish();
        assert_eq!(i.messages_sent, 3);
        assert_eq!(i.messages_delivered, 2);
        assert_eq!(i.messages_decrypted, 1);
        assert_eq!(i.decrypt_failures, 1);
        assert_eq!(i.messages_duplicated, 1);
        assert_eq!(i.messages_lost, 1);
        assert_eq!(i.messages_unexpected, 1);
        assert!(!i.is_clean());
        let p = l.problems();
        let r = |m: Uuid, d: u32| EnvelopeRef {
            message_id: m,
            recipient_user: Uuid::from_u128(7),
            recipient_device: d,
        };
        assert_eq!(p.lost, vec![r(m2, 1)], "m2 to device 1 never arrived");
        assert_eq!(p.duplicated, vec![r(m1, 1)]);
        assert_eq!(p.undecryptable, vec![r(m1, 2)]);
    }

    #[test]
    fn an_arrival_after_a_failed_request_counts_as_sent() {
        let l = Ledger::new();
        let m = Uuid::from_u128(3);
        l.expect(m, &[dev(1)], Instant::now());
        assert!(matches!(l.arrived(m, dev(1), 1, 1), Arrival::Fresh { .. }));
        l.decrypted(m, dev(1), true);
        let i = l.finish();
        assert_eq!((i.messages_sent, i.messages_lost), (1, 0));
        assert!(i.is_clean());
    }

    #[test]
    fn redelivery_after_an_unconfirmed_ack_is_not_duplication() {
        let l = Ledger::new();
        let (m, now) = (Uuid::from_u128(8), Instant::now());
        l.expect(m, &[dev(1)], now);
        l.confirm(m, &[dev(1)]);
        assert!(matches!(l.arrived(m, dev(1), 5, 1), Arrival::Fresh { .. }));
        l.decrypted(m, dev(1), true);
        // The ack never went out (connection 1 broke): connection 2 gets it again.
        assert_eq!(l.arrived(m, dev(1), 5, 2), Arrival::Redelivered);
        // Acked on connection 2, which then dropped without a close reply: still a redelivery.
        l.ack_written(m, dev(1), 2);
        assert_eq!(l.arrived(m, dev(1), 5, 3), Arrival::Redelivered);
        // Acked on 3 and 3 closed cleanly: the server read the ack, so this is a duplicate.
        l.ack_written(m, dev(1), 3);
        l.closed_cleanly_after_acks(3);
        assert_eq!(l.arrived(m, dev(1), 5, 4), Arrival::Duplicate);
        // Another envelope id for the same message: stored twice, a duplicate.
        assert_eq!(l.arrived(m, dev(1), 6, 4), Arrival::Duplicate);
        let i = l.finish();
        assert_eq!((i.messages_redelivered, i.messages_duplicated), (2, 2));
        assert_eq!(i.messages_decrypted, 1);
    }

    #[test]
    fn withdrawn_envelopes_are_not_lost() {
        let l = Ledger::new();
        let m = Uuid::from_u128(4);
        l.expect(m, &[dev(1), dev(2)], Instant::now());
        l.withdraw(m, &[dev(2)]);
        l.confirm(m, &[dev(1)]);
        assert_eq!(l.outstanding(), 1);
    }

    #[test]
    fn second_claim_of_a_prekey_is_a_reuse() {
        let l = Ledger::new();
        assert!(l.claim_prekey(dev(1), 5));
        assert!(l.claim_prekey(dev(2), 5));
        assert!(!l.claim_prekey(dev(1), 5));
        assert_eq!(l.finish().prekeys_reused, 1);
    }

    #[tokio::test]
    async fn waiters_learn_the_verdict() {
        let l = Ledger::new();
        let m = Uuid::from_u128(5);
        l.expect(m, &[dev(1)], Instant::now());
        let rx = l.wait_decrypted(m, dev(1)).unwrap();
        l.arrived(m, dev(1), 1, 1);
        l.decrypted(m, dev(1), true);
        assert!(rx.await.unwrap());
        // Already decrypted: resolves at once.
        assert!(l.wait_decrypted(m, dev(1)).unwrap().await.unwrap());
        assert!(l.wait_decrypted(Uuid::from_u128(6), dev(1)).is_none());
    }
}
