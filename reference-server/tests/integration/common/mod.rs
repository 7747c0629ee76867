//! Shared by the integration tests: a real PostgreSQL (one per test binary), a migrated
//! template cloned per test, a real server on a free port, real HTTP, real keys.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use disposable_pg::TemplateCache;
use ed25519_dalek::{Signer, SigningKey};
use rand::rngs::OsRng;
use reference_server::{RunningServer, ServerConfig};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

static TEMPLATE: LazyLock<TemplateCache> = LazyLock::new(|| TemplateCache::new("refserver"));

/// Tables whose row counts prove that a rejected request wrote nothing.
pub const TABLES: &[&str] = &[
    "users",
    "devices",
    "signed_prekeys",
    "one_time_prekeys",
    "messages",
    "envelopes",
    "key_events",
];

/// A fresh, migrated database.
pub async fn database() -> String {
    let pg = disposable_pg::shared_for_tests();
    TEMPLATE
        .database(pg, |url| async move {
            reference_server::migrate(&url)
                .await
                .unwrap_or_else(|e| panic!("migrating the template: {e}"));
            Ok(())
        })
        .await
        .unwrap_or_else(|e| panic!("cloning the template database: {e}"))
}

pub struct TestServer {
    pub running: Option<RunningServer>,
    pub base: String,
    pub db_url: String,
    pub http: reqwest::Client,
}

pub async fn server() -> TestServer {
    let db_url = database().await;
    server_on(&db_url).await
}

/// Another instance on the same database.
pub async fn server_on(db_url: &str) -> TestServer {
    let running = reference_server::start(ServerConfig::new(db_url))
        .await
        .expect("server starts");
    TestServer {
        base: running.base_url(),
        running: Some(running),
        db_url: db_url.to_string(),
        http: reqwest::Client::new(),
    }
}

/// What an HTTP call returned.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
}

impl Reply {
    /// Asserts a JSON error with this status and code, and returns its message.
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "status of {self:?}");
        assert!(
            self.content_type.starts_with("application/json"),
            "error is JSON: {self:?}"
        );
        assert_eq!(self.body["error"], code, "error code of {self:?}");
        let message = self.body["message"]
            .as_str()
            .expect("message is a string")
            .to_string();
        assert!(!message.is_empty());
        message
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send(req).await
    }

    /// A raw body with a given content type.
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request reaches the server");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            body,
            content_type,
        }
    }

    /// Registers a new user with `prekeys` one-time prekeys (key ids 1..=prekeys).
    pub async fn register(&self, prekeys: u32) -> Account {
        let keys = DeviceKeys::new();
        let reply = self
            .call(
                Method::POST,
                "/v1/users",
                None,
                Some(&keys.registration(prekeys)),
            )
            .await;
        assert_eq!(reply.status, 201, "registration: {reply:?}");
        Account::from_reply(&reply, keys)
    }

    /// Adds a device to `account`'s user.
    pub async fn add_device(&self, account: &Account, prekeys: u32) -> Account {
        let keys = DeviceKeys::new();
        let reply = self
            .call(
                Method::POST,
                "/v1/devices",
                Some(&account.token),
                Some(&keys.registration(prekeys)),
            )
            .await;
        assert_eq!(reply.status, 201, "add device: {reply:?}");
        Account::from_reply(&reply, keys)
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        disposable_pg::connect(&self.db_url)
            .await
            .expect("test connects to the database")
    }

    /// Row counts of every table.
    pub async fn snapshot(&self) -> BTreeMap<&'static str, i64> {
        let db = self.db().await;
        let mut out = BTreeMap::new();
        for t in TABLES {
            let n: i64 = db
                .query_one(&format!("SELECT count(*) FROM {t}"), &[])
                .await
                .unwrap()
                .get(0);
            out.insert(*t, n);
        }
        out
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// A device's key material, generated for real.
pub struct DeviceKeys {
    pub identity: SigningKey,
    pub registration_id: u32,
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn x25519_public() -> [u8; 32] {
    let secret = x25519_dalek::StaticSecret::random_from_rng(OsRng);
    x25519_dalek::PublicKey::from(&secret).to_bytes()
}

impl DeviceKeys {
    pub fn new() -> DeviceKeys {
        DeviceKeys {
            identity: SigningKey::generate(&mut OsRng),
            registration_id: 4242,
        }
    }

    pub fn identity_public(&self) -> [u8; 32] {
        self.identity.verifying_key().to_bytes()
    }

    /// A signed prekey signed as the protocol says: over 0x05 ‖ public key.
    pub fn signed_prekey(&self, key_id: u32) -> Value {
        let public = x25519_public();
        let mut encoded = vec![0x05];
        encoded.extend_from_slice(&public);
        let signature = self.identity.sign(&encoded).to_bytes();
        json!({"key_id": key_id, "public_key": b64(&public), "signature": b64(&signature)})
    }

    pub fn registration(&self, prekeys: u32) -> Value {
        json!({
            "registration_id": self.registration_id,
            "identity_key": b64(&self.identity_public()),
            "signed_prekey": self.signed_prekey(1),
            "one_time_prekeys": one_time_prekeys(1, prekeys),
        })
    }
}

/// `count` one-time prekeys with ids first..first+count.
pub fn one_time_prekeys(first: u32, count: u32) -> Vec<Value> {
    (first..first + count)
        .map(|id| json!({"key_id": id, "public_key": b64(&x25519_public())}))
        .collect()
}

pub struct Account {
    pub user_id: Uuid,
    pub device_id: u32,
    pub token: String,
    pub keys: DeviceKeys,
}

impl Account {
    fn from_reply(reply: &Reply, keys: DeviceKeys) -> Account {
        Account {
            user_id: reply.body["user_id"].as_str().unwrap().parse().unwrap(),
            device_id: reply.body["device_id"].as_u64().unwrap() as u32,
            token: reply.body["token"].as_str().unwrap().to_string(),
            keys,
        }
    }
}

/// A send body with one ratchet envelope per listed device.
pub fn send_body(message_id: Uuid, devices: &[u32]) -> Value {
    json!({
        "message_id": message_id,
        "messages": devices.iter().map(|d| json!({
            "device_id": d, "type": "ratchet",
            "header": b64(format!("hdr-{d}").as_bytes()),
            "ciphertext": b64(format!("ct-{message_id}-{d}").as_bytes()),
        })).collect::<Vec<_>>()
    })
}
