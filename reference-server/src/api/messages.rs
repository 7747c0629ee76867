//! Message routes: send one logical message as per-device envelopes, poll, acknowledge.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::encoding::Blob;
use super::extract::{ApiJson, ApiPath};
use super::{AppState, MAX_CIPHERTEXT_BYTES, MAX_HEADER_BYTES, POLL_BATCH};
use crate::auth::Device;
use crate::error::{ApiError, ErrorBody};
use crate::store::{OutgoingEnvelope, SendOutcome, StoredEnvelope};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum EnvelopeType {
    /// Starts a session (carries the X3DH initial data).
    Prekey,
    /// A Double Ratchet message in an established session.
    Ratchet,
}

impl EnvelopeType {
    fn as_str(self) -> &'static str {
        match self {
            EnvelopeType::Prekey => "prekey",
            EnvelopeType::Ratchet => "ratchet",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OutgoingMessage {
    pub device_id: u32,
    #[serde(rename = "type")]
    pub kind: EnvelopeType,
    /// 1..=1024 bytes.
    pub header: Blob,
    /// 1..=65536 bytes.
    pub ciphertext: Blob,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SendRequest {
    /// Chosen by the sender and shared by the fan-out; resending it is idempotent.
    pub message_id: Uuid,
    /// One per current device of the recipient (the sending device excluded).
    pub messages: Vec<OutgoingMessage>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct SendResponse {
    pub message_id: Uuid,
    pub stored: i64,
    pub duplicate: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Envelope {
    pub id: i64,
    pub message_id: Uuid,
    pub sender_user: Uuid,
    pub sender_device: u32,
    #[serde(rename = "type")]
    pub kind: EnvelopeType,
    pub header: Blob,
    pub ciphertext: Blob,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PollResponse {
    /// Oldest first, at most 100.
    pub envelopes: Vec<Envelope>,
    /// More are queued beyond these.
    pub more: bool,
}

pub(super) fn envelope(e: StoredEnvelope) -> Envelope {
    Envelope {
        id: e.id,
        message_id: e.message_id,
        sender_user: e.sender_user,
        sender_device: e.sender_device as u32,
        kind: if e.kind == "prekey" {
            EnvelopeType::Prekey
        } else {
            EnvelopeType::Ratchet
        },
        header: Blob(e.header),
        ciphertext: Blob(e.ciphertext),
        created_at: e.created_at,
    }
}

fn validate(messages: Vec<OutgoingMessage>) -> Result<Vec<OutgoingEnvelope>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "at least one envelope is required",
        ));
    }
    let mut seen = HashMap::with_capacity(messages.len());
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        let device_id = i32::try_from(m.device_id)
            .ok()
            .filter(|d| *d >= 1)
            .ok_or_else(|| {
                ApiError::invalid(format!("messages[{i}].device_id"), "must be 1..=2147483647")
            })?;
        if let Some(first) = seen.insert(device_id, i) {
            return Err(ApiError::invalid(
                format!("messages[{i}].device_id"),
                format!("device {device_id} already has an envelope at messages[{first}]"),
            ));
        }
        for (field, len, max) in [
            ("header", m.header.0.len(), MAX_HEADER_BYTES),
            ("ciphertext", m.ciphertext.0.len(), MAX_CIPHERTEXT_BYTES),
        ] {
            if len == 0 || len > max {
                return Err(ApiError::invalid(
                    format!("messages[{i}].{field}"),
                    format!("{len} bytes; must be 1..={max}"),
                ));
            }
        }
        out.push(OutgoingEnvelope {
            device_id,
            kind: m.kind.as_str(),
            header: m.header.0,
            ciphertext: m.ciphertext.0,
        });
    }
    Ok(out)
}

/// Send one logical message to a user: one envelope per current device of that user.
/// (`{id}` names the recipient user here and an envelope in `acknowledge`: one template for
/// both, since OpenAPI forbids two templated paths of the same shape.)
#[utoipa::path(put, path = "/v1/messages/{id}", tag = "messages", request_body = SendRequest,
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the recipient user")),
    responses(
        (status = 200, description = "stored, or a duplicate of an earlier send (nothing new stored)", body = SendResponse),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "unknown recipient user", body = ErrorBody),
        (status = 409, description = "`mismatched_devices`, with `missing_devices` and `extra_devices`", body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub(super) async fn send(
    State(app): State<AppState>,
    sender: Device,
    ApiPath(user_id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<SendRequest>,
) -> Result<Json<SendResponse>, ApiError> {
    let envelopes = validate(req.messages)?;
    let message_id = req.message_id;
    if app.test_nondurable_ack {
        return Ok(Json(ack_then_store(
            &app, sender, user_id, message_id, envelopes,
        )));
    }
    match app
        .store
        .send(&sender, user_id, message_id, &envelopes)
        .await?
    {
        SendOutcome::Stored(n) => Ok(Json(SendResponse {
            message_id,
            stored: n,
            duplicate: false,
        })),
        SendOutcome::Duplicate => Ok(Json(SendResponse {
            message_id,
            stored: 0,
            duplicate: true,
        })),
        SendOutcome::Mismatched { missing, extra } => Err(ApiError::MismatchedDevices {
            missing: missing.into_iter().map(|d| d as u32).collect(),
            extra: extra.into_iter().map(|d| d as u32).collect(),
        }),
        SendOutcome::UnknownUser => Err(ApiError::NotFound(format!("user_id: no user {user_id}"))),
    }
}

/// How long a TEST-ONLY non-durable send waits before it stores what it acknowledged.
const NONDURABLE_DELAY: std::time::Duration = std::time::Duration::from_millis(1500);

/// TEST ONLY (`ServerConfig::test_nondurable_ack`): answers "stored" at once and stores the
/// envelopes [`NONDURABLE_DELAY`] later, so a crash in between loses acknowledged messages —
/// the loss the harness's integrity ledger must catch.
fn ack_then_store(
    app: &AppState,
    sender: Device,
    user_id: Uuid,
    message_id: Uuid,
    envelopes: Vec<OutgoingEnvelope>,
) -> SendResponse {
    let store = app.store.clone();
    let stored = envelopes.len() as i64;
    tokio::spawn(async move {
        tokio::time::sleep(NONDURABLE_DELAY).await;
        let _ = store.send(&sender, user_id, message_id, &envelopes).await;
    });
    SendResponse {
        message_id,
        stored,
        duplicate: false,
    }
}

/// The caller's queued envelopes, oldest first.
#[utoipa::path(get, path = "/v1/messages", tag = "messages", security(("bearer" = [])),
    responses((status = 200, body = PollResponse), (status = 401, body = ErrorBody)))]
pub(super) async fn poll(
    State(app): State<AppState>,
    device: Device,
) -> Result<Json<PollResponse>, ApiError> {
    app.store.touch(&device).await?;
    let (envelopes, more) = app.store.queue(&device, &[], POLL_BATCH).await?;
    Ok(Json(PollResponse {
        envelopes: envelopes.into_iter().map(envelope).collect(),
        more,
    }))
}

/// Acknowledge (delete) one of the caller's envelopes.
#[utoipa::path(delete, path = "/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the envelope to acknowledge")),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "not one of the caller's envelopes", body = ErrorBody)))]
pub(super) async fn acknowledge(
    State(app): State<AppState>,
    device: Device,
    ApiPath(envelope_id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    if app.store.acknowledge(&device, envelope_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "envelope_id: you have no envelope {envelope_id}"
        )))
    }
}
