//! The HushNet dialect: the HushNet backend's client API (GitHub `HushNet/HushNet-Backend`,
//! the system of seed document 003) behind [`ServerApi`] and [`PushChannel`], as its code at
//! commit a859568 behaves — which differs from its `docs/API.md` in routes, bodies and
//! status codes (each struct in [`wire`] says how).
//!
//! Protocol, in the order a conversation uses it:
//!
//! 1. `POST /users/create` → user id and a single-use enrollment token ([`client`]).
//! 2. `POST /users/{id}/devices` with the token, identity key, signed prekey and one-time
//!    prekeys ([`keys::registration`]; encodings in [`codec`]). Unauthenticated. HushNet
//!    stores no key ids: the device's are derived from the key bytes ([`codec::key_id`]).
//! 3. Every later call of the device is signed: Ed25519 over the Unix timestamp ([`auth`]).
//! 4. `GET /users/{id}/keys` → bundles with every one-time prekey, none consumed
//!    ([`keys::prekey_bundle`] takes the first, as HushNet's client does).
//! 5. X3DH through `POST /sessions` (the first ratchet message sealed inside,
//!    [`keys::session_init`]); the recipient hears `pending_session` on its user's
//!    WebSocket ([`events`]), fetches `GET /sessions/pending`, answers with
//!    `POST /sessions/confirm`, which creates the users' chat ([`push`]).
//! 6. `POST /messages` needs that chat's id (`GET /chats`), one payload per device with a
//!    ratchet header as JSON; recipients hear `message` and fetch `GET /messages/pending`,
//!    which marks what it returns delivered (no ack).
//!
//! The mapping onto the server-API layer: a send's `prekey` envelopes become one
//! `POST /sessions`, its `ratchet` envelopes one `POST /messages`; HushNet's device UUIDs
//! are numbered per user ([`directory`]); the push channel is the user's WebSocket plus
//! those fetches.
//!
//! What it lacks ([`CAPABILITIES`] is empty): no one-time prekey upload or count; no
//! signed-prekey rotation; no device removal; no ack; no per-device bundle; no device-list
//! check on send (no mismatch reply); a second device for a user needs a second enrollment
//! token, which only user creation hands out. docs/targets.md says how to run it beside the
//! harness.

pub mod auth;
pub mod client;
pub mod codec;
pub mod directory;
pub mod error;
pub mod events;
pub mod keys;
#[cfg(test)]
mod live;
mod push;
mod raw;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

pub use client::HushnetClient;
pub use error::HushnetError;

use super::{
    ApiError, Bundle, Capability, Credential, Dialect, OneTimePrekeyBody, OutgoingMessage,
    PushChannel, PushError, Registered, SendOutcome, SendRequest, ServerApi, SignedPrekeyBody,
    Uploaded,
};
use crate::client::keys::DeviceKeys;
use crate::client::wire as envelope;
use crate::crypto::identity::IdentityKeyPair;
use auth::AuthHeaders;
use directory::Directory;
use wire::{CreateSessionRequest, DeviceBundle, MessagePayload, SendMessageRequest, SessionInit};

/// Everything HushNet offers beyond the core: nothing.
const CAPABILITIES: &[Capability] = &[];

/// One client of one HushNet node, shared by every virtual device of a run.
#[derive(Clone)]
pub struct HushnetApi {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: HushnetClient,
    dir: Directory,
}

/// A device of this client, as its credential names it.
#[derive(Clone)]
pub(crate) struct Me {
    identity: IdentityKeyPair,
    device: Uuid,
    user: Uuid,
}

impl Me {
    fn auth(&self) -> AuthHeaders {
        AuthHeaders::now(&self.identity)
    }
}

fn unsupported(operation: &'static str, capability: Capability) -> ApiError {
    ApiError::Unsupported {
        dialect: Dialect::Hushnet,
        operation,
        capability,
    }
}

/// The identity key and server device id of a HushNet credential.
fn identity(cred: &Credential) -> Result<(&IdentityKeyPair, Uuid), ApiError> {
    match cred {
        Credential::IdentitySignature { identity, device } => {
            let device = device.parse().map_err(|_| ApiError::WrongCredential {
                dialect: Dialect::Hushnet,
                credential: cred.clone(),
            })?;
            Ok((identity, device))
        }
        Credential::Bearer(_) => Err(ApiError::WrongCredential {
            dialect: Dialect::Hushnet,
            credential: cred.clone(),
        }),
    }
}

impl HushnetApi {
    /// `base`: e.g. `http://127.0.0.1:18080` (a trailing slash is fine).
    pub fn new(base: &str, timeout: Duration) -> Result<HushnetApi, ApiError> {
        Ok(HushnetApi {
            inner: Arc::new(Inner {
                http: HushnetClient::new(base, timeout)?,
                dir: Directory::default(),
            }),
        })
    }
}

impl Inner {
    /// The user and number of `device`: remembered, or asked of the server.
    async fn user_of(&self, device: Uuid) -> Result<(Uuid, u32), ApiError> {
        if let Some(known) = self.dir.known(device) {
            return Ok(known);
        }
        let user = self.http.user_of_device(device).await?;
        Ok((user.id, self.dir.number(user.id, device)))
    }

    async fn me(&self, cred: &Credential) -> Result<Me, ApiError> {
        let (identity, device) = identity(cred)?;
        let (user, _) = self.user_of(device).await?;
        Ok(Me {
            identity: identity.clone(),
            device,
            user,
        })
    }

    /// A HushNet bundle as the server-API layer's, remembering the device's number and the
    /// one-time prekey handed out.
    fn bundle(&self, user: Uuid, b: &DeviceBundle) -> Result<Bundle, ApiError> {
        let x3dh = keys::prekey_bundle(b)?;
        if let Some((id, key)) = x3dh.one_time_prekey {
            self.dir.handed_out(b.device_id, id, key);
        }
        Ok(Bundle {
            device_id: self.dir.number(user, b.device_id),
            registration_id: 0,
            identity_key: x3dh.identity_key,
            signed_prekey: SignedPrekeyBody {
                key_id: x3dh.signed_prekey_id,
                public_key: x3dh.signed_prekey,
                signature: x3dh.signed_prekey_signature,
            },
            one_time_prekey: x3dh
                .one_time_prekey
                .map(|(key_id, public_key)| OneTimePrekeyBody { key_id, public_key }),
        })
    }

    /// The one-time prekey `key_id` of `device`: as handed out to this client, else found
    /// in a fresh bundle of `user`.
    async fn one_time_key(
        &self,
        auth: &AuthHeaders,
        user: Uuid,
        device: Uuid,
        key_id: u32,
    ) -> Result<[u8; 32], ApiError> {
        if let Some(k) = self.dir.one_time(device, key_id) {
            return Ok(k);
        }
        for b in self.http.bundles(auth, user).await? {
            for k in &b.one_time_prekeys {
                let key = codec::unb64_fixed::<32>("one_time_prekeys", k)?;
                if b.device_id == device && codec::key_id(&key) == key_id {
                    return Ok(key);
                }
            }
        }
        Err(ApiError::Unaddressable {
            dialect: Dialect::Hushnet,
            what: format!("one-time prekey {key_id} of device {device}"),
        })
    }

    /// The `sessions_init` entry carrying a `prekey` envelope to `device` of `user`.
    async fn session_init(
        &self,
        auth: &AuthHeaders,
        user: Uuid,
        device: Uuid,
        message_id: Uuid,
        m: &OutgoingMessage,
    ) -> Result<SessionInit, ApiError> {
        let (initial, header) =
            envelope::parse_prekey_header(&m.header).map_err(|e| shape("prekey envelope", e))?;
        let one_time = match initial.one_time_prekey_id {
            Some(id) => Some(self.one_time_key(auth, user, device, id).await?),
            None => None,
        };
        Ok(keys::session_init(
            message_id,
            device,
            one_time,
            &initial,
            &header,
            &m.ciphertext,
        )?)
    }

    /// Remembers every chat of `me` (`GET /chats`).
    async fn learn_chats(&self, me: &Me) -> Result<(), ApiError> {
        for c in self.http.chats(&me.auth()).await? {
            if let Some(partner) = c.partner_user_id {
                self.dir.set_chat(me.user, partner, c.id);
            }
        }
        Ok(())
    }

    /// The chat of `me` with `peer` (created when a session between them was confirmed).
    async fn chat_with(&self, me: &Me, peer: Uuid) -> Result<Uuid, ApiError> {
        if let Some(chat) = self.dir.chat(me.user, peer) {
            return Ok(chat);
        }
        self.learn_chats(me).await?;
        self.dir.chat(me.user, peer).ok_or(ApiError::Unaddressable {
            dialect: Dialect::Hushnet,
            what: format!("user {peer}: no chat with it yet (no session confirmed)"),
        })
    }
}

fn shape(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Shape {
        dialect: Dialect::Hushnet,
        operation: "send",
        detail: format!("{what}: {e}"),
    }
}

#[async_trait]
impl ServerApi for HushnetApi {
    fn dialect(&self) -> Dialect {
        Dialect::Hushnet
    }

    fn base(&self) -> &str {
        self.inner.http.base()
    }

    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }

    fn raw(&self) -> Option<&dyn super::raw::RawRoutes> {
        Some(self)
    }

    /// One spare enrollment for the raw device-registration example, and the caller's chats
    /// for its message example.
    async fn prepare_raw(&self, caller: &Credential) -> Result<(), ApiError> {
        let created = self.inner.http.create_user(&username()).await?;
        self.inner
            .dir
            .stock_enrollment(created.user.id, created.enrollment_token);
        let me = self.inner.me(caller).await?;
        self.inner.learn_chats(&me).await
    }

    /// `GET /health`; HushNet does not say how its database commits.
    async fn health(&self) -> Result<Option<bool>, ApiError> {
        self.inner.http.health().await?;
        Ok(None)
    }

    /// `POST /users/create`, then `POST /users/{id}/devices` with its enrollment token: two
    /// requests, timed together as the registration.
    async fn register_user(&self, keys: &mut DeviceKeys) -> Result<Registered, ApiError> {
        keys::assign_key_ids(&mut keys.signed, &mut keys.one_time);
        let http = &self.inner.http;
        let created = http.create_user(&username()).await?;
        let body = keys::registration(
            created.user.id,
            &created.enrollment_token,
            &keys.identity,
            &keys.signed,
            &keys.one_time,
            "e2ee-harness",
        );
        let device = http.register_device(&body).await?;
        Ok(Registered {
            user_id: created.user.id,
            device_id: self.inner.dir.number(created.user.id, device.id),
            credential: Credential::IdentitySignature {
                identity: Box::new(keys.identity.clone()),
                device: device.id.to_string(),
            },
        })
    }

    async fn add_device(&self, _: &Credential, _: &mut DeviceKeys) -> Result<Registered, ApiError> {
        Err(unsupported("add_device", Capability::MultiDevice))
    }

    async fn remove_device(&self, _: &Credential, _: u32) -> Result<(), ApiError> {
        Err(unsupported("remove_device", Capability::RemoveDevice))
    }

    async fn upload_one_time(
        &self,
        _: &Credential,
        _: &[OneTimePrekeyBody],
    ) -> Result<Uploaded, ApiError> {
        Err(unsupported("upload_one_time", Capability::PrekeyUpload))
    }

    async fn rotate_signed(&self, _: &Credential, _: &SignedPrekeyBody) -> Result<(), ApiError> {
        Err(unsupported(
            "rotate_signed",
            Capability::SignedPrekeyRotation,
        ))
    }

    async fn prekey_count(&self, _: &Credential) -> Result<u64, ApiError> {
        Err(unsupported("prekey_count", Capability::PrekeyCount))
    }

    async fn bundles(&self, cred: &Credential, user: Uuid) -> Result<Vec<Bundle>, ApiError> {
        let (identity, _) = identity(cred)?;
        let list = self
            .inner
            .http
            .bundles(&AuthHeaders::now(identity), user)
            .await?;
        list.iter().map(|b| self.inner.bundle(user, b)).collect()
    }

    async fn device_bundle(
        &self,
        _: &Credential,
        _: Uuid,
        _: u32,
    ) -> Result<Vec<Bundle>, ApiError> {
        Err(unsupported("device_bundle", Capability::DeviceBundle))
    }

    /// `prekey` envelopes as one `POST /sessions`, then `ratchet` ones as one
    /// `POST /messages` in the users' chat. HushNet answers neither with a count: every
    /// envelope of an accepted request is taken as stored.
    async fn send(
        &self,
        cred: &Credential,
        user: Uuid,
        req: &SendRequest,
    ) -> Result<SendOutcome, ApiError> {
        let inner = &self.inner;
        let me = inner.me(cred).await?;
        let auth = me.auth();
        let (mut inits, mut payloads) = (Vec::new(), Vec::new());
        for m in &req.messages {
            let device =
                inner
                    .dir
                    .uuid(user, m.device_id)
                    .ok_or_else(|| ApiError::Unaddressable {
                        dialect: Dialect::Hushnet,
                        what: format!("device {} of user {user} (never seen)", m.device_id),
                    })?;
            match m.kind {
                super::EnvelopeType::Prekey => inits.push(
                    inner
                        .session_init(&auth, user, device, req.message_id, m)
                        .await?,
                ),
                super::EnvelopeType::Ratchet => {
                    let header = envelope::parse_ratchet_header(&m.header)
                        .map_err(|e| shape("ratchet envelope", e))?;
                    payloads.push(MessagePayload {
                        to_device_id: device,
                        header: codec::HeaderJson::from_header(&header),
                        ciphertext: codec::b64(&m.ciphertext),
                    });
                }
            }
        }
        if !inits.is_empty() {
            let body = CreateSessionRequest {
                recipient_user_id: user,
                sessions_init: inits,
            };
            inner.http.create_session(&auth, &body).await?;
        }
        if !payloads.is_empty() {
            let body = SendMessageRequest {
                chat_id: inner.chat_with(&me, user).await?,
                logical_msg_id: req.message_id.to_string(),
                to_user_id: user,
                payloads,
            };
            inner.http.send(&me.auth(), &body).await?;
        }
        Ok(SendOutcome::Stored {
            stored: req.messages.len() as u64,
            duplicate: false,
        })
    }

    async fn open_push(&self, cred: &Credential) -> Result<Box<dyn PushChannel>, PushError> {
        let me = self.inner.me(cred).await?;
        Ok(Box::new(
            push::HushnetPush::open(self.inner.clone(), me).await?,
        ))
    }
}

/// A fresh username (HushNet's are unique). The dot keeps it from reading as base64 (it is
/// not a key), which the conformance corpus would mutate as one.
fn username() -> String {
    format!("harness.{}", Uuid::new_v4().simple())
}
