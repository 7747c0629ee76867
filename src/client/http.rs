//! The reference API over HTTP (docs/api.md), as the virtual clients use it: typed requests
//! and responses, binary fields in standard base64 with padding, errors with the server's
//! `error` code kept so they can be counted per operation.

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One connection pool shared by every virtual device of a run.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    #[error("HTTP {status}: {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            ApiError::Transport(_) => None,
        }
    }
}

/// Base64 (standard, padded) for fixed-size and variable binary fields.
pub mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(bytes: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes.as_ref()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD.decode(text.as_bytes()).map_err(D::Error::custom)?;
        let len = bytes.len();
        T::try_from(bytes).map_err(|_| D::Error::custom(format!("unexpected length {len}")))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedPrekeyBody {
    pub key_id: u32,
    #[serde(with = "b64")]
    pub public_key: [u8; 32],
    #[serde(with = "b64")]
    pub signature: [u8; 64],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneTimePrekeyBody {
    pub key_id: u32,
    #[serde(with = "b64")]
    pub public_key: [u8; 32],
}

#[derive(Debug, Clone, Serialize)]
pub struct RegisterRequest {
    pub registration_id: u32,
    #[serde(with = "b64")]
    pub identity_key: [u8; 32],
    pub signed_prekey: SignedPrekeyBody,
    pub one_time_prekeys: Vec<OneTimePrekeyBody>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Registered {
    pub user_id: Uuid,
    pub device_id: u32,
    pub token: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Bundle {
    pub device_id: u32,
    pub registration_id: u32,
    #[serde(with = "b64")]
    pub identity_key: [u8; 32],
    pub signed_prekey: SignedPrekeyBody,
    pub one_time_prekey: Option<OneTimePrekeyBody>,
}

#[derive(Debug, Clone, Deserialize)]
struct BundlesResponse {
    bundles: Vec<Bundle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvelopeType {
    Prekey,
    Ratchet,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutgoingMessage {
    pub device_id: u32,
    #[serde(rename = "type")]
    pub kind: EnvelopeType,
    #[serde(with = "b64")]
    pub header: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SendRequest {
    pub message_id: Uuid,
    pub messages: Vec<OutgoingMessage>,
}

/// What a send achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Stored {
        stored: u64,
        duplicate: bool,
    },
    /// `409 mismatched_devices`: the envelopes did not cover exactly the recipient's devices.
    MismatchedDevices {
        missing: Vec<u32>,
        extra: Vec<u32>,
    },
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

#[derive(Debug, Deserialize)]
pub struct Uploaded {
    pub stored: u64,
    pub available: u64,
}

/// An envelope as delivered (WebSocket frame or poll).
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub id: i64,
    pub message_id: Uuid,
    pub sender_user: Uuid,
    pub sender_device: u32,
    #[serde(rename = "type")]
    pub kind: EnvelopeType,
    #[serde(with = "b64")]
    pub header: Vec<u8>,
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

impl Api {
    /// `base`: e.g. `http://127.0.0.1:8080` (a trailing slash is fine).
    pub fn new(base: &str, timeout: Duration) -> Result<Api, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

    /// `GET /healthz`: 200 when the server and its database answer.
    /// `GET /healthz`; `Some(durable)` when the server says how its database commits (the
    /// reference server does; other servers may not).
    pub async fn health(&self) -> Result<Option<bool>, ApiError> {
        let resp = self.http.get(self.url("/healthz")).send().await?;
        if resp.status() != StatusCode::OK {
            return Err(Self::error(resp).await);
        }
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        Ok(body.get("durable").and_then(serde_json::Value::as_bool))
    }

    pub async fn register_user(&self, req: &RegisterRequest) -> Result<Registered, ApiError> {
        let resp = self
            .http
            .post(self.url("/v1/users"))
            .json(req)
            .send()
            .await?;
        Self::json(resp, StatusCode::CREATED).await
    }

    /// Adds a device to the user of `token`.
    pub async fn add_device(
        &self,
        token: &str,
        req: &RegisterRequest,
    ) -> Result<Registered, ApiError> {
        let resp = self
            .http
            .post(self.url("/v1/devices"))
            .bearer_auth(token)
            .json(req)
            .send()
            .await?;
        Self::json(resp, StatusCode::CREATED).await
    }

    pub async fn upload_one_time(
        &self,
        token: &str,
        prekeys: &[OneTimePrekeyBody],
    ) -> Result<Uploaded, ApiError> {
        #[derive(Serialize)]
        struct Body<'a> {
            prekeys: &'a [OneTimePrekeyBody],
        }
        let resp = self
            .http
            .post(self.url("/v1/keys/one-time"))
            .bearer_auth(token)
            .json(&Body { prekeys })
            .send()
            .await?;
        Self::json(resp, StatusCode::OK).await
    }

    pub async fn rotate_signed(&self, token: &str, spk: &SignedPrekeyBody) -> Result<(), ApiError> {
        let resp = self
            .http
            .put(self.url("/v1/keys/signed"))
            .bearer_auth(token)
            .json(spk)
            .send()
            .await?;
        if resp.status() != StatusCode::NO_CONTENT {
            return Err(Self::error(resp).await);
        }
        Ok(())
    }

    pub async fn prekey_count(&self, token: &str) -> Result<u64, ApiError> {
        let resp = self
            .http
            .get(self.url("/v1/keys/count"))
            .bearer_auth(token)
            .send()
            .await?;
        Ok(Self::json::<Count>(resp, StatusCode::OK).await?.one_time)
    }

    /// Bundles of every device of `user` (each claims at most one one-time prekey).
    pub async fn bundles(&self, token: &str, user: Uuid) -> Result<Vec<Bundle>, ApiError> {
        self.fetch_bundles(token, &format!("/v1/keys/{user}")).await
    }

    /// The bundle of one device of `user`.
    pub async fn device_bundle(
        &self,
        token: &str,
        user: Uuid,
        device: u32,
    ) -> Result<Vec<Bundle>, ApiError> {
        self.fetch_bundles(token, &format!("/v1/keys/{user}/{device}"))
            .await
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

    pub async fn send(
        &self,
        token: &str,
        user: Uuid,
        req: &SendRequest,
    ) -> Result<SendOutcome, ApiError> {
        let resp = self
            .http
            .put(self.url(&format!("/v1/messages/{user}")))
            .bearer_auth(token)
            .json(req)
            .send()
            .await?;
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
