//! Every protocol constant, in one place, named as in Signal's specifications so a reader can
//! check them line by line:
//!
//! - X3DH: <https://signal.org/docs/specifications/x3dh/> (revision 1, 2016-11-04), §2.1
//!   "X3DH parameters" and §2.2 "Cryptographic notation";
//! - Double Ratchet: <https://signal.org/docs/specifications/doubleratchet/> (revision 1,
//!   2016-11-20), §3 "Double Ratchet" / §5.2 "Recommended cryptographic algorithms".
//!
//! Nothing else in `crate::crypto` writes a literal info string, size or limit.

// ---------------------------------------------------------------------------------------------
// X3DH §2.1: parameters an application must choose.
// ---------------------------------------------------------------------------------------------

/// X3DH `curve`: X25519 (`x25519-dalek`). Identity keys are Ed25519 and are converted to
/// X25519 for DH (see [`crate::crypto::identity`]).
pub(crate) const X3DH_CURVE: &str = "X25519";

/// X3DH `hash`: SHA-256 (a 256-bit hash), used by HKDF.
pub(crate) const X3DH_HASH: &str = "SHA-256";

/// X3DH `info`: "an ASCII string identifying the application".
pub(crate) const X3DH_INFO: &[u8] = b"e2ee-harness X3DH";

/// X3DH §2.2 `Encode(PK)`: "some single-byte constant to represent the type of curve,
/// followed by little-endian encoding of the u-coordinate". 0x05 is the byte Signal uses for
/// Curve25519 (`DJB_TYPE`); it prefixes signed-prekey bytes that are signed and the identity
/// keys in `AD`.
pub(crate) const ENCODE_CURVE_TYPE_X25519: u8 = 0x05;

/// Length of `Encode(PK)` for X25519: type byte + 32-byte u-coordinate.
pub(crate) const ENCODED_PUBLIC_KEY_LEN: usize = 1 + PUBLIC_KEY_LEN;

/// X3DH §2.2 `KDF`: `F` is "a byte sequence containing 32 0xFF bytes if curve is X25519",
/// prepended to the DH outputs (`F || KM`) for cryptographic domain separation with XEdDSA.
pub(crate) const X3DH_KDF_F: [u8; 32] = [0xFF; 32];

/// X3DH §2.2 `KDF`: "HKDF salt = A zero-filled byte sequence with length equal to the hash
/// output length".
pub(crate) const X3DH_KDF_SALT: [u8; HASH_OUTPUT_LEN] = [0u8; HASH_OUTPUT_LEN];

/// X3DH §2.2 `KDF`: "HKDF output = A 32-byte block of key material", the secret `SK`.
pub(crate) const X3DH_SK_LEN: usize = 32;

// ---------------------------------------------------------------------------------------------
// Sizes shared by both specifications.
// ---------------------------------------------------------------------------------------------

/// Output length of SHA-256, the hash of every HKDF and HMAC here.
pub(crate) const HASH_OUTPUT_LEN: usize = 32;

/// X25519 public keys, Ed25519 public keys and X25519 private keys are all 32 bytes.
pub(crate) const PUBLIC_KEY_LEN: usize = 32;

/// Ed25519 signature length (signed prekeys).
pub(crate) const SIGNATURE_LEN: usize = 64;

// ---------------------------------------------------------------------------------------------
// Double Ratchet §5.2: recommended cryptographic algorithms.
// ---------------------------------------------------------------------------------------------

// `GENERATE_DH()`: "generating a new Curve25519 key pair" — X25519 (`keypair::KeyPair`).

/// `KDF_RK(rk, dh_out)`: "HKDF with SHA-256 ... using rk as HKDF salt, dh_out as HKDF input
/// key material, and an application-specific byte sequence as HKDF info". Output: 64 bytes,
/// split into a 32-byte root key and a 32-byte chain key.
pub(crate) const KDF_RK_INFO: &[u8] = b"e2ee-harness Ratchet";

/// `KDF_RK` output length: root key (32) || chain key (32).
pub(crate) const KDF_RK_OUTPUT_LEN: usize = 64;

/// `KDF_CK(ck)`: "HMAC with SHA-256 using ck as the HMAC key and using separate constants as
/// input (e.g. a single byte 0x01 as input to produce the message key, and a single byte 0x02
/// as input to produce the next chain key)". This is the message-key constant.
pub(crate) const KDF_CK_MESSAGE_KEY_CONSTANT: u8 = 0x01;

/// `KDF_CK(ck)`: the next-chain-key constant (see [`KDF_CK_MESSAGE_KEY_CONSTANT`]).
pub(crate) const KDF_CK_CHAIN_KEY_CONSTANT: u8 = 0x02;

/// `ENCRYPT(mk, plaintext, associated_data)`: the §5.2 recommendation, named for reports.
pub(crate) const MESSAGE_CIPHER: &str =
    "HKDF-SHA256 -> AES-256-CBC (PKCS#7) + HMAC-SHA256 (encrypt-then-MAC)";

/// `ENCRYPT`: "HKDF is used with SHA-256 ... with a zero-filled byte sequence (of hash
/// output length) as salt ...".
pub(crate) const ENCRYPT_HKDF_SALT: [u8; HASH_OUTPUT_LEN] = [0u8; HASH_OUTPUT_LEN];

/// `ENCRYPT`: "... and an application-specific info string".
pub(crate) const ENCRYPT_HKDF_INFO: &[u8] = b"e2ee-harness MessageKeys";

/// `ENCRYPT`: "to produce 80 bytes of output": encryption key (32) || authentication key (32)
/// || IV (16).
pub(crate) const ENCRYPT_HKDF_OUTPUT_LEN: usize = ENCRYPTION_KEY_LEN + AUTH_KEY_LEN + IV_LEN;

/// `ENCRYPT`: "The first 32 bytes of the output are used as an encryption key" (AES-256).
pub(crate) const ENCRYPTION_KEY_LEN: usize = 32;

/// `ENCRYPT`: "the next 32 bytes are used as an authentication key" (HMAC-SHA256).
pub(crate) const AUTH_KEY_LEN: usize = 32;

/// `ENCRYPT`: "and the final 16 bytes are used as an IV" (AES-CBC block size).
pub(crate) const IV_LEN: usize = 16;

/// `ENCRYPT`: "The output of HMAC is appended to the ciphertext". We append the full,
/// untruncated HMAC-SHA256 output.
pub(crate) const MAC_LEN: usize = HASH_OUTPUT_LEN;

/// `MAX_SKIP`: "the maximum number of message keys that can be skipped in a single chain".
/// Larger gaps are rejected ([`crate::crypto::CryptoError::TooManySkipped`]).
pub const MAX_SKIP: u32 = 1000;

/// Per-session cap on stored skipped message keys (§8, "Deletion of skipped message keys":
/// an implementation "should" bound storage). When a new skipped key would exceed the cap,
/// the oldest stored one is deleted first, as libsignal does.
pub const MAX_STORED_SKIPPED_KEYS: usize = 2000;

/// `HEADER(dh_pair, pn, n)` encoding: `dh` (32) || `pn` (u32 big-endian) || `n` (u32
/// big-endian). `CONCAT(ad, header)` is `ad || header_bytes`; its fixed length keeps the
/// concatenation unambiguous, as §3.4 requires.
pub(crate) const HEADER_LEN: usize = PUBLIC_KEY_LEN + 4 + 4;

/// Version tag of [`crate::crypto::ratchet::Session::to_bytes`], so a stored session from an
/// incompatible build is rejected instead of misread.
pub(crate) const SESSION_FORMAT_VERSION: u32 = 1;

/// X3DH §3.3 initial message, as the harness puts it on the wire (`docs/api.md`): `IK_A`
/// (32, Ed25519) || `EK_A` (32, X25519) || signed prekey id (u32 big-endian), without a
/// one-time prekey...
pub(crate) const X3DH_INITIAL_MESSAGE_LEN: usize = 32 + 32 + 4;

/// ... and with one: followed by the one-time prekey id (u32 big-endian). The two lengths
/// differ, so the length alone says whether a one-time prekey was used.
pub(crate) const X3DH_INITIAL_MESSAGE_LEN_WITH_OPK: usize = X3DH_INITIAL_MESSAGE_LEN + 4;
