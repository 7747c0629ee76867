//! Key routes: replenish one-time prekeys, rotate the signed prekey, count, fetch bundles.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::encoding::{fixed, Key32, Sig64};
use super::extract::{ApiJson, ApiPath};
use super::{AppState, MAX_PREKEYS_PER_REQUEST};
use crate::auth::Device;
use crate::error::{ApiError, ErrorBody};
use crate::store;

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignedPrekeyBody {
    /// Any unsigned 32-bit value.
    #[schema(value_type = i64, minimum = 0, maximum = 4_294_967_295.0)]
    pub key_id: u32,
    /// X25519 public key.
    pub public_key: Key32,
    /// Ed25519 signature by the identity key over `0x05 ‖ public_key`.
    pub signature: Sig64,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OneTimePrekeyBody {
    /// Any unsigned 32-bit value.
    #[schema(value_type = i64, minimum = 0, maximum = 4_294_967_295.0)]
    pub key_id: u32,
    /// X25519 public key.
    pub public_key: Key32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UploadPrekeysRequest {
    /// 1 to 100 one-time prekeys.
    #[schema(min_items = 1, max_items = 100)]
    pub prekeys: Vec<OneTimePrekeyBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct UploadPrekeysResponse {
    pub stored: i64,
    pub available: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct PrekeyCount {
    pub one_time: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BundleBody {
    #[schema(value_type = i64, minimum = 0, maximum = 4_294_967_295.0)]
    pub device_id: u32,
    #[schema(minimum = 1, maximum = 16380)]
    pub registration_id: u32,
    /// Ed25519 identity key of the device.
    pub identity_key: Key32,
    pub signed_prekey: SignedPrekeyBody,
    /// Claimed for the caller; `null` when the device has none left.
    pub one_time_prekey: Option<OneTimePrekeyBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BundlesResponse {
    pub user_id: Uuid,
    pub bundles: Vec<BundleBody>,
}

/// Checks the signature of a signed prekey (`Encode(SPK) = 0x05 ‖ public_key`) with
/// `verify_strict`, which also rejects small-order keys and non-canonical signatures.
pub(super) fn verify_signed_prekey(
    identity_key: &[u8; 32],
    spk: &SignedPrekeyBody,
    field: &str,
) -> Result<(), ApiError> {
    let key = VerifyingKey::from_bytes(identity_key)
        .map_err(|_| ApiError::invalid("identity_key", "not a valid Ed25519 public key"))?;
    let mut encoded = [0u8; 33];
    encoded[0] = 0x05;
    encoded[1..].copy_from_slice(&spk.public_key.0);
    key.verify_strict(&encoded, &Signature::from_bytes(&spk.signature.0)).map_err(|_| {
        ApiError::InvalidSignature(format!(
            "{field}.signature: not a valid Ed25519 signature by the device's identity key over 0x05 ‖ public_key"
        ))
    })
}

/// Enforces the per-request cap and unique key ids within the request.
pub(super) fn one_time_prekeys(
    field: &'static str,
    keys: &[OneTimePrekeyBody],
) -> Result<Vec<store::OneTimePrekey>, ApiError> {
    if keys.len() > MAX_PREKEYS_PER_REQUEST {
        return Err(ApiError::TooManyPrekeys {
            field,
            count: keys.len(),
            max: MAX_PREKEYS_PER_REQUEST,
        });
    }
    let mut seen = HashMap::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        if let Some(first) = seen.insert(k.key_id, i) {
            return Err(ApiError::invalid(
                format!("{field}[{i}].key_id"),
                format!("key id {} repeats {field}[{first}]", k.key_id),
            ));
        }
    }
    Ok(keys
        .iter()
        .map(|k| store::OneTimePrekey {
            key_id: k.key_id.into(),
            public_key: k.public_key.0,
        })
        .collect())
}

pub(super) fn signed_prekey(spk: &SignedPrekeyBody) -> store::SignedPrekey {
    store::SignedPrekey {
        key_id: spk.key_id.into(),
        public_key: spk.public_key.0,
        signature: spk.signature.0,
    }
}

/// Upload one-time prekeys (replenish).
#[utoipa::path(post, path = "/v1/keys/one-time", tag = "keys", request_body = UploadPrekeysRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = UploadPrekeysResponse),
        (status = 400, description = "bad input, or more than 100 prekeys", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "a key id the device already has (`duplicate_key_id`); nothing stored", body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub(super) async fn upload_one_time(
    State(app): State<AppState>,
    device: Device,
    ApiJson(body): ApiJson<UploadPrekeysRequest>,
) -> Result<Json<UploadPrekeysResponse>, ApiError> {
    if body.prekeys.is_empty() {
        return Err(ApiError::invalid(
            "prekeys",
            "at least one prekey is required",
        ));
    }
    let keys = one_time_prekeys("prekeys", &body.prekeys)?;
    let (stored, available) = app.store.add_one_time_prekeys(&device, &keys).await?;
    Ok(Json(UploadPrekeysResponse { stored, available }))
}

/// Rotate the signed prekey; the previous one is kept for a grace period.
#[utoipa::path(put, path = "/v1/keys/signed", tag = "keys", request_body = SignedPrekeyBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "rotated"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "key id already used by this device", body = ErrorBody),
        (status = 422, description = "bad signature; nothing stored", body = ErrorBody)))]
pub(super) async fn rotate_signed(
    State(app): State<AppState>,
    device: Device,
    ApiJson(body): ApiJson<SignedPrekeyBody>,
) -> Result<StatusCode, ApiError> {
    verify_signed_prekey(&device.identity_key, &body, "signed_prekey")?;
    app.store
        .rotate_signed_prekey(&device, &signed_prekey(&body))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many one-time prekeys the caller has left.
#[utoipa::path(get, path = "/v1/keys/count", tag = "keys", security(("bearer" = [])),
    responses((status = 200, body = PrekeyCount), (status = 401, body = ErrorBody)))]
pub(super) async fn count(
    State(app): State<AppState>,
    device: Device,
) -> Result<Json<PrekeyCount>, ApiError> {
    Ok(Json(PrekeyCount {
        one_time: app.store.count_one_time_prekeys(&device).await?,
    }))
}

fn bundle_body(b: store::Bundle) -> BundleBody {
    BundleBody {
        device_id: b.device_id as u32,
        registration_id: b.registration_id as u32,
        identity_key: fixed(b.identity_key),
        signed_prekey: SignedPrekeyBody {
            key_id: b.signed_prekey_id as u32,
            public_key: fixed(b.signed_prekey),
            signature: fixed(b.signature),
        },
        one_time_prekey: b
            .one_time_prekey
            .map(|(key_id, public_key)| OneTimePrekeyBody {
                key_id: key_id as u32,
                public_key: fixed(public_key),
            }),
    }
}

/// Prekey bundles of every device of a user; each claims at most one one-time prekey.
#[utoipa::path(get, path = "/v1/keys/{user_id}", tag = "keys", security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "the user whose bundles to fetch")),
    responses(
        (status = 200, body = BundlesResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "unknown user", body = ErrorBody)))]
pub(super) async fn user_bundles(
    State(app): State<AppState>,
    _caller: Device,
    ApiPath(user_id): ApiPath<Uuid>,
) -> Result<Json<BundlesResponse>, ApiError> {
    let bundles = app.store.bundles(user_id, None).await?;
    if bundles.is_empty() {
        return Err(ApiError::NotFound(format!(
            "user_id: no user {user_id} with registered devices"
        )));
    }
    Ok(Json(BundlesResponse {
        user_id,
        bundles: bundles.into_iter().map(bundle_body).collect(),
    }))
}

/// The prekey bundle of one device of a user.
#[utoipa::path(get, path = "/v1/keys/{user_id}/{device_id}", tag = "keys", security(("bearer" = [])),
    params(("user_id" = Uuid, Path), ("device_id" = u32, Path)),
    responses(
        (status = 200, body = BundlesResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "unknown user or device", body = ErrorBody)))]
pub(super) async fn device_bundle(
    State(app): State<AppState>,
    _caller: Device,
    ApiPath((user_id, device_id)): ApiPath<(Uuid, u32)>,
) -> Result<Json<BundlesResponse>, ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "device_id: user {user_id} has no device {device_id}"
        ))
    };
    let device_id = i32::try_from(device_id).map_err(|_| not_found())?;
    let bundles = app.store.bundles(user_id, Some(device_id)).await?;
    if bundles.is_empty() {
        return Err(not_found());
    }
    Ok(Json(BundlesResponse {
        user_id,
        bundles: bundles.into_iter().map(bundle_body).collect(),
    }))
}
