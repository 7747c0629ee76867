//! Binary fields on the wire: standard base64 with padding. Lengths are checked while
//! deserializing, so a wrong-length key fails with the field's path in the message
//! (`signed_prekey.public_key: expected 32 bytes, got 31`) before any handler runs.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Exactly `N` bytes (a public key or a signature).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fixed<const N: usize>(pub [u8; N]);

/// A 32-byte public key (Ed25519 identity or X25519 prekey).
pub type Key32 = Fixed<32>;
/// A 64-byte Ed25519 signature.
pub type Sig64 = Fixed<64>;

/// Opaque bytes of any length (header, ciphertext); limits are checked by the handler.
#[derive(Clone, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl<const N: usize> fmt::Debug for Fixed<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

fn decode<E: de::Error>(s: &str) -> Result<Vec<u8>, E> {
    STANDARD
        .decode(s)
        .map_err(|e| E::custom(format_args!("not standard padded base64 ({e})")))
}

struct B64Visitor<const N: usize>;

impl<'de, const N: usize> Visitor<'de> for B64Visitor<N> {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if N == 0 {
            f.write_str("a base64 string")
        } else {
            write!(f, "a base64 string of {N} bytes")
        }
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<u8>, E> {
        let bytes = decode(s)?;
        if N != 0 && bytes.len() != N {
            return Err(E::custom(format_args!(
                "expected {N} bytes, got {}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Fixed<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_str(B64Visitor::<N>)?;
        Ok(Fixed(v.try_into().expect("length checked by the visitor")))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(B64Visitor::<0>).map(Blob)
    }
}

impl<const N: usize> Serialize for Fixed<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(self.0))
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

/// Standard alphabet, padded: what [`decode`] accepts.
const BASE64_PATTERN: &str = "^[A-Za-z0-9+/]*={0,2}$";

fn byte_schema(description: String) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)))
        .pattern(Some(BASE64_PATTERN))
        .description(Some(description))
}

impl<const N: usize> PartialSchema for Fixed<N> {
    fn schema() -> RefOr<Schema> {
        // Padded base64 of N bytes is exactly 4 * ceil(N / 3) characters.
        let chars = N.div_ceil(3) * 4;
        byte_schema(format!("standard padded base64 of exactly {N} bytes"))
            .min_length(Some(chars))
            .max_length(Some(chars))
            .into()
    }
}
impl<const N: usize> ToSchema for Fixed<N> {
    /// One component per length: keys and signatures must not share a schema.
    fn name() -> std::borrow::Cow<'static, str> {
        format!("Base64Bytes{N}").into()
    }
}

impl PartialSchema for Blob {
    fn schema() -> RefOr<Schema> {
        byte_schema("standard padded base64".into()).into()
    }
}
impl ToSchema for Blob {}

/// Encodes bytes read from the database; lengths there are guaranteed by CHECKs.
pub(super) fn fixed<const N: usize>(v: Vec<u8>) -> Fixed<N> {
    Fixed(v.try_into().unwrap_or([0; N]))
}
