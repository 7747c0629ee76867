//! The server under test, as the virtual clients see it: the protocol's operations (register,
//! upload keys, fetch bundles, send, receive, acknowledge), not HTTP's.
//!
//! Flows, metrics and integrity accounting are written once against [`ServerApi`] and
//! [`PushChannel`]; each server API ("dialect") is one implementation that maps the
//! operations onto its own routes and shapes, and declares what it cannot do as missing
//! [`Capability`]s. A flow that needs a missing capability is refused before load starts
//! (or left out of the mix on request), never half-run.
//!
//! The dialects: [`reference`] (this project's server, docs/api.md) and [`hushnet`] (the
//! HushNet backend). Adding one is described in docs/targets.md.

pub mod hushnet;
pub mod raw;
pub mod reference;
mod reference_push;
mod reference_raw;
pub mod types;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::client::keys::DeviceKeys;
use crate::crypto::identity::IdentityKeyPair;

pub use types::{
    Bundle, Envelope, EnvelopeType, OneTimePrekeyBody, OutgoingMessage, Registered, SendOutcome,
    SendRequest, SignedPrekeyBody, Uploaded,
};

/// A server API the harness speaks (`--api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// This project's reference server (docs/api.md), and servers that copy its API.
    Reference,
    /// The HushNet backend (GitHub `HushNet/HushNet-Backend`, seed document 003).
    Hushnet,
}

impl Dialect {
    pub const ALL: [Dialect; 2] = [Dialect::Reference, Dialect::Hushnet];

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Reference => "reference",
            Dialect::Hushnet => "hushnet",
        }
    }

    /// The dialect called `name`, or an error naming the known ones (for `--api` and a
    /// scenario's `api`).
    pub fn parse(name: &str) -> Result<Dialect, String> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
                format!("unknown API `{name}` (known: {})", known.join(", "))
            })
    }

    /// A client of this dialect for the server at `base` (e.g. `http://127.0.0.1:8080`),
    /// every request bounded by `timeout`.
    pub fn client(self, base: &str, timeout: Duration) -> Result<Arc<dyn ServerApi>, ApiError> {
        match self {
            Dialect::Reference => Ok(Arc::new(reference::ReferenceApi::new(base, timeout)?)),
            Dialect::Hushnet => Ok(Arc::new(hushnet::HushnetApi::new(base, timeout)?)),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something a server API may or may not offer beyond the core every E2EE key and message
/// server has (register a device with its keys, fetch a user's bundles, send to a device,
/// receive a backlog and live messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Ask how many one-time prekeys the server still holds for the device.
    PrekeyCount,
    /// Upload more one-time prekeys after registration.
    PrekeyUpload,
    /// Replace the signed prekey after registration.
    SignedPrekeyRotation,
    /// Several devices per user (add a device to an existing user).
    MultiDevice,
    /// Fetch the bundle of one device of a user.
    DeviceBundle,
    /// A send that names the wrong device set is refused with the right one (Signal's 409).
    DeviceListMismatch,
    /// The client acknowledges each delivered message; until then the server keeps it.
    Acknowledge,
    /// Remove a device.
    RemoveDevice,
}

impl Capability {
    pub fn name(self) -> &'static str {
        match self {
            Capability::PrekeyCount => "prekey_count",
            Capability::PrekeyUpload => "prekey_upload",
            Capability::SignedPrekeyRotation => "signed_prekey_rotation",
            Capability::MultiDevice => "multi_device",
            Capability::DeviceBundle => "device_bundle",
            Capability::DeviceListMismatch => "device_list_mismatch",
            Capability::Acknowledge => "acknowledge",
            Capability::RemoveDevice => "remove_device",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a device proves who it is on each request.
#[derive(Clone)]
pub enum Credential {
    /// A bearer token the server issued at registration (reference API, Signal-like servers).
    Bearer(String),
    /// Each request signed by the device's Ed25519 identity key; `device` is the server's id
    /// of the device.
    IdentitySignature {
        identity: Box<IdentityKeyPair>,
        device: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(..)"),
            Credential::IdentitySignature { device, .. } => {
                write!(f, "IdentitySignature({device})")
            }
        }
    }
}

/// A failed operation against the server.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No answer: connection refused or reset, timeout, unreadable body.
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    /// An answer that says no, with the server's error code kept so it can be counted.
    #[error("HTTP {status}: {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// An answer that does not have this dialect's shape (another server, another API).
    #[error("{operation}: the answer does not have the {dialect} API's shape: {detail}")]
    Shape {
        dialect: Dialect,
        operation: &'static str,
        detail: String,
    },
    /// The operation needs a capability this dialect lacks.
    #[error("{operation} needs {capability}, which the {dialect} API does not offer")]
    Unsupported {
        dialect: Dialect,
        operation: &'static str,
        capability: Capability,
    },
    /// The client cannot name what the operation addresses in this dialect (a device or key
    /// it has never seen, a conversation the server has not set up).
    #[error("the {dialect} client cannot address {what}")]
    Unaddressable { dialect: Dialect, what: String },
    /// The credential is not of the kind this dialect uses.
    #[error("the {dialect} API cannot authenticate with {credential:?}")]
    WrongCredential {
        dialect: Dialect,
        credential: Credential,
    },
}

impl ApiError {
    /// The HTTP status of an answer that said no.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A failure of a device's push channel (connect, backlog, live delivery).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("push channel closed before the backlog was delivered")]
    ClosedEarly,
    #[error("push channel connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("bad frame from server: {0}")]
    BadFrame(String),
    #[error("{0}")]
    Api(#[from] ApiError),
}

/// What a push channel hands the device next.
#[derive(Debug)]
pub enum Incoming {
    /// A message for this device (from the backlog or live).
    Envelope(Envelope),
    /// Everything queued before the connection has been handed over.
    BacklogDone,
    /// The server ended the connection (or it broke).
    Closed,
}

/// One device's connection for receiving: its backlog first, then live messages, each
/// acknowledged by the device once processed.
#[async_trait]
pub trait PushChannel: Send {
    /// The next message or event. Cancel-safe: dropping the future loses nothing.
    async fn next(&mut self) -> Result<Incoming, PushError>;
    /// Acknowledges envelope `id` (the server may forget it).
    async fn ack(&mut self, id: i64) -> Result<(), PushError>;
    /// Ends the connection; true when the server confirmed the close, so every ack written
    /// before it was processed.
    async fn close(&mut self) -> bool;
}

/// The protocol's operations against one server. Every call is bounded by the client's
/// request timeout.
#[async_trait]
pub trait ServerApi: Send + Sync {
    fn dialect(&self) -> Dialect;
    /// The server's base URL (`http://host:port`).
    fn base(&self) -> &str;
    /// What this API cannot do is every [`Capability`] not listed here.
    fn capabilities(&self) -> &'static [Capability];

    fn has(&self, c: Capability) -> bool {
        self.capabilities().contains(&c)
    }

    /// The operations as raw HTTP requests, for conformance checks that send malformed,
    /// unauthenticated or replayed requests ([`raw`]); `None` when the dialect does not
    /// describe them (those checks are then not applicable).
    fn raw(&self) -> Option<&dyn raw::RawRoutes> {
        None
    }

    /// Fetches what the next [`raw::RawRoutes::examples`] for the device of `caller` needs
    /// from the server: what cannot be reused, or what the client does not know yet (HushNet:
    /// a single-use enrollment token for its registration example; the caller's chats).
    async fn prepare_raw(&self, _caller: &Credential) -> Result<(), ApiError> {
        Ok(())
    }

    /// Whether the server answers; `Some(durable)` when it says how its database commits.
    async fn health(&self) -> Result<Option<bool>, ApiError>;
    /// Creates a user with its first device and that device's keys. A dialect whose server
    /// stores no key ids gives the keys ids derived from their bytes first, so the device
    /// and its peers name them alike (hence `&mut`).
    async fn register_user(&self, keys: &mut DeviceKeys) -> Result<Registered, ApiError>;
    /// Adds a device (with its keys) to the user of `cred` ([`Capability::MultiDevice`]).
    async fn add_device(
        &self,
        cred: &Credential,
        keys: &mut DeviceKeys,
    ) -> Result<Registered, ApiError>;
    /// Removes `device` of the caller's own user ([`Capability::RemoveDevice`]).
    async fn remove_device(&self, cred: &Credential, device: u32) -> Result<(), ApiError>;
    /// Uploads more one-time prekeys ([`Capability::PrekeyUpload`]).
    async fn upload_one_time(
        &self,
        cred: &Credential,
        prekeys: &[OneTimePrekeyBody],
    ) -> Result<Uploaded, ApiError>;
    /// Replaces the signed prekey ([`Capability::SignedPrekeyRotation`]).
    async fn rotate_signed(
        &self,
        cred: &Credential,
        spk: &SignedPrekeyBody,
    ) -> Result<(), ApiError>;
    /// One-time prekeys the server holds for the device of `cred` ([`Capability::PrekeyCount`]).
    async fn prekey_count(&self, cred: &Credential) -> Result<u64, ApiError>;
    /// Bundles of every device of `user`; each claims at most one one-time prekey.
    async fn bundles(&self, cred: &Credential, user: Uuid) -> Result<Vec<Bundle>, ApiError>;
    /// The bundle of one device of `user` ([`Capability::DeviceBundle`]).
    async fn device_bundle(
        &self,
        cred: &Credential,
        user: Uuid,
        device: u32,
    ) -> Result<Vec<Bundle>, ApiError>;
    /// Sends one logical message, one envelope per device of `user`.
    async fn send(
        &self,
        cred: &Credential,
        user: Uuid,
        req: &SendRequest,
    ) -> Result<SendOutcome, ApiError>;
    /// Opens the device's push channel; its backlog comes first, ended by
    /// [`Incoming::BacklogDone`].
    async fn open_push(&self, cred: &Credential) -> Result<Box<dyn PushChannel>, PushError>;
}
