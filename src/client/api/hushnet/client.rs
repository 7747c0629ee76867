//! HushNet's client API over HTTP, one method per route, as its code (commit a859568)
//! answers. Each method names the route, whether it is authenticated, and the status it
//! succeeds with; any other status is [`HushnetError::Status`] with the server's message.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::auth::AuthHeaders;
use super::error::HushnetError;
use super::wire::{
    ChatView, ConfirmSessionRequest, CreateSessionRequest, CreateUserRequest, CreatedUser,
    DeviceBundle, DeviceRecord, PendingMessage, PendingSession, PendingSessions,
    RegisterDeviceRequest, SendMessageRequest, UserRecord,
};

/// One connection pool to one HushNet node, shared by every virtual device of a run.
#[derive(Clone)]
pub struct HushnetClient {
    http: reqwest::Client,
    base: String,
}

impl HushnetClient {
    /// `base`: e.g. `http://127.0.0.1:8080` (a trailing slash is fine).
    pub fn new(base: &str, timeout: Duration) -> Result<Self, HushnetError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|source| HushnetError::Transport {
                operation: "client setup",
                source,
            })?;
        Ok(HushnetClient {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The WebSocket base (`ws://` or `wss://`) of the same node.
    pub fn ws_base(&self) -> String {
        match self.base.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => format!("ws://{}", self.base),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /health` → `200 {"status":"ok"}` (does not touch the database). Also tells a
    /// HushNet node from another server: anything else is [`HushnetError::Shape`].
    pub async fn health(&self) -> Result<(), HushnetError> {
        const OP: &str = "GET /health";
        let v: serde_json::Value =
            expect(OP, self.http.get(self.url("/health")), StatusCode::OK).await?;
        if v.get("status").and_then(|s| s.as_str()) != Some("ok") {
            return Err(HushnetError::Shape {
                operation: OP,
                detail: format!("expected {{\"status\":\"ok\"}}, got {v}"),
            });
        }
        Ok(())
    }

    /// `POST /users/create` (public) → `201 {user, enrollment_token}`; `409` if taken.
    pub async fn create_user(&self, username: &str) -> Result<CreatedUser, HushnetError> {
        let body = CreateUserRequest {
            username: username.to_string(),
        };
        let req = self.http.post(self.url("/users/create")).json(&body);
        expect("POST /users/create", req, StatusCode::CREATED).await
    }

    /// `POST /users/{id}/devices` (public; the enrollment token in the body) → `201` the
    /// device row; `401` for a reused token or a bad signed-prekey signature.
    pub async fn register_device(
        &self,
        req: &RegisterDeviceRequest,
    ) -> Result<DeviceRecord, HushnetError> {
        let http = self
            .http
            .post(self.url(&format!("/users/{}/devices", req.user_id)))
            .json(req);
        expect("POST /users/{id}/devices", http, StatusCode::CREATED).await
    }

    /// `GET /users/{id}/keys` → `200` one bundle per device, every one-time prekey in each,
    /// none consumed; `[]` for an unknown user. API.md says it is authenticated, so the
    /// request is signed; the code does not check.
    pub async fn bundles(
        &self,
        auth: &AuthHeaders,
        user: Uuid,
    ) -> Result<Vec<DeviceBundle>, HushnetError> {
        let req = auth.apply(self.http.get(self.url(&format!("/users/{user}/keys"))));
        expect("GET /users/{id}/keys", req, StatusCode::OK).await
    }

    /// `GET /devices/{id}/user` (public) → `200` the user a device belongs to; `404` for an
    /// unknown device. (A pending session names its sender's device, not its user.)
    pub async fn user_of_device(&self, device: Uuid) -> Result<UserRecord, HushnetError> {
        let req = self.http.get(self.url(&format!("/devices/{device}/user")));
        expect("GET /devices/{id}/user", req, StatusCode::OK).await
    }

    /// `POST /sessions` (authenticated) → `201 {"status":"ok"}`; `400` towards oneself.
    pub async fn create_session(
        &self,
        auth: &AuthHeaders,
        body: &CreateSessionRequest,
    ) -> Result<(), HushnetError> {
        let req = auth.apply(self.http.post(self.url("/sessions"))).json(body);
        let _: serde_json::Value = expect("POST /sessions", req, StatusCode::CREATED).await?;
        Ok(())
    }

    /// `GET /sessions/pending` (authenticated) → `200 {"sessions": […]}` for the signing
    /// device; a session stays there until confirmed.
    pub async fn pending_sessions(
        &self,
        auth: &AuthHeaders,
    ) -> Result<Vec<PendingSession>, HushnetError> {
        let req = auth.apply(self.http.get(self.url("/sessions/pending")));
        let p: PendingSessions = expect("GET /sessions/pending", req, StatusCode::OK).await?;
        Ok(p.sessions)
    }

    /// `POST /sessions/confirm` (authenticated, recipient) → `201`; creates the chat.
    pub async fn confirm_session(
        &self,
        auth: &AuthHeaders,
        body: &ConfirmSessionRequest,
    ) -> Result<(), HushnetError> {
        let req = auth
            .apply(self.http.post(self.url("/sessions/confirm")))
            .json(body);
        let _: serde_json::Value =
            expect("POST /sessions/confirm", req, StatusCode::CREATED).await?;
        Ok(())
    }

    /// `GET /chats` (authenticated) → `200` the signing device's user's chats.
    pub async fn chats(&self, auth: &AuthHeaders) -> Result<Vec<ChatView>, HushnetError> {
        let req = auth.apply(self.http.get(self.url("/chats")));
        expect("GET /chats", req, StatusCode::OK).await
    }

    /// `POST /messages` (authenticated) → `200 {"success":"true"}`. One row per payload,
    /// not in one transaction; a repeated `(logical_msg_id, to_device_id)` is a `500`.
    pub async fn send(
        &self,
        auth: &AuthHeaders,
        body: &SendMessageRequest,
    ) -> Result<(), HushnetError> {
        let req = auth.apply(self.http.post(self.url("/messages"))).json(body);
        let _: serde_json::Value = expect("POST /messages", req, StatusCode::OK).await?;
        Ok(())
    }

    /// `GET /messages/pending` (authenticated) → `200` the signing device's undelivered
    /// messages, oldest first, which this fetch marks delivered (there is no ack).
    pub async fn pending_messages(
        &self,
        auth: &AuthHeaders,
    ) -> Result<Vec<PendingMessage>, HushnetError> {
        let req = auth.apply(self.http.get(self.url("/messages/pending")));
        expect("GET /messages/pending", req, StatusCode::OK).await
    }
}

/// Sends `req`; `ok` → the body as `T`; any other status → [`HushnetError::Status`].
async fn expect<T: DeserializeOwned>(
    operation: &'static str,
    req: RequestBuilder,
    ok: StatusCode,
) -> Result<T, HushnetError> {
    let resp = req
        .send()
        .await
        .map_err(|source| HushnetError::Transport { operation, source })?;
    if resp.status() != ok {
        return Err(status_error(operation, resp).await);
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|source| HushnetError::Transport { operation, source })?;
    serde_json::from_slice(&bytes).map_err(|e| HushnetError::Shape {
        operation,
        detail: format!(
            "{e}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ),
    })
}

/// HushNet's error bodies are `{"error": "…"}` on most routes and plain text from its
/// authentication and session handlers; both end up in `message`.
async fn status_error(operation: &'static str, resp: Response) -> HushnetError {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or(text);
    HushnetError::Status {
        operation,
        status,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_base_follows_the_http_scheme() {
        let t = Duration::from_secs(1);
        let c = HushnetClient::new("http://127.0.0.1:8080/", t).unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:8080");
        assert_eq!(c.ws_base(), "ws://127.0.0.1:8080");
        let c = HushnetClient::new("https://node-a.hushnet.net", t).unwrap();
        assert_eq!(c.ws_base(), "wss://node-a.hushnet.net");
    }
}
