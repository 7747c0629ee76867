//! Bearer tokens. A token is 32 random bytes (base64url, 43 characters) handed out once at
//! registration; the database keeps only its SHA-256, so a leaked database cannot be replayed
//! against the API. Lookups go through the unique index on that hash.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::api::AppState;
use crate::error::ApiError;

/// The device a request speaks for.
#[derive(Debug, Clone)]
pub struct Device {
    /// Row id in `devices` (internal; never on the wire).
    pub row: i64,
    pub user_id: Uuid,
    pub device_id: i32,
    /// Ed25519 identity key, to verify signed prekey rotations without another query.
    pub identity_key: [u8; 32],
}

/// A fresh token and the hash to store.
pub fn new_token() -> (String, [u8; 32]) {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = URL_SAFE_NO_PAD.encode(raw);
    let hash = hash(&token);
    (token, hash)
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("Authorization header is not ASCII"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthorized(
            "Authorization header must be `Bearer <token>`",
        )),
    }
}

/// `?token=` for the WebSocket route (browsers cannot set headers on a WebSocket).
fn query_token(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "token" && !v.is_empty()).then(|| v.to_string())
    })
}

async fn resolve(state: &AppState, token: Option<&str>) -> Result<Device, ApiError> {
    let token = token.ok_or(ApiError::Unauthorized(
        "missing bearer token (Authorization: Bearer <token>)",
    ))?;
    state
        .store
        .authenticate(&hash(token))
        .await?
        .ok_or(ApiError::Unauthorized("unknown or revoked token"))
}

impl FromRequestParts<AppState> for Device {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        resolve(state, bearer(parts)?).await
    }
}

/// Like [`Device`], but also accepts `?token=`; only the WebSocket route uses it.
pub struct SocketDevice(pub Device);

impl FromRequestParts<AppState> for SocketDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = bearer(parts)?.map(str::to_string);
        let token = header.or_else(|| query_token(parts));
        resolve(state, token.as_deref()).await.map(SocketDevice)
    }
}
