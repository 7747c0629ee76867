//! Signed prekeys and one-time prekeys (X3DH §3.2 "Publishing keys").
//!
//! The signed prekey signature is Ed25519 by the identity key over `Encode(SPK)` =
//! `0x05 ‖ spk_public` (33 bytes), as `docs/api.md` fixes for the wire.

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use super::bytes::hex_array;
use super::identity::{self, IdentityKeyPair};
use super::keypair::KeyPair;
use super::params::{ENCODED_PUBLIC_KEY_LEN, ENCODE_CURVE_TYPE_X25519};
use super::CryptoError;

/// X3DH §2.2 `Encode(PK)` for an X25519 public key: the curve-type byte, then the key.
pub(crate) fn encode_public(key: &[u8; 32]) -> [u8; ENCODED_PUBLIC_KEY_LEN] {
    let mut out = [0u8; ENCODED_PUBLIC_KEY_LEN];
    out[0] = ENCODE_CURVE_TYPE_X25519;
    out[1..].copy_from_slice(key);
    out
}

/// A signed prekey: an X25519 key pair plus the identity key's signature over
/// `Encode(SPK)`. Its key pair also starts the responder's Double Ratchet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedPreKey {
    pub id: u32,
    pub(crate) key_pair: KeyPair,
    #[serde(with = "hex_array")]
    pub signature: [u8; 64],
}

impl SignedPreKey {
    pub fn generate(
        identity: &IdentityKeyPair,
        id: u32,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Self {
        let key_pair = KeyPair::generate(rng);
        let signature = identity.sign(&encode_public(&key_pair.public()));
        Self {
            id,
            key_pair,
            signature,
        }
    }

    pub fn public(&self) -> [u8; 32] {
        self.key_pair.public()
    }
}

/// Verifies `sig` over `Encode(spk_public)` under the Ed25519 identity key (X3DH §3.3: Alice
/// verifies the prekey signature and aborts if it fails).
pub(crate) fn verify_signed_prekey(
    identity_public: &[u8; 32],
    spk_public: &[u8; 32],
    sig: &[u8; 64],
) -> Result<(), CryptoError> {
    identity::verify(identity_public, &encode_public(spk_public), sig)
}

/// A one-time prekey: an X25519 key pair with the id it is uploaded under.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OneTimePreKey {
    pub id: u32,
    pub(crate) key_pair: KeyPair,
}

impl OneTimePreKey {
    pub(crate) fn generate(id: u32, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        Self {
            id,
            key_pair: KeyPair::generate(rng),
        }
    }

    pub fn public(&self) -> [u8; 32] {
        self.key_pair.public()
    }
}

/// `count` one-time prekeys with consecutive ids `start_id, start_id + 1, …` (wrapping at
/// `u32::MAX`, since ids are only unique per device and uploads are bounded).
pub fn generate_one_time_batch(
    start_id: u32,
    count: usize,
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<OneTimePreKey> {
    (0..count)
        .map(|i| OneTimePreKey::generate(start_id.wrapping_add(i as u32), rng))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn signed_prekey_verifies_and_rejects_a_flipped_bit_in_every_byte() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let id = IdentityKeyPair::generate(&mut rng);
        let spk = SignedPreKey::generate(&id, 7, &mut rng);
        assert_eq!(spk.id, 7);
        verify_signed_prekey(&id.public(), &spk.public(), &spk.signature).unwrap();
        for bit in (0..64 * 8).step_by(9) {
            let mut sig = spk.signature;
            sig[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                verify_signed_prekey(&id.public(), &spk.public(), &sig),
                Err(CryptoError::BadSignature)
            );
        }
        for bit in (0..32 * 8).step_by(9) {
            let mut key = spk.public();
            key[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                verify_signed_prekey(&id.public(), &key, &spk.signature),
                Err(CryptoError::BadSignature)
            );
        }
        let other = IdentityKeyPair::generate(&mut rng);
        assert_eq!(
            verify_signed_prekey(&other.public(), &spk.public(), &spk.signature),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn signature_covers_the_encoded_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(22);
        let id = IdentityKeyPair::generate(&mut rng);
        let spk = SignedPreKey::generate(&id, 1, &mut rng);
        let encoded = encode_public(&spk.public());
        assert_eq!(encoded[0], 0x05);
        assert_eq!(&encoded[1..], &spk.public());
        identity::verify(&id.public(), &encoded, &spk.signature).unwrap();
        assert!(identity::verify(&id.public(), &spk.public(), &spk.signature).is_err());
    }

    #[test]
    fn batch_has_consecutive_ids_and_distinct_keys() {
        let mut rng = ChaCha20Rng::seed_from_u64(23);
        let batch = generate_one_time_batch(100, 50, &mut rng);
        assert_eq!(batch.len(), 50);
        for (i, k) in batch.iter().enumerate() {
            assert_eq!(k.id, 100 + i as u32);
        }
        let mut publics: Vec<_> = batch.iter().map(|k| k.public()).collect();
        publics.sort();
        publics.dedup();
        assert_eq!(publics.len(), 50);
    }
}
