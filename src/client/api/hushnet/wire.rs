//! HushNet's request and response bodies, field for field as its code (commit a859568)
//! serializes them. Where its `docs/API.md` says otherwise, the code wins and the doc
//! comment says what the document claims.
//!
//! Keys stay `String` here (HushNet stores and compares them as text); [`super::codec`]
//! turns them into bytes. Timestamps are `String`: HushNet's `TIMESTAMP` columns serialize
//! without a zone (`2026-11-29T19:47:24.123456`), `created_at` of messages with one.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::codec::HeaderJson;

/// `POST /users/create` (API.md: `POST /users`).
#[derive(Debug, Clone, Serialize)]
pub struct CreateUserRequest {
    pub username: String,
}

/// A user as `GET /users`, `GET /users/{id}` and `POST /users/create` show one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: String,
    pub created_at: Option<String>,
}

/// `201` of `POST /users/create` (API.md shows the bare user, without the token).
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedUser {
    pub user: UserRecord,
    /// An HS256 JWT (`sub` = user id, 5 minutes), single use: [`RegisterDeviceRequest`].
    pub enrollment_token: String,
}

/// `signed_prekey` of a device registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPreKeyBody {
    pub key: String,
    pub signature: String,
}

/// One entry of `one_time_prekeys` in a registration (stored as the bare `key` strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimePreKeyBody {
    pub key: String,
}

/// `POST /users/{id}/devices` (API.md: `POST /devices` with flat `signed_prekey_pub` /
/// `signed_prekey_sig` and string prekeys, authenticated). Not authenticated: the
/// `enrollment_token` stands for the user, and the path's `{id}` is not read (`user_id` is).
#[derive(Debug, Clone, Serialize)]
pub struct RegisterDeviceRequest {
    pub user_id: Uuid,
    pub identity_pubkey: String,
    pub prekey_pubkey: String,
    pub signed_prekey: SignedPreKeyBody,
    pub one_time_prekeys: Vec<OneTimePreKeyBody>,
    pub device_label: String,
    pub push_token: String,
    pub enrollment_token: String,
}

/// A device row: `201` of a registration and each item of `GET /users/{id}/devices`.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)] // HushNet's whole row, as its code answers it (the unit tests read it back); the dialect reads only some fields.
pub struct DeviceRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub identity_pubkey: String,
    pub prekey_pubkey: String,
    pub signed_prekey_pub: String,
    pub signed_prekey_sig: String,
    /// Every one-time prekey still stored (HushNet never removes one).
    pub one_time_prekeys: Vec<String>,
    pub device_label: Option<String>,
    pub push_token: Option<String>,
    pub last_seen: Option<String>,
    pub created_at: Option<String>,
}

/// One item of `GET /users/{id}/keys` (API.md: `GET /devices/keys/:username`, wrapped in
/// `{user_id, username, devices}`, one `one_time_prekey` consumed per fetch). The code
/// returns a bare array, all one-time prekeys, and consumes none.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)] // HushNet's whole row, as its code answers it (the unit tests read it back); the dialect reads only some fields.
pub struct DeviceBundle {
    pub device_id: Uuid,
    pub identity_pubkey: String,
    pub prekey_pubkey: String,
    pub signed_prekey_pub: String,
    pub signed_prekey_sig: String,
    pub one_time_prekeys: Vec<String>,
}

/// One X3DH initiation towards one device, inside [`CreateSessionRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInit {
    pub recipient_device_id: Uuid,
    /// b64 `EK_A` (32-byte X25519).
    pub ephemeral_pubkey: String,
    /// b64 of the initiator's X25519 `IK_A` (HushNet's "prekey_pubkey" role).
    pub sender_prekey_pub: String,
    /// b64 of the recipient's one-time prekey used; empty when none was.
    pub otpk_used: String,
    /// [`super::codec::seal_first_message`].
    pub ciphertext: String,
}

/// `POST /sessions` (API.md: one flat init with `sender_device_id`). `201 {"status":"ok"}`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateSessionRequest {
    pub recipient_user_id: Uuid,
    pub sessions_init: Vec<SessionInit>,
}

/// `200` of `GET /sessions/pending` (API.md: a bare array with `state`).
#[derive(Debug, Clone, Deserialize)]
pub struct PendingSessions {
    pub sessions: Vec<PendingSession>,
}

#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)] // HushNet's whole row, as its code answers it (the unit tests read it back); the dialect reads only some fields.
pub struct PendingSession {
    pub id: Uuid,
    pub sender_device_id: Uuid,
    pub recipient_device_id: Uuid,
    pub ephemeral_pubkey: String,
    pub sender_prekey_pub: String,
    pub otpk_used: String,
    pub ciphertext: String,
    pub created_at: Option<String>,
}

/// `POST /sessions/confirm` (API.md: `{pending_session_id, chat_id}`). Creates the users'
/// direct chat if there is none; `201 {"status":"session confirmed"}`, no chat id.
#[derive(Debug, Clone, Serialize)]
pub struct ConfirmSessionRequest {
    pub pending_session_id: Uuid,
    pub sender_device_id: Uuid,
    pub receiver_device_id: Uuid,
}

/// One item of `GET /chats` (API.md: raw chat rows with `user_a`/`user_b`).
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)] // HushNet's whole row, as its code answers it (the unit tests read it back); the dialect reads only some fields.
pub struct ChatView {
    pub id: Uuid,
    pub chat_type: Option<String>,
    pub partner_user_id: Option<Uuid>,
    pub partner_username: Option<String>,
    pub partner_federated_address: Option<String>,
    pub name: Option<String>,
    pub last_message_id: Option<Uuid>,
    pub updated_at: Option<String>,
}

/// One device's envelope inside [`SendMessageRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagePayload {
    pub to_device_id: Uuid,
    pub header: HeaderJson,
    /// b64 ratchet ciphertext.
    pub ciphertext: String,
}

/// `POST /messages` (API.md: one `to_device_id`, `201` with ids). The code takes a logical
/// message fanned out over `payloads` and answers `200 {"success":"true"}`.
#[derive(Debug, Clone, Serialize)]
pub struct SendMessageRequest {
    pub chat_id: Uuid,
    pub logical_msg_id: String,
    pub to_user_id: Uuid,
    pub payloads: Vec<MessagePayload>,
}

/// One item of `GET /messages/pending` (API.md: `/messages/pending/:device_id` with
/// `to_*`, `delivered_at`, `read_at`). Fetching marks it delivered: there is no ack.
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)] // HushNet's whole row, as its code answers it (the unit tests read it back); the dialect reads only some fields.
pub struct PendingMessage {
    pub id: Uuid,
    pub logical_msg_id: String,
    pub chat_id: Option<Uuid>,
    pub from_user_id: Option<Uuid>,
    pub from_device_id: Option<Uuid>,
    /// Whatever JSON the sender put there; [`HeaderJson::from_value`] reads ours.
    pub header: serde_json::Value,
    pub ciphertext: String,
    pub created_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: &str = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
    const DEVICE: &str = "d1e2f3a4-b5c6-7890-abcd-ef1234567890";

    #[test]
    fn registration_body_has_hushnet_field_names() {
        let body = RegisterDeviceRequest {
            user_id: USER.parse().unwrap(),
            identity_pubkey: "base64_encoded_identity_key".into(),
            prekey_pubkey: "base64_encoded_prekey".into(),
            signed_prekey: SignedPreKeyBody {
                key: "spk".into(),
                signature: "sig".into(),
            },
            one_time_prekeys: vec![OneTimePreKeyBody { key: "k1".into() }],
            device_label: "iPhone 15 Pro".into(),
            push_token: "apns_or_fcm_token".into(),
            enrollment_token: "jwt".into(),
        };
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({
                "user_id": USER,
                "identity_pubkey": "base64_encoded_identity_key",
                "prekey_pubkey": "base64_encoded_prekey",
                "signed_prekey": {"key": "spk", "signature": "sig"},
                "one_time_prekeys": [{"key": "k1"}],
                "device_label": "iPhone 15 Pro",
                "push_token": "apns_or_fcm_token",
                "enrollment_token": "jwt"
            })
        );
    }

    #[test]
    fn api_md_device_example_parses_as_a_device_record() {
        let doc = json!({
            "id": DEVICE,
            "user_id": USER,
            "identity_pubkey": "base64_encoded_key",
            "prekey_pubkey": "base64_encoded_key",
            "signed_prekey_pub": "base64_encoded_key",
            "signed_prekey_sig": "base64_encoded_sig",
            "one_time_prekeys": ["key1", "key2", "key3"],
            "device_label": "iPhone 15 Pro",
            "push_token": "apns_token_here",
            "last_seen": "2025-11-02T14:30:00Z",
            "created_at": "2025-11-02T10:30:00Z"
        });
        let d: DeviceRecord = serde_json::from_value(doc).unwrap();
        assert_eq!(d.id.to_string(), DEVICE);
        assert_eq!(d.one_time_prekeys, ["key1", "key2", "key3"]);
    }

    #[test]
    fn bundle_and_pending_shapes_parse() {
        let bundle = json!([{
            "device_id": DEVICE, "identity_pubkey": "a", "prekey_pubkey": "b",
            "signed_prekey_pub": "c", "signed_prekey_sig": "d", "one_time_prekeys": ["e"]
        }]);
        let b: Vec<DeviceBundle> = serde_json::from_value(bundle).unwrap();
        assert_eq!(b[0].one_time_prekeys, ["e"]);

        let pending = json!({"sessions": [{
            "id": DEVICE, "sender_device_id": DEVICE, "recipient_device_id": DEVICE,
            "ephemeral_pubkey": "base64_encoded_key", "sender_prekey_pub": "base64_encoded_key",
            "otpk_used": "base64_encoded_key", "ciphertext": "base64_encoded_message",
            "created_at": "2025-11-02T10:30:00"
        }]});
        let p: PendingSessions = serde_json::from_value(pending).unwrap();
        assert_eq!(p.sessions[0].otpk_used, "base64_encoded_key");

        let msg = json!([{
            "id": DEVICE, "logical_msg_id": "logical-uuid", "chat_id": USER,
            "from_user_id": USER, "from_device_id": DEVICE,
            "header": {"dh_pubkey": "base64_key", "pn": 0, "n": 1},
            "ciphertext": "base64_encrypted_content",
            "created_at": "2025-11-02T14:30:00Z"
        }]);
        let m: Vec<PendingMessage> = serde_json::from_value(msg).unwrap();
        assert_eq!(m[0].header["n"], 1);
    }

    #[test]
    fn send_and_session_bodies_have_hushnet_field_names() {
        let send = SendMessageRequest {
            chat_id: USER.parse().unwrap(),
            logical_msg_id: "logical-uuid".into(),
            to_user_id: USER.parse().unwrap(),
            payloads: vec![MessagePayload {
                to_device_id: DEVICE.parse().unwrap(),
                header: HeaderJson {
                    dh_pubkey: "base64_encoded_ratchet_key".into(),
                    pn: 0,
                    n: 1,
                },
                ciphertext: "base64_encoded_encrypted_content".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(send).unwrap(),
            json!({
                "chat_id": USER, "logical_msg_id": "logical-uuid", "to_user_id": USER,
                "payloads": [{
                    "to_device_id": DEVICE,
                    "header": {"dh_pubkey": "base64_encoded_ratchet_key", "pn": 0, "n": 1},
                    "ciphertext": "base64_encoded_encrypted_content"
                }]
            })
        );
        let confirm = ConfirmSessionRequest {
            pending_session_id: DEVICE.parse().unwrap(),
            sender_device_id: DEVICE.parse().unwrap(),
            receiver_device_id: DEVICE.parse().unwrap(),
        };
        let v = serde_json::to_value(confirm).unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "pending_session_id",
                "receiver_device_id",
                "sender_device_id"
            ]
        );
    }
}
