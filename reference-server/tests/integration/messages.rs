//! Sending, polling and acknowledging envelopes over real HTTP.

use crate::common;

use common::*;
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn send_poll_and_acknowledge() {
    let s = server().await;
    let a = s.register(0).await;
    let a2 = s.add_device(&a, 0).await;
    let b = s.register(0).await;
    let mid = Uuid::new_v4();
    let mut body = send_body(mid, &[1, 2]);
    body["messages"][0]["type"] = json!("prekey");
    let r = s
        .call(
            Method::PUT,
            &format!("/v1/messages/{}", a.user_id),
            Some(&b.token),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({"message_id": mid, "stored": 2, "duplicate": false})
    );
    let polled = s
        .call(Method::GET, "/v1/messages", Some(&a.token), None)
        .await;
    assert_eq!(polled.status, 200, "{polled:?}");
    assert_eq!(polled.body["more"], false);
    let envs = polled.body["envelopes"].as_array().unwrap();
    assert_eq!(envs.len(), 1, "device 1 sees only its own envelope");
    let e = &envs[0];
    assert_eq!(e["message_id"], mid.to_string());
    assert_eq!(e["sender_user"], b.user_id.to_string());
    assert_eq!(e["sender_device"], 1);
    assert_eq!(e["type"], "prekey");
    assert_eq!(e["header"], body["messages"][0]["header"]);
    assert_eq!(e["ciphertext"], body["messages"][0]["ciphertext"]);
    assert!(chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str().unwrap()).is_ok());
    let id = e["id"].as_i64().unwrap();
    // Cross-device: device 2 and user b can neither acknowledge nor see it.
    s.call(
        Method::DELETE,
        &format!("/v1/messages/{id}"),
        Some(&a2.token),
        None,
    )
    .await
    .error(404, "not_found");
    s.call(
        Method::DELETE,
        &format!("/v1/messages/{id}"),
        Some(&b.token),
        None,
    )
    .await
    .error(404, "not_found");
    let other = s
        .call(Method::GET, "/v1/messages", Some(&a2.token), None)
        .await;
    let other_envs = other.body["envelopes"].as_array().unwrap();
    assert_eq!(other_envs.len(), 1);
    assert_ne!(other_envs[0]["id"], id);
    assert_eq!(other_envs[0]["type"], "ratchet");
    assert!(s
        .call(Method::GET, "/v1/messages", Some(&b.token), None)
        .await
        .body["envelopes"]
        .as_array()
        .unwrap()
        .is_empty());
    // The owner acknowledges: gone, and a second ack is 404.
    assert_eq!(
        s.call(
            Method::DELETE,
            &format!("/v1/messages/{id}"),
            Some(&a.token),
            None
        )
        .await
        .status,
        204
    );
    s.call(
        Method::DELETE,
        &format!("/v1/messages/{id}"),
        Some(&a.token),
        None,
    )
    .await
    .error(404, "not_found");
    s.call(Method::DELETE, "/v1/messages/abc", Some(&a.token), None)
        .await
        .error(400, "invalid_path");
    assert!(s
        .call(Method::GET, "/v1/messages", Some(&a.token), None)
        .await
        .body["envelopes"]
        .as_array()
        .unwrap()
        .is_empty());
    let db = s.db().await;
    let delivered: Option<chrono::DateTime<chrono::Utc>> = db
        .query_one(
            "SELECT delivered_at FROM envelopes WHERE id = $1",
            &[&other_envs[0]["id"].as_i64().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert!(delivered.is_some(), "polling marks first delivery");
    s.call(Method::GET, "/v1/messages", None, None)
        .await
        .error(401, "unauthorized");
    s.call(Method::DELETE, &format!("/v1/messages/{id}"), None, None)
        .await
        .error(401, "unauthorized");
    s.shutdown().await;
}

#[tokio::test]
async fn polling_pages_by_one_hundred() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    for _ in 0..105 {
        let r = s
            .call(
                Method::PUT,
                &format!("/v1/messages/{}", a.user_id),
                Some(&b.token),
                Some(&send_body(Uuid::new_v4(), &[1])),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let first = s
        .call(Method::GET, "/v1/messages", Some(&a.token), None)
        .await;
    let envs = first.body["envelopes"].as_array().unwrap();
    assert_eq!(
        (envs.len(), first.body["more"].as_bool()),
        (100, Some(true))
    );
    let ids: Vec<i64> = envs.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    for id in &ids {
        assert_eq!(
            s.call(
                Method::DELETE,
                &format!("/v1/messages/{id}"),
                Some(&a.token),
                None
            )
            .await
            .status,
            204
        );
    }
    let rest = s
        .call(Method::GET, "/v1/messages", Some(&a.token), None)
        .await;
    assert_eq!(
        (
            rest.body["envelopes"].as_array().unwrap().len(),
            rest.body["more"].as_bool()
        ),
        (5, Some(false))
    );
    s.shutdown().await;
}

#[tokio::test]
async fn mismatched_devices_is_409_naming_missing_and_extra() {
    let s = server().await;
    let a = s.register(0).await;
    let _a2 = s.add_device(&a, 0).await;
    let _a3 = s.add_device(&a, 0).await;
    let b = s.register(0).await;
    let before = s.snapshot().await;
    let path = format!("/v1/messages/{}", a.user_id);
    let r = s
        .call(
            Method::PUT,
            &path,
            Some(&b.token),
            Some(&send_body(Uuid::new_v4(), &[1, 3, 7, 9])),
        )
        .await;
    r.error(409, "mismatched_devices");
    assert_eq!(r.body["missing_devices"], json!([2]));
    assert_eq!(r.body["extra_devices"], json!([7, 9]));
    let r = s
        .call(
            Method::PUT,
            &path,
            Some(&b.token),
            Some(&send_body(Uuid::new_v4(), &[1])),
        )
        .await;
    r.error(409, "mismatched_devices");
    assert_eq!(
        (
            r.body["missing_devices"].clone(),
            r.body["extra_devices"].clone()
        ),
        (json!([2, 3]), json!([]))
    );
    // Sending to one's own user: the sending device is not a recipient.
    let r = s
        .call(
            Method::PUT,
            &path,
            Some(&a.token),
            Some(&send_body(Uuid::new_v4(), &[1, 2, 3])),
        )
        .await;
    r.error(409, "mismatched_devices");
    assert_eq!(
        (
            r.body["missing_devices"].clone(),
            r.body["extra_devices"].clone()
        ),
        (json!([]), json!([1]))
    );
    assert_eq!(s.snapshot().await, before, "a mismatch writes nothing");
    let ok = s
        .call(
            Method::PUT,
            &path,
            Some(&a.token),
            Some(&send_body(Uuid::new_v4(), &[2, 3])),
        )
        .await;
    assert_eq!((ok.status, ok.body["stored"].as_i64()), (200, Some(2)));
    s.shutdown().await;
}

#[tokio::test]
async fn resending_a_message_id_is_idempotent() {
    let s = server().await;
    let a = s.register(0).await;
    let _a2 = s.add_device(&a, 0).await;
    let b = s.register(0).await;
    let path = format!("/v1/messages/{}", a.user_id);
    let mid = Uuid::new_v4();
    let first = s
        .call(
            Method::PUT,
            &path,
            Some(&b.token),
            Some(&send_body(mid, &[1, 2])),
        )
        .await;
    assert_eq!(
        first.body,
        json!({"message_id": mid, "stored": 2, "duplicate": false})
    );
    let after_first = s.snapshot().await;
    for _ in 0..3 {
        let again = s
            .call(
                Method::PUT,
                &path,
                Some(&b.token),
                Some(&send_body(mid, &[1, 2])),
            )
            .await;
        assert_eq!(again.status, 200);
        assert_eq!(
            again.body,
            json!({"message_id": mid, "stored": 0, "duplicate": true})
        );
    }
    assert_eq!(s.snapshot().await, after_first, "no duplicate rows");
    // Still idempotent after the envelopes were delivered and acknowledged.
    let polled = s
        .call(Method::GET, "/v1/messages", Some(&a.token), None)
        .await;
    let id = polled.body["envelopes"][0]["id"].as_i64().unwrap();
    s.call(
        Method::DELETE,
        &format!("/v1/messages/{id}"),
        Some(&a.token),
        None,
    )
    .await;
    let late = s
        .call(
            Method::PUT,
            &path,
            Some(&b.token),
            Some(&send_body(mid, &[1, 2])),
        )
        .await;
    assert_eq!(late.body["duplicate"], true);
    assert!(s
        .call(Method::GET, "/v1/messages", Some(&a.token), None)
        .await
        .body["envelopes"]
        .as_array()
        .unwrap()
        .is_empty());
    // Concurrent identical sends: exactly one stores.
    let mid2 = Uuid::new_v4();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let req = s
            .http
            .put(s.url(&path))
            .bearer_auth(&b.token)
            .json(&send_body(mid2, &[1, 2]));
        tasks.push(tokio::spawn(async move {
            req.send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }));
    }
    let mut stored = 0;
    for t in tasks {
        let body = t.await.unwrap();
        if body["duplicate"] == false {
            stored += 1;
            assert_eq!(body["stored"], 2);
        }
    }
    assert_eq!(stored, 1);
    let rows: i64 = s
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM messages WHERE message_id = $1",
            &[&mid2],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn bad_sends_are_4xx_json_and_write_nothing() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    let path = format!("/v1/messages/{}", a.user_id);
    let before = s.snapshot().await;
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit, u16, &str, &str)> = vec![
        (
            "no envelopes",
            Box::new(|b| b["messages"] = json!([])),
            400,
            "invalid_field",
            "messages",
        ),
        (
            "unknown type",
            Box::new(|b| b["messages"][0]["type"] = json!("plaintext")),
            400,
            "invalid_field",
            "messages[0].type",
        ),
        (
            "bad base64 header",
            Box::new(|b| b["messages"][0]["header"] = json!("@@@")),
            400,
            "invalid_field",
            "messages[0].header",
        ),
        (
            "empty ciphertext",
            Box::new(|b| b["messages"][0]["ciphertext"] = json!("")),
            400,
            "invalid_field",
            "messages[0].ciphertext",
        ),
        (
            "header over 1 KiB",
            Box::new(|b| b["messages"][0]["header"] = json!(b64(&[1; 1025]))),
            400,
            "invalid_field",
            "messages[0].header",
        ),
        (
            "ciphertext over 64 KiB",
            Box::new(|b| b["messages"][0]["ciphertext"] = json!(b64(&vec![1; 65537]))),
            400,
            "invalid_field",
            "messages[0].ciphertext",
        ),
        (
            "device 0",
            Box::new(|b| b["messages"][0]["device_id"] = json!(0)),
            400,
            "invalid_field",
            "messages[0].device_id",
        ),
        (
            "same device twice",
            Box::new(|b| {
                let m = b["messages"][0].clone();
                b["messages"].as_array_mut().unwrap().push(m);
            }),
            400,
            "invalid_field",
            "messages[1].device_id",
        ),
        (
            "unknown envelope field",
            Box::new(|b| b["messages"][0]["sender"] = json!(1)),
            400,
            "unknown_field",
            "messages[0]",
        ),
        (
            "unknown top field",
            Box::new(|b| b["timestamp"] = json!(1)),
            400,
            "unknown_field",
            "timestamp",
        ),
        (
            "bad message id",
            Box::new(|b| b["message_id"] = json!("nope")),
            400,
            "invalid_field",
            "message_id",
        ),
    ];
    for (what, edit, status, code, field) in &cases {
        let mut body = send_body(Uuid::new_v4(), &[1]);
        edit(&mut body);
        let reply = s
            .call(Method::PUT, &path, Some(&b.token), Some(&body))
            .await;
        assert!(reply.status < 500, "{what}: {reply:?}");
        let message = reply.error(*status, code);
        assert!(message.contains(field), "{what}: {message:?} names {field}");
    }
    // Over the 1 MiB body limit: 20 ciphertexts of 64 KiB.
    let mut big = send_body(Uuid::new_v4(), &(1..=20).collect::<Vec<_>>());
    for m in big["messages"].as_array_mut().unwrap() {
        m["ciphertext"] = json!(b64(&vec![7; 65536]));
    }
    s.call(Method::PUT, &path, Some(&b.token), Some(&big))
        .await
        .error(413, "payload_too_large");
    // Unknown recipient, malformed recipient, no or wrong token.
    s.call(
        Method::PUT,
        &format!("/v1/messages/{}", Uuid::new_v4()),
        Some(&b.token),
        Some(&send_body(Uuid::new_v4(), &[1])),
    )
    .await
    .error(404, "not_found");
    s.call(
        Method::PUT,
        "/v1/messages/123",
        Some(&b.token),
        Some(&send_body(Uuid::new_v4(), &[1])),
    )
    .await
    .error(400, "invalid_path");
    s.call(
        Method::PUT,
        &path,
        None,
        Some(&send_body(Uuid::new_v4(), &[1])),
    )
    .await
    .error(401, "unauthorized");
    s.call(
        Method::PUT,
        &path,
        Some(&a.token[1..]),
        Some(&send_body(Uuid::new_v4(), &[1])),
    )
    .await
    .error(401, "unauthorized");
    assert_eq!(
        s.snapshot().await,
        before,
        "no rejected send wrote anything"
    );
    let ok = s
        .call(
            Method::PUT,
            &path,
            Some(&b.token),
            Some(&send_body(Uuid::new_v4(), &[1])),
        )
        .await;
    assert_eq!(ok.status, 200, "the unedited body is accepted");
    s.shutdown().await;
}

/// Structs are JSON objects only: serde would otherwise decode them from arrays by position.
#[tokio::test]
async fn arrays_in_place_of_objects_are_refused_and_write_nothing() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(1).await;
    let before = s.snapshot().await;
    let mid = Uuid::new_v4();
    let path = format!("/v1/messages/{}", b.user_id);
    let positional = json!([mid, [[1, "ratchet", b64(b"h"), b64(b"c")]]]);
    let msg = s
        .call(Method::PUT, &path, Some(&a.token), Some(&positional))
        .await
        .error(400, "invalid_json");
    assert!(msg.contains("expected a JSON object"), "{msg}");
    let nested = json!({"message_id": mid, "messages": [[1, "ratchet", b64(b"h"), b64(b"c")]]});
    let msg = s
        .call(Method::PUT, &path, Some(&a.token), Some(&nested))
        .await
        .error(400, "invalid_field");
    assert!(msg.starts_with("messages[0]"), "{msg}");
    let keys = DeviceKeys::new();
    let mut reg = keys.registration(0);
    let spk = reg["signed_prekey"].clone();
    reg["signed_prekey"] = json!([spk["key_id"], spk["public_key"], spk["signature"]]);
    let msg = s
        .call(Method::POST, "/v1/users", None, Some(&reg))
        .await
        .error(400, "invalid_field");
    assert!(msg.starts_with("signed_prekey"), "{msg}");
    assert_eq!(s.snapshot().await, before, "nothing stored");
    s.shutdown().await;
}

/// Routes that take no body still have the documented 4 KiB limit.
#[tokio::test]
async fn bodies_over_the_small_limit_are_413_on_routes_without_a_body() {
    let s = server().await;
    let a = s.register(0).await;
    let big = vec![b'x'; 10 * 1024 * 1024];
    s.call_raw(Method::GET, "/v1/messages", Some(&a.token), big.clone())
        .await
        .error(413, "payload_too_large");
    s.call_raw(Method::GET, "/healthz", None, vec![b' '; 4 * 1024 + 1])
        .await
        .error(413, "payload_too_large");
    // At the limit is fine.
    let r = s
        .call_raw(
            Method::GET,
            "/v1/messages",
            Some(&a.token),
            vec![b' '; 4 * 1024],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    s.shutdown().await;
}
