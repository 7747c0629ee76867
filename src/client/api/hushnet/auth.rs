//! HushNet's request authentication: three headers, an Ed25519 signature by the device's
//! identity key over the ASCII decimal Unix timestamp (seconds) — the very bytes of the
//! `X-Timestamp` header — and nothing else: not the method, path or body, and no nonce.
//!
//! The server (`middlewares/auth.rs`) accepts a timestamp within ±30 s of its clock
//! (30 s either way), verifies the signature (non-strict `verify`), then looks the
//! device up by the `X-Identity-Key` **text**, which must therefore be byte-for-byte the
//! `identity_pubkey` string it registered (standard base64 with padding).

use reqwest::RequestBuilder;

use crate::crypto::identity::IdentityKeyPair;

use super::codec::b64;

pub const IDENTITY_KEY_HEADER: &str = "X-Identity-Key";
pub const SIGNATURE_HEADER: &str = "X-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Timestamp";

/// The three authentication headers of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeaders {
    /// b64 of the 32-byte Ed25519 identity public key.
    pub identity_key: String,
    /// b64 of the 64-byte Ed25519 signature over `timestamp`'s ASCII bytes.
    pub signature: String,
    /// Unix seconds, decimal, no sign or padding (e.g. `1698765432`).
    pub timestamp: String,
}

impl AuthHeaders {
    /// Headers for a request made at `unix_secs`.
    pub fn sign(identity: &IdentityKeyPair, unix_secs: i64) -> Self {
        let timestamp = unix_secs.to_string();
        AuthHeaders {
            identity_key: b64(&identity.public()),
            signature: b64(&identity.sign(timestamp.as_bytes())),
            timestamp,
        }
    }

    /// Headers for a request made now (system clock).
    pub fn now(identity: &IdentityKeyPair) -> Self {
        Self::sign(identity, chrono::Utc::now().timestamp())
    }

    /// `(name, value)` pairs, in the order HushNet's API.md lists them.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (IDENTITY_KEY_HEADER, &self.identity_key),
            (SIGNATURE_HEADER, &self.signature),
            (TIMESTAMP_HEADER, &self.timestamp),
        ]
    }

    pub fn apply(&self, req: RequestBuilder) -> RequestBuilder {
        self.pairs()
            .into_iter()
            .fold(req, |req, (name, value)| req.header(name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

    /// API.md's example timestamp.
    const DOC_TIMESTAMP: i64 = 1_698_765_432;

    #[test]
    fn header_names_are_api_md_s() {
        assert_eq!(IDENTITY_KEY_HEADER, "X-Identity-Key");
        assert_eq!(SIGNATURE_HEADER, "X-Signature");
        assert_eq!(TIMESTAMP_HEADER, "X-Timestamp");
        let id = IdentityKeyPair::from_seed(&[1; 32]);
        let names: Vec<_> = AuthHeaders::sign(&id, DOC_TIMESTAMP)
            .pairs()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(names, ["X-Identity-Key", "X-Signature", "X-Timestamp"]);
    }

    /// What HushNet's middleware does, step by step: decode both b64 fields (64 and 32
    /// bytes), build the key, verify over the timestamp header's bytes.
    fn server_accepts(h: &AuthHeaders) -> bool {
        let sig: [u8; 64] = STANDARD.decode(&h.signature).unwrap().try_into().unwrap();
        let key: [u8; 32] = STANDARD
            .decode(&h.identity_key)
            .unwrap()
            .try_into()
            .unwrap();
        VerifyingKey::from_bytes(&key)
            .unwrap()
            .verify(h.timestamp.as_bytes(), &Signature::from_bytes(&sig))
            .is_ok()
    }

    #[test]
    fn signature_is_over_the_ascii_decimal_timestamp_and_nothing_else() {
        let id = IdentityKeyPair::from_seed(&[42; 32]);
        let h = AuthHeaders::sign(&id, DOC_TIMESTAMP);
        assert_eq!(h.timestamp, "1698765432");
        assert_eq!(h.identity_key, STANDARD.encode(id.public()));
        assert_eq!(h.identity_key.len(), 44);
        assert_eq!(h.signature.len(), 88);
        assert!(server_accepts(&h));
        // Ed25519 is deterministic: the same key and second give the same headers (which is
        // also why a captured request replays within the window).
        assert_eq!(h, AuthHeaders::sign(&id, DOC_TIMESTAMP));
        let mut other_second = h.clone();
        other_second.timestamp = "1698765433".into();
        assert!(!server_accepts(&other_second));
        let mut padded = h.clone();
        padded.timestamp = "01698765432".into();
        assert!(
            !server_accepts(&padded),
            "the bytes, not the number, are signed"
        );
        let mut other_key = h;
        other_key.identity_key = STANDARD.encode(IdentityKeyPair::from_seed(&[7; 32]).public());
        assert!(!server_accepts(&other_key));
    }

    #[test]
    fn known_answer_for_a_fixed_seed() {
        // RFC 8032 test 1's secret key, signing API.md's example timestamp.
        let seed: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        let h = AuthHeaders::sign(&IdentityKeyPair::from_seed(&seed), DOC_TIMESTAMP);
        assert_eq!(
            h.identity_key,
            "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
        );
        assert!(server_accepts(&h));
    }

    #[test]
    fn headers_land_on_the_request() {
        let id = IdentityKeyPair::from_seed(&[3; 32]);
        let h = AuthHeaders::sign(&id, DOC_TIMESTAMP);
        let req = h
            .apply(reqwest::Client::new().get("http://127.0.0.1:9/users"))
            .build()
            .unwrap();
        for (name, value) in h.pairs() {
            assert_eq!(req.headers()[name], value, "{name}");
        }
    }
}
