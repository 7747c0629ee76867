//! E2EE policy rules (docs/conformance.md section 6.5), read from the catalog: what a server
//! schema must never hold, what must be addressed per device, what key material must look
//! like, and what must vanish with a device. Derived from X3DH (the server stores public
//! identity keys, signed prekeys with their signatures, and one-time prekeys, each used once)
//! and the Double Ratchet (each message is encrypted to one device's session; the server never
//! sees a private or chain key). Names are read with [`Name`], never one schema's spelling.

use crate::conform::catalog::{quote_literal, Catalog, Column, Constraint, RelKind, Relation};
use crate::conform::outcome::{Check, Kind};
use crate::conform::rules::names::Name;

const K: Kind = Kind::Policy;

pub(crate) fn run(cat: &Catalog) -> Vec<Check> {
    let mut out = Vec::new();
    for rel in cat.tables().filter(|r| r.kind == RelKind::Table) {
        out.extend(no_private_keys(rel));
        out.extend(no_plaintext_beside_ciphertext(rel));
        out.extend(per_device_addressing(rel));
        out.extend(key_length(rel));
        out.extend(keys_vanish_with_device(cat, rel));
        out.extend(one_time_prekey_unique(rel));
        out.extend(signed_prekey_signature(rel));
    }
    out
}

fn column_sql(rel: &Relation, cols: &[&str]) -> String {
    let list: Vec<String> = cols.iter().map(|c| quote_literal(c)).collect();
    format!(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute WHERE attrelid = '{}'::regclass AND attname IN ({});",
        rel.name.sql(),
        list.join(", ")
    )
}

fn constraints_sql(rel: &Relation) -> String {
    format!(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = '{}'::regclass;",
        rel.name.sql()
    )
}

fn checks_on<'r>(rel: &'r Relation, col: &str) -> impl Iterator<Item = &'r Constraint> + 'r {
    let col = col.to_string();
    rel.constraints
        .iter()
        .filter(move |c| c.kind == 'c' && c.columns.contains(&col))
}

/// X3DH/Double Ratchet: private keys (identity, prekeys) and ratchet root/chain keys stay on
/// the device. A server that stores them, even "encrypted", holds what end-to-end
/// encryption exists to keep from it.
fn no_private_keys(rel: &Relation) -> Vec<Check> {
    let t = rel.name.short();
    rel.columns
        .iter()
        .filter(|c| Name::new(&c.name).private_key())
        .map(|c| {
            Check::finding(
                K,
                "policy.no_private_keys",
                format!("{t}.{}", c.name),
                format!(
                    "{t}.{} ({}) holds private key material by its name: a server must never hold a device's private or ratchet keys, encrypted or not",
                    c.name, c.type_name
                ),
                column_sql(rel, &[&c.name]),
            )
        })
        .collect()
}

/// A table that stores a message's ciphertext must not also accept its plaintext, unless a
/// CHECK ties the two together (one or the other).
fn no_plaintext_beside_ciphertext(rel: &Relation) -> Vec<Check> {
    let t = rel.name.short();
    let Some(cipher) = rel.columns.iter().find(|c| Name::new(&c.name).ciphertext()) else {
        return Vec::new();
    };
    rel.columns
        .iter()
        .filter(|c| Name::new(&c.name).plaintext_body() && is_text(c))
        .filter(|c| !checks_on(rel, &c.name).any(|k| k.columns.contains(&cipher.name) || k.columns.len() > 1))
        .map(|c| {
            Check::finding(
                K,
                "policy.no_plaintext_beside_ciphertext",
                format!("{t}.{}", c.name),
                format!(
                    "{t} stores ciphertext in {} and also accepts a plaintext {} ({}) with no CHECK excluding one from the other: an encrypted message can be stored in clear beside it",
                    cipher.name, c.name, c.type_name
                ),
                column_sql(rel, &[&cipher.name, &c.name]) + "\n" + &constraints_sql(rel),
            )
        })
        .collect()
}

fn is_text(c: &Column) -> bool {
    c.type_name == "text" || c.type_name.starts_with("character varying")
}

/// Double Ratchet sessions are per device pair: a ciphertext decrypts on one device only, so a
/// table of message ciphertexts must say which device it is for.
fn per_device_addressing(rel: &Relation) -> Vec<Check> {
    let t = rel.name.short();
    if !Name::new(&rel.name.name).message_table() {
        return Vec::new();
    }
    let Some(cipher) = rel.columns.iter().find(|c| Name::new(&c.name).ciphertext()) else {
        return Vec::new();
    };
    let addressed = rel.columns.iter().any(|c| {
        let n = Name::new(&c.name);
        n.device() && !n.sending_side()
    });
    if addressed {
        return Vec::new();
    }
    vec![Check::finding(
        K,
        "policy.per_device_addressing",
        t.clone(),
        format!(
            "{t} stores message ciphertext ({}) but no column addresses a recipient device: a Double Ratchet ciphertext decrypts on one device only, so each copy must name its device",
            cipher.name
        ),
        format!(
            "SELECT attname FROM pg_attribute WHERE attrelid = '{}'::regclass AND attnum > 0 AND NOT attisdropped;",
            rel.name.sql()
        ),
    )]
}

/// X3DH keys are fixed-size (Curve25519: 32 bytes, 33 with its type byte; XEdDSA/Ed25519
/// signatures: 64): a column of public keys or signatures without a length CHECK accepts a
/// truncated or empty key that every peer will fail to use.
fn key_length(rel: &Relation) -> Vec<Check> {
    let t = rel.name.short();
    rel.columns
        .iter()
        .filter(|c| Name::new(&c.name).public_key_material())
        .filter(|c| c.type_name == "bytea" || is_text(c))
        .filter(|c| {
            !checks_on(rel, &c.name).any(|k| {
                let e = k.def.to_lowercase();
                e.contains("length(") || e.contains("~") || e.contains("like")
            })
        })
        .map(|c| {
            Check::finding(
                K,
                "policy.key_length",
                format!("{t}.{}", c.name),
                format!(
                    "{t}.{} ({}) holds public key material or a signature with no CHECK on its length: an empty or truncated key is stored and handed to peers",
                    c.name, c.type_name
                ),
                constraints_sql(rel),
            )
        })
        .collect()
}

/// A table that holds key material in a column (a table merely named for keys, such as an
/// audit log of key events, does not).
fn holds_keys(rel: &Relation) -> bool {
    rel.columns.iter().any(|c| {
        let cn = Name::new(&c.name);
        (cn.public_key_material() && !cn.signature()) || cn.private_key()
    })
}

fn is_device_table(cat: &Catalog, fk: &Constraint) -> bool {
    fk.ref_table
        .as_ref()
        .and_then(|r| cat.relation(r))
        .is_some_and(|r| Name::new(&r.name.name).device())
}

/// Keys of a removed device must not outlive it: a key table's device reference is a
/// foreign key to the device table whose delete rule removes (CASCADE) or blocks
/// (RESTRICT / NO ACTION) — never SET NULL / SET DEFAULT, and never a bare column.
fn keys_vanish_with_device(cat: &Catalog, rel: &Relation) -> Vec<Check> {
    let t = rel.name.short();
    if Name::new(&rel.name.name).device() || !holds_keys(rel) {
        return Vec::new();
    }
    let fks: Vec<&Constraint> = rel.constraints.iter().filter(|c| c.kind == 'f').collect();
    let mut out = Vec::new();
    for fk in fks.iter().filter(|fk| is_device_table(cat, fk)) {
        if matches!(fk.on_delete, 'n' | 'd') {
            out.push(Check::finding(
                K,
                "policy.keys_vanish_with_device",
                format!("{t}.{}", fk.name),
                format!(
                    "{t} holds key material and {} keeps its rows when the device is deleted: {}",
                    fk.name, fk.def
                ),
                constraints_sql(rel),
            ));
        }
    }
    for c in &rel.columns {
        let n = Name::new(&c.name);
        if !n.device() || n.sending_side() || !n.last_word_is(&["id", "device"]) {
            continue;
        }
        if !fks.iter().any(|fk| fk.columns.contains(&c.name)) {
            out.push(Check::finding(
                K,
                "policy.keys_vanish_with_device",
                format!("{t}.{}", c.name),
                format!(
                    "{t} holds key material for the device in {} but no foreign key ties it to a device: the keys survive the device's removal",
                    c.name
                ),
                constraints_sql(rel),
            ));
        }
    }
    out
}

/// X3DH: a one-time prekey is used once. Two rows with the same device and key id make "which
/// key did the initiator use?" ambiguous, and a re-uploaded id can be handed out twice.
fn one_time_prekey_unique(rel: &Relation) -> Vec<Check> {
    let t = rel.name.short();
    if !Name::new(&rel.name.name).one_time_prekey() {
        return Vec::new();
    }
    let device_cols: Vec<&str> = rel
        .columns
        .iter()
        .filter(|c| Name::new(&c.name).device())
        .map(|c| c.name.as_str())
        .collect();
    let key_cols: Vec<&str> = rel
        .columns
        .iter()
        .filter(|c| Name::new(&c.name).key_id())
        .map(|c| c.name.as_str())
        .collect();
    let unique = rel.indexes.iter().any(|i| {
        i.unique
            && i.predicate.is_none()
            && i.columns.iter().any(|c| device_cols.contains(&c.as_str()))
            && i.columns.iter().any(|c| key_cols.contains(&c.as_str()))
    });
    if unique {
        return Vec::new();
    }
    vec![Check::finding(
        K,
        "policy.one_time_prekey_unique",
        t.clone(),
        format!(
            "{t} holds one-time prekeys but no unique key covers a device column ({}) and a key id column ({}): the same key id can be stored, and handed out, twice for one device",
            if device_cols.is_empty() { "none found".into() } else { device_cols.join(", ") },
            if key_cols.is_empty() { "none found".into() } else { key_cols.join(", ") }
        ),
        format!(
            "SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = '{}'::regclass AND indisunique;",
            rel.name.sql()
        ),
    )]
}

/// X3DH: the initiator verifies the signed prekey's signature with the identity key before
/// using it; a signed prekey stored without a required signature cannot be verified.
fn signed_prekey_signature(rel: &Relation) -> Vec<Check> {
    let t = rel.name.short();
    let table_says = Name::new(&rel.name.name).joined.contains("signedprekey");
    let spk: Vec<&Column> = rel
        .columns
        .iter()
        .filter(|c| {
            let n = Name::new(&c.name);
            n.signed_prekey() || (table_says && n.public_key_material() && !n.signature())
        })
        .collect();
    let Some(first) = spk.first() else {
        return Vec::new();
    };
    let sig = rel.columns.iter().find(|c| Name::new(&c.name).signature());
    let problem = match sig {
        None => "has no signature column".to_string(),
        Some(s) if !s.not_null => format!("has a signature column {} that may be NULL", s.name),
        Some(_) => return Vec::new(),
    };
    vec![Check::finding(
        K,
        "policy.signed_prekey_signature",
        format!("{t}.{}", first.name),
        format!(
            "{t} stores a signed prekey ({}) but {problem}: peers cannot verify it against the identity key",
            first.name
        ),
        column_sql(rel, &[&first.name]),
    )]
}
