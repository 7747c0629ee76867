//! X3DH key agreement, as Signal's X3DH specification (§3.3 sending, §3.4 receiving).
//!
//! ```text
//! DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)   DH4 = DH(EK_A, OPK_B)
//! SK  = HKDF-SHA256(salt = 0^32, ikm = F || DH1 || DH2 || DH3 [|| DH4], info = X3DH_INFO, L = 32)
//! AD  = Encode(IK_A) || Encode(IK_B)
//! ```
//! DH4 only when the bundle carried a one-time prekey. `IK` in the DHs and in `Encode` is the
//! X25519 form of the Ed25519 identity key ([`super::identity`]).

use hkdf::Hkdf;
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::bytes::Secret32;
use super::identity::{self, IdentityKeyPair};
use super::keypair::KeyPair;
use super::params::{
    ENCODED_PUBLIC_KEY_LEN, X3DH_INFO, X3DH_INITIAL_MESSAGE_LEN, X3DH_INITIAL_MESSAGE_LEN_WITH_OPK,
    X3DH_KDF_F, X3DH_KDF_SALT, X3DH_SK_LEN,
};
use super::prekeys::{encode_public, verify_signed_prekey, OneTimePreKey, SignedPreKey};
use super::CryptoError;

/// What a bundle fetch returns for one device (already base64-decoded).
#[derive(Clone, Debug)]
pub struct PreKeyBundle {
    /// Ed25519 identity public key.
    pub identity_key: [u8; 32],
    pub signed_prekey_id: u32,
    pub signed_prekey: [u8; 32],
    pub signed_prekey_signature: [u8; 64],
    pub one_time_prekey: Option<(u32, [u8; 32])>,
}

/// X3DH §3.3 initial message: `IK_A`, `EK_A` and the ids of the prekeys used. (The first
/// ratchet ciphertext travels beside it; see [`super::ratchet`].)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialMessage {
    /// Alice's Ed25519 identity public key.
    pub(crate) identity_key: [u8; 32],
    /// Alice's ephemeral X25519 public key `EK_A`.
    pub(crate) ephemeral_key: [u8; 32],
    pub(crate) signed_prekey_id: u32,
    pub(crate) one_time_prekey_id: Option<u32>,
}

impl InitialMessage {
    /// `IK_A ‖ EK_A ‖ spk_id (u32 BE) ‖ opk_id (u32 BE)?`: 68 or 72 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(X3DH_INITIAL_MESSAGE_LEN_WITH_OPK);
        out.extend_from_slice(&self.identity_key);
        out.extend_from_slice(&self.ephemeral_key);
        out.extend_from_slice(&self.signed_prekey_id.to_be_bytes());
        if let Some(id) = self.one_time_prekey_id {
            out.extend_from_slice(&id.to_be_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != X3DH_INITIAL_MESSAGE_LEN
            && bytes.len() != X3DH_INITIAL_MESSAGE_LEN_WITH_OPK
        {
            return Err(CryptoError::BadLength {
                what: "X3DH initial message",
                expected: format!(
                    "{X3DH_INITIAL_MESSAGE_LEN} or {X3DH_INITIAL_MESSAGE_LEN_WITH_OPK}"
                ),
                got: bytes.len(),
            });
        }
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Ok(Self {
            identity_key: bytes[0..32].try_into().expect("32 bytes"),
            ephemeral_key: bytes[32..64].try_into().expect("32 bytes"),
            signed_prekey_id: u32_at(64),
            one_time_prekey_id: (bytes.len() == X3DH_INITIAL_MESSAGE_LEN_WITH_OPK)
                .then(|| u32_at(68)),
        })
    }
}

/// The agreed secret `SK` and the associated data `AD`. `shared_secret` is wiped on drop.
pub struct X3dhOutput {
    pub(crate) shared_secret: [u8; 32],
    pub(crate) associated_data: Vec<u8>,
}

impl Drop for X3dhOutput {
    fn drop(&mut self) {
        self.shared_secret.zeroize();
    }
}

impl std::fmt::Debug for X3dhOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X3dhOutput")
            .field("associated_data", &hex::encode(&self.associated_data))
            .finish_non_exhaustive()
    }
}

/// Alice (X3DH §3.3). Verifies the bundle's signed-prekey signature first
/// (`Err(CryptoError::BadSignature)` and nothing else happens if it fails).
pub fn initiate(
    ours: &IdentityKeyPair,
    bundle: &PreKeyBundle,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(InitialMessage, X3dhOutput), CryptoError> {
    verify_signed_prekey(
        &bundle.identity_key,
        &bundle.signed_prekey,
        &bundle.signed_prekey_signature,
    )?;
    let ephemeral = KeyPair::generate(rng);
    let (msg, out, _) = initiate_with_ephemeral(ours, bundle, &ephemeral)?;
    Ok((msg, out))
}

/// The DH outputs of one agreement, for test vectors.
pub(crate) struct Transcript {
    /// DH1, DH2, DH3 and, with a one-time prekey, DH4.
    pub(crate) dh: Vec<Secret32>,
}

/// [`initiate`] after signature verification, with a given `EK_A`.
pub(crate) fn initiate_with_ephemeral(
    ours: &IdentityKeyPair,
    bundle: &PreKeyBundle,
    ephemeral: &KeyPair,
) -> Result<(InitialMessage, X3dhOutput, Transcript), CryptoError> {
    let their_ik = identity::x25519_public(&bundle.identity_key)?;
    let mut dh = vec![
        ours.dh_key_pair()
            .dh(&bundle.signed_prekey, "DH1 = DH(IK_A, SPK_B)")?,
        ephemeral.dh(&their_ik, "DH2 = DH(EK_A, IK_B)")?,
        ephemeral.dh(&bundle.signed_prekey, "DH3 = DH(EK_A, SPK_B)")?,
    ];
    if let Some((_, opk)) = &bundle.one_time_prekey {
        dh.push(ephemeral.dh(opk, "DH4 = DH(EK_A, OPK_B)")?);
    }
    let out = X3dhOutput {
        shared_secret: kdf(&dh),
        associated_data: associated_data(&ours.dh_key_pair().public(), &their_ik),
    };
    let msg = InitialMessage {
        identity_key: ours.public(),
        ephemeral_key: ephemeral.public(),
        signed_prekey_id: bundle.signed_prekey_id,
        one_time_prekey_id: bundle.one_time_prekey.map(|(id, _)| id),
    };
    Ok((msg, out, Transcript { dh }))
}

/// Bob (X3DH §3.4). Looks up the one-time prekey by id and, only once the agreement
/// succeeded, removes it from `one_time` (the spec's "deletes the one-time prekey"). On any
/// error `one_time` is untouched. A caller that wants to keep the prekey when the first
/// ratchet message then fails to decrypt clones `one_time` before the call.
pub fn respond(
    ours: &IdentityKeyPair,
    signed: &SignedPreKey,
    one_time: &mut Vec<OneTimePreKey>,
    msg: &InitialMessage,
) -> Result<X3dhOutput, CryptoError> {
    if msg.signed_prekey_id != signed.id {
        return Err(CryptoError::UnknownSignedPreKey(msg.signed_prekey_id));
    }
    let opk_index = match msg.one_time_prekey_id {
        Some(id) => Some(
            one_time
                .iter()
                .position(|k| k.id == id)
                .ok_or(CryptoError::UnknownOneTimePreKey(id))?,
        ),
        None => None,
    };
    let their_ik = identity::x25519_public(&msg.identity_key)?;
    let mut dh = vec![
        signed.key_pair.dh(&their_ik, "DH1 = DH(IK_A, SPK_B)")?,
        ours.dh_key_pair()
            .dh(&msg.ephemeral_key, "DH2 = DH(EK_A, IK_B)")?,
        signed
            .key_pair
            .dh(&msg.ephemeral_key, "DH3 = DH(EK_A, SPK_B)")?,
    ];
    if let Some(i) = opk_index {
        dh.push(
            one_time[i]
                .key_pair
                .dh(&msg.ephemeral_key, "DH4 = DH(EK_A, OPK_B)")?,
        );
    }
    let out = X3dhOutput {
        shared_secret: kdf(&dh),
        associated_data: associated_data(&their_ik, &ours.dh_key_pair().public()),
    };
    if let Some(i) = opk_index {
        one_time.remove(i);
    }
    Ok(out)
}

/// X3DH §2.2 `KDF(KM)`: HKDF-SHA256 over `F || KM`, zero salt, `X3DH_INFO`, 32 bytes.
fn kdf(dh: &[Secret32]) -> [u8; X3DH_SK_LEN] {
    let mut ikm = Zeroizing::new(Vec::with_capacity(32 * (dh.len() + 1)));
    ikm.extend_from_slice(&X3DH_KDF_F);
    for d in dh {
        ikm.extend_from_slice(d.as_bytes());
    }
    let mut sk = [0u8; X3DH_SK_LEN];
    Hkdf::<Sha256>::new(Some(&X3DH_KDF_SALT), &ikm)
        .expand(X3DH_INFO, &mut sk)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    sk
}

/// X3DH §3.3 `AD = Encode(IK_A) || Encode(IK_B)` (X25519 forms of the identity keys).
fn associated_data(ik_a_x25519: &[u8; 32], ik_b_x25519: &[u8; 32]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(2 * ENCODED_PUBLIC_KEY_LEN);
    ad.extend_from_slice(&encode_public(ik_a_x25519));
    ad.extend_from_slice(&encode_public(ik_b_x25519));
    ad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::prekeys::generate_one_time_batch;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    struct Bob {
        identity: IdentityKeyPair,
        signed: SignedPreKey,
        one_time: Vec<OneTimePreKey>,
    }

    fn bob(rng: &mut ChaCha20Rng) -> Bob {
        let identity = IdentityKeyPair::generate(rng);
        let signed = SignedPreKey::generate(&identity, 3, rng);
        let one_time = generate_one_time_batch(10, 3, rng);
        Bob {
            identity,
            signed,
            one_time,
        }
    }

    fn bundle(b: &Bob, with_opk: bool) -> PreKeyBundle {
        PreKeyBundle {
            identity_key: b.identity.public(),
            signed_prekey_id: b.signed.id,
            signed_prekey: b.signed.public(),
            signed_prekey_signature: b.signed.signature,
            one_time_prekey: with_opk.then(|| (b.one_time[1].id, b.one_time[1].public())),
        }
    }

    #[test]
    fn with_one_time_prekey_both_sides_agree_and_bob_deletes_it() {
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        let alice = IdentityKeyPair::generate(&mut rng);
        let mut b = bob(&mut rng);
        let (msg, a_out) = initiate(&alice, &bundle(&b, true), &mut rng).unwrap();
        assert_eq!(msg.one_time_prekey_id, Some(11));
        let wire = InitialMessage::from_bytes(&msg.to_bytes()).unwrap();
        assert_eq!(wire, msg);
        assert_eq!(msg.to_bytes().len(), X3DH_INITIAL_MESSAGE_LEN_WITH_OPK);
        let b_out = respond(&b.identity, &b.signed, &mut b.one_time, &wire).unwrap();
        assert_eq!(a_out.shared_secret, b_out.shared_secret);
        assert_eq!(a_out.associated_data, b_out.associated_data);
        assert_eq!(a_out.associated_data.len(), 66);
        assert_eq!(
            b.one_time.iter().map(|k| k.id).collect::<Vec<_>>(),
            vec![10, 12]
        );
        // The prekey is gone: the same initial message cannot be answered twice.
        let before = b.one_time.len();
        assert_eq!(
            respond(&b.identity, &b.signed, &mut b.one_time, &wire).unwrap_err(),
            CryptoError::UnknownOneTimePreKey(11)
        );
        assert_eq!(b.one_time.len(), before);
    }

    #[test]
    fn without_one_time_prekey_both_sides_agree_on_a_different_secret() {
        let mut rng = ChaCha20Rng::seed_from_u64(32);
        let alice = IdentityKeyPair::generate(&mut rng);
        let mut b = bob(&mut rng);
        let (msg, a_out) = initiate(&alice, &bundle(&b, false), &mut rng).unwrap();
        assert_eq!(msg.one_time_prekey_id, None);
        assert_eq!(msg.to_bytes().len(), X3DH_INITIAL_MESSAGE_LEN);
        let b_out = respond(&b.identity, &b.signed, &mut b.one_time, &msg).unwrap();
        assert_eq!(a_out.shared_secret, b_out.shared_secret);
        assert_eq!(b.one_time.len(), 3, "no one-time prekey used, none deleted");
        // DH4 matters: claiming a one-time prekey that was not used gives another secret.
        let mut with = msg.clone();
        with.one_time_prekey_id = Some(10);
        let other = respond(&b.identity, &b.signed, &mut b.one_time.clone(), &with).unwrap();
        assert_ne!(other.shared_secret, a_out.shared_secret);
    }

    #[test]
    fn bad_signature_aborts_before_anything() {
        let mut rng = ChaCha20Rng::seed_from_u64(33);
        let alice = IdentityKeyPair::generate(&mut rng);
        let b = bob(&mut rng);
        let mut bad = bundle(&b, true);
        bad.signed_prekey_signature[17] ^= 0x40;
        assert_eq!(
            initiate(&alice, &bad, &mut rng).unwrap_err(),
            CryptoError::BadSignature
        );
        let mut swapped = bundle(&b, true);
        swapped.signed_prekey = b.one_time[0].public();
        assert_eq!(
            initiate(&alice, &swapped, &mut rng).unwrap_err(),
            CryptoError::BadSignature
        );
    }

    #[test]
    fn unknown_prekeys_and_bad_lengths_are_refused_without_change() {
        let mut rng = ChaCha20Rng::seed_from_u64(34);
        let alice = IdentityKeyPair::generate(&mut rng);
        let mut b = bob(&mut rng);
        let (mut msg, _) = initiate(&alice, &bundle(&b, true), &mut rng).unwrap();
        msg.signed_prekey_id = 99;
        assert_eq!(
            respond(&b.identity, &b.signed, &mut b.one_time, &msg).unwrap_err(),
            CryptoError::UnknownSignedPreKey(99)
        );
        msg.signed_prekey_id = 3;
        msg.one_time_prekey_id = Some(500);
        assert_eq!(
            respond(&b.identity, &b.signed, &mut b.one_time, &msg).unwrap_err(),
            CryptoError::UnknownOneTimePreKey(500)
        );
        assert_eq!(b.one_time.len(), 3);
        for len in [0, 67, 69, 71, 73] {
            assert!(
                matches!(InitialMessage::from_bytes(&vec![0; len]), Err(CryptoError::BadLength { got, .. }) if got == len)
            );
        }
        // A small-order ephemeral key is refused (all-zero DH output) and deletes nothing.
        msg.one_time_prekey_id = Some(10);
        msg.ephemeral_key = [0u8; 32];
        assert!(matches!(
            respond(&b.identity, &b.signed, &mut b.one_time, &msg),
            Err(CryptoError::NonContributory { .. })
        ));
        assert_eq!(b.one_time.len(), 3);
    }
}
