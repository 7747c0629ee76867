//! A conversation through a running HushNet backend, end to end with our real X3DH and
//! Double Ratchet: register two devices, fetch a bundle, set a session up through the
//! sessions endpoints, send a message, hear the WebSocket notification, fetch and decrypt.
//!
//! HushNet is third-party code this project does not build, so the test is `#[ignore]`d and
//! reads the node's URL from `HUSHNET_URL` (docs/targets.md says how to start one):
//! `HUSHNET_URL=http://127.0.0.1:18080 cargo test --lib hushnet::live -- --ignored`.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use uuid::Uuid;

use crate::crypto::identity::IdentityKeyPair;
use crate::crypto::prekeys::{generate_one_time_batch, OneTimePreKey, SignedPreKey};
use crate::crypto::ratchet::Session;
use crate::crypto::x3dh;

use super::auth::AuthHeaders;
use super::codec::{b64, unb64, HeaderJson};
use super::events::{Event, EventStream, Received};
use super::keys::{assign_key_ids, first_message, prekey_bundle, registration, session_init};
use super::wire::{
    ConfirmSessionRequest, CreateSessionRequest, MessagePayload, SendMessageRequest,
};
use super::HushnetClient;

struct Party {
    user: Uuid,
    device: Uuid,
    identity: IdentityKeyPair,
    signed: SignedPreKey,
    one_time: Vec<OneTimePreKey>,
}

impl Party {
    fn auth(&self) -> AuthHeaders {
        AuthHeaders::now(&self.identity)
    }
}

async fn enroll(api: &HushnetClient, name: &str, rng: &mut ChaCha20Rng) -> Party {
    let username = format!("{name}-{}", Uuid::new_v4().simple());
    let created = api.create_user(&username).await.expect("create user");
    let identity = IdentityKeyPair::generate(rng);
    let mut signed = SignedPreKey::generate(&identity, 0, rng);
    let mut one_time = generate_one_time_batch(0, 3, rng);
    assign_key_ids(&mut signed, &mut one_time);
    let body = registration(
        created.user.id,
        &created.enrollment_token,
        &identity,
        &signed,
        &one_time,
        name,
    );
    let device = api.register_device(&body).await.expect("register device");
    assert_eq!(device.identity_pubkey, b64(&identity.public()));
    Party {
        user: created.user.id,
        device: device.id,
        identity,
        signed,
        one_time,
    }
}

async fn next_event(ws: &mut EventStream) -> Event {
    let received = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an event within 10 s")
        .expect("stream open");
    match received {
        Received::Event(e) => e,
        other => panic!("expected a HushNet event, got {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs a running HushNet backend: set HUSHNET_URL"]
async fn a_conversation_through_hushnet_decrypts() {
    let Ok(url) = std::env::var("HUSHNET_URL") else {
        panic!("set HUSHNET_URL to a running HushNet backend (docs/targets.md)");
    };
    let api = HushnetClient::new(&url, Duration::from_secs(10)).unwrap();
    api.health().await.expect("GET /health");
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let alice = enroll(&api, "alice", &mut rng).await;
    let mut bob = enroll(&api, "bob", &mut rng).await;
    let mut bob_ws = EventStream::connect(&api.ws_base(), bob.user)
        .await
        .unwrap();
    let mut alice_ws = EventStream::connect(&api.ws_base(), alice.user)
        .await
        .unwrap();

    // Alice: bundle, X3DH, first message inside the session initiation.
    let bundles = api.bundles(&alice.auth(), bob.user).await.unwrap();
    assert_eq!(bundles.len(), 1);
    let bundle = prekey_bundle(&bundles[0]).unwrap();
    let (initial, agreed) = x3dh::initiate(&alice.identity, &bundle, &mut rng).unwrap();
    let mut alice_session = Session::initiator(&agreed, &bundle.signed_prekey, &mut rng).unwrap();
    let (h, ct) = alice_session.encrypt(b"first", &mut rng).unwrap();
    let opk = bundle.one_time_prekey.map(|(_, k)| k);
    let init = session_init(Uuid::new_v4(), bob.device, opk, &initial, &h, &ct).unwrap();
    let req = CreateSessionRequest {
        recipient_user_id: bob.user,
        sessions_init: vec![init],
    };
    api.create_session(&alice.auth(), &req).await.unwrap();

    // Bob: notified, fetches, agrees, decrypts, confirms.
    let pending_id = match next_event(&mut bob_ws).await {
        Event::PendingSession {
            pending_session_id,
            recipient_device_id,
            ..
        } => {
            assert_eq!(recipient_device_id, bob.device);
            pending_session_id
        }
        other => panic!("expected pending_session, got {other:?}"),
    };
    let pending = api.pending_sessions(&bob.auth()).await.unwrap();
    let p = pending.iter().find(|p| p.id == pending_id).unwrap();
    let first = first_message(p).unwrap();
    let agreed = x3dh::respond(
        &bob.identity,
        &bob.signed,
        &mut bob.one_time,
        &first.initial,
    )
    .unwrap();
    let mut bob_session = Session::responder(&agreed, &bob.signed);
    let plain = bob_session
        .decrypt(&first.header, &first.ciphertext, &mut rng)
        .unwrap();
    assert_eq!(plain, b"first");
    let confirm = ConfirmSessionRequest {
        pending_session_id: p.id,
        sender_device_id: p.sender_device_id,
        receiver_device_id: bob.device,
    };
    api.confirm_session(&bob.auth(), &confirm).await.unwrap();
    assert!(matches!(
        next_event(&mut alice_ws).await,
        Event::Session { .. }
    ));

    // Bob answers in the chat the confirmation created; Alice is notified and decrypts.
    let chat = api.chats(&bob.auth()).await.unwrap();
    let chat = chat
        .iter()
        .find(|c| c.partner_user_id == Some(alice.user))
        .unwrap()
        .id;
    let (h, ct) = bob_session.encrypt(b"reply", &mut rng).unwrap();
    let send = SendMessageRequest {
        chat_id: chat,
        logical_msg_id: Uuid::new_v4().to_string(),
        to_user_id: alice.user,
        payloads: vec![MessagePayload {
            to_device_id: alice.device,
            header: HeaderJson::from_header(&h),
            ciphertext: b64(&ct),
        }],
    };
    api.send(&bob.auth(), &send).await.unwrap();
    assert_eq!(
        next_event(&mut alice_ws).await,
        Event::Message {
            chat_id: Some(chat)
        }
    );
    let inbox = api.pending_messages(&alice.auth()).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].logical_msg_id, send.logical_msg_id);
    let header = HeaderJson::from_value(&inbox[0].header)
        .unwrap()
        .to_header()
        .unwrap();
    let ct = unb64("ciphertext", &inbox[0].ciphertext).unwrap();
    assert_eq!(
        alice_session.decrypt(&header, &ct, &mut rng).unwrap(),
        b"reply"
    );
    assert!(api
        .pending_messages(&alice.auth())
        .await
        .unwrap()
        .is_empty());
    bob_ws.close(Duration::from_secs(1)).await;
    alice_ws.close(Duration::from_secs(1)).await;
}
