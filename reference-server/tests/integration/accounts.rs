//! Registration, devices, and bad input on registration: over real HTTP against a real
//! PostgreSQL.

use crate::common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn registration_stores_keys_and_only_the_token_hash() {
    let s = server().await;
    let a = s.register(5).await;
    assert_eq!(a.device_id, 1);
    assert_eq!(a.token.len(), 43, "32 random bytes, base64url");
    let db = s.db().await;
    let row = db
        .query_one(
            "SELECT d.registration_id, d.identity_key, d.token_hash,
                    (SELECT count(*) FROM one_time_prekeys o WHERE o.device = d.id),
                    (SELECT count(*) FROM signed_prekeys p WHERE p.device = d.id AND p.active)
             FROM devices d WHERE d.user_id = $1 AND d.device_id = 1",
            &[&a.user_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 4242);
    assert_eq!(row.get::<_, Vec<u8>>(1), a.keys.identity_public().to_vec());
    let hash: Vec<u8> = row.get(2);
    assert_eq!(hash, sha2_of(&a.token));
    assert_ne!(hash, a.token.as_bytes());
    assert_eq!(row.get::<_, i64>(3), 5);
    assert_eq!(row.get::<_, i64>(4), 1);
    let kinds: Vec<String> = db
        .query(
            "SELECT kind FROM key_events WHERE user_id = $1 ORDER BY id",
            &[&a.user_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["device_added", "keys_uploaded"]);
    s.shutdown().await;
}

fn sha2_of(token: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

#[tokio::test]
async fn devices_are_added_numbered_and_removed_with_their_keys_and_envelopes() {
    let s = server().await;
    let a = s.register(3).await;
    let a2 = s.add_device(&a, 4).await;
    assert_eq!((a2.user_id, a2.device_id), (a.user_id, 2));
    let b = s.register(0).await;
    // b sends to both of a's devices; then a removes device 2.
    let sent = s
        .call(
            Method::PUT,
            &format!("/v1/messages/{}", a.user_id),
            Some(&b.token),
            Some(&send_body(uuid::Uuid::new_v4(), &[1, 2])),
        )
        .await;
    assert_eq!(sent.status, 200, "{sent:?}");
    // Device 2 authenticates once, so its token is in the server's cache.
    let seen = s
        .call(Method::GET, "/v1/keys/count", Some(&a2.token), None)
        .await;
    assert_eq!(seen.status, 200, "{seen:?}");
    let r = s
        .call(Method::DELETE, "/v1/devices/2", Some(&a.token), None)
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let snap = s.snapshot().await;
    assert_eq!(snap["devices"], 2, "a1 and b1 remain");
    assert_eq!(
        snap["one_time_prekeys"], 3,
        "device 2's prekeys went with it"
    );
    assert_eq!(
        snap["envelopes"], 1,
        "device 2's queued envelope went with it"
    );
    // The removed device's token no longer works, though this instance had it cached.
    s.call(Method::GET, "/v1/keys/count", Some(&a2.token), None)
        .await
        .error(401, "unauthorized");
    // A new device gets a fresh number: 2 is never handed out again.
    let a3 = s.add_device(&a, 0).await;
    assert_eq!(a3.device_id, 3);
    let db = s.db().await;
    let removed: i64 = db
        .query_one("SELECT count(*) FROM key_events WHERE user_id = $1 AND device_id = 2 AND kind = 'device_removed'", &[&a.user_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(removed, 1, "the audit log keeps the removal");
    s.shutdown().await;
}

#[tokio::test]
async fn a_device_cannot_remove_another_users_device() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    let _b2 = s.add_device(&b, 0).await;
    let before = s.snapshot().await;
    // a names device 2: a's own user has none, so nothing of b's is touched.
    s.call(Method::DELETE, "/v1/devices/2", Some(&a.token), None)
        .await
        .error(404, "not_found");
    assert_eq!(s.snapshot().await, before);
    s.call(Method::DELETE, "/v1/devices/abc", Some(&a.token), None)
        .await
        .error(400, "invalid_path");
    s.shutdown().await;
}

#[tokio::test]
async fn bad_signature_is_422_and_nothing_is_stored() {
    let s = server().await;
    let keys = DeviceKeys::new();
    let other = DeviceKeys::new();
    let before = s.snapshot().await;
    // Signed by a different identity key.
    let mut body = keys.registration(3);
    body["signed_prekey"] = other.signed_prekey(1);
    let msg = s
        .call(Method::POST, "/v1/users", None, Some(&body))
        .await
        .error(422, "invalid_signature");
    assert!(msg.contains("signed_prekey.signature"), "{msg}");
    // A flipped bit in an otherwise valid signature.
    let mut body = keys.registration(3);
    let mut sig = base64_decode(&body["signed_prekey"]["signature"]);
    sig[10] ^= 1;
    body["signed_prekey"]["signature"] = json!(b64(&sig));
    s.call(Method::POST, "/v1/users", None, Some(&body))
        .await
        .error(422, "invalid_signature");
    // Signed over the bare key, without the 0x05 prefix.
    let mut body = keys.registration(0);
    let public = base64_decode(&body["signed_prekey"]["public_key"]);
    use ed25519_dalek::Signer;
    body["signed_prekey"]["signature"] = json!(b64(&keys.identity.sign(&public).to_bytes()));
    s.call(Method::POST, "/v1/users", None, Some(&body))
        .await
        .error(422, "invalid_signature");
    // Same for an added device.
    let a = s.register(0).await;
    let before_add = s.snapshot().await;
    let mut body = keys.registration(2);
    body["signed_prekey"] = other.signed_prekey(1);
    s.call(Method::POST, "/v1/devices", Some(&a.token), Some(&body))
        .await
        .error(422, "invalid_signature");
    assert_eq!(s.snapshot().await, before_add);
    let mut after = before.clone();
    after.insert("users", 1);
    after.insert("devices", 1);
    after.insert("signed_prekeys", 1);
    after.insert("key_events", 2);
    assert_eq!(
        s.snapshot().await,
        after,
        "only the one good registration is stored"
    );
    s.shutdown().await;
}

fn base64_decode(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

/// Every malformed registration: 4xx JSON naming the field, and no row written.
#[tokio::test]
async fn bad_registrations_are_4xx_json_and_write_nothing() {
    let s = server().await;
    let keys = DeviceKeys::new();
    let good = keys.registration(2);
    let before = s.snapshot().await;
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, u16, &str, &str)> = vec![
        (
            "identity key 31 bytes",
            Box::new(|b| b["identity_key"] = json!(b64(&[1u8; 31]))),
            400,
            "invalid_field",
            "identity_key",
        ),
        (
            "identity key 33 bytes",
            Box::new(|b| b["identity_key"] = json!(b64(&[1u8; 33]))),
            400,
            "invalid_field",
            "identity_key",
        ),
        (
            "spk 16 bytes",
            Box::new(|b| b["signed_prekey"]["public_key"] = json!(b64(&[1u8; 16]))),
            400,
            "invalid_field",
            "signed_prekey.public_key",
        ),
        (
            "signature 63 bytes",
            Box::new(|b| b["signed_prekey"]["signature"] = json!(b64(&[1u8; 63]))),
            400,
            "invalid_field",
            "signed_prekey.signature",
        ),
        (
            "otk 64 bytes",
            Box::new(|b| b["one_time_prekeys"][1]["public_key"] = json!(b64(&[1u8; 64]))),
            400,
            "invalid_field",
            "one_time_prekeys[1].public_key",
        ),
        (
            "bad base64",
            Box::new(|b| b["identity_key"] = json!("not base64!!")),
            400,
            "invalid_field",
            "identity_key",
        ),
        (
            "unpadded base64",
            Box::new(|b| b["identity_key"] = json!(b64(&[7u8; 32]).trim_end_matches('='))),
            400,
            "invalid_field",
            "identity_key",
        ),
        (
            "key as a number",
            Box::new(|b| b["identity_key"] = json!(12)),
            400,
            "invalid_field",
            "identity_key",
        ),
        (
            "unknown top-level field",
            Box::new(|b| b["extra"] = json!(1)),
            400,
            "unknown_field",
            "extra",
        ),
        (
            "unknown nested field",
            Box::new(|b| b["signed_prekey"]["private_key"] = json!("x")),
            400,
            "unknown_field",
            "signed_prekey",
        ),
        (
            "missing field",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("identity_key");
            }),
            400,
            "invalid_json",
            "identity_key",
        ),
        (
            "registration id 0",
            Box::new(|b| b["registration_id"] = json!(0)),
            400,
            "invalid_field",
            "registration_id",
        ),
        (
            "registration id 16381",
            Box::new(|b| b["registration_id"] = json!(16381)),
            400,
            "invalid_field",
            "registration_id",
        ),
        (
            "negative key id",
            Box::new(|b| b["one_time_prekeys"][0]["key_id"] = json!(-1)),
            400,
            "invalid_field",
            "one_time_prekeys[0].key_id",
        ),
        (
            "key id over u32",
            Box::new(|b| b["signed_prekey"]["key_id"] = json!(4294967296u64)),
            400,
            "invalid_field",
            "signed_prekey.key_id",
        ),
        (
            "repeated prekey id",
            Box::new(|b| b["one_time_prekeys"][1]["key_id"] = json!(1)),
            400,
            "invalid_field",
            "one_time_prekeys[1].key_id",
        ),
        (
            "101 prekeys",
            Box::new(|b| b["one_time_prekeys"] = json!(one_time_prekeys(1, 101))),
            400,
            "too_many_prekeys",
            "one_time_prekeys",
        ),
        (
            "small-order identity key",
            Box::new(|b| b["identity_key"] = json!(b64(&[0u8; 32]))),
            422,
            "invalid_signature",
            "signature",
        ),
    ];
    for (what, edit, status, code, field) in &cases {
        let mut body = good.clone();
        edit(&mut body);
        let reply = s.call(Method::POST, "/v1/users", None, Some(&body)).await;
        assert!(reply.status < 500, "{what}: never a 5xx: {reply:?}");
        let message = reply.error(*status, code);
        assert!(
            message.contains(field),
            "{what}: message {message:?} names {field}"
        );
    }
    // Not JSON at all, trailing garbage, wrong content type, empty body.
    s.call_raw(
        Method::POST,
        "/v1/users",
        None,
        b"{\"registration_id\": ".to_vec(),
    )
    .await
    .error(400, "invalid_json");
    let mut trailing = serde_json::to_vec(&good).unwrap();
    trailing.extend_from_slice(b" []");
    s.call_raw(Method::POST, "/v1/users", None, trailing)
        .await
        .error(400, "invalid_json");
    s.call_raw(Method::POST, "/v1/users", None, Vec::new())
        .await
        .error(400, "invalid_json");
    let text = s
        .http
        .post(s.url("/v1/users"))
        .header("content-type", "text/plain")
        .body(serde_json::to_vec(&good).unwrap());
    s.send(text).await.error(415, "unsupported_media_type");
    // Over the 64 KiB limit of the route.
    let mut huge = good.clone();
    huge["padding"] = json!("x".repeat(70 * 1024));
    s.call(Method::POST, "/v1/users", None, Some(&huge))
        .await
        .error(413, "payload_too_large");
    assert_eq!(
        s.snapshot().await,
        before,
        "no rejected registration wrote anything"
    );
    // And the unedited body is accepted, so the cases above failed for their edit alone.
    assert_eq!(
        s.call(Method::POST, "/v1/users", None, Some(&good))
            .await
            .status,
        201
    );
    s.shutdown().await;
}

#[tokio::test]
async fn adding_a_device_needs_a_valid_token() {
    let s = server().await;
    let body = DeviceKeys::new().registration(1);
    let before = s.snapshot().await;
    s.call(Method::POST, "/v1/devices", None, Some(&body))
        .await
        .error(401, "unauthorized");
    s.call(
        Method::POST,
        "/v1/devices",
        Some("not-a-token"),
        Some(&body),
    )
    .await
    .error(401, "unauthorized");
    let r = s
        .send(
            s.http
                .post(s.url("/v1/devices"))
                .header("authorization", "Basic abc")
                .json(&body),
        )
        .await;
    r.error(401, "unauthorized");
    assert_eq!(s.snapshot().await, before);
    s.shutdown().await;
}

/// A device deleted around the API (an operator's DELETE, as another server instance's removal
/// would be heard) stops authenticating: the deletion's notification evicts the cached token.
#[tokio::test]
async fn a_device_deleted_in_the_database_loses_its_cached_token() {
    let s = server().await;
    let a = s.register(0).await;
    let seen = s
        .call(Method::GET, "/v1/keys/count", Some(&a.token), None)
        .await;
    assert_eq!(seen.status, 200, "{seen:?}");
    s.db()
        .await
        .execute("DELETE FROM devices WHERE user_id = $1", &[&a.user_id])
        .await
        .unwrap();
    // The notification arrives asynchronously: wait for it (bounded), then the token must fail.
    let mut status = 0;
    for _ in 0..100 {
        status = s
            .call(Method::GET, "/v1/keys/count", Some(&a.token), None)
            .await
            .status;
        if status == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 401, "the removed device's token is refused");
    s.shutdown().await;
}
