//! The reference API's operations as raw requests (docs/api.md), for the conformance checks
//! that mutate them ([`super::raw`]).

use std::time::SystemTime;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore;
use reqwest::Method;
use serde_json::json;

use super::raw::{ParamKind, PathParam, RawRequest, RawRoutes, RawSubject};
use super::reference::{ReferenceApi, RegisterRequest};
use super::{ApiError, Credential, Dialect, EnvelopeType};

fn uuid_param(name: &'static str, value: uuid::Uuid) -> PathParam {
    PathParam {
        name,
        value: value.to_string(),
        kind: ParamKind::Uuid,
    }
}

fn int_param(name: &'static str, value: impl ToString) -> PathParam {
    PathParam {
        name,
        value: value.to_string(),
        kind: ParamKind::Integer,
    }
}

fn request(
    operation: &'static str,
    method: Method,
    template: &'static str,
    params: Vec<PathParam>,
    body: Option<serde_json::Value>,
) -> RawRequest {
    let writes = method != Method::GET;
    RawRequest {
        operation,
        authenticated: operation != "register_user",
        writes,
        method,
        template,
        params,
        body,
    }
}

fn send_body(s: &RawSubject<'_>) -> serde_json::Value {
    let messages: Vec<_> = s
        .sealed
        .iter()
        .map(|(device, kind, header, ciphertext)| {
            json!({
                "device_id": device,
                "type": match kind { EnvelopeType::Prekey => "prekey", EnvelopeType::Ratchet => "ratchet" },
                "header": STANDARD.encode(header),
                "ciphertext": STANDARD.encode(ciphertext),
            })
        })
        .collect();
    json!({"message_id": s.message_id, "messages": messages})
}

impl RawRoutes for ReferenceApi {
    fn examples(&self, s: &RawSubject<'_>) -> Vec<RawRequest> {
        let register = serde_json::to_value(RegisterRequest::of(s.new_keys)).unwrap_or_default();
        let peer_device = s.peer_devices.first().copied().unwrap_or(1);
        let mut out = vec![
            request(
                "register_user",
                Method::POST,
                "/v1/users",
                vec![],
                Some(register.clone()),
            ),
            request(
                "add_device",
                Method::POST,
                "/v1/devices",
                vec![],
                Some(register),
            ),
            request(
                "upload_one_time",
                Method::POST,
                "/v1/keys/one-time",
                vec![],
                Some(json!({ "prekeys": s.new_one_time })),
            ),
            request(
                "rotate_signed",
                Method::PUT,
                "/v1/keys/signed",
                vec![],
                Some(serde_json::to_value(&s.new_signed).unwrap_or_default()),
            ),
            request("prekey_count", Method::GET, "/v1/keys/count", vec![], None),
            request(
                "bundles",
                Method::GET,
                "/v1/keys/{user_id}",
                vec![uuid_param("user_id", s.peer_user)],
                None,
            ),
            request(
                "device_bundle",
                Method::GET,
                "/v1/keys/{user_id}/{device_id}",
                vec![
                    uuid_param("user_id", s.peer_user),
                    int_param("device_id", peer_device),
                ],
                None,
            ),
            request(
                "send",
                Method::PUT,
                "/v1/messages/{user_id}",
                vec![uuid_param("user_id", s.peer_user)],
                Some(send_body(s)),
            ),
            request("poll", Method::GET, "/v1/messages", vec![], None),
        ];
        if let Some(id) = s.envelope_id {
            out.push(request(
                "acknowledge",
                Method::DELETE,
                "/v1/messages/{envelope_id}",
                vec![int_param("envelope_id", id)],
                None,
            ));
        }
        out.push(request(
            "remove_device",
            Method::DELETE,
            "/v1/devices/{device_id}",
            vec![int_param("device_id", s.spare_device)],
            None,
        ));
        out
    }

    fn auth_headers(
        &self,
        _req: &RawRequest,
        _path: &str,
        _body: &[u8],
        cred: &Credential,
        _at: SystemTime,
    ) -> Result<Vec<(String, String)>, ApiError> {
        match cred {
            Credential::Bearer(token) => Ok(vec![(
                "authorization".to_string(),
                format!("Bearer {token}"),
            )]),
            other => Err(ApiError::WrongCredential {
                dialect: Dialect::Reference,
                credential: other.clone(),
            }),
        }
    }

    /// A token of the right form (32 random bytes, base64url) that the server never issued.
    fn forged_credential(&self) -> Credential {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        Credential::Bearer(URL_SAFE_NO_PAD.encode(raw))
    }

    fn push_path(&self, _user: uuid::Uuid) -> Option<String> {
        Some("/v1/websocket".into())
    }
}
