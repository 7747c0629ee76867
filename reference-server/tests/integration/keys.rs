//! Key routes and bundle fetches, including the concurrent one-time prekey claim.

use crate::common;

use std::collections::HashSet;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn upload_count_and_duplicate_key_ids() {
    let s = server().await;
    let a = s.register(2).await;
    let r = s
        .call(Method::GET, "/v1/keys/count", Some(&a.token), None)
        .await;
    assert_eq!((r.status, r.body["one_time"].as_i64()), (200, Some(2)));
    let r = s
        .call(
            Method::POST,
            "/v1/keys/one-time",
            Some(&a.token),
            Some(&json!({"prekeys": one_time_prekeys(3, 100)})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["stored"].as_i64(), r.body["available"].as_i64()),
        (Some(100), Some(102))
    );
    let before = s.snapshot().await;
    // Key id 50 already exists: the whole batch is refused.
    let msg = s
        .call(Method::POST, "/v1/keys/one-time", Some(&a.token), Some(&json!({"prekeys": one_time_prekeys(200, 3).into_iter().chain(one_time_prekeys(50, 1)).collect::<Vec<_>>()})))
        .await
        .error(409, "duplicate_key_id");
    assert!(msg.contains("key_id"), "{msg}");
    // 101 in one upload.
    s.call(
        Method::POST,
        "/v1/keys/one-time",
        Some(&a.token),
        Some(&json!({"prekeys": one_time_prekeys(300, 101)})),
    )
    .await
    .error(400, "too_many_prekeys");
    // Empty, wrong length, bad base64, unknown field.
    s.call(
        Method::POST,
        "/v1/keys/one-time",
        Some(&a.token),
        Some(&json!({"prekeys": []})),
    )
    .await
    .error(400, "invalid_field");
    let m = s
        .call(
            Method::POST,
            "/v1/keys/one-time",
            Some(&a.token),
            Some(&json!({"prekeys": [{"key_id": 900, "public_key": b64(&[1; 31])}]})),
        )
        .await
        .error(400, "invalid_field");
    assert!(
        m.contains("prekeys[0].public_key") && m.contains("32"),
        "{m}"
    );
    s.call(
        Method::POST,
        "/v1/keys/one-time",
        Some(&a.token),
        Some(&json!({"prekeys": [{"key_id": 900, "public_key": "%%%"}]})),
    )
    .await
    .error(400, "invalid_field");
    s.call(
        Method::POST,
        "/v1/keys/one-time",
        Some(&a.token),
        Some(&json!({"prekeys": one_time_prekeys(900, 1), "device": 2})),
    )
    .await
    .error(400, "unknown_field");
    // No token, wrong token.
    s.call(
        Method::POST,
        "/v1/keys/one-time",
        None,
        Some(&json!({"prekeys": one_time_prekeys(900, 1)})),
    )
    .await
    .error(401, "unauthorized");
    s.call(
        Method::POST,
        "/v1/keys/one-time",
        Some("x"),
        Some(&json!({"prekeys": one_time_prekeys(900, 1)})),
    )
    .await
    .error(401, "unauthorized");
    s.call(Method::GET, "/v1/keys/count", None, None)
        .await
        .error(401, "unauthorized");
    assert_eq!(s.snapshot().await, before, "rejected uploads wrote nothing");
    let events: i64 = s
        .db()
        .await
        .query_one(
            "SELECT count(*) FROM key_events WHERE user_id = $1 AND kind = 'prekeys_replenished'",
            &[&a.user_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn uploads_go_to_the_callers_device_only() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    s.call(
        Method::POST,
        "/v1/keys/one-time",
        Some(&a.token),
        Some(&json!({"prekeys": one_time_prekeys(1, 5)})),
    )
    .await;
    let rb = s
        .call(Method::GET, "/v1/keys/count", Some(&b.token), None)
        .await;
    assert_eq!(rb.body["one_time"], 0);
    let ra = s
        .call(Method::GET, "/v1/keys/count", Some(&a.token), None)
        .await;
    assert_eq!(ra.body["one_time"], 5);
    s.shutdown().await;
}

#[tokio::test]
async fn bundles_claim_one_prekey_each_and_then_none() {
    let s = server().await;
    let a = s.register(2).await;
    let a2 = s.add_device(&a, 0).await;
    let b = s.register(0).await;
    let r = s
        .call(
            Method::GET,
            &format!("/v1/keys/{}", a.user_id),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["user_id"], a.user_id.to_string());
    let bundles = r.body["bundles"].as_array().unwrap();
    assert_eq!(bundles.len(), 2);
    assert_eq!(bundles[0]["device_id"], 1);
    assert_eq!(bundles[0]["registration_id"], 4242);
    assert_eq!(bundles[0]["identity_key"], b64(&a.keys.identity_public()));
    assert_eq!(bundles[0]["one_time_prekey"]["key_id"], 1);
    assert_eq!(bundles[1]["device_id"], 2);
    assert_eq!(bundles[1]["identity_key"], b64(&a2.keys.identity_public()));
    assert!(
        bundles[1]["one_time_prekey"].is_null(),
        "device 2 uploaded none"
    );
    // The signature in the bundle verifies against the identity key: what a client checks.
    let spk = &bundles[0]["signed_prekey"];
    let public = decode(&spk["public_key"]);
    let sig = ed25519_dalek::Signature::from_slice(&decode(&spk["signature"])).unwrap();
    let mut encoded = vec![0x05];
    encoded.extend_from_slice(&public);
    a.keys
        .identity
        .verifying_key()
        .verify_strict(&encoded, &sig)
        .expect("bundle signature verifies");
    // One device.
    let r = s
        .call(
            Method::GET,
            &format!("/v1/keys/{}/1", a.user_id),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(r.body["bundles"][0]["one_time_prekey"]["key_id"], 2);
    let r = s
        .call(
            Method::GET,
            &format!("/v1/keys/{}/1", a.user_id),
            Some(&b.token),
            None,
        )
        .await;
    assert!(
        r.body["bundles"][0]["one_time_prekey"].is_null(),
        "both claimed"
    );
    assert_eq!(
        s.call(Method::GET, "/v1/keys/count", Some(&a.token), None)
            .await
            .body["one_time"],
        0
    );
    // Unknown ids and malformed ones.
    s.call(
        Method::GET,
        &format!("/v1/keys/{}", uuid::Uuid::new_v4()),
        Some(&b.token),
        None,
    )
    .await
    .error(404, "not_found");
    s.call(
        Method::GET,
        &format!("/v1/keys/{}/9", a.user_id),
        Some(&b.token),
        None,
    )
    .await
    .error(404, "not_found");
    s.call(
        Method::GET,
        &format!("/v1/keys/{}/4294967295", a.user_id),
        Some(&b.token),
        None,
    )
    .await
    .error(404, "not_found");
    s.call(Method::GET, "/v1/keys/not-a-uuid", Some(&b.token), None)
        .await
        .error(400, "invalid_path");
    s.call(
        Method::GET,
        &format!("/v1/keys/{}/x", a.user_id),
        Some(&b.token),
        None,
    )
    .await
    .error(400, "invalid_path");
    s.call(Method::GET, &format!("/v1/keys/{}", a.user_id), None, None)
        .await
        .error(401, "unauthorized");
    s.shutdown().await;
}

fn decode(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

/// The acceptance case: 50 concurrent fetches against 20 prekeys.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_fetches_claim_twenty_distinct_prekeys() {
    let s = server().await;
    let target = s.register(20).await;
    let fetcher = s.register(0).await;
    let path = format!("/v1/keys/{}/1", target.user_id);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let req = s.http.get(s.url(&path)).bearer_auth(&fetcher.token);
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.expect("request");
            assert_eq!(res.status(), 200);
            let body: serde_json::Value = res.json().await.unwrap();
            body["bundles"][0]["one_time_prekey"].clone()
        }));
    }
    let mut claimed = Vec::new();
    let mut without = 0;
    for t in tasks {
        let otk = t.await.unwrap();
        if otk.is_null() {
            without += 1;
        } else {
            claimed.push((
                otk["key_id"].as_u64().unwrap(),
                otk["public_key"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert_eq!(claimed.len(), 20, "exactly 20 bundles carry a prekey");
    assert_eq!(without, 30, "the other 30 come without one");
    let ids: HashSet<_> = claimed.iter().map(|c| c.0).collect();
    let keys: HashSet<_> = claimed.iter().map(|c| c.1.clone()).collect();
    assert_eq!(
        (ids.len(), keys.len()),
        (20, 20),
        "no prekey handed out twice"
    );
    assert_eq!(ids, (1..=20).collect::<HashSet<u64>>());
    assert_eq!(s.snapshot().await["one_time_prekeys"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn rotation_keeps_the_previous_key_retired_and_rejects_bad_signatures() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    let new_spk = a.keys.signed_prekey(2);
    let r = s
        .call(
            Method::PUT,
            "/v1/keys/signed",
            Some(&a.token),
            Some(&new_spk),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let bundle = s
        .call(
            Method::GET,
            &format!("/v1/keys/{}/1", a.user_id),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(
        bundle.body["bundles"][0]["signed_prekey"], new_spk,
        "bundles carry the newest"
    );
    let db = s.db().await;
    let rows = db
        .query(
            "SELECT s.key_id, s.active, s.retired_at IS NOT NULL FROM signed_prekeys s JOIN devices d ON d.id = s.device
             WHERE d.user_id = $1 ORDER BY s.key_id",
            &[&a.user_id],
        )
        .await
        .unwrap();
    let state: Vec<(i64, bool, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        state,
        [(1, false, true), (2, true, false)],
        "previous kept for the grace period, retired"
    );
    let before = s.snapshot().await;
    // Signed by someone else's identity key: 422, nothing changes.
    s.call(
        Method::PUT,
        "/v1/keys/signed",
        Some(&a.token),
        Some(&b.keys.signed_prekey(3)),
    )
    .await
    .error(422, "invalid_signature");
    // A key id already used by this device.
    s.call(
        Method::PUT,
        "/v1/keys/signed",
        Some(&a.token),
        Some(&a.keys.signed_prekey(1)),
    )
    .await
    .error(409, "duplicate_key_id");
    let mut bad = a.keys.signed_prekey(4);
    bad["public_key"] = json!(b64(&[9; 33]));
    s.call(Method::PUT, "/v1/keys/signed", Some(&a.token), Some(&bad))
        .await
        .error(400, "invalid_field");
    let mut extra = a.keys.signed_prekey(4);
    extra["active"] = json!(true);
    s.call(Method::PUT, "/v1/keys/signed", Some(&a.token), Some(&extra))
        .await
        .error(400, "unknown_field");
    s.call(
        Method::PUT,
        "/v1/keys/signed",
        None,
        Some(&a.keys.signed_prekey(4)),
    )
    .await
    .error(401, "unauthorized");
    assert_eq!(s.snapshot().await, before);
    let active: Vec<u8> =
        db.query_one("SELECT s.public_key FROM signed_prekeys s JOIN devices d ON d.id = s.device WHERE d.user_id = $1 AND s.active", &[&a.user_id])
            .await
            .unwrap()
            .get(0);
    assert_eq!(
        b64(&active),
        new_spk["public_key"].as_str().unwrap(),
        "still the good key"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn retired_signed_prekeys_are_deleted_after_the_grace_period() {
    let db_url = database().await;
    let config = reference_server::ServerConfig {
        signed_prekey_grace: std::time::Duration::ZERO,
        ..reference_server::ServerConfig::new(&db_url)
    };
    let running = reference_server::start(config).await.unwrap();
    let s = TestServer {
        base: running.base_url(),
        running: Some(running),
        db_url,
        http: reqwest::Client::new(),
    };
    let a = s.register(0).await;
    for id in 2..=4 {
        let r = s
            .call(
                Method::PUT,
                "/v1/keys/signed",
                Some(&a.token),
                Some(&a.keys.signed_prekey(id)),
            )
            .await;
        assert_eq!(r.status, 204);
    }
    // With no grace, each rotation deletes the keys retired before it; only the one it retires remains.
    let ids: Vec<i64> = s
        .db()
        .await
        .query("SELECT key_id FROM signed_prekeys ORDER BY key_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, [3, 4]);
    s.shutdown().await;
}

#[tokio::test]
async fn concurrent_rotations_of_one_device_all_succeed_leaving_one_active_key() {
    let s = server().await;
    let a = s.register(0).await;
    let calls = (2..12u32).map(|id| {
        let body = a.keys.signed_prekey(id);
        let s = &s;
        let token = a.token.clone();
        async move {
            s.call(Method::PUT, "/v1/keys/signed", Some(&token), Some(&body))
                .await
        }
    });
    let replies = futures::future::join_all(calls).await;
    for r in &replies {
        assert_eq!(r.status, 204, "every rotation succeeds: {r:?}");
    }
    let db = s.db().await;
    let row = db
        .query_one(
            "SELECT count(*) FILTER (WHERE s.active), count(*) FROM signed_prekeys s
             JOIN devices d ON d.id = s.device WHERE d.user_id = $1",
            &[&a.user_id],
        )
        .await
        .unwrap();
    let (active, total): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(active, 1, "exactly one active signed prekey");
    assert_eq!(
        total, 11,
        "the ten replaced keys are kept for the grace period"
    );
    s.shutdown().await;
}
