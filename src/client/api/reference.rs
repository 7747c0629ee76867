//! The reference API (docs/api.md): this project's server, and any server that copies its
//! routes and shapes. HTTP with a bearer token per device; binary fields in standard base64
//! with padding; errors with the server's `error` code kept so they can be counted per
//! operation. Delivery is a WebSocket ([`super::reference_push`]).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::types::b64;
use super::{
    ApiError, Bundle, Capability, Credential, Dialect, OneTimePrekeyBody, PushChannel, PushError,
    Registered, SendOutcome, SendRequest, ServerApi, SignedPrekeyBody, Uploaded,
};
use crate::client::keys::DeviceKeys;

/// One connection pool shared by every virtual device of a run.
#[derive(Clone)]
pub struct ReferenceApi {
    http: reqwest::Client,
    base: String,
}

/// The registration body: a device's public keys.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterRequest {
    pub registration_id: u32,
    #[serde(with = "b64")]
    pub identity_key: [u8; 32],
    pub signed_prekey: SignedPrekeyBody,
    pub one_time_prekeys: Vec<OneTimePrekeyBody>,
}

impl RegisterRequest {
    pub fn of(keys: &DeviceKeys) -> RegisterRequest {
        RegisterRequest {
            registration_id: keys.registration_id,
            identity_key: keys.identity.public(),
            signed_prekey: SignedPrekeyBody::from(&keys.signed),
            one_time_prekeys: keys.one_time.iter().map(OneTimePrekeyBody::from).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct RegisteredBody {
    user_id: Uuid,
    device_id: u32,
    token: String,
}

#[derive(Debug, Clone, Deserialize)]
struct BundlesResponse {
    bundles: Vec<Bundle>,
}

#[derive(Debug, Deserialize)]
struct SendResponse {
    stored: u64,
    duplicate: bool,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    missing_devices: Vec<u32>,
    #[serde(default)]
    extra_devices: Vec<u32>,
}

#[derive(Debug, Deserialize)]
struct Count {
    one_time: u64,
}

impl ReferenceApi {
    /// `base`: e.g. `http://127.0.0.1:8080` (a trailing slash is fine).
    pub fn new(base: &str, timeout: Duration) -> Result<ReferenceApi, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(ReferenceApi {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn token(cred: &Credential) -> Result<&str, ApiError> {
        match cred {
            Credential::Bearer(t) => Ok(t),
            other => Err(ApiError::WrongCredential {
                dialect: Dialect::Reference,
                credential: other.clone(),
            }),
        }
    }

    async fn error(resp: reqwest::Response) -> ApiError {
        let status = resp.status().as_u16();
        match resp.json::<ErrorBody>().await {
            Ok(b) => ApiError::Status {
                status,
                code: b.error,
                message: b.message,
            },
            Err(_) => ApiError::Status {
                status,
                code: "unparseable".into(),
                message: "no JSON error body".into(),
            },
        }
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        resp: reqwest::Response,
        ok: StatusCode,
    ) -> Result<T, ApiError> {
        if resp.status() != ok {
            return Err(Self::error(resp).await);
        }
        Ok(resp.json().await?)
    }

    async fn registered(resp: reqwest::Response) -> Result<Registered, ApiError> {
        let r: RegisteredBody = Self::json(resp, StatusCode::CREATED).await?;
        Ok(Registered {
            user_id: r.user_id,
            device_id: r.device_id,
            credential: Credential::Bearer(r.token),
        })
    }

    async fn fetch_bundles(&self, token: &str, path: &str) -> Result<Vec<Bundle>, ApiError> {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?;
        Ok(Self::json::<BundlesResponse>(resp, StatusCode::OK)
            .await?
            .bundles)
    }

    /// The answer to a send: stored, or the device list the server expects (`409`).
    async fn send_outcome(resp: reqwest::Response) -> Result<SendOutcome, ApiError> {
        match resp.status() {
            StatusCode::OK => {
                let r: SendResponse = resp.json().await?;
                Ok(SendOutcome::Stored {
                    stored: r.stored,
                    duplicate: r.duplicate,
                })
            }
            StatusCode::CONFLICT => {
                let status = resp.status().as_u16();
                let body: ErrorBody = resp.json().await?;
                if body.error == "mismatched_devices" {
                    Ok(SendOutcome::MismatchedDevices {
                        missing: body.missing_devices,
                        extra: body.extra_devices,
                    })
                } else {
                    Err(ApiError::Status {
                        status,
                        code: body.error,
                        message: body.message,
                    })
                }
            }
            _ => Err(Self::error(resp).await),
        }
    }
}

/// Everything the reference server offers.
const CAPABILITIES: &[Capability] = &[
    Capability::PrekeyCount,
    Capability::PrekeyUpload,
    Capability::SignedPrekeyRotation,
    Capability::MultiDevice,
    Capability::DeviceBundle,
    Capability::DeviceListMismatch,
    Capability::Acknowledge,
    Capability::RemoveDevice,
];

#[async_trait]
impl ServerApi for ReferenceApi {
    fn dialect(&self) -> Dialect {
        Dialect::Reference
    }

    fn base(&self) -> &str {
        &self.base
    }

    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }

    fn raw(&self) -> Option<&dyn super::raw::RawRoutes> {
        Some(self)
    }

    /// `GET /healthz`; the reference server says whether its database commits durably.
    async fn health(&self) -> Result<Option<bool>, ApiError> {
        let resp = self.http.get(self.url("/healthz")).send().await?;
        if resp.status() != StatusCode::OK {
            return Err(Self::error(resp).await);
        }
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        Ok(body.get("durable").and_then(serde_json::Value::as_bool))
    }

    async fn register_user(&self, keys: &mut DeviceKeys) -> Result<Registered, ApiError> {
        let resp = self
            .http
            .post(self.url("/v1/users"))
            .json(&RegisterRequest::of(&*keys))
            .send()
            .await?;
        Self::registered(resp).await
    }

    async fn add_device(
        &self,
        cred: &Credential,
        keys: &mut DeviceKeys,
    ) -> Result<Registered, ApiError> {
        let resp = self
            .http
            .post(self.url("/v1/devices"))
            .bearer_auth(Self::token(cred)?)
            .json(&RegisterRequest::of(&*keys))
            .send()
            .await?;
        Self::registered(resp).await
    }

    async fn remove_device(&self, cred: &Credential, device: u32) -> Result<(), ApiError> {
        let resp = self
            .http
            .delete(self.url(&format!("/v1/devices/{device}")))
            .bearer_auth(Self::token(cred)?)
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(Self::error(resp).await);
        }
        Ok(())
    }

    async fn upload_one_time(
        &self,
        cred: &Credential,
        prekeys: &[OneTimePrekeyBody],
    ) -> Result<Uploaded, ApiError> {
        #[derive(Serialize)]
        struct Body<'a> {
            prekeys: &'a [OneTimePrekeyBody],
        }
        let resp = self
            .http
            .post(self.url("/v1/keys/one-time"))
            .bearer_auth(Self::token(cred)?)
            .json(&Body { prekeys })
            .send()
            .await?;
        Self::json(resp, StatusCode::OK).await
    }

    async fn rotate_signed(
        &self,
        cred: &Credential,
        spk: &SignedPrekeyBody,
    ) -> Result<(), ApiError> {
        let resp = self
            .http
            .put(self.url("/v1/keys/signed"))
            .bearer_auth(Self::token(cred)?)
            .json(spk)
            .send()
            .await?;
        if resp.status() != StatusCode::NO_CONTENT {
            return Err(Self::error(resp).await);
        }
        Ok(())
    }

    async fn prekey_count(&self, cred: &Credential) -> Result<u64, ApiError> {
        let resp = self
            .http
            .get(self.url("/v1/keys/count"))
            .bearer_auth(Self::token(cred)?)
            .send()
            .await?;
        Ok(Self::json::<Count>(resp, StatusCode::OK).await?.one_time)
    }

    async fn bundles(&self, cred: &Credential, user: Uuid) -> Result<Vec<Bundle>, ApiError> {
        self.fetch_bundles(Self::token(cred)?, &format!("/v1/keys/{user}"))
            .await
    }

    async fn device_bundle(
        &self,
        cred: &Credential,
        user: Uuid,
        device: u32,
    ) -> Result<Vec<Bundle>, ApiError> {
        self.fetch_bundles(Self::token(cred)?, &format!("/v1/keys/{user}/{device}"))
            .await
    }

    async fn send(
        &self,
        cred: &Credential,
        user: Uuid,
        req: &SendRequest,
    ) -> Result<SendOutcome, ApiError> {
        let resp = self
            .http
            .put(self.url(&format!("/v1/messages/{user}")))
            .bearer_auth(Self::token(cred)?)
            .json(req)
            .send()
            .await?;
        Self::send_outcome(resp).await
    }

    async fn open_push(&self, cred: &Credential) -> Result<Box<dyn PushChannel>, PushError> {
        let token = Self::token(cred)?;
        let push = super::reference_push::WebSocketPush::connect(&self.base, token).await?;
        Ok(Box::new(push))
    }
}
