//! Why a cryptographic operation refused. Every failure is typed so callers (virtual clients,
//! conformance checks) can count "undecryptable" separately from "replayed" or "bad bundle".

/// A refused cryptographic operation. A `CryptoError` from
/// [`Session::decrypt`](crate::crypto::ratchet::Session::decrypt) guarantees the session is
/// exactly as it was before the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// An Ed25519 signature did not verify (strict verification) under the identity key.
    #[error("signature does not verify under the identity key")]
    BadSignature,

    /// A public key is not usable: not a valid point, or of small order ("weak").
    #[error("invalid {what}: {why}")]
    InvalidKey {
        what: &'static str,
        why: &'static str,
    },

    /// An X25519 output was all zeros: the peer's key is of small order (X3DH §4.5 asks for
    /// contributory behaviour).
    #[error("{what} produced an all-zero (non-contributory) X25519 output")]
    NonContributory { what: &'static str },

    /// Bytes on the wire or in storage have the wrong length.
    #[error("{what} must be {expected} bytes, got {got}")]
    BadLength {
        what: &'static str,
        expected: String,
        got: usize,
    },

    /// The initial message names a signed prekey this device does not hold.
    #[error("unknown signed prekey id {0}")]
    UnknownSignedPreKey(u32),

    /// The initial message names a one-time prekey this device does not hold (already used,
    /// or never uploaded).
    #[error("unknown or already used one-time prekey id {0}")]
    UnknownOneTimePreKey(u32),

    /// The responder has not received a message yet, so it has no sending chain (in the
    /// Double Ratchet only the initiator may send first).
    #[error("no sending chain yet: the responder must receive a message before it can send")]
    NoSendingChain,

    /// Decrypting would skip more than `MAX_SKIP` message keys in one chain.
    #[error("message {n} would skip {skip} message keys in one chain (MAX_SKIP is {max})")]
    TooManySkipped { n: u32, skip: u64, max: u32 },

    /// The message's key was already used (a replay) or was deleted (cap on stored skipped
    /// keys).
    #[error("message {n} of this chain was already decrypted, or its skipped key was deleted")]
    DuplicateMessage { n: u32 },

    /// The HMAC over associated data, header and ciphertext did not match: the ciphertext,
    /// header or associated data was altered, or the key is wrong.
    #[error("message authentication failed")]
    BadMac,

    /// The MAC held but the CBC padding did not: never expected from an honest peer.
    #[error("ciphertext padding is invalid")]
    BadPadding,

    /// Stored session bytes could not be read.
    #[error("cannot read stored session: {0}")]
    BadSession(String),
}
