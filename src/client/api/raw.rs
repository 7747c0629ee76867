//! A dialect's operations as raw HTTP requests, for the checks that must send what no
//! well-behaved client would: malformed bodies and ids (conform `--target`, input group), the
//! same request twice (replay), or a request without its credential.
//!
//! A dialect describes each operation once, as a valid example ([`RawRequest`]: method, path
//! template with its parameters, JSON body, whether it needs a credential) and says how a
//! credential authenticates a request ([`RawRoutes::auth_headers`]). The conformance suite
//! mutates the examples generically; nothing in it knows a dialect's field names.

use std::time::SystemTime;

use uuid::Uuid;

use super::{ApiError, Credential};
use crate::client::keys::DeviceKeys;

/// One operation's HTTP request, valid as given.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The protocol operation (`register_user`, `upload_one_time`, …), as reports name it.
    pub operation: &'static str,
    pub method: reqwest::Method,
    /// The path with `{name}` placeholders, e.g. `/v1/keys/{user_id}/{device_id}`.
    pub template: &'static str,
    /// The placeholders' values, in the template's order, with what kind of id each is.
    pub params: Vec<PathParam>,
    /// The JSON body, if the operation takes one.
    pub body: Option<serde_json::Value>,
    /// Whether the request needs the device's credential (false: a public route).
    pub authenticated: bool,
    /// Whether a successful request changes state on the server (a write).
    pub writes: bool,
}

/// A path parameter: its name in the template, its value, and its kind (so a mutation can
/// put an unknown id or a value of the wrong type in its place).
#[derive(Debug, Clone)]
pub struct PathParam {
    pub name: &'static str,
    pub value: String,
    pub kind: ParamKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Uuid,
    Integer,
}

impl RawRequest {
    /// The path with `params` substituted.
    pub fn path_with(&self, params: &[PathParam]) -> String {
        let mut path = self.template.to_string();
        for p in params {
            path = path.replace(&format!("{{{}}}", p.name), &p.value);
        }
        path
    }

    pub fn path(&self) -> String {
        self.path_with(&self.params)
    }
}

/// What the examples are built for: a registered device (`me`), a peer user to address, and
/// fresh keys for requests that register or replace keys.
pub struct RawSubject<'a> {
    /// The device whose credential signs the examples.
    pub me_user: Uuid,
    pub me_device: u32,
    /// A device of `me_user` that the remove example may remove (never `me_device`).
    pub spare_device: u32,
    /// A user with devices the send and bundle examples address.
    pub peer_user: Uuid,
    pub peer_devices: Vec<u32>,
    /// An envelope id queued for `me` (the acknowledge example), if the dialect has one.
    pub envelope_id: Option<i64>,
    /// Keys for a new user or device (register examples).
    pub new_keys: &'a DeviceKeys,
    /// A signed prekey signed by `me`'s identity key, with a fresh id (rotate example).
    pub new_signed: super::SignedPrekeyBody,
    /// One-time prekeys with fresh ids (upload example).
    pub new_one_time: Vec<super::OneTimePrekeyBody>,
    /// A real envelope for each of `peer_devices` (send example): header and ciphertext.
    pub sealed: Vec<(u32, super::EnvelopeType, Vec<u8>, Vec<u8>)>,
    pub message_id: Uuid,
}

/// How a dialect's operations look on the wire.
pub trait RawRoutes: Send + Sync {
    /// A valid request for every operation this dialect has over HTTP, addressed with
    /// `subject`. The remove example removes `subject.spare_device`, so callers send it last.
    fn examples(&self, subject: &RawSubject<'_>) -> Vec<RawRequest>;

    /// The headers that authenticate `req` (with `body`, as sent) as `cred`, as of `at`:
    /// a bearer token ignores `at`; a signature scheme signs it.
    fn auth_headers(
        &self,
        req: &RawRequest,
        path: &str,
        body: &[u8],
        cred: &Credential,
        at: SystemTime,
    ) -> Result<Vec<(String, String)>, ApiError>;

    /// A credential of this dialect's kind that the server never issued (a random token, an
    /// unregistered key), for the "refuses a forged credential" checks.
    fn forged_credential(&self) -> Credential;

    /// The path of the push channel (a WebSocket upgrade) of `user`'s devices, if it has one.
    fn push_path(&self, user: Uuid) -> Option<String>;
}
