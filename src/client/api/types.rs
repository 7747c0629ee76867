//! The protocol's records as the virtual clients hold them: keys, bundles, envelopes, sends.
//!
//! Their serde shape is the reference API's (docs/api.md: binary fields in standard base64
//! with padding); other dialects map to and from them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Credential;
use crate::crypto::prekeys::{OneTimePreKey, SignedPreKey};

/// A device the server has registered: its address and how it authenticates from now on.
#[derive(Debug, Clone)]
pub struct Registered {
    pub user_id: Uuid,
    pub device_id: u32,
    pub credential: Credential,
}

pub mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(bytes: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes.as_ref()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD.decode(text.as_bytes()).map_err(D::Error::custom)?;
        let len = bytes.len();
        T::try_from(bytes).map_err(|_| D::Error::custom(format!("unexpected length {len}")))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedPrekeyBody {
    pub key_id: u32,
    #[serde(with = "b64")]
    pub public_key: [u8; 32],
    #[serde(with = "b64")]
    pub signature: [u8; 64],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneTimePrekeyBody {
    pub key_id: u32,
    #[serde(with = "b64")]
    pub public_key: [u8; 32],
}

#[derive(Debug, Clone, Deserialize)]
pub struct Bundle {
    pub device_id: u32,
    pub registration_id: u32,
    #[serde(with = "b64")]
    pub identity_key: [u8; 32],
    pub signed_prekey: SignedPrekeyBody,
    pub one_time_prekey: Option<OneTimePrekeyBody>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvelopeType {
    Prekey,
    Ratchet,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutgoingMessage {
    pub device_id: u32,
    #[serde(rename = "type")]
    pub kind: EnvelopeType,
    #[serde(with = "b64")]
    pub header: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SendRequest {
    pub message_id: Uuid,
    pub messages: Vec<OutgoingMessage>,
}

/// What a send achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Stored {
        stored: u64,
        duplicate: bool,
    },
    /// `409 mismatched_devices`: the envelopes did not cover exactly the recipient's devices.
    MismatchedDevices {
        missing: Vec<u32>,
        extra: Vec<u32>,
    },
}

#[derive(Debug, Deserialize)]
pub struct Uploaded {
    pub stored: u64,
    pub available: u64,
}

/// An envelope as delivered (WebSocket frame or poll).
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub id: i64,
    pub message_id: Uuid,
    pub sender_user: Uuid,
    pub sender_device: u32,
    #[serde(rename = "type")]
    pub kind: EnvelopeType,
    #[serde(with = "b64")]
    pub header: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

impl From<&SignedPreKey> for SignedPrekeyBody {
    fn from(spk: &SignedPreKey) -> Self {
        SignedPrekeyBody {
            key_id: spk.id,
            public_key: spk.public(),
            signature: spk.signature,
        }
    }
}

impl From<&OneTimePreKey> for OneTimePrekeyBody {
    fn from(k: &OneTimePreKey) -> Self {
        OneTimePrekeyBody {
            key_id: k.id,
            public_key: k.public(),
        }
    }
}
