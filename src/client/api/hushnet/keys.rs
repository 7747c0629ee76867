//! Our key material in HushNet's bodies and back: the registration of a device, a bundle
//! as X3DH's input, and a session initiation in both directions.

use uuid::Uuid;

use crate::crypto::identity::{self, IdentityKeyPair};
use crate::crypto::prekeys::{OneTimePreKey, SignedPreKey};
use crate::crypto::ratchet::Header;
use crate::crypto::x3dh::{InitialMessage, PreKeyBundle};

use super::codec::{
    b64, key_id, open_first_message, seal_first_message, signed_prekey_from_wire,
    signed_prekey_to_wire, unb64_fixed, FirstMessage,
};
use super::error::HushnetError;
use super::wire::{
    DeviceBundle, OneTimePreKeyBody, PendingSession, RegisterDeviceRequest, SessionInit,
    SignedPreKeyBody,
};

/// Gives prekeys the ids HushNet-side peers will derive for them ([`key_id`]), since
/// HushNet stores no ids. Call before registering, on the device's own copies.
pub fn assign_key_ids(signed: &mut SignedPreKey, one_time: &mut [OneTimePreKey]) {
    signed.id = key_id(&signed.public());
    for k in one_time {
        k.id = key_id(&k.public());
    }
}

/// The registration body of a device with these keys (ids as [`assign_key_ids`] set).
pub fn registration(
    user_id: Uuid,
    enrollment_token: &str,
    identity: &IdentityKeyPair,
    signed: &SignedPreKey,
    one_time: &[OneTimePreKey],
    label: &str,
) -> RegisterDeviceRequest {
    RegisterDeviceRequest {
        user_id,
        identity_pubkey: b64(&identity.public()),
        prekey_pubkey: b64(&identity.dh_key_pair().public()),
        signed_prekey: SignedPreKeyBody {
            key: signed_prekey_to_wire(&signed.public()),
            signature: b64(&signed.signature),
        },
        one_time_prekeys: one_time
            .iter()
            .map(|k| OneTimePreKeyBody {
                key: b64(&k.public()),
            })
            .collect(),
        device_label: label.to_string(),
        push_token: String::new(),
        enrollment_token: enrollment_token.to_string(),
    }
}

/// X3DH's input from one HushNet bundle, taking the **first** one-time prekey listed, as
/// HushNet's own client does (`one_time_prekeys[0]`; the server hands out the whole list
/// and removes none, so every initiator gets the same one). The signature is not checked
/// here: `x3dh::initiate` does.
pub fn prekey_bundle(bundle: &DeviceBundle) -> Result<PreKeyBundle, HushnetError> {
    let signed_prekey = signed_prekey_from_wire(&bundle.signed_prekey_pub)?;
    let one_time_prekey = match bundle.one_time_prekeys.first() {
        Some(k) => {
            let key = unb64_fixed::<32>("one_time_prekeys[0]", k)?;
            Some((key_id(&key), key))
        }
        None => None,
    };
    Ok(PreKeyBundle {
        identity_key: unb64_fixed::<32>("identity_pubkey", &bundle.identity_pubkey)?,
        signed_prekey_id: key_id(&signed_prekey),
        signed_prekey,
        signed_prekey_signature: unb64_fixed::<64>("signed_prekey_sig", &bundle.signed_prekey_sig)?,
        one_time_prekey,
    })
}

/// The `sessions_init` entry for one recipient device after `x3dh::initiate` (with the
/// one-time prekey `one_time` it used, if any) and the first `Session::encrypt`.
pub fn session_init(
    message_id: Uuid,
    recipient_device_id: Uuid,
    one_time: Option<[u8; 32]>,
    initial: &InitialMessage,
    header: &Header,
    ciphertext: &[u8],
) -> Result<SessionInit, HushnetError> {
    Ok(SessionInit {
        recipient_device_id,
        ephemeral_pubkey: b64(&initial.ephemeral_key),
        sender_prekey_pub: b64(&identity_x25519(&initial.identity_key)?),
        otpk_used: one_time.map(|k| b64(&k)).unwrap_or_default(),
        ciphertext: seal_first_message(message_id, initial, header, ciphertext),
    })
}

/// The first message of a pending session, its HushNet fields checked against the sealed
/// initial message (they must name the same `EK_A`, `IK_A` and one-time prekey).
pub fn first_message(pending: &PendingSession) -> Result<FirstMessage, HushnetError> {
    let opk = match pending.otpk_used.as_str() {
        "" => None,
        k => Some(unb64_fixed::<32>("otpk_used", k)?),
    };
    let first = open_first_message(&pending.ciphertext, opk.is_some())?;
    let mismatch = |field: &'static str| {
        HushnetError::encoding(field, "differs from the sealed X3DH initial message")
    };
    if unb64_fixed::<32>("ephemeral_pubkey", &pending.ephemeral_pubkey)?
        != first.initial.ephemeral_key
    {
        return Err(mismatch("ephemeral_pubkey"));
    }
    if unb64_fixed::<32>("sender_prekey_pub", &pending.sender_prekey_pub)?
        != identity_x25519(&first.initial.identity_key)?
    {
        return Err(mismatch("sender_prekey_pub"));
    }
    if opk.map(|k| key_id(&k)) != first.initial.one_time_prekey_id {
        return Err(mismatch("otpk_used"));
    }
    Ok(first)
}

fn identity_x25519(ed25519: &[u8; 32]) -> Result<[u8; 32], HushnetError> {
    identity::x25519_public(ed25519)
        .map_err(|e| HushnetError::encoding("identity_pubkey", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::prekeys::generate_one_time_batch;
    use crate::crypto::ratchet::Session;
    use crate::crypto::x3dh;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    struct Dev {
        identity: IdentityKeyPair,
        signed: SignedPreKey,
        one_time: Vec<OneTimePreKey>,
    }

    fn device(rng: &mut ChaCha20Rng) -> Dev {
        let identity = IdentityKeyPair::generate(rng);
        let mut signed = SignedPreKey::generate(&identity, 1, rng);
        let mut one_time = generate_one_time_batch(1, 3, rng);
        assign_key_ids(&mut signed, &mut one_time);
        Dev {
            identity,
            signed,
            one_time,
        }
    }

    /// HushNet's `verify_signed_prekey_signature`: Ed25519 `verify` by the decoded
    /// identity key over the decoded `signed_prekey.key`.
    fn hushnet_accepts(req: &RegisterDeviceRequest) -> bool {
        let ik: [u8; 32] = STANDARD
            .decode(&req.identity_pubkey)
            .unwrap()
            .try_into()
            .unwrap();
        let spk = STANDARD.decode(&req.signed_prekey.key).unwrap();
        let sig: [u8; 64] = STANDARD
            .decode(&req.signed_prekey.signature)
            .unwrap()
            .try_into()
            .unwrap();
        VerifyingKey::from_bytes(&ik)
            .unwrap()
            .verify(&spk, &Signature::from_bytes(&sig))
            .is_ok()
    }

    /// What `GET /users/{id}/keys` returns for a device registered with `req`.
    fn bundle_of(req: &RegisterDeviceRequest) -> DeviceBundle {
        DeviceBundle {
            device_id: Uuid::from_u128(2),
            identity_pubkey: req.identity_pubkey.clone(),
            prekey_pubkey: req.prekey_pubkey.clone(),
            signed_prekey_pub: req.signed_prekey.key.clone(),
            signed_prekey_sig: req.signed_prekey.signature.clone(),
            one_time_prekeys: req.one_time_prekeys.iter().map(|k| k.key.clone()).collect(),
        }
    }

    #[test]
    fn registration_passes_hushnet_signature_check_and_names_the_x25519_identity() {
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        let d = device(&mut rng);
        let req = registration(
            Uuid::from_u128(1),
            "jwt",
            &d.identity,
            &d.signed,
            &d.one_time,
            "vd",
        );
        assert!(hushnet_accepts(&req));
        assert_eq!(
            STANDARD.decode(&req.prekey_pubkey).unwrap(),
            d.identity.dh_key_pair().public()
        );
        let mut tampered = req.clone();
        tampered.signed_prekey.key = b64(&d.signed.public());
        assert!(
            !hushnet_accepts(&tampered),
            "raw 32 bytes are not what we signed"
        );
    }

    #[test]
    fn a_session_set_up_through_hushnet_fields_decrypts() {
        let mut rng = ChaCha20Rng::seed_from_u64(32);
        let alice = device(&mut rng);
        let mut bob = device(&mut rng);
        let req = registration(
            Uuid::from_u128(1),
            "t",
            &bob.identity,
            &bob.signed,
            &bob.one_time,
            "b",
        );
        let bundle = prekey_bundle(&bundle_of(&req)).unwrap();
        assert_eq!(bundle.one_time_prekey.unwrap().1, bob.one_time[0].public());

        let (initial, x3dh_out) = x3dh::initiate(&alice.identity, &bundle, &mut rng).unwrap();
        let mut session = Session::initiator(&x3dh_out, &bundle.signed_prekey, &mut rng).unwrap();
        let (header, ct) = session.encrypt(b"hello", &mut rng).unwrap();
        let id = Uuid::from_u128(5);
        let opk = bundle.one_time_prekey.map(|(_, k)| k);
        let init = session_init(id, Uuid::from_u128(2), opk, &initial, &header, &ct).unwrap();

        let pending = PendingSession {
            id: Uuid::from_u128(9),
            sender_device_id: Uuid::from_u128(3),
            recipient_device_id: init.recipient_device_id,
            ephemeral_pubkey: init.ephemeral_pubkey.clone(),
            sender_prekey_pub: init.sender_prekey_pub.clone(),
            otpk_used: init.otpk_used.clone(),
            ciphertext: init.ciphertext.clone(),
            created_at: None,
        };
        let first = first_message(&pending).unwrap();
        assert_eq!(first.message_id, id);
        let out = x3dh::respond(
            &bob.identity,
            &bob.signed,
            &mut bob.one_time,
            &first.initial,
        )
        .unwrap();
        let mut theirs = Session::responder(&out, &bob.signed);
        assert_eq!(
            theirs
                .decrypt(&first.header, &first.ciphertext, &mut rng)
                .unwrap(),
            b"hello"
        );
        assert_eq!(bob.one_time.len(), 2, "the one-time prekey used is gone");

        let mut lying = pending;
        lying.ephemeral_pubkey = b64(&[1; 32]);
        assert!(first_message(&lying).is_err());
    }
}
