//! What the virtual clients put in an envelope's opaque `header` and `ciphertext`, and what
//! the plaintext of a harness message is.
//!
//! - `ratchet` envelope: `header` = the Double Ratchet header (`dh ‖ pn ‖ n`, 40 bytes).
//! - `prekey` envelope: `header` = the X3DH initial message (`IK_A ‖ EK_A ‖ spk_id ‖ opk_id?`,
//!   68 or 72 bytes) followed by the ratchet header; the total length (108 or 112) tells
//!   which. A session keeps sending `prekey` envelopes until it has heard back, as Signal
//!   does, so whichever of its first messages arrives first can set the session up.
//! - `ciphertext`: the ratchet ciphertext.
//! - plaintext: `message_id (16) ‖ filler`, where the filler is derived from the message id.
//!   The recipient recomputes it, so "decrypted to exactly what was sent" is checked without
//!   the ledger storing any plaintext.

use uuid::Uuid;

use crate::crypto::params::HEADER_LEN;
use crate::crypto::ratchet::Header;
use crate::crypto::x3dh::InitialMessage;
use crate::crypto::CryptoError;

/// `prekey` header: initial message ‖ ratchet header.
pub(crate) fn prekey_header(initial: &[u8], header: &Header) -> Vec<u8> {
    let mut out = Vec::with_capacity(initial.len() + HEADER_LEN);
    out.extend_from_slice(initial);
    out.extend_from_slice(&header.to_bytes());
    out
}

/// Splits a `prekey` header.
pub(crate) fn parse_prekey_header(bytes: &[u8]) -> Result<(InitialMessage, Header), CryptoError> {
    if bytes.len() <= HEADER_LEN {
        return Err(CryptoError::BadLength {
            what: "prekey envelope header",
            expected: "108 or 112".into(),
            got: bytes.len(),
        });
    }
    let (initial, header) = bytes.split_at(bytes.len() - HEADER_LEN);
    Ok((
        InitialMessage::from_bytes(initial)?,
        Header::from_bytes(header)?,
    ))
}

pub(crate) fn ratchet_header(header: &Header) -> Vec<u8> {
    header.to_bytes().to_vec()
}

pub(crate) fn parse_ratchet_header(bytes: &[u8]) -> Result<Header, CryptoError> {
    Header::from_bytes(bytes)
}

/// The plaintext of harness message `message_id`, `size` bytes long (at least 16).
pub(crate) fn plaintext(message_id: Uuid, size: usize) -> Vec<u8> {
    let id = message_id.as_bytes();
    let mut out = Vec::with_capacity(size.max(16));
    out.extend_from_slice(id);
    for i in 16..size {
        out.push(id[i % 16] ^ (i as u8).wrapping_mul(31));
    }
    out
}

/// Whether `decrypted` is exactly what the sender of `message_id` encrypted.
pub(crate) fn is_expected(message_id: Uuid, size: usize, decrypted: &[u8]) -> bool {
    decrypted == plaintext(message_id, size).as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prekey_headers_round_trip_with_and_without_one_time_prekey() {
        let header = Header {
            dh: [3; 32],
            pn: 1,
            n: 2,
        };
        for opk in [None, Some(9)] {
            let initial = InitialMessage {
                identity_key: [1; 32],
                ephemeral_key: [2; 32],
                signed_prekey_id: 5,
                one_time_prekey_id: opk,
            };
            let bytes = prekey_header(&initial.to_bytes(), &header);
            assert_eq!(bytes.len(), if opk.is_some() { 112 } else { 108 });
            let (i, h) = parse_prekey_header(&bytes).unwrap();
            assert_eq!((i, h), (initial, header.clone()));
        }
        assert!(parse_prekey_header(&[0; 40]).is_err());
    }

    #[test]
    fn plaintext_is_tied_to_its_message() {
        let a = Uuid::from_u128(1);
        let p = plaintext(a, 64);
        assert_eq!(p.len(), 64);
        assert!(is_expected(a, 64, &p));
        assert!(!is_expected(Uuid::from_u128(2), 64, &p));
        assert!(!is_expected(a, 65, &p));
    }
}
