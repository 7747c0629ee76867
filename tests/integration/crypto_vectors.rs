//! The `vectors` command: deterministic per seed, different across seeds, and re-derivable
//! from the vector's own keys with the primitives alone (x25519-dalek, ed25519-dalek, sha2,
//! hkdf, hmac, aes, cbc) — an independent reading of the specifications, not our code.

use std::process::Command;

use aes::Aes256;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use ed25519_dalek::{Signature, VerifyingKey};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use x25519_dalek::{x25519, X25519_BASEPOINT_BYTES};

fn vectors_cli(args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
        .arg("vectors")
        .args(args)
        .output()
        .expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn vectors(seed: u64, messages: usize) -> Value {
    let (code, stdout, stderr) = vectors_cli(&[
        "--seed",
        &seed.to_string(),
        "--messages",
        &messages.to_string(),
    ]);
    assert_eq!(code, 0, "vectors failed: {stderr}");
    serde_json::from_slice(&stdout).expect("stdout is JSON")
}

fn bytes(v: &Value, path: &str) -> Vec<u8> {
    let mut at = v;
    for part in path.split('.') {
        at = match part.parse::<usize>() {
            Ok(i) => &at[i],
            Err(_) => &at[part],
        };
    }
    hex::decode(
        at.as_str()
            .unwrap_or_else(|| panic!("{path} is not a string")),
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn b32(v: &Value, path: &str) -> [u8; 32] {
    bytes(v, path)
        .try_into()
        .unwrap_or_else(|_| panic!("{path} is not 32 bytes"))
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

fn hmac(key: &[u8], data: &[&[u8]]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    for d in data {
        m.update(d);
    }
    m.finalize().into_bytes().to_vec()
}

#[test]
fn same_seed_gives_the_same_bytes_and_another_seed_other_keys() {
    let (c1, a, _) = vectors_cli(&["--seed", "42"]);
    let (c2, b, _) = vectors_cli(&["--seed", "42"]);
    let (c3, c, _) = vectors_cli(&["--seed", "43"]);
    assert_eq!((c1, c2, c3), (0, 0, 0));
    assert_eq!(a, b, "deterministic for one seed");
    let (a, c): (Value, Value) = (
        serde_json::from_slice(&a).unwrap(),
        serde_json::from_slice(&c).unwrap(),
    );
    for path in [
        "alice.identity.ed25519_private",
        "bob.signed_prekey.private",
        "x3dh.shared_secret",
        "ratchet.messages.0.message_key",
    ] {
        assert_ne!(
            bytes(&a, path),
            bytes(&c, path),
            "{path} must differ across seeds"
        );
    }
    assert_eq!(
        a["ratchet"]["messages"].as_array().unwrap().len(),
        4,
        "default --messages is 4"
    );
}

#[test]
fn bad_arguments_exit_2_and_print_nothing_on_stdout() {
    for args in [
        &["--seed", "seven"][..],
        &["--messages", "many"],
        &["--messages", "10001"],
    ] {
        let (code, stdout, stderr) = vectors_cli(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}");
        assert!(
            stderr.contains("seed") || stderr.contains("messages"),
            "{args:?} names the flag: {stderr}"
        );
    }
}

#[test]
fn identity_conversion_and_signature_recompute_from_the_primitives() {
    let v = vectors(5, 1);
    for who in ["alice", "bob"] {
        let seed = b32(&v, &format!("{who}.identity.ed25519_private"));
        let x_priv: [u8; 32] = Sha512::digest(seed)[..32].try_into().unwrap();
        assert_eq!(x_priv, b32(&v, &format!("{who}.identity.x25519_private")));
        let x_pub = x25519(x_priv, X25519_BASEPOINT_BYTES);
        assert_eq!(x_pub, b32(&v, &format!("{who}.identity.x25519_public")));
        let ed =
            VerifyingKey::from_bytes(&b32(&v, &format!("{who}.identity.ed25519_public"))).unwrap();
        assert_eq!(
            ed.to_montgomery().to_bytes(),
            x_pub,
            "birational map agrees with SHA-512 derivation"
        );
        assert_eq!(
            ed,
            ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key()
        );
    }
    let spk = b32(&v, "bob.signed_prekey.public");
    assert_eq!(
        spk,
        x25519(b32(&v, "bob.signed_prekey.private"), X25519_BASEPOINT_BYTES)
    );
    let mut encoded = vec![0x05];
    encoded.extend_from_slice(&spk);
    assert_eq!(bytes(&v, "bob.signed_prekey.encoded"), encoded);
    let sig = Signature::from_bytes(&bytes(&v, "bob.signed_prekey.signature").try_into().unwrap());
    let bob_ik = VerifyingKey::from_bytes(&b32(&v, "bob.identity.ed25519_public")).unwrap();
    bob_ik
        .verify_strict(&encoded, &sig)
        .expect("signature over Encode(SPK)");
}

#[test]
fn x3dh_secret_and_first_message_keys_recompute_from_the_primitives() {
    let v = vectors(9, 6);
    let ik_a = b32(&v, "alice.identity.x25519_private");
    let ek_a = b32(&v, "alice.ephemeral.private");
    let ik_b_pub = b32(&v, "bob.identity.x25519_public");
    let spk_b_pub = b32(&v, "bob.signed_prekey.public");
    let opk_b_pub = b32(&v, "bob.one_time_prekey.public");
    assert_eq!(ek_a.len(), 32);
    assert_eq!(
        x25519(ek_a, X25519_BASEPOINT_BYTES),
        b32(&v, "alice.ephemeral.public")
    );

    // X3DH §3.3 from Alice's side.
    let dh = [
        x25519(ik_a, spk_b_pub),
        x25519(ek_a, ik_b_pub),
        x25519(ek_a, spk_b_pub),
        x25519(ek_a, opk_b_pub),
    ];
    // ... and §3.4 from Bob's side gives the same values.
    let ik_a_pub = b32(&v, "alice.identity.x25519_public");
    let ek_a_pub = b32(&v, "alice.ephemeral.public");
    assert_eq!(
        dh[0],
        x25519(b32(&v, "bob.signed_prekey.private"), ik_a_pub)
    );
    assert_eq!(
        dh[1],
        x25519(b32(&v, "bob.identity.x25519_private"), ek_a_pub)
    );
    assert_eq!(
        dh[2],
        x25519(b32(&v, "bob.signed_prekey.private"), ek_a_pub)
    );
    assert_eq!(
        dh[3],
        x25519(b32(&v, "bob.one_time_prekey.private"), ek_a_pub)
    );
    for (i, d) in dh.iter().enumerate() {
        assert_eq!(d, &b32(&v, &format!("x3dh.dh{}", i + 1)), "DH{}", i + 1);
    }
    let mut km = vec![0xFFu8; 32];
    dh.iter().for_each(|d| km.extend_from_slice(d));
    assert_eq!(bytes(&v, "x3dh.kdf_input"), km);
    let sk = hkdf(&[0u8; 32], &km, b"e2ee-harness X3DH", 32);
    assert_eq!(sk, bytes(&v, "x3dh.shared_secret"), "SK with DH4");
    let sk3 = hkdf(&[0u8; 32], &km[..32 * 4], b"e2ee-harness X3DH", 32);
    assert_eq!(
        sk3,
        bytes(&v, "x3dh_without_one_time_prekey.shared_secret"),
        "SK without DH4"
    );
    let mut ad = vec![0x05];
    ad.extend_from_slice(&ik_a_pub);
    ad.push(0x05);
    ad.extend_from_slice(&ik_b_pub);
    assert_eq!(bytes(&v, "x3dh.associated_data"), ad);
    let mut initial = bytes(&v, "alice.identity.ed25519_public");
    initial.extend_from_slice(&ek_a_pub);
    initial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
    assert_eq!(bytes(&v, "x3dh.initial_message"), initial);

    // RatchetInitAlice: RK, CKs = KDF_RK(SK, DH(DHs, SPK_B)); then KDF_CK twice.
    let dhs = b32(&v, "ratchet.alice_initial_ratchet_key.private");
    assert_eq!(b32(&v, "ratchet.messages.0.sender_ratchet_private"), dhs);
    let okm = hkdf(&sk, &x25519(dhs, spk_b_pub), b"e2ee-harness Ratchet", 64);
    let ck0 = &okm[32..];
    let mk0 = hmac(ck0, &[&[0x01]]);
    assert_eq!(
        mk0,
        bytes(&v, "ratchet.messages.0.message_key"),
        "first message key"
    );
    let ck1 = hmac(ck0, &[&[0x02]]);
    assert_eq!(
        hmac(&ck1, &[&[0x01]]),
        bytes(&v, "ratchet.messages.1.message_key"),
        "second message key, same chain"
    );

    // Bob's first reply: his DH ratchet step. Receiving: KDF_RK(SK, DH(SPK_B, DHr)) gives
    // Alice's (RK, CK) again; sending: KDF_RK(RK, DH(new DHs, DHr)).
    let alice_dh_pub = b32(&v, "ratchet.messages.0.header.dh");
    let okm_recv = hkdf(
        &sk,
        &x25519(b32(&v, "bob.signed_prekey.private"), alice_dh_pub),
        b"e2ee-harness Ratchet",
        64,
    );
    assert_eq!(okm_recv, okm, "both sides derive the same first chain");
    let bob_dhs = b32(&v, "ratchet.messages.2.sender_ratchet_private");
    assert_eq!(
        x25519(bob_dhs, X25519_BASEPOINT_BYTES),
        b32(&v, "ratchet.messages.2.header.dh")
    );
    let okm_send = hkdf(
        &okm_recv[..32],
        &x25519(bob_dhs, alice_dh_pub),
        b"e2ee-harness Ratchet",
        64,
    );
    assert_eq!(
        hmac(&okm_send[32..], &[&[0x01]]),
        bytes(&v, "ratchet.messages.2.message_key"),
        "message key after a DH step"
    );
    assert_eq!(v["ratchet"]["messages"][2]["header"]["pn"], 0);
    assert_eq!(v["ratchet"]["messages"][4]["header"]["pn"], 2);

    // §5.2 ENCRYPT for every message: HKDF → keys, HMAC over AD ‖ header ‖ ciphertext, AES-256-CBC.
    for (i, m) in v["ratchet"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let mk = bytes(m, "message_key");
        let keys = hkdf(&[0u8; 32], &mk, b"e2ee-harness MessageKeys", 80);
        assert_eq!(keys[..32], bytes(m, "encryption_key"));
        assert_eq!(keys[32..64], bytes(m, "auth_key"));
        assert_eq!(keys[64..], bytes(m, "iv"));
        let mut header = bytes(m, "header.dh");
        header.extend_from_slice(&(m["header"]["pn"].as_u64().unwrap() as u32).to_be_bytes());
        header.extend_from_slice(&(m["header"]["n"].as_u64().unwrap() as u32).to_be_bytes());
        assert_eq!(header, bytes(m, "header.bytes"));
        let mut msg_ad = ad.clone();
        msg_ad.extend_from_slice(&header);
        assert_eq!(msg_ad, bytes(m, "associated_data"));
        let ct = bytes(m, "ciphertext");
        let (body, tag) = ct.split_at(ct.len() - 32);
        assert_eq!(
            hmac(&keys[32..64], &[&msg_ad, body]),
            tag,
            "message {i} MAC"
        );
        let pt = cbc::Decryptor::<Aes256>::new_from_slices(&keys[..32], &keys[64..])
            .unwrap()
            .decrypt_padded_vec_mut::<Pkcs7>(body)
            .unwrap();
        assert_eq!(pt, bytes(m, "plaintext"), "message {i} plaintext");
        assert_eq!(pt, m["plaintext_utf8"].as_str().unwrap().as_bytes());
    }
}
