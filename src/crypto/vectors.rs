//! Deterministic test vectors (`e2ee-harness vectors --seed N`), so an independent
//! implementation of the X3DH and Double Ratchet specifications can check itself against
//! ours. Every value is produced by the same code paths the virtual clients use, driven by
//! `ChaCha20Rng::seed_from_u64(seed)`; bytes are lowercase hex.
//!
//! Conversation shape: message `i` is sent by Alice when `(i / 2) % 2 == 0`, else by Bob
//! (A, A, B, B, A, A, …), so the vectors hold messages on one chain and messages that start
//! a new DH ratchet step. Each message also names the sender's ratchet private key, so every
//! `DH(DHs, DHr)` can be recomputed.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use super::cipher::MessageKeys;
use super::identity::IdentityKeyPair;
use super::keypair::KeyPair;
use super::params;
use super::prekeys::{encode_public, verify_signed_prekey, OneTimePreKey, SignedPreKey};
use super::ratchet::Session;
use super::x3dh::{self, PreKeyBundle};

/// The id the vectors give Bob's signed prekey.
pub(crate) const SIGNED_PREKEY_ID: u32 = 1;
/// The id the vectors give Bob's one-time prekey.
pub(crate) const ONE_TIME_PREKEY_ID: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Vectors {
    pub(crate) description: &'static str,
    pub(crate) seed: u64,
    pub(crate) params: Params,
    pub(crate) alice: Alice,
    pub(crate) bob: Bob,
    pub(crate) x3dh: X3dh,
    /// The same keys without the one-time prekey (no DH4).
    pub(crate) x3dh_without_one_time_prekey: X3dh,
    pub(crate) ratchet: Ratchet,
}

/// The constants of [`params`], so a reader need not open the source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Params {
    pub(crate) identity_keys: &'static str,
    pub(crate) x3dh_curve: &'static str,
    pub(crate) x3dh_hash: &'static str,
    pub(crate) x3dh_info: String,
    pub(crate) x3dh_kdf_f: String,
    pub(crate) x3dh_kdf_salt: String,
    pub(crate) encode_curve_type: String,
    pub(crate) kdf_rk_info: String,
    pub(crate) kdf_ck_message_key_constant: String,
    pub(crate) kdf_ck_chain_key_constant: String,
    pub(crate) message_cipher: &'static str,
    pub(crate) encrypt_hkdf_info: String,
    pub(crate) encrypt_hkdf_salt: String,
    pub(crate) header_encoding: &'static str,
    pub(crate) message_associated_data: &'static str,
    pub(crate) max_skip: u32,
    pub(crate) max_stored_skipped_keys: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Identity {
    /// RFC 8032 private key (seed).
    pub(crate) ed25519_private: String,
    pub(crate) ed25519_public: String,
    /// First 32 bytes of SHA-512(ed25519_private); X25519 clamps it.
    pub(crate) x25519_private: String,
    /// Montgomery u-coordinate of `ed25519_public`.
    pub(crate) x25519_public: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Key {
    pub(crate) private: String,
    pub(crate) public: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Alice {
    pub(crate) identity: Identity,
    /// `EK_A`.
    pub(crate) ephemeral: Key,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SignedPreKeyVector {
    pub(crate) id: u32,
    pub(crate) private: String,
    pub(crate) public: String,
    /// `Encode(SPK)`: the bytes that are signed.
    pub(crate) encoded: String,
    /// Ed25519 by Bob's identity key over `encoded`.
    pub(crate) signature: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OneTimePreKeyVector {
    pub(crate) id: u32,
    pub(crate) private: String,
    pub(crate) public: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Bob {
    pub(crate) identity: Identity,
    pub(crate) signed_prekey: SignedPreKeyVector,
    pub(crate) one_time_prekey: OneTimePreKeyVector,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct X3dh {
    pub(crate) dh1: String,
    pub(crate) dh2: String,
    pub(crate) dh3: String,
    /// `null` without a one-time prekey.
    pub(crate) dh4: Option<String>,
    /// `F || DH1 || DH2 || DH3 [|| DH4]`, the HKDF input key material.
    pub(crate) kdf_input: String,
    /// `SK`.
    pub(crate) shared_secret: String,
    /// `AD = Encode(IK_A) || Encode(IK_B)`.
    pub(crate) associated_data: String,
    /// `IK_A || EK_A || spk_id || opk_id?` as sent.
    pub(crate) initial_message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Ratchet {
    /// Alice's first ratchet key pair (`RatchetInitAlice`'s `GENERATE_DH()`).
    pub(crate) alice_initial_ratchet_key: Key,
    pub(crate) messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Message {
    pub(crate) index: usize,
    /// "alice" or "bob".
    pub(crate) sender: &'static str,
    /// Private key of `header.dh`.
    pub(crate) sender_ratchet_private: String,
    pub(crate) header: HeaderVector,
    /// `CONCAT(AD, header)`, authenticated by the HMAC.
    pub(crate) associated_data: String,
    pub(crate) message_key: String,
    pub(crate) encryption_key: String,
    pub(crate) auth_key: String,
    pub(crate) iv: String,
    pub(crate) plaintext: String,
    pub(crate) plaintext_utf8: String,
    /// AES-256-CBC ciphertext with the 32-byte HMAC appended.
    pub(crate) ciphertext: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct HeaderVector {
    pub(crate) dh: String,
    pub(crate) pn: u32,
    pub(crate) n: u32,
    /// `dh || pn (u32 BE) || n (u32 BE)`.
    pub(crate) bytes: String,
}

/// The vectors of `seed` with `messages` ratchet messages. Deterministic: the same arguments
/// give the same vectors on every run and machine.
pub(crate) fn generate(seed: u64, messages: usize) -> Vectors {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(&bob_id, SIGNED_PREKEY_ID, &mut rng);
    let opk = OneTimePreKey::generate(ONE_TIME_PREKEY_ID, &mut rng);
    let ephemeral = KeyPair::generate(&mut rng);
    let alice_ratchet = KeyPair::generate(&mut rng);

    let bundle = PreKeyBundle {
        identity_key: bob_id.public(),
        signed_prekey_id: spk.id,
        signed_prekey: spk.public(),
        signed_prekey_signature: spk.signature,
        one_time_prekey: Some((opk.id, opk.public())),
    };
    verify_signed_prekey(
        &bundle.identity_key,
        &bundle.signed_prekey,
        &bundle.signed_prekey_signature,
    )
    .expect("freshly signed prekey verifies");
    let x3dh_with = agreement(&alice_id, &bundle, &ephemeral);
    let x3dh_without = agreement(
        &alice_id,
        &PreKeyBundle {
            one_time_prekey: None,
            ..bundle.clone()
        },
        &ephemeral,
    );

    let (_, a_out, _) =
        x3dh::initiate_with_ephemeral(&alice_id, &bundle, &ephemeral).expect("honest bundle");
    let mut one_time = vec![opk.clone()];
    let b_out = x3dh::respond(
        &bob_id,
        &spk,
        &mut one_time,
        &x3dh::InitialMessage::from_bytes(&hex::decode(&x3dh_with.initial_message).expect("hex"))
            .expect("own encoding"),
    )
    .expect("honest initial message");
    assert_eq!(a_out.shared_secret, b_out.shared_secret, "X3DH sides agree");

    let mut alice = Session::initiator_with_key(&a_out, &spk.public(), alice_ratchet.clone())
        .expect("honest prekey");
    let mut bob = Session::responder(&b_out, &spk);
    let out: Vec<Message> = (0..messages)
        .map(|index| {
            let alice_sends = (index / 2) % 2 == 0;
            let (sender, name, receiver) = if alice_sends {
                (&mut alice, "alice", &mut bob)
            } else {
                (&mut bob, "bob", &mut alice)
            };
            let plaintext = format!("message {index} from {name} (seed {seed})");
            let ad = &a_out.associated_data;
            exchange(index, name, sender, receiver, plaintext, ad, &mut rng)
        })
        .collect();

    Vectors {
        description: "e2ee-harness X3DH + Double Ratchet test vectors; see src/crypto/vectors.rs and src/crypto/params.rs",
        seed,
        params: params_vector(),
        alice: Alice { identity: identity_vector(&alice_id), ephemeral: key_vector(&ephemeral) },
        bob: bob_vector(&bob_id, &spk, &opk),
        x3dh: x3dh_with,
        x3dh_without_one_time_prekey: x3dh_without,
        ratchet: Ratchet { alice_initial_ratchet_key: key_vector(&alice_ratchet), messages: out },
    }
}

/// Message `index` from `sender` (called `name`) to `receiver`, decrypted and checked, with
/// every key that produced it. `associated_data` is the X3DH AD (the header is appended).
fn exchange(
    index: usize,
    name: &'static str,
    sender: &mut Session,
    receiver: &mut Session,
    plaintext: String,
    associated_data: &[u8],
    rng: &mut ChaCha20Rng,
) -> Message {
    let sender_ratchet_private = hex::encode(sender.ratchet_key_pair().secret_bytes());
    let (header, ciphertext, mk) = sender
        .encrypt_traced(plaintext.as_bytes())
        .expect("sender has a chain");
    let decrypted = receiver
        .decrypt(&header, &ciphertext, rng)
        .expect("receiver decrypts");
    assert_eq!(decrypted, plaintext.as_bytes(), "round trip in the vectors");
    let keys = MessageKeys::derive(mk.as_bytes());
    let header_bytes = header.to_bytes();
    let mut ad = associated_data.to_vec();
    ad.extend_from_slice(&header_bytes);
    Message {
        index,
        sender: name,
        sender_ratchet_private,
        header: HeaderVector {
            dh: hex::encode(header.dh),
            pn: header.pn,
            n: header.n,
            bytes: hex::encode(header_bytes),
        },
        associated_data: hex::encode(ad),
        message_key: hex::encode(mk.as_bytes()),
        encryption_key: hex::encode(keys.encryption_key()),
        auth_key: hex::encode(keys.auth_key()),
        iv: hex::encode(keys.iv()),
        plaintext: hex::encode(plaintext.as_bytes()),
        plaintext_utf8: plaintext,
        ciphertext: hex::encode(ciphertext),
    }
}

/// Bob's published keys, private halves included.
fn bob_vector(bob_id: &IdentityKeyPair, spk: &SignedPreKey, opk: &OneTimePreKey) -> Bob {
    Bob {
        identity: identity_vector(bob_id),
        signed_prekey: SignedPreKeyVector {
            id: spk.id,
            private: hex::encode(spk.key_pair.secret_bytes()),
            public: hex::encode(spk.public()),
            encoded: hex::encode(encode_public(&spk.public())),
            signature: hex::encode(spk.signature),
        },
        one_time_prekey: OneTimePreKeyVector {
            id: opk.id,
            private: hex::encode(opk.key_pair.secret_bytes()),
            public: hex::encode(opk.public()),
        },
    }
}

fn agreement(alice: &IdentityKeyPair, bundle: &PreKeyBundle, ephemeral: &KeyPair) -> X3dh {
    let (msg, out, transcript) =
        x3dh::initiate_with_ephemeral(alice, bundle, ephemeral).expect("honest bundle");
    let dh: Vec<String> = transcript
        .dh
        .iter()
        .map(|d| hex::encode(d.as_bytes()))
        .collect();
    let mut kdf_input = params::X3DH_KDF_F.to_vec();
    for d in &transcript.dh {
        kdf_input.extend_from_slice(d.as_bytes());
    }
    X3dh {
        dh1: dh[0].clone(),
        dh2: dh[1].clone(),
        dh3: dh[2].clone(),
        dh4: dh.get(3).cloned(),
        kdf_input: hex::encode(kdf_input),
        shared_secret: hex::encode(out.shared_secret),
        associated_data: hex::encode(&out.associated_data),
        initial_message: hex::encode(msg.to_bytes()),
    }
}

fn identity_vector(id: &IdentityKeyPair) -> Identity {
    Identity {
        ed25519_private: hex::encode(id.seed()),
        ed25519_public: hex::encode(id.public()),
        x25519_private: hex::encode(id.dh_key_pair().secret_bytes()),
        x25519_public: hex::encode(id.dh_key_pair().public()),
    }
}

fn key_vector(k: &KeyPair) -> Key {
    Key {
        private: hex::encode(k.secret_bytes()),
        public: hex::encode(k.public()),
    }
}

fn params_vector() -> Params {
    Params {
        identity_keys:
            "Ed25519, converted to X25519 for DH (OMEMO-style); see src/crypto/identity.rs",
        x3dh_curve: params::X3DH_CURVE,
        x3dh_hash: params::X3DH_HASH,
        x3dh_info: hex::encode(params::X3DH_INFO),
        x3dh_kdf_f: hex::encode(params::X3DH_KDF_F),
        x3dh_kdf_salt: hex::encode(params::X3DH_KDF_SALT),
        encode_curve_type: hex::encode([params::ENCODE_CURVE_TYPE_X25519]),
        kdf_rk_info: hex::encode(params::KDF_RK_INFO),
        kdf_ck_message_key_constant: hex::encode([params::KDF_CK_MESSAGE_KEY_CONSTANT]),
        kdf_ck_chain_key_constant: hex::encode([params::KDF_CK_CHAIN_KEY_CONSTANT]),
        message_cipher: params::MESSAGE_CIPHER,
        encrypt_hkdf_info: hex::encode(params::ENCRYPT_HKDF_INFO),
        encrypt_hkdf_salt: hex::encode(params::ENCRYPT_HKDF_SALT),
        header_encoding: "dh (32) || pn (u32 big-endian) || n (u32 big-endian)",
        message_associated_data: "AD || header bytes",
        max_skip: params::MAX_SKIP,
        max_stored_skipped_keys: params::MAX_STORED_SKIPPED_KEYS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_vectors_other_seed_other_keys() {
        let a = generate(7, 6);
        assert_eq!(a, generate(7, 6));
        let b = generate(8, 6);
        assert_ne!(a.alice.identity, b.alice.identity);
        assert_ne!(a.bob.signed_prekey, b.bob.signed_prekey);
        assert_ne!(a.x3dh.shared_secret, b.x3dh.shared_secret);
        assert_ne!(
            a.ratchet.messages[0].ciphertext,
            b.ratchet.messages[0].ciphertext
        );
        assert_eq!(a.ratchet.messages.len(), 6);
        let senders: Vec<_> = a.ratchet.messages.iter().map(|m| m.sender).collect();
        assert_eq!(senders, ["alice", "alice", "bob", "bob", "alice", "alice"]);
        assert!(a.x3dh.dh4.is_some() && a.x3dh_without_one_time_prekey.dh4.is_none());
        assert_ne!(
            a.x3dh.shared_secret,
            a.x3dh_without_one_time_prekey.shared_secret
        );
    }
}
