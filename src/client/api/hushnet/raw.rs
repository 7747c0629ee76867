//! HushNet's operations as raw requests, for the conformance checks that mutate them
//! ([`crate::client::api::raw`]). Which requests need a credential follows HushNet's
//! published `docs/API.md` ("Authentication: Required"), not what its code checks: the
//! checks then say whether the code holds to it.
//!
//! The device registration (`register_user`, the request that carries the keys) needs a
//! single-use enrollment token: [`super::HushnetApi`]'s `prepare_raw` stocks one before each
//! call of `examples`. A send is `send_first` (`POST /sessions`, for `prekey` envelopes) or
//! `send` (`POST /messages`, for `ratchet` ones), which needs the users' chat: it exists once
//! a session between the caller and the peer was confirmed, and `prepare_raw` looks it up.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::OsRng;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::auth::AuthHeaders;
use super::codec::{b64, HeaderJson};
use super::keys::{registration, session_init};
use super::wire::{CreateSessionRequest, MessagePayload, SendMessageRequest};
use super::HushnetApi;
use crate::client::api::raw::{ParamKind, PathParam, RawRequest, RawRoutes, RawSubject};
use crate::client::api::{ApiError, Credential, EnvelopeType};
use crate::client::wire as envelope;
use crate::crypto::identity::IdentityKeyPair;

fn uuid_param(name: &'static str, value: Uuid) -> PathParam {
    PathParam {
        name,
        value: value.to_string(),
        kind: ParamKind::Uuid,
    }
}

fn request(
    operation: &'static str,
    method: Method,
    template: &'static str,
    params: Vec<PathParam>,
    body: Option<serde_json::Value>,
    authenticated: bool,
) -> RawRequest {
    RawRequest {
        operation,
        writes: method != Method::GET,
        method,
        template,
        params,
        body,
        authenticated,
    }
}

impl HushnetApi {
    /// The device registration of `s.new_keys` with the stocked enrollment (a placeholder,
    /// refused by the server, if none was stocked).
    fn register_example(&self, s: &RawSubject<'_>) -> RawRequest {
        let (user, token) = self
            .inner
            .dir
            .take_enrollment()
            .unwrap_or_else(|| (Uuid::nil(), "no-enrollment-token-stocked".into()));
        let k = s.new_keys;
        let body = registration(user, &token, &k.identity, &k.signed, &k.one_time, "conform");
        request(
            "register_user",
            Method::POST,
            "/users/{user_id}/devices",
            vec![uuid_param("user_id", user)],
            serde_json::to_value(body).ok(),
            false,
        )
    }

    /// `s.sealed` as HushNet carries it: `prekey` envelopes as a session initiation,
    /// `ratchet` ones as a message (when a chat with the peer is known).
    fn send_examples(&self, s: &RawSubject<'_>) -> Vec<RawRequest> {
        let dir = &self.inner.dir;
        let (mut inits, mut payloads) = (Vec::new(), Vec::new());
        for (number, kind, header, ciphertext) in &s.sealed {
            let Some(device) = dir.uuid(s.peer_user, *number) else {
                continue;
            };
            match kind {
                EnvelopeType::Prekey => {
                    let Ok((initial, h)) = envelope::parse_prekey_header(header) else {
                        continue;
                    };
                    let otpk = initial
                        .one_time_prekey_id
                        .and_then(|id| dir.one_time(device, id));
                    if let Ok(init) =
                        session_init(s.message_id, device, otpk, &initial, &h, ciphertext)
                    {
                        inits.push(init);
                    }
                }
                EnvelopeType::Ratchet => {
                    if let Ok(h) = envelope::parse_ratchet_header(header) {
                        payloads.push(MessagePayload {
                            to_device_id: device,
                            header: HeaderJson::from_header(&h),
                            ciphertext: b64(ciphertext),
                        });
                    }
                }
            }
        }
        let mut out = Vec::new();
        if !inits.is_empty() {
            let body = CreateSessionRequest {
                recipient_user_id: s.peer_user,
                sessions_init: inits,
            };
            let body = serde_json::to_value(body).ok();
            out.push(request(
                "send_first",
                Method::POST,
                "/sessions",
                vec![],
                body,
                true,
            ));
        }
        let chat = dir.chat(s.me_user, s.peer_user);
        if let (false, Some(chat_id)) = (payloads.is_empty(), chat) {
            let body = SendMessageRequest {
                chat_id,
                logical_msg_id: s.message_id.to_string(),
                to_user_id: s.peer_user,
                payloads,
            };
            let body = serde_json::to_value(body).ok();
            out.push(request(
                "send",
                Method::POST,
                "/messages",
                vec![],
                body,
                true,
            ));
        }
        out
    }
}

impl RawRoutes for HushnetApi {
    fn examples(&self, s: &RawSubject<'_>) -> Vec<RawRequest> {
        let peer = || vec![uuid_param("user_id", s.peer_user)];
        let mut out = vec![
            request(
                "create_user",
                Method::POST,
                "/users/create",
                vec![],
                Some(json!({ "username": super::username() })),
                false,
            ),
            self.register_example(s),
            request(
                "bundles",
                Method::GET,
                "/users/{user_id}/keys",
                peer(),
                None,
                true,
            ),
            request(
                "devices",
                Method::GET,
                "/users/{user_id}/devices",
                peer(),
                None,
                true,
            ),
        ];
        out.extend(self.send_examples(s));
        out.extend([
            request(
                "pending_sessions",
                Method::GET,
                "/sessions/pending",
                vec![],
                None,
                true,
            ),
            request("chats", Method::GET, "/chats", vec![], None, true),
            request("poll", Method::GET, "/messages/pending", vec![], None, true),
        ]);
        out
    }

    /// The three headers, signed as of `at` (HushNet signs the timestamp only).
    fn auth_headers(
        &self,
        _req: &RawRequest,
        _path: &str,
        _body: &[u8],
        cred: &Credential,
        at: SystemTime,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let (identity, _) = super::identity(cred)?;
        let secs = match at.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        let h = AuthHeaders::sign(identity, secs);
        Ok(h.pairs()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// An identity key the server never registered, for a device id it never issued.
    fn forged_credential(&self) -> Credential {
        Credential::IdentitySignature {
            identity: Box::new(IdentityKeyPair::generate(&mut OsRng)),
            device: Uuid::new_v4().to_string(),
        }
    }

    fn push_path(&self, user: Uuid) -> Option<String> {
        Some(format!("/ws/{user}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::keys::KeyFactory;
    use std::time::Duration;

    fn api() -> HushnetApi {
        HushnetApi::new("http://127.0.0.1:9", Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn auth_headers_sign_the_given_second() {
        let api = api();
        let id = IdentityKeyPair::from_seed(&[5; 32]);
        let cred = Credential::IdentitySignature {
            identity: Box::new(id.clone()),
            device: Uuid::from_u128(1).to_string(),
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_698_765_432);
        let req = request("chats", Method::GET, "/chats", vec![], None, true);
        let h = api.auth_headers(&req, "/chats", b"", &cred, at).unwrap();
        let expected = AuthHeaders::sign(&id, 1_698_765_432);
        let names: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["X-Identity-Key", "X-Signature", "X-Timestamp"]);
        assert_eq!(h[2].1, "1698765432");
        assert_eq!(h[1].1, expected.signature);
        let bearer = Credential::Bearer("t".into());
        assert!(api.auth_headers(&req, "/chats", b"", &bearer, at).is_err());
    }

    #[test]
    fn examples_follow_api_md_on_authentication() {
        let api = api();
        api.inner
            .dir
            .stock_enrollment(Uuid::from_u128(7), "jwt".into());
        let keys = KeyFactory::new(0, 2).take();
        let s = RawSubject {
            me_user: Uuid::from_u128(1),
            me_device: 1,
            spare_device: 1,
            peer_user: Uuid::from_u128(2),
            peer_devices: vec![1],
            envelope_id: None,
            new_keys: &keys,
            new_signed: (&keys.signed).into(),
            new_one_time: vec![],
            sealed: vec![],
            message_id: Uuid::from_u128(3),
        };
        let ex = api.examples(&s);
        let public: Vec<&str> = ex
            .iter()
            .filter(|r| !r.authenticated)
            .map(|r| r.operation)
            .collect();
        assert_eq!(public, ["create_user", "register_user"]);
        let reg = ex.iter().find(|r| r.operation == "register_user").unwrap();
        assert_eq!(reg.path(), format!("/users/{}/devices", Uuid::from_u128(7)));
        let body = reg.body.as_ref().unwrap();
        assert_eq!(body["enrollment_token"], "jwt");
        assert_eq!(body["one_time_prekeys"].as_array().unwrap().len(), 2);
        assert!(api.inner.dir.take_enrollment().is_none(), "used up");
        assert_eq!(
            api.push_path(Uuid::from_u128(2)).unwrap(),
            format!("/ws/{}", Uuid::from_u128(2))
        );
    }
}
