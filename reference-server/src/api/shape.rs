//! Objects only: serde's derived `Deserialize` also decodes a struct from a JSON array by
//! position (`["ack", 5]` would be an ack, `"signed_prekey": [1, "…", "…"]` a signed prekey).
//! docs/api.md promises objects, so after a body parses this pass checks the JSON itself: the
//! top level is an object, and every array element is an object (every list the API takes is
//! a list of objects). One extra tokenizing pass, no allocation but the keys of the path.

use std::fmt;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::ApiError;

/// `Ok` when `bytes` (already known to be valid JSON) has objects wherever structs go.
pub(crate) fn objects_only(bytes: &[u8]) -> Result<(), ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let top = Node {
        path: String::new(),
        object: true,
    };
    top.deserialize(&mut de).map_err(|e| {
        let message = super::extract::strip_position(&e.to_string());
        match message.split_once(": ") {
            Some((field, reason)) if !field.is_empty() => ApiError::invalid(field, reason),
            _ => ApiError::InvalidJson(message.trim_start_matches(": ").to_string()),
        }
    })
}

/// One JSON value at `path`; `object` when only an object may stand there.
struct Node {
    path: String,
    object: bool,
}

impl Node {
    fn refuse<E: serde::de::Error>(&self, found: &str) -> Result<(), E> {
        if self.object {
            Err(E::custom(format!(
                "{}: expected a JSON object, got {found}",
                self.path
            )))
        } else {
            Ok(())
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let path = if self.path.is_empty() {
                key.into_owned()
            } else {
                format!("{}.{key}", self.path)
            };
            map.next_value_seed(Node {
                path,
                object: false,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.object {
            // Drain so the error is ours, not a trailing-data one.
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Err(A::Error::custom(format!(
                "{}: expected a JSON object, got an array",
                self.path
            )));
        }
        let mut i = 0;
        while seq
            .next_element_seed(Node {
                path: format!("{}[{i}]", self.path),
                object: true,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.refuse("a boolean")
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.refuse("a number")
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.refuse("a number")
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.refuse("a number")
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.refuse("a string")
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.refuse("null")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(json: &str) -> Result<(), (&'static str, String)> {
        objects_only(json.as_bytes()).map_err(|e| (e.code(), e.to_string()))
    }

    #[test]
    fn objects_and_lists_of_objects_pass() {
        assert_eq!(
            verdict(r#"{"a": 1, "b": [{"c": "x"}], "d": {"e": null}}"#),
            Ok(())
        );
        assert_eq!(verdict(r#"{"b": []}"#), Ok(()));
    }

    #[test]
    fn arrays_standing_for_structs_are_refused_with_their_path() {
        let (code, msg) = verdict(r#"["ack", 5]"#).unwrap_err();
        assert_eq!(code, "invalid_json");
        assert!(
            msg.contains("expected a JSON object, got an array"),
            "{msg}"
        );
        let (code, msg) = verdict(r#"{"signed_prekey": [1, "k", "s"]}"#).unwrap_err();
        assert_eq!(
            (code, msg.as_str()),
            (
                "invalid_field",
                "signed_prekey[0]: expected a JSON object, got a number"
            )
        );
        let (code, msg) = verdict(r#"{"prekeys": [{"k": 1}, [1, "k"]]}"#).unwrap_err();
        assert_eq!(
            (code, msg.as_str()),
            (
                "invalid_field",
                "prekeys[1]: expected a JSON object, got an array"
            )
        );
    }
}
