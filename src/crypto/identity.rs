//! Identity keys that both sign and do Diffie-Hellman.
//!
//! **Choice (documented as issue 4 asks):** the identity key is an **Ed25519** key pair
//! (`ed25519-dalek`), converted to X25519 for X3DH's DH1/DH2 the way OMEMO (XEP-0384 v0.8)
//! does, instead of XEdDSA on an X25519 key:
//!
//! - private: the X25519 private key is the first 32 bytes of `SHA-512(ed25519_seed)` — the
//!   very scalar Ed25519 signs with, before clamping (`SigningKey::to_scalar_bytes`); X25519
//!   clamps it itself;
//! - public: the birational map from the Edwards point to its Montgomery u-coordinate,
//!   `u = (1 + y) / (1 - y)` (`VerifyingKey::to_montgomery`).
//!
//! Both give the same X25519 key pair, so `DH(IK_A, SPK_B)` computed by Alice from her
//! converted private key equals what Bob computes from Alice's converted public key. The wire
//! format (`docs/api.md`) carries the 32-byte Ed25519 public key; `Encode(IK)` in X3DH's `AD`
//! is `0x05 ‖ u-coordinate` of the converted key (X3DH §2.2, `Encode` is for X25519 keys).
//! Signatures are verified with `verify_strict` (rejects weak keys and malleable signatures).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::bytes::Secret32;
use super::keypair::KeyPair;
use super::params::SIGNATURE_LEN;
use super::CryptoError;

/// A device's long-term identity: signs signed prekeys, and does X25519 after conversion.
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "StoredIdentity", from = "StoredIdentity")]
pub struct IdentityKeyPair {
    signing: SigningKey,
    /// The converted X25519 pair, kept so every X3DH does not redo SHA-512 and the map.
    dh: KeyPair,
}

impl IdentityKeyPair {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self::from_signing_key(SigningKey::generate(rng))
    }

    /// The key pair of a 32-byte Ed25519 seed (RFC 8032 private key).
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        Self::from_signing_key(SigningKey::from_bytes(seed))
    }

    fn from_signing_key(signing: SigningKey) -> Self {
        let dh = KeyPair::from_secret(signing.to_scalar_bytes());
        debug_assert_eq!(
            dh.public(),
            signing.verifying_key().to_montgomery().to_bytes()
        );
        Self { signing, dh }
    }

    /// The Ed25519 public key: what the server stores and bundles carry.
    pub fn public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The Ed25519 private key (RFC 8032 seed), for test vectors.
    pub(crate) fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The converted X25519 key pair used for DH1 and DH2.
    pub(crate) fn dh_key_pair(&self) -> &KeyPair {
        &self.dh
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(msg).to_bytes()
    }
}

/// Strict Ed25519 verification of `sig` over `msg` under an identity public key.
pub(crate) fn verify(
    identity_public: &[u8; 32],
    msg: &[u8],
    sig: &[u8; SIGNATURE_LEN],
) -> Result<(), CryptoError> {
    let key = verifying_key(identity_public)?;
    key.verify_strict(msg, &Signature::from_bytes(sig))
        .map_err(|_| CryptoError::BadSignature)
}

/// The X25519 public key (Montgomery u-coordinate) of an Ed25519 identity public key.
/// Refuses bytes that are not a point and small-order ("weak") points.
pub(crate) fn x25519_public(identity_public: &[u8; 32]) -> Result<[u8; 32], CryptoError> {
    Ok(verifying_key(identity_public)?.to_montgomery().to_bytes())
}

fn verifying_key(identity_public: &[u8; 32]) -> Result<VerifyingKey, CryptoError> {
    let key = VerifyingKey::from_bytes(identity_public).map_err(|_| CryptoError::InvalidKey {
        what: "identity key",
        why: "not an Ed25519 point",
    })?;
    if key.is_weak() {
        return Err(CryptoError::InvalidKey {
            what: "identity key",
            why: "small-order Ed25519 point",
        });
    }
    Ok(key)
}

/// What is stored: only the seed; everything else is derived again on load.
#[derive(Serialize, Deserialize)]
struct StoredIdentity {
    ed25519_seed: Secret32,
}

impl From<IdentityKeyPair> for StoredIdentity {
    fn from(k: IdentityKeyPair) -> Self {
        Self {
            ed25519_seed: Secret32::new(k.seed()),
        }
    }
}

impl From<StoredIdentity> for IdentityKeyPair {
    fn from(s: StoredIdentity) -> Self {
        Self::from_seed(s.ed25519_seed.as_bytes())
    }
}

impl std::fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityKeyPair")
            .field("public", &hex::encode(self.public()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn signature_verifies_and_rejects_a_flipped_bit_in_every_byte_of_message_signature_and_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let id = IdentityKeyPair::generate(&mut rng);
        let msg = b"signed prekey bytes";
        let sig = id.sign(msg);
        let public = id.public();
        verify(&public, msg, &sig).unwrap();
        for bit in (0..64 * 8).step_by(9) {
            let mut bad = sig;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                verify(&public, msg, &bad),
                Err(CryptoError::BadSignature),
                "signature bit {bit}"
            );
        }
        for bit in (0..msg.len() * 8).step_by(9) {
            let mut bad = *msg;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                verify(&public, &bad, &sig),
                Err(CryptoError::BadSignature),
                "message bit {bit}"
            );
        }
        for bit in (0..32 * 8).step_by(9) {
            let mut bad = public;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(verify(&bad, msg, &sig).is_err(), "key bit {bit}");
        }
    }

    #[test]
    fn converted_keys_agree_in_both_directions() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let a = IdentityKeyPair::generate(&mut rng);
        let b = IdentityKeyPair::generate(&mut rng);
        assert_eq!(
            a.dh_key_pair().public(),
            x25519_public(&a.public()).unwrap()
        );
        let ab = a
            .dh_key_pair()
            .dh(&x25519_public(&b.public()).unwrap(), "test")
            .unwrap();
        let ba = b
            .dh_key_pair()
            .dh(&x25519_public(&a.public()).unwrap(), "test")
            .unwrap();
        assert_eq!(ab, ba);
    }

    #[test]
    fn weak_identity_key_is_refused() {
        // The Ed25519 identity point (0, 1) encodes as 01 00 .. 00 and has small order.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        assert!(matches!(
            x25519_public(&weak),
            Err(CryptoError::InvalidKey { .. })
        ));
    }

    #[test]
    fn serde_round_trip_keeps_the_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        let id = IdentityKeyPair::generate(&mut rng);
        let json = serde_json::to_string(&id).unwrap();
        let back: IdentityKeyPair = serde_json::from_str(&json).unwrap();
        assert_eq!(back.public(), id.public());
        assert_eq!(back.dh_key_pair(), id.dh_key_pair());
    }
}
