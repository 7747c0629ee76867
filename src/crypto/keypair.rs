//! X25519 key pairs and `DH(PK1, PK2)`, the one Diffie-Hellman function both specifications
//! use (prekeys, ephemeral keys, ratchet keys, and identity keys once converted).

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, StaticSecret};

use super::bytes::{hex_array, Secret32};
use super::CryptoError;

/// An X25519 key pair. The private part is the 32 raw bytes X25519 takes (clamped inside the
/// scalar multiplication, RFC 7748 §5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPair {
    secret: Secret32,
    #[serde(with = "hex_array")]
    public: [u8; 32],
}

impl KeyPair {
    /// `GENERATE_DH()`.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let pair = Self::from_secret(bytes);
        zeroize::Zeroize::zeroize(&mut bytes);
        pair
    }

    /// The key pair of a given private key (used for identity keys converted from Ed25519).
    pub(crate) fn from_secret(secret: [u8; 32]) -> Self {
        let public = PublicKey::from(&StaticSecret::from(secret)).to_bytes();
        Self {
            secret: Secret32::new(secret),
            public,
        }
    }

    pub(crate) fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The private key bytes: for test vectors and for re-deriving with the primitives.
    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        self.secret.as_bytes()
    }

    /// `DH(self, their_public)`. `what` names the exchange for the error: an all-zero output
    /// means the peer sent a small-order point, which X3DH §4.5 and RFC 7748 §6.1 tell us to
    /// refuse.
    pub(crate) fn dh(
        &self,
        their_public: &[u8; 32],
        what: &'static str,
    ) -> Result<Secret32, CryptoError> {
        let shared = StaticSecret::from(*self.secret.as_bytes())
            .diffie_hellman(&PublicKey::from(*their_public));
        if !shared.was_contributory() {
            return Err(CryptoError::NonContributory { what });
        }
        Ok(Secret32::new(shared.to_bytes()))
    }
}
