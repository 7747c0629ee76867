//! A virtual device: its keys, its sessions with other devices, and what it does with an
//! envelope (set up a session from a prekey message, decrypt, check the plaintext).
//!
//! State sits behind a plain mutex: every cryptographic step is short and synchronous, so no
//! lock is ever held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use uuid::Uuid;

use crate::client::api::{Credential, EnvelopeType, OneTimePrekeyBody, SignedPrekeyBody};
use crate::client::keys::DeviceKeys;
use crate::client::wire;
use crate::crypto::identity::IdentityKeyPair;
use crate::crypto::prekeys::{OneTimePreKey, SignedPreKey};
use crate::crypto::ratchet::Session;
use crate::crypto::x3dh::{self, PreKeyBundle};
use crate::crypto::CryptoError;
use crate::metrics::DeviceAddr;

/// Sessions kept per peer device (newest last): the current one and 40 archived, as
/// libsignal's session record keeps (`ARCHIVED_STATES_MAX_LENGTH`). Fewer (this was 4) can
/// drop a session a delayed message still needs when two devices set up sessions with each
/// other at once under load.
const SESSIONS_PER_PEER: usize = 41;
/// Signed prekeys kept after rotation, so sessions set up from an older bundle still work.
const SIGNED_PREKEYS_KEPT: usize = 3;

struct SessionRecord {
    session: Session,
    /// The initiator's ephemeral key (`EK_A`): identifies the session on both sides.
    base_key: [u8; 32],
    /// Initiator only: the X3DH initial message, sent with every message until the peer
    /// answers (so whichever first message arrives first sets the session up).
    pending_initial: Option<Vec<u8>>,
}

struct State {
    signed: Vec<SignedPreKey>,
    one_time: Vec<OneTimePreKey>,
    next_one_time_id: u32,
    next_signed_id: u32,
    sessions: HashMap<DeviceAddr, Vec<SessionRecord>>,
    /// Devices of other users as last learned (bundles, `409 mismatched_devices`).
    devices_of: HashMap<Uuid, Vec<u32>>,
    rng: ChaCha20Rng,
}

/// One virtual device.
pub struct Device {
    pub addr: DeviceAddr,
    /// How the device authenticates to the server.
    pub(crate) credential: Credential,
    identity: IdentityKeyPair,
    state: Mutex<State>,
    /// Held by the offline flow while it has this device disconnected.
    pub(crate) offline: AtomicBool,
    /// The live WebSocket, if connected.
    pub connection: tokio::sync::Mutex<Option<crate::client::receive::Connection>>,
    /// Held while the device manages its keys (replenish, rotate): a real device does one
    /// such upload at a time, so two flows picking the same device take turns.
    pub(crate) key_upload: tokio::sync::Mutex<()>,
    /// Fault injection: envelopes still to be left unacknowledged, each breaking the
    /// connection instead (as a failed ack write does).
    ack_faults: AtomicU32,
}

/// One envelope ready to send.
pub(crate) struct Sealed {
    pub(crate) kind: EnvelopeType,
    pub(crate) header: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
}

impl Device {
    /// A device the server has registered.
    pub(crate) fn new(
        addr: DeviceAddr,
        credential: Credential,
        keys: DeviceKeys,
        seed: u64,
    ) -> Device {
        let next_one_time_id = keys.one_time.iter().map(|k| k.id).max().unwrap_or(0) + 1;
        Device {
            addr,
            credential,
            state: Mutex::new(State {
                next_signed_id: keys.signed.id + 1,
                signed: vec![keys.signed],
                one_time: keys.one_time,
                next_one_time_id,
                sessions: HashMap::new(),
                devices_of: HashMap::new(),
                rng: ChaCha20Rng::seed_from_u64(seed),
            }),
            identity: keys.identity,
            offline: AtomicBool::new(false),
            connection: tokio::sync::Mutex::new(None),
            key_upload: tokio::sync::Mutex::new(()),
            ack_faults: AtomicU32::new(0),
        }
    }

    /// Fault injection (tests, conformance): the next `n` envelopes this device receives are
    /// not acknowledged; each breaks its connection instead, as a failed ack write does.
    pub fn inject_ack_failures(&self, n: u32) {
        self.ack_faults.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether the envelope just received must fail its ack (uses up one injected fault).
    pub(crate) fn take_ack_fault(&self) -> bool {
        self.ack_faults
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes new one-time prekeys (ids assigned here) into the device's store *before* they
    /// are uploaded, so an initiator that is quick to claim one finds it here.
    pub(crate) fn add_one_time(&self, fresh: Vec<OneTimePreKey>) -> Vec<OneTimePrekeyBody> {
        let mut st = self.state();
        let mut bodies = Vec::with_capacity(fresh.len());
        for mut k in fresh {
            k.id = st.next_one_time_id;
            st.next_one_time_id += 1;
            bodies.push(OneTimePrekeyBody::from(&k));
            st.one_time.push(k);
        }
        bodies
    }

    /// Makes a new signed prekey (kept beside the last few) and returns its body to upload.
    pub(crate) fn rotate_signed(&self) -> SignedPrekeyBody {
        let mut st = self.state();
        let id = st.next_signed_id;
        st.next_signed_id += 1;
        let spk = SignedPreKey::generate(&self.identity, id, &mut st.rng);
        let body = SignedPrekeyBody::from(&spk);
        st.signed.push(spk);
        if st.signed.len() > SIGNED_PREKEYS_KEPT {
            st.signed.remove(0);
        }
        body
    }

    /// Sets up a new session with `peer` from its bundle (verifies the signature first).
    pub(crate) fn establish(
        &self,
        peer: DeviceAddr,
        bundle: &PreKeyBundle,
    ) -> Result<(), CryptoError> {
        let mut st = self.state();
        let (initial, out) = x3dh::initiate(&self.identity, bundle, &mut st.rng)?;
        let session = Session::initiator(&out, &bundle.signed_prekey, &mut st.rng)?;
        let record = SessionRecord {
            session,
            base_key: initial.ephemeral_key,
            pending_initial: Some(initial.to_bytes()),
        };
        push_record(st.sessions.entry(peer).or_default(), record);
        Ok(())
    }

    /// Whether this device can send to `peer` now.
    pub(crate) fn can_send_to(&self, peer: DeviceAddr) -> bool {
        self.state()
            .sessions
            .get(&peer)
            .is_some_and(|rs| rs.iter().any(|r| r.session.can_send()))
    }

    /// Devices of `user` as last learned.
    pub(crate) fn known_devices(&self, user: Uuid) -> Option<Vec<u32>> {
        self.state().devices_of.get(&user).cloned()
    }

    pub(crate) fn set_known_devices(&self, user: Uuid, mut devices: Vec<u32>) {
        devices.sort_unstable();
        devices.dedup();
        self.state().devices_of.insert(user, devices);
    }

    /// Encrypts `plaintext` for `peer` with the newest session that can send.
    pub(crate) fn seal(&self, peer: DeviceAddr, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let mut guard = self.state();
        let st = &mut *guard;
        let record = st
            .sessions
            .get_mut(&peer)
            .and_then(|rs| rs.iter_mut().rev().find(|r| r.session.can_send()))
            .ok_or(CryptoError::NoSendingChain)?;
        let (header, ciphertext) = record.session.encrypt(plaintext, &mut st.rng)?;
        Ok(match &record.pending_initial {
            Some(initial) => Sealed {
                kind: EnvelopeType::Prekey,
                header: wire::prekey_header(initial, &header),
                ciphertext,
            },
            None => Sealed {
                kind: EnvelopeType::Ratchet,
                header: wire::ratchet_header(&header),
                ciphertext,
            },
        })
    }

    /// Opens an envelope from `sender`: a prekey envelope sets up (or finds) the session it
    /// starts; a ratchet envelope is tried on this peer's sessions, newest first. On failure
    /// nothing changes (no one-time prekey is used up, no session advances).
    pub(crate) fn open(
        &self,
        sender: DeviceAddr,
        kind: EnvelopeType,
        header: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut guard = self.state();
        let st = &mut *guard;
        match kind {
            EnvelopeType::Prekey => {
                let (initial, header) = wire::parse_prekey_header(header)?;
                let records = st.sessions.entry(sender).or_default();
                if let Some(r) = records
                    .iter_mut()
                    .find(|r| r.base_key == initial.ephemeral_key)
                {
                    let plain = r.session.decrypt(&header, ciphertext, &mut st.rng)?;
                    r.pending_initial = None;
                    return Ok(plain);
                }
                let signed = st
                    .signed
                    .iter()
                    .find(|s| s.id == initial.signed_prekey_id)
                    .ok_or(CryptoError::UnknownSignedPreKey(initial.signed_prekey_id))?;
                let mut one_time = st.one_time.clone();
                let out = x3dh::respond(&self.identity, signed, &mut one_time, &initial)?;
                let mut session = Session::responder(&out, signed);
                let plain = session.decrypt(&header, ciphertext, &mut st.rng)?;
                st.one_time = one_time;
                push_record(
                    st.sessions.entry(sender).or_default(),
                    SessionRecord {
                        session,
                        base_key: initial.ephemeral_key,
                        pending_initial: None,
                    },
                );
                Ok(plain)
            }
            EnvelopeType::Ratchet => {
                let header = wire::parse_ratchet_header(header)?;
                let records = st
                    .sessions
                    .get_mut(&sender)
                    .ok_or(CryptoError::NoSendingChain)?;
                let mut last = CryptoError::BadMac;
                for r in records.iter_mut().rev() {
                    match r.session.decrypt(&header, ciphertext, &mut st.rng) {
                        Ok(plain) => {
                            r.pending_initial = None;
                            return Ok(plain);
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    #[cfg(test)]
    /// One-time prekeys this device still holds privately.
    pub(crate) fn one_time_held(&self) -> usize {
        self.state().one_time.len()
    }
}

fn push_record(records: &mut Vec<SessionRecord>, record: SessionRecord) {
    records.push(record);
    if records.len() > SESSIONS_PER_PEER {
        records.remove(0);
    }
}

/// A bundle from the API as the crypto layer takes it.
pub(crate) fn to_prekey_bundle(b: &crate::client::api::Bundle) -> PreKeyBundle {
    PreKeyBundle {
        identity_key: b.identity_key,
        signed_prekey_id: b.signed_prekey.key_id,
        signed_prekey: b.signed_prekey.public_key,
        signed_prekey_signature: b.signed_prekey.signature,
        one_time_prekey: b.one_time_prekey.as_ref().map(|k| (k.key_id, k.public_key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::keys::KeyFactory;

    fn device(n: u32, keys: DeviceKeys) -> Device {
        Device::new(
            DeviceAddr {
                user: Uuid::from_u128(n as u128),
                device: 1,
            },
            Credential::Bearer(String::new()),
            keys,
            n as u64,
        )
    }

    fn bundle_of(keys: &DeviceKeys, with_otpk: bool) -> PreKeyBundle {
        PreKeyBundle {
            identity_key: keys.identity.public(),
            signed_prekey_id: keys.signed.id,
            signed_prekey: keys.signed.public(),
            signed_prekey_signature: keys.signed.signature,
            one_time_prekey: with_otpk.then(|| (keys.one_time[0].id, keys.one_time[0].public())),
        }
    }

    /// Devices 1 (A) and 2 (B), B holding `one_time` one-time prekeys, A with a session to
    /// B set up from B's bundle (which carries one of them when `with_otpk`).
    fn established_pair(one_time: usize, with_otpk: bool) -> (Device, Device, PreKeyBundle) {
        let factory = KeyFactory::new(2, one_time);
        let (ka, kb) = (factory.take(), factory.take());
        let bundle = bundle_of(&kb, with_otpk);
        let (a, b) = (device(1, ka), device(2, kb));
        a.establish(b.addr, &bundle).unwrap();
        (a, b, bundle)
    }

    #[test]
    fn two_devices_converse_both_ways_and_replays_fail() {
        let (a, b, _) = established_pair(2, true);
        let m1 = a.seal(b.addr, b"hello").unwrap();
        let m2 = a.seal(b.addr, b"again").unwrap();
        assert_eq!(m1.kind, EnvelopeType::Prekey);
        assert_eq!(
            m2.kind,
            EnvelopeType::Prekey,
            "prekey until the peer answers"
        );
        // Out of order: the second first message sets the session up, the first joins it.
        assert_eq!(
            b.open(a.addr, m2.kind, &m2.header, &m2.ciphertext).unwrap(),
            b"again"
        );
        assert_eq!(b.one_time_held(), 2 - 1);
        assert_eq!(
            b.open(a.addr, m1.kind, &m1.header, &m1.ciphertext).unwrap(),
            b"hello"
        );
        assert!(
            b.open(a.addr, m1.kind, &m1.header, &m1.ciphertext).is_err(),
            "a replay must fail"
        );
        let r = b.seal(a.addr, b"reply").unwrap();
        assert_eq!(r.kind, EnvelopeType::Ratchet);
        assert_eq!(
            a.open(b.addr, r.kind, &r.header, &r.ciphertext).unwrap(),
            b"reply"
        );
        assert_eq!(
            a.seal(b.addr, b"x").unwrap().kind,
            EnvelopeType::Ratchet,
            "answered: plain ratchet now"
        );
    }

    #[test]
    fn a_delayed_message_of_an_older_session_opens_after_ten_newer_ones() {
        let (a, b, bundle) = established_pair(1, false);
        let first = a.seal(b.addr, b"first").unwrap();
        b.open(a.addr, first.kind, &first.header, &first.ciphertext)
            .unwrap();
        // B answers on that first session; the answer is held up while A starts ten more.
        let late = b.seal(a.addr, b"late reply").unwrap();
        for i in 0..10u8 {
            a.establish(b.addr, &bundle).unwrap();
            let m = a.seal(b.addr, &[i]).unwrap();
            assert_eq!(
                b.open(a.addr, m.kind, &m.header, &m.ciphertext).unwrap(),
                [i]
            );
        }
        assert_eq!(
            a.open(b.addr, late.kind, &late.header, &late.ciphertext)
                .unwrap(),
            b"late reply",
            "the first session is still kept (libsignal keeps 40 archived)"
        );
    }

    #[test]
    fn a_bad_signature_is_refused() {
        let factory = KeyFactory::new(2, 1);
        let (ka, kb) = (factory.take(), factory.take());
        let mut bundle = bundle_of(&kb, false);
        bundle.signed_prekey_signature[0] ^= 1;
        let a = device(1, ka);
        assert_eq!(
            a.establish(
                DeviceAddr {
                    user: Uuid::from_u128(2),
                    device: 1
                },
                &bundle
            ),
            Err(CryptoError::BadSignature)
        );
    }
}
