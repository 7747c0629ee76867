//! Client cryptography: X3DH and the Double Ratchet, faithful to Signal's specifications,
//! on `x25519-dalek`, `ed25519-dalek`, `hkdf`, `hmac`, `sha2`, `aes` and `cbc`.
//!
//! Module by module: [`params`] (every constant, named as in the specs) → [`identity`]
//! (Ed25519 identity keys converted to X25519, OMEMO-style) → [`prekeys`] (signed and
//! one-time prekeys) → [`x3dh`] (key agreement) → [`ratchet`] (sessions) → [`cipher`] (the
//! §5.2 message encryption) → [`vectors`] (deterministic test vectors for other
//! implementations). All randomness comes in as `&mut (impl RngCore + CryptoRng)`, so runs
//! and vectors are reproducible from a seed.
//!
//! # Changes to the agreed interface (`/work/crypto-interface.md`)
//!
//! Everything there exists with the same names and types, except:
//!
//! - `Session::encrypt(&mut self, plaintext, rng) -> Result<(Header, Vec<u8>), CryptoError>`
//!   (was infallible): a responder has no sending chain until it has received a message
//!   (`CryptoError::NoSendingChain`; the Double Ratchet lets only the initiator send first).
//!   `rng` is unused by the §5.2 cipher and kept so callers need not change.
//! - `Session::initiator(x3dh, their_signed_prekey, rng) -> Result<Session, CryptoError>`
//!   (was infallible): a small-order signed prekey gives an all-zero DH output, which is
//!   refused. After a successful `x3dh::initiate` on the same bundle it cannot fail.
//! - `SignedPreKey` and `OneTimePreKey` expose their pair as `pub key_pair: KeyPair`
//!   ([`keypair::KeyPair`]); `OneTimePreKey::generate(id, rng)` exists beside the batch.
//! - `X3dhOutput` wipes `shared_secret` on drop (so it cannot be destructured by move).
//! - `InitialMessage` byte lengths are `params::X3DH_INITIAL_MESSAGE_LEN` (68, no one-time
//!   prekey) and `params::X3DH_INITIAL_MESSAGE_LEN_WITH_OPK` (72); a `prekey` envelope header is
//!   the initial message followed by the 40-byte (`params::HEADER_LEN`) ratchet header, so the
//!   total length (108 or 112) tells them apart.
//!
//! Additions: `Session::{can_send, skipped_key_count, associated_data}`,
//! `IdentityKeyPair::{from_seed, seed, dh_key_pair}`, `identity::x25519_public`,
//! `ratchet::{kdf_rk, kdf_ck}`, `cipher::{encrypt, decrypt, MessageKeys}`,
//! `vectors::generate`. `CryptoError` is `Clone + PartialEq + Eq`.

pub(crate) mod bytes;
pub(crate) mod cipher;
mod error;
pub mod identity;
pub mod keypair;
pub mod params;
pub mod prekeys;
pub mod ratchet;
pub(crate) mod vectors;
pub mod x3dh;

pub use error::CryptoError;
