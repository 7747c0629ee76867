//! The Double Ratchet, as Signal's specification (§3.3 initialization, §3.4 encrypting,
//! §3.5 decrypting with skipped messages), with the §5.2 recommended algorithms
//! (`kdf.rs`, [`crate::crypto::cipher`]).
//!
//! Failures change nothing: [`Session::decrypt`] works on a staged copy of the ratchet state
//! and collects newly skipped keys aside; only a message that authenticates commits them.

mod kdf;
mod skipped;

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::bytes::{hex_option_array, hex_vec, Secret32};
use super::keypair::KeyPair;
use super::params::{HEADER_LEN, MAX_SKIP, SESSION_FORMAT_VERSION};
use super::prekeys::SignedPreKey;
use super::x3dh::X3dhOutput;
use super::{cipher, CryptoError};

pub(crate) use kdf::{kdf_ck, kdf_rk};
use skipped::{SkippedKey, SkippedKeys};

/// `HEADER(dh_pair, pn, n)`: the sender's current ratchet public key, the length of its
/// previous sending chain, and the message number in the current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub dh: [u8; 32],
    pub pn: u32,
    pub n: u32,
}

impl Header {
    /// `dh (32) ‖ pn (u32 BE) ‖ n (u32 BE)`.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..32].copy_from_slice(&self.dh);
        out[32..36].copy_from_slice(&self.pn.to_be_bytes());
        out[36..].copy_from_slice(&self.n.to_be_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != HEADER_LEN {
            return Err(CryptoError::BadLength {
                what: "ratchet header",
                expected: HEADER_LEN.to_string(),
                got: bytes.len(),
            });
        }
        Ok(Self {
            dh: bytes[..32].try_into().expect("32 bytes"),
            pn: u32::from_be_bytes(bytes[32..36].try_into().expect("4 bytes")),
            n: u32::from_be_bytes(bytes[36..].try_into().expect("4 bytes")),
        })
    }
}

/// The spec's state variables (§3.2) except `MKSKIPPED`: small, so a decryption can stage a
/// copy and commit it only on success.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RatchetState {
    /// `DHs`: our current ratchet key pair.
    dhs: KeyPair,
    /// `DHr`: their current ratchet public key.
    #[serde(with = "hex_option_array")]
    dhr: Option<[u8; 32]>,
    /// `RK`: root key.
    rk: Secret32,
    /// `CKs`, `CKr`: sending and receiving chain keys.
    cks: Option<Secret32>,
    ckr: Option<Secret32>,
    /// `Ns`, `Nr`: message numbers; `PN`: length of the previous sending chain.
    ns: u32,
    nr: u32,
    pn: u32,
}

/// One Double Ratchet session with one remote device.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    version: u32,
    state: RatchetState,
    /// `MKSKIPPED`, capped per session.
    skipped: SkippedKeys,
    /// X3DH's `AD`, prepended to each header as the message's associated data.
    #[serde(with = "hex_vec")]
    ad: Vec<u8>,
}

impl Session {
    /// `RatchetInitAlice(SK, bob_dh_public_key)`: Bob's signed prekey is his first ratchet key.
    /// Fails only if that key is of small order (an all-zero DH output).
    pub fn initiator(
        x3dh: &X3dhOutput,
        their_signed_prekey: &[u8; 32],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Self, CryptoError> {
        Self::initiator_with_key(x3dh, their_signed_prekey, KeyPair::generate(rng))
    }

    /// [`Session::initiator`] with a given first ratchet key pair (test vectors).
    pub(crate) fn initiator_with_key(
        x3dh: &X3dhOutput,
        their_signed_prekey: &[u8; 32],
        dhs: KeyPair,
    ) -> Result<Self, CryptoError> {
        let dh_out = dhs.dh(their_signed_prekey, "DH(DHs, DHr) at ratchet init")?;
        let (rk, cks) = kdf_rk(&Secret32::new(x3dh.shared_secret), &dh_out);
        Ok(Self {
            version: SESSION_FORMAT_VERSION,
            state: RatchetState {
                dhs,
                dhr: Some(*their_signed_prekey),
                rk,
                cks: Some(cks),
                ckr: None,
                ns: 0,
                nr: 0,
                pn: 0,
            },
            skipped: SkippedKeys::default(),
            ad: x3dh.associated_data.clone(),
        })
    }

    /// `RatchetInitBob(SK, bob_dh_key_pair)`: his signed prekey pair is his first ratchet pair.
    pub fn responder(x3dh: &X3dhOutput, our_signed_prekey: &SignedPreKey) -> Self {
        Self {
            version: SESSION_FORMAT_VERSION,
            state: RatchetState {
                dhs: our_signed_prekey.key_pair.clone(),
                dhr: None,
                rk: Secret32::new(x3dh.shared_secret),
                cks: None,
                ckr: None,
                ns: 0,
                nr: 0,
                pn: 0,
            },
            skipped: SkippedKeys::default(),
            ad: x3dh.associated_data.clone(),
        }
    }

    /// `RatchetEncrypt`. `Err(NoSendingChain)` (state unchanged) for a responder that has not
    /// received yet. `_rng` is unused — the §5.2 cipher derives its IV — and stays so callers
    /// need not change if a cipher with random nonces replaces it.
    pub fn encrypt(
        &mut self,
        plaintext: &[u8],
        _rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(Header, Vec<u8>), CryptoError> {
        self.encrypt_traced(plaintext).map(|(h, c, _)| (h, c))
    }

    /// [`Session::encrypt`], also returning the message key (test vectors).
    pub(crate) fn encrypt_traced(
        &mut self,
        plaintext: &[u8],
    ) -> Result<(Header, Vec<u8>, Secret32), CryptoError> {
        let cks = self.state.cks.as_ref().ok_or(CryptoError::NoSendingChain)?;
        let (next_ck, mk) = kdf_ck(cks);
        let header = Header {
            dh: self.state.dhs.public(),
            pn: self.state.pn,
            n: self.state.ns,
        };
        let ciphertext =
            cipher::encrypt(mk.as_bytes(), plaintext, &self.associated_data_for(&header));
        self.state.cks = Some(next_ck);
        self.state.ns += 1;
        Ok((header, ciphertext, mk))
    }

    /// `RatchetDecrypt`. On any error the session is exactly as before the call.
    pub fn decrypt(
        &mut self,
        header: &Header,
        ciphertext: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, CryptoError> {
        let ad = self.associated_data_for(header);

        // TrySkippedMessageKeys: a key is deleted only once its message authenticated.
        if let Some(i) = self.skipped.position(&header.dh, header.n) {
            let plaintext = cipher::decrypt(self.skipped.get(i).mk.as_bytes(), ciphertext, &ad)?;
            self.skipped.remove(i);
            return Ok(plaintext);
        }

        let mut next = self.state.clone();
        let mut newly_skipped = Vec::new();
        if next.dhr != Some(header.dh) {
            skip_message_keys(&mut next, header.pn, &mut newly_skipped)?;
            dh_ratchet(&mut next, header, rng)?;
        } else if header.n < next.nr {
            // Same chain, already past this number, and no stored key: a replay.
            return Err(CryptoError::DuplicateMessage { n: header.n });
        }
        skip_message_keys(&mut next, header.n, &mut newly_skipped)?;
        let ckr = next
            .ckr
            .as_ref()
            .expect("set by the DH ratchet step or earlier");
        let (next_ck, mk) = kdf_ck(ckr);
        let plaintext = cipher::decrypt(mk.as_bytes(), ciphertext, &ad)?;
        next.ckr = Some(next_ck);
        next.nr += 1;

        self.state = next;
        self.skipped.extend(newly_skipped);
        Ok(plaintext)
    }

    /// Serialized session (JSON, keys hex-encoded), for a device that restarts.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a session always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let session: Self =
            serde_json::from_slice(bytes).map_err(|e| CryptoError::BadSession(e.to_string()))?;
        if session.version != SESSION_FORMAT_VERSION {
            return Err(CryptoError::BadSession(format!(
                "format version {} (this build reads {SESSION_FORMAT_VERSION})",
                session.version
            )));
        }
        Ok(session)
    }

    /// Whether this side can send (the responder cannot until it has received).
    pub fn can_send(&self) -> bool {
        self.state.cks.is_some()
    }

    /// How many skipped message keys are stored (never above the per-session cap).
    pub fn skipped_key_count(&self) -> usize {
        self.skipped.len()
    }

    /// X3DH's `AD` this session binds every message to.
    pub fn associated_data(&self) -> &[u8] {
        &self.ad
    }

    /// The current ratchet private key, for test vectors only.
    pub(crate) fn ratchet_key_pair(&self) -> &KeyPair {
        &self.state.dhs
    }

    /// `CONCAT(AD, header)`: `AD ‖ header bytes` (the header has a fixed length).
    fn associated_data_for(&self, header: &Header) -> Vec<u8> {
        let mut ad = Vec::with_capacity(self.ad.len() + HEADER_LEN);
        ad.extend_from_slice(&self.ad);
        ad.extend_from_slice(&header.to_bytes());
        ad
    }
}

/// `SkipMessageKeys(state, until)`, staging the keys in `out` instead of `MKSKIPPED`.
fn skip_message_keys(
    state: &mut RatchetState,
    until: u32,
    out: &mut Vec<SkippedKey>,
) -> Result<(), CryptoError> {
    if u64::from(state.nr) + u64::from(MAX_SKIP) < u64::from(until) {
        return Err(CryptoError::TooManySkipped {
            n: until,
            skip: u64::from(until - state.nr),
            max: MAX_SKIP,
        });
    }
    if let (Some(ckr), Some(dhr)) = (state.ckr.as_mut(), state.dhr) {
        while state.nr < until {
            let (next_ck, mk) = kdf_ck(ckr);
            *ckr = next_ck;
            out.push(SkippedKey {
                dh: dhr,
                n: state.nr,
                mk,
            });
            state.nr += 1;
        }
    }
    Ok(())
}

/// `DHRatchet(state, header)`.
fn dh_ratchet(
    state: &mut RatchetState,
    header: &Header,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(), CryptoError> {
    state.pn = state.ns;
    state.ns = 0;
    state.nr = 0;
    state.dhr = Some(header.dh);
    let (rk, ckr) = kdf_rk(
        &state.rk,
        &state.dhs.dh(&header.dh, "DH(DHs, DHr) receiving")?,
    );
    state.rk = rk;
    state.ckr = Some(ckr);
    state.dhs = KeyPair::generate(rng);
    let (rk, cks) = kdf_rk(
        &state.rk,
        &state.dhs.dh(&header.dh, "DH(DHs, DHr) sending")?,
    );
    state.rk = rk;
    state.cks = Some(cks);
    Ok(())
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("ratchet_public", &hex::encode(self.state.dhs.public()))
            .field("their_ratchet_public", &self.state.dhr.map(hex::encode))
            .field("ns", &self.state.ns)
            .field("nr", &self.state.nr)
            .field("pn", &self.state.pn)
            .field("skipped_keys", &self.skipped.len())
            .finish_non_exhaustive()
    }
}
