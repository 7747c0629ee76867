//! The built-in malformed-input corpus: generic mutations of a dialect's valid example request
//! ([`RawRequest`]). Nothing here knows a field name; fields are found by their JSON shape:
//! a *key field* is a base64 string that decodes to exactly 32 bytes (a public key) or 64
//! (a signature).
//!
//! Every mutation is invalid for any sane server: wrong JSON types, bad base64, keys of the
//! wrong length, non-integral or out-of-range integers, bodies that are not JSON objects,
//! huge bodies, ids in the path that are unknown or are not ids at all.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::engine::GeneralPurpose;
use base64::Engine as _;
use serde_json::Value;

use super::http::Wire;
use crate::client::api::raw::{ParamKind, RawRequest};

/// How sure it is that a server must refuse the mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Malformed: a server that answers 2xx to a write accepted garbage.
    Invalid,
    /// A well-formed id that names nothing: a 2xx (e.g. an idempotent delete) may be fine.
    UnknownId,
    /// A huge body: also malformed, and a server may refuse it by closing the connection
    /// before reading it all (the client then sees a broken pipe, not an answer).
    Huge,
}

/// One malformed request.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub label: String,
    pub(crate) wire: Wire,
    pub class: Class,
}

/// Leaves visited per body (arrays contribute their first element only).
const MAX_LEAVES: usize = 24;
/// Size of the huge key field.
const HUGE_BYTES: usize = 2 * 1024 * 1024;
/// Length of the huge array.
const HUGE_ARRAY: usize = 20_000;

const ENGINES: [(&str, GeneralPurpose); 4] = [
    ("base64", STANDARD),
    ("base64 unpadded", STANDARD_NO_PAD),
    ("base64url", URL_SAFE),
    ("base64url unpadded", URL_SAFE_NO_PAD),
];

/// The scalar leaves of `v` as JSON pointers, depth first.
fn leaves(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
    if out.len() >= MAX_LEAVES {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                leaves(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                leaves(first, format!("{at}/0"), out);
            }
        }
        scalar => out.push((at, scalar.clone())),
    }
}

/// `(engine, bytes)` when `s` is a key field (see the module doc).
fn key_field(s: &str) -> Option<(GeneralPurpose, Vec<u8>)> {
    if s.len() < 40 || uuid::Uuid::parse_str(s).is_ok() {
        return None;
    }
    ENGINES.iter().find_map(|(_, e)| {
        let bytes = e.decode(s).ok()?;
        matches!(bytes.len(), 32 | 64).then_some((e.clone(), bytes))
    })
}

/// Whether `s` is base64 of some length worth mutating (16+ characters, not a UUID).
fn is_base64(s: &str) -> bool {
    s.len() >= 16
        && uuid::Uuid::parse_str(s).is_err()
        && ENGINES.iter().any(|(_, e)| e.decode(s).is_ok())
}

fn with(body: &Value, pointer: &str, value: Value) -> Value {
    let mut b = body.clone();
    if let Some(slot) = b.pointer_mut(pointer) {
        *slot = value;
    }
    b
}

fn body_mutation(req: &RawRequest, label: String, body: Vec<u8>) -> Mutation {
    Mutation {
        label,
        wire: Wire {
            path: req.path(),
            body: Some(body),
        },
        class: Class::Invalid,
    }
}

fn json_mutation(req: &RawRequest, label: String, body: &Value) -> Mutation {
    body_mutation(req, label, body.to_string().into_bytes())
}

/// Wrong length and wrong encoding of every key field of `req`'s body.
pub fn key_mutations(req: &RawRequest) -> Vec<Mutation> {
    let Some(body) = &req.body else {
        return Vec::new();
    };
    let mut found = Vec::new();
    leaves(body, String::new(), &mut found);
    let mut out = Vec::new();
    for (ptr, v) in found {
        let Some((engine, bytes)) = v.as_str().and_then(key_field) else {
            continue;
        };
        let n = bytes.len();
        let shorter = engine.encode(&bytes[..n - 1]);
        let mut longer_bytes = bytes.clone();
        longer_bytes.push(0x42);
        let s = v.as_str().unwrap_or_default();
        let not_base64 = format!("@@{}", &s[2..]);
        for (label, value) in [
            (format!("{ptr}: {} bytes", n - 1), shorter),
            (
                format!("{ptr}: {} bytes", n + 1),
                engine.encode(&longer_bytes),
            ),
            (format!("{ptr}: not base64"), not_base64),
            (format!("{ptr}: hex instead of base64"), hex::encode(&bytes)),
            (format!("{ptr}: empty"), String::new()),
        ] {
            out.push(json_mutation(req, label, &with(body, &ptr, value.into())));
        }
    }
    out
}

/// The whole corpus for `req`: body shape, field types, key fields, huge bodies, path ids.
pub fn mutations(req: &RawRequest) -> Vec<Mutation> {
    let mut out = Vec::new();
    if let Some(body) = &req.body {
        for (label, raw) in [
            ("not JSON", &b"{\"unterminated"[..]),
            ("empty body", b""),
            ("a JSON array", b"[]"),
            ("JSON null", b"null"),
            ("a JSON string", b"\"hello\""),
        ] {
            out.push(body_mutation(req, label.into(), raw.to_vec()));
        }
        out.extend(field_mutations(req, body));
        out.extend(key_mutations(req));
        out.extend(huge(req, body));
    }
    out.extend(path_mutations(req));
    out
}

/// Each leaf with a value of the wrong type; integers also as fractions and out of range.
fn field_mutations(req: &RawRequest, body: &Value) -> Vec<Mutation> {
    let mut found = Vec::new();
    leaves(body, String::new(), &mut found);
    let mut out = Vec::new();
    for (ptr, v) in found {
        let wrong: Vec<(&str, Value)> = match &v {
            // Base64 that is not a key (key fields get their own mutations).
            Value::String(s) if is_base64(s) && key_field(s).is_none() => vec![
                ("a number instead of a string", 12345.into()),
                ("not base64", format!("@@{}", &s[2..]).into()),
            ],
            Value::String(_) => vec![("a number instead of a string", 12345.into())],
            Value::Number(n) if n.is_u64() || n.is_i64() => vec![
                ("a string instead of a number", "not a number".into()),
                ("a fraction", serde_json::json!(1.5)),
                ("out of range", serde_json::json!(1e40)),
            ],
            Value::Number(_) => vec![("a string instead of a number", "x".into())],
            Value::Bool(_) => vec![("a string instead of a boolean", "yes".into())],
            Value::Null => vec![],
            Value::Array(_) | Value::Object(_) => vec![],
        };
        for (what, value) in wrong {
            out.push(json_mutation(
                req,
                format!("{ptr}: {what}"),
                &with(body, &ptr, value),
            ));
        }
    }
    // Lists and objects replaced by a scalar.
    if let Value::Object(map) = body {
        for (k, v) in map {
            if v.is_array() || v.is_object() {
                let ptr = format!("/{k}");
                out.push(json_mutation(
                    req,
                    format!("{ptr}: a string instead of a list or object"),
                    &with(body, &ptr, "oops".into()),
                ));
            }
        }
    }
    out
}

/// A key field megabytes long; with no key field, the first list repeated many times.
fn huge(req: &RawRequest, body: &Value) -> Vec<Mutation> {
    let mut found = Vec::new();
    leaves(body, String::new(), &mut found);
    let key = found
        .iter()
        .find_map(|(ptr, v)| Some((ptr, v.as_str().and_then(key_field)?.0)));
    if let Some((ptr, engine)) = key {
        let value = engine.encode(vec![0x41u8; HUGE_BYTES]);
        let mut m = json_mutation(
            req,
            format!("{ptr}: {HUGE_BYTES} bytes (huge body)"),
            &with(body, ptr, value.into()),
        );
        m.class = Class::Huge;
        return vec![m];
    }
    let Value::Object(map) = body else {
        return Vec::new();
    };
    map.iter()
        .find_map(|(k, v)| {
            let first = v.as_array()?.first()?;
            let ptr = format!("/{k}");
            let items = Value::Array(vec![first.clone(); HUGE_ARRAY]);
            let mut m = json_mutation(
                req,
                format!("{ptr}: {HUGE_ARRAY} copies of its first item (huge body)"),
                &with(body, &ptr, items),
            );
            m.class = Class::Huge;
            Some(m)
        })
        .into_iter()
        .collect()
}

/// Each path id unknown, of the wrong type, overflowing, negative.
fn path_mutations(req: &RawRequest) -> Vec<Mutation> {
    let mut out = Vec::new();
    for (i, p) in req.params.iter().enumerate() {
        let unknown = match p.kind {
            ParamKind::Uuid => uuid::Uuid::new_v4().to_string(),
            ParamKind::Integer => "2147483646".to_string(),
        };
        for (what, value, class) in [
            ("unknown", unknown, Class::UnknownId),
            ("not an id", "not-an-id".to_string(), Class::Invalid),
            (
                "overflowing",
                "99999999999999999999999".to_string(),
                Class::Invalid,
            ),
            ("negative", "-1".to_string(), Class::Invalid),
        ] {
            let mut params = req.params.clone();
            params[i].value = value.clone();
            out.push(Mutation {
                label: format!("{{{}}} {what}: {value}", p.name),
                wire: Wire::with_params(req, &params),
                class,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::api::raw::PathParam;

    fn req(body: Value) -> RawRequest {
        RawRequest {
            operation: "x",
            method: reqwest::Method::PUT,
            template: "/v1/things/{id}",
            params: vec![PathParam {
                name: "id",
                value: "7".into(),
                kind: ParamKind::Integer,
            }],
            body: Some(body),
            authenticated: true,
            writes: true,
        }
    }

    #[test]
    fn key_fields_are_found_by_shape_not_name() {
        let key = STANDARD.encode([7u8; 32]);
        let r = req(serde_json::json!({"a": {"k": key, "n": 3}, "list": [{"z": "short"}]}));
        let labels: Vec<String> = key_mutations(&r).into_iter().map(|m| m.label).collect();
        assert_eq!(
            labels,
            [
                "/a/k: 31 bytes",
                "/a/k: 33 bytes",
                "/a/k: not base64",
                "/a/k: hex instead of base64",
                "/a/k: empty"
            ]
        );
        let m = &key_mutations(&r)[0];
        let sent: Value = serde_json::from_slice(m.wire.body.as_ref().unwrap()).unwrap();
        let k = sent.pointer("/a/k").unwrap().as_str().unwrap();
        assert_eq!(STANDARD.decode(k).unwrap().len(), 31);
    }

    #[test]
    fn corpus_covers_types_huge_bodies_and_path_ids() {
        let key = STANDARD.encode([7u8; 64]);
        let blob = STANDARD.encode([1u8; 100]);
        let r = req(serde_json::json!({"sig": key, "n": 3, "items": [{"a": true, "b": blob}]}));
        let all = mutations(&r);
        let labels: Vec<&str> = all.iter().map(|m| m.label.as_str()).collect();
        for want in [
            "not JSON",
            "/n: a fraction",
            "/items/0/a: a string instead of a boolean",
            "/items: a string instead of a list or object",
            "/sig: 63 bytes",
            "/items/0/b: not base64",
            "{id} unknown: 2147483646",
            "{id} not an id: not-an-id",
        ] {
            assert!(labels.contains(&want), "{want} missing from {labels:?}");
        }
        let huge = all.iter().find(|m| m.label.contains("huge")).unwrap();
        assert!(huge.wire.body.as_ref().unwrap().len() > HUGE_BYTES);
        assert_eq!(
            all.iter().filter(|m| m.class == Class::UnknownId).count(),
            1
        );
        assert!(all.iter().any(|m| m.wire.path == "/v1/things/-1"));
    }
}
