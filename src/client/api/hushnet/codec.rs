//! How our keys, headers and ciphertexts travel in HushNet's fields.
//!
//! HushNet stores every key as the text the client sent and compares identity keys as text
//! (the `X-Identity-Key` header must equal the registered `identity_pubkey` string), so there
//! is exactly one encoding: **standard base64 with padding** (`base64::STANDARD`, what its
//! `general_purpose::STANDARD` decoder and its Dart client's `base64Encode` use).
//!
//! - `identity_pubkey`: the 32-byte Ed25519 identity key (our identity key is Ed25519).
//! - `prekey_pubkey`: the X25519 key HushNet clients use as `IK` in the DHs — for us, the
//!   X25519 form of the identity key ([`crate::crypto::identity::x25519_public`]).
//! - `signed_prekey.key`: HushNet verifies `signed_prekey.signature` with the identity key
//!   over **the base64-decoded bytes of `signed_prekey.key`**, whatever their length. Our
//!   signature is over `Encode(SPK) = 0x05 ‖ spk` (33 bytes, X3DH §2.2), so the key goes on
//!   the wire in that encoded form; one signature then satisfies HushNet's check and our
//!   X3DH's. (HushNet's own client sends the raw 32 bytes and signs those.)
//! - one-time prekeys: raw 32-byte X25519 keys. HushNet has no key ids; ours are derived
//!   from the key ([`key_id`]) on both sides, so the X3DH initial message still names them.
//! - message `header`: JSON `{"dh_pubkey": b64(32), "pn": u32, "n": u32}` (its API.md).
//! - session-init `ciphertext`: b64 of the logical message id (16 bytes) and our `prekey`
//!   envelope, i.e. the X3DH initial message, the ratchet header and the ratchet ciphertext
//!   ([`seal_first_message`]). HushNet's pending sessions keep no message id (its messages
//!   do, as `logical_msg_id`), so it travels inside the field the server treats as opaque.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::client::wire;
use crate::crypto::params::ENCODE_CURVE_TYPE_X25519;
use crate::crypto::prekeys::encode_public;
use crate::crypto::ratchet::Header;
use crate::crypto::x3dh::InitialMessage;

use super::error::HushnetError;

/// Standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64; the error names the field.
pub fn unb64(field: &'static str, text: &str) -> Result<Vec<u8>, HushnetError> {
    STANDARD
        .decode(text.as_bytes())
        .map_err(|e| HushnetError::encoding(field, format!("not standard base64: {e}")))
}

/// Decodes standard base64 of exactly `N` bytes.
pub fn unb64_fixed<const N: usize>(
    field: &'static str,
    text: &str,
) -> Result<[u8; N], HushnetError> {
    let bytes = unb64(field, text)?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| HushnetError::encoding(field, format!("{len} bytes, expected {N}")))
}

/// `signed_prekey.key` / `signed_prekey_pub`: b64 of `0x05 ‖ spk` (see the module doc).
pub fn signed_prekey_to_wire(spk_public: &[u8; 32]) -> String {
    b64(&encode_public(spk_public))
}

/// The X25519 signed prekey of a bundle's `signed_prekey_pub`: the 33-byte encoded form
/// this dialect uploads, or the raw 32 bytes HushNet's own client uploads (whose signature
/// our X3DH will then refuse, as it covers other bytes).
pub fn signed_prekey_from_wire(text: &str) -> Result<[u8; 32], HushnetError> {
    const FIELD: &str = "signed_prekey_pub";
    let bytes = unb64(FIELD, text)?;
    match bytes.len() {
        33 if bytes[0] == ENCODE_CURVE_TYPE_X25519 => Ok(bytes[1..].try_into().expect("32 bytes")),
        33 => Err(HushnetError::encoding(
            FIELD,
            format!("33 bytes starting {:#04x}, expected 0x05", bytes[0]),
        )),
        32 => Ok(bytes.try_into().expect("32 bytes")),
        n => Err(HushnetError::encoding(
            FIELD,
            format!("{n} bytes, expected 33 (0x05 ‖ key) or 32"),
        )),
    }
}

/// The key id of a one-time or signed prekey on HushNet, which stores none: the first four
/// bytes of the public key, big-endian. A device registering with HushNet gives its prekeys
/// these ids, and an initiator derives the same from the bundle, so X3DH's initial message
/// names the keys as usual. (Two keys of one device sharing an id has probability ~n²/2³³.)
pub fn key_id(public: &[u8; 32]) -> u32 {
    u32::from_be_bytes(public[..4].try_into().expect("4 bytes"))
}

/// A Double Ratchet header as HushNet's `header` JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderJson {
    pub dh_pubkey: String,
    pub pn: u32,
    pub n: u32,
}

impl HeaderJson {
    pub fn from_header(h: &Header) -> Self {
        HeaderJson {
            dh_pubkey: b64(&h.dh),
            pn: h.pn,
            n: h.n,
        }
    }

    pub fn to_header(&self) -> Result<Header, HushnetError> {
        Ok(Header {
            dh: unb64_fixed::<32>("header.dh_pubkey", &self.dh_pubkey)?,
            pn: self.pn,
            n: self.n,
        })
    }

    /// Parses a delivered message's `header` (HushNet stores any JSON there).
    pub fn from_value(value: &serde_json::Value) -> Result<Self, HushnetError> {
        serde_json::from_value(value.clone())
            .map_err(|e| HushnetError::encoding("header", format!("not a ratchet header: {e}")))
    }
}

/// The session-init `ciphertext`: b64(message id ‖ initial message ‖ ratchet header ‖ ratchet
/// ciphertext); after the id, the same bytes as our `prekey` envelope ([`wire::prekey_header`]
/// then the ciphertext).
pub fn seal_first_message(
    message_id: Uuid,
    initial: &InitialMessage,
    header: &Header,
    ciphertext: &[u8],
) -> String {
    let mut bytes = message_id.as_bytes().to_vec();
    bytes.extend_from_slice(&wire::prekey_header(&initial.to_bytes(), header));
    bytes.extend_from_slice(ciphertext);
    b64(&bytes)
}

/// The first message of a session, as [`seal_first_message`] packed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstMessage {
    pub message_id: Uuid,
    pub initial: InitialMessage,
    pub header: Header,
    pub ciphertext: Vec<u8>,
}

/// Splits a session-init `ciphertext`. After the 16-byte message id, the initial message is
/// 68 or 72 bytes; which one is known from `with_one_time_prekey` (HushNet's `otpk_used` is
/// empty without one).
pub fn open_first_message(
    text: &str,
    with_one_time_prekey: bool,
) -> Result<FirstMessage, HushnetError> {
    use crate::crypto::params::{
        HEADER_LEN, X3DH_INITIAL_MESSAGE_LEN, X3DH_INITIAL_MESSAGE_LEN_WITH_OPK,
    };
    const FIELD: &str = "sessions_init.ciphertext";
    let bytes = unb64(FIELD, text)?;
    let initial_len = if with_one_time_prekey {
        X3DH_INITIAL_MESSAGE_LEN_WITH_OPK
    } else {
        X3DH_INITIAL_MESSAGE_LEN
    };
    const ID: usize = 16;
    if bytes.len() < ID + initial_len + HEADER_LEN {
        return Err(HushnetError::encoding(
            FIELD,
            format!(
                "{} bytes, shorter than {}",
                bytes.len(),
                ID + initial_len + HEADER_LEN
            ),
        ));
    }
    let (id, rest) = bytes.split_at(ID);
    let message_id = Uuid::from_slice(id).expect("16 bytes");
    let (prekey_header, ciphertext) = rest.split_at(initial_len + HEADER_LEN);
    let (initial, header) = wire::parse_prekey_header(prekey_header)
        .map_err(|e| HushnetError::encoding(FIELD, e.to_string()))?;
    Ok(FirstMessage {
        message_id,
        initial,
        header,
        ciphertext: ciphertext.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_standard_with_padding_as_hushnet_decodes_it() {
        assert_eq!(b64(&[0xfb, 0xff]), "+/8=");
        assert_eq!(b64(&[0u8; 32]).len(), 44);
        assert_eq!(b64(&[0u8; 64]).len(), 88);
        assert!(
            unb64("x", "-_8=").is_err(),
            "URL-safe alphabet is not HushNet's"
        );
        assert!(unb64("x", "+/8").is_err(), "padding is required");
        let err = unb64_fixed::<32>("identity_pubkey", &b64(&[1; 31])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HushNet field `identity_pubkey`: 31 bytes, expected 32"
        );
    }

    #[test]
    fn signed_prekey_goes_out_encoded_and_comes_back_in_either_form() {
        let spk = [7u8; 32];
        let wire = signed_prekey_to_wire(&spk);
        let bytes = unb64("k", &wire).unwrap();
        assert_eq!(bytes.len(), 33);
        assert_eq!(bytes[0], 0x05);
        assert_eq!(signed_prekey_from_wire(&wire).unwrap(), spk);
        assert_eq!(signed_prekey_from_wire(&b64(&spk)).unwrap(), spk);
        let mut wrong = [0u8; 33];
        wrong[0] = 0x06;
        assert!(signed_prekey_from_wire(&b64(&wrong)).is_err());
        assert!(signed_prekey_from_wire(&b64(&[5u8; 31])).is_err());
    }

    #[test]
    fn header_json_has_api_md_field_names_and_round_trips() {
        let h = Header {
            dh: [9; 32],
            pn: 0,
            n: 1,
        };
        let json = serde_json::to_value(HeaderJson::from_header(&h)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"dh_pubkey": b64(&[9; 32]), "pn": 0, "n": 1})
        );
        assert_eq!(
            HeaderJson::from_value(&json).unwrap().to_header().unwrap(),
            h
        );
        // HushNet's own client sends `{"ratchet_pub", "counter"}`: refused, named.
        let theirs = serde_json::json!({"ratchet_pub": "AAAA", "counter": 0});
        assert!(HeaderJson::from_value(&theirs).is_err());
    }

    #[test]
    fn first_message_round_trips_with_and_without_one_time_prekey() {
        let header = Header {
            dh: [3; 32],
            pn: 0,
            n: 0,
        };
        for opk in [None, Some(key_id(&[0xab; 32]))] {
            let initial = InitialMessage {
                identity_key: [1; 32],
                ephemeral_key: [2; 32],
                signed_prekey_id: key_id(&[4; 32]),
                one_time_prekey_id: opk,
            };
            let id = Uuid::from_u128(0x1234);
            let sealed = seal_first_message(id, &initial, &header, b"ciphertext");
            let opened = open_first_message(&sealed, opk.is_some()).unwrap();
            assert_eq!(opened.message_id, id);
            assert_eq!(opened.initial, initial);
            assert_eq!(opened.header, header);
            assert_eq!(opened.ciphertext, b"ciphertext");
        }
        assert!(open_first_message(&b64(&[0; 120]), true).is_err());
    }

    #[test]
    fn key_id_is_the_first_four_bytes_big_endian() {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&[0x01, 0x02, 0x03, 0x04]);
        assert_eq!(key_id(&k), 0x0102_0304);
    }
}
