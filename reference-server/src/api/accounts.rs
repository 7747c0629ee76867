//! Users and devices: register a user with its first device, add and remove devices.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::encoding::Key32;
use super::extract::{ApiJson, ApiPath};
use super::keys::{
    one_time_prekeys, signed_prekey, verify_signed_prekey, OneTimePrekeyBody, SignedPrekeyBody,
};
use super::AppState;
use crate::auth::{self, Device};
use crate::error::{ApiError, ErrorBody};
use crate::store::NewDevice;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterRequest {
    /// 1..=16380, chosen by the client.
    #[schema(minimum = 1, maximum = 16380)]
    pub registration_id: u32,
    /// Ed25519 public key of the device.
    pub identity_key: Key32,
    pub signed_prekey: SignedPrekeyBody,
    /// Up to 100.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub one_time_prekeys: Vec<OneTimePrekeyBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct RegisterResponse {
    pub user_id: Uuid,
    pub device_id: u32,
    /// Bearer token of the new device; shown once, stored only as its SHA-256.
    pub token: String,
}

/// Validates everything before anything is written; the token is minted here.
fn new_device(req: &RegisterRequest) -> Result<(NewDevice, String), ApiError> {
    if !(1..=16380).contains(&req.registration_id) {
        return Err(ApiError::invalid(
            "registration_id",
            format!("{} is outside 1..=16380", req.registration_id),
        ));
    }
    let one_time = one_time_prekeys("one_time_prekeys", &req.one_time_prekeys)?;
    verify_signed_prekey(&req.identity_key.0, &req.signed_prekey, "signed_prekey")?;
    let (token, token_hash) = auth::new_token();
    let device = NewDevice {
        registration_id: req.registration_id as i32,
        identity_key: req.identity_key.0,
        signed_prekey: signed_prekey(&req.signed_prekey),
        one_time_prekeys: one_time,
        token_hash,
    };
    Ok((device, token))
}

/// Register a new user with its first device (device 1).
#[utoipa::path(post, path = "/v1/users", tag = "accounts", request_body = RegisterRequest,
    responses(
        (status = 201, body = RegisterResponse),
        (status = 400, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "bad signed prekey signature; nothing stored", body = ErrorBody)))]
pub(super) async fn register_user(
    State(app): State<AppState>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    let (device, token) = new_device(&req)?;
    let user_id = app.store.register_user(&device).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            user_id,
            device_id: 1,
            token,
        }),
    ))
}

/// Add another device to the caller's user.
#[utoipa::path(post, path = "/v1/devices", tag = "accounts", request_body = RegisterRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = RegisterResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, description = "bad signed prekey signature; nothing stored", body = ErrorBody)))]
pub(super) async fn add_device(
    State(app): State<AppState>,
    caller: Device,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    let (device, token) = new_device(&req)?;
    let device_id = app.store.add_device(caller.user_id, &device).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisterResponse {
            user_id: caller.user_id,
            device_id: device_id as u32,
            token,
        }),
    ))
}

/// Remove a device of the caller's user, with its keys and queued envelopes.
#[utoipa::path(delete, path = "/v1/devices/{device_id}", tag = "accounts", security(("bearer" = [])),
    params(("device_id" = u32, Path, description = "a device of the caller's own user")),
    responses(
        (status = 204, description = "removed"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "the caller's user has no such device", body = ErrorBody)))]
pub(super) async fn remove_device(
    State(app): State<AppState>,
    caller: Device,
    ApiPath(device_id): ApiPath<u32>,
) -> Result<StatusCode, ApiError> {
    let not_found =
        || ApiError::NotFound(format!("device_id: your user has no device {device_id}"));
    let id = i32::try_from(device_id).map_err(|_| not_found())?;
    if app.store.remove_device(caller.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
