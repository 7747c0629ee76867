//! Live delivery over real WebSockets, on one instance and across two instances that share a
//! database (LISTEN/NOTIFY).

use crate::common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &TestServer, token: &str) -> Socket {
    let url = format!("ws://{}/v1/websocket", s.base.trim_start_matches("http://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket connects")
        .0
}

/// The next JSON text frame. The bound only keeps a broken server from hanging the test.
async fn next(ws: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("frame ok");
        if let Message::Text(t) = frame {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

async fn send(s: &TestServer, from: &Account, to: &Account, devices: &[u32]) -> Uuid {
    let mid = Uuid::new_v4();
    let r = s
        .call(
            Method::PUT,
            &format!("/v1/messages/{}", to.user_id),
            Some(&from.token),
            Some(&send_body(mid, devices)),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    mid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_then_queue_empty_then_live_and_acks() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    let queued = [send(&s, &b, &a, &[1]).await, send(&s, &b, &a, &[1]).await];
    let mut ws = connect(&s, &a.token).await;
    let first = next(&mut ws).await;
    let second = next(&mut ws).await;
    assert_eq!(first["type"], "envelope");
    assert_eq!(first["envelope"]["message_id"], queued[0].to_string());
    assert_eq!(second["envelope"]["message_id"], queued[1].to_string());
    assert_eq!(next(&mut ws).await, json!({"type": "queue_empty"}));
    // Live.
    let live = send(&s, &b, &a, &[1]).await;
    let pushed = next(&mut ws).await;
    assert_eq!(pushed["type"], "envelope");
    assert_eq!(pushed["envelope"]["message_id"], live.to_string());
    assert_eq!(pushed["envelope"]["sender_user"], b.user_id.to_string());
    // Ack all three over the socket; a bad frame and an unknown id get error frames.
    for e in [&first, &second, &pushed] {
        ws.send(Message::text(
            json!({"type": "ack", "id": e["envelope"]["id"]}).to_string(),
        ))
        .await
        .unwrap();
    }
    ws.send(Message::text(r#"{"type":"ack","id":1,"x":2}"#))
        .await
        .unwrap();
    let err = next(&mut ws).await;
    assert_eq!(
        (err["type"].as_str(), err["error"].as_str()),
        (Some("error"), Some("unknown_field"))
    );
    ws.send(Message::text(
        json!({"type": "ack", "id": 999999}).to_string(),
    ))
    .await
    .unwrap();
    let err = next(&mut ws).await;
    assert_eq!(err["error"], "not_found");
    assert_eq!(
        s.snapshot().await["envelopes"],
        0,
        "acks deleted the envelopes"
    );
    // Another device's envelope cannot be acked over this socket.
    let c = s.register(0).await;
    send(&s, &b, &c, &[1]).await;
    let theirs = s
        .call(Method::GET, "/v1/messages", Some(&c.token), None)
        .await
        .body["envelopes"][0]["id"]
        .clone();
    ws.send(Message::text(
        json!({"type": "ack", "id": theirs}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["error"], "not_found");
    assert_eq!(s.snapshot().await["envelopes"], 1);
    ws.close(None).await.unwrap();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_see_only_their_own_devices_envelopes() {
    let s = server().await;
    let a = s.register(0).await;
    let a2 = s.add_device(&a, 0).await;
    let b = s.register(0).await;
    let mut ws1 = connect(&s, &a.token).await;
    let mut ws2 = connect(&s, &a2.token).await;
    assert_eq!(next(&mut ws1).await["type"], "queue_empty");
    assert_eq!(next(&mut ws2).await["type"], "queue_empty");
    let mid = send(&s, &b, &a, &[1, 2]).await;
    let e1 = next(&mut ws1).await;
    let e2 = next(&mut ws2).await;
    assert_eq!(
        (
            e1["envelope"]["message_id"].clone(),
            e2["envelope"]["message_id"].clone()
        ),
        (json!(mid), json!(mid))
    );
    assert_ne!(e1["envelope"]["id"], e2["envelope"]["id"]);
    assert_eq!(
        e1["envelope"]["ciphertext"],
        b64(format!("ct-{mid}-1").as_bytes())
    );
    assert_eq!(
        e2["envelope"]["ciphertext"],
        b64(format!("ct-{mid}-2").as_bytes())
    );
    // Only device 2 gets the next one.
    let _ = send(&s, &a, &a, &[2]).await;
    let only2 = next(&mut ws2).await;
    assert_eq!(only2["envelope"]["sender_device"], 1);
    // Device 1's socket stays quiet: a marker message sent to device 1 later is the next frame it sees.
    let marker = send(&s, &a2, &a, &[1]).await;
    assert_eq!(
        next(&mut ws1).await["envelope"]["message_id"],
        marker.to_string()
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_in_query_and_auth_failures() {
    let s = server().await;
    let a = s.register(0).await;
    let url = format!(
        "ws://{}/v1/websocket?token={}",
        s.base.trim_start_matches("http://"),
        a.token
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("query token accepted");
    assert_eq!(next(&mut ws).await["type"], "queue_empty");
    // Without a token the upgrade is refused with 401 JSON.
    let bare = format!("ws://{}/v1/websocket", s.base.trim_start_matches("http://"));
    match tokio_tungstenite::connect_async(bare).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 401);
            let body: Value =
                serde_json::from_slice(res.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"], "unauthorized");
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    let wrong = format!(
        "ws://{}/v1/websocket?token=nope",
        s.base.trim_start_matches("http://")
    );
    assert!(tokio_tungstenite::connect_async(wrong).await.is_err());
    // A plain GET (no upgrade) with a valid token is a 400 JSON, not a hang or a 5xx.
    s.call(Method::GET, "/v1/websocket", Some(&a.token), None)
        .await
        .error(400, "not_websocket");
    s.call(Method::GET, "/v1/websocket", None, None)
        .await
        .error(401, "unauthorized");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_across_two_instances_sharing_one_database() {
    let one = server().await;
    let two = server_on(&one.db_url).await;
    let a = one.register(0).await;
    let b = two.register(0).await;
    // a listens on instance two; b sends through instance one.
    let mut ws = connect(&two, &a.token).await;
    assert_eq!(next(&mut ws).await["type"], "queue_empty");
    let mid = send(&one, &b, &a, &[1]).await;
    let pushed = next(&mut ws).await;
    assert_eq!(pushed["envelope"]["message_id"], mid.to_string());
    // And the other way round, with the socket on instance one.
    let mut ws_b = connect(&one, &b.token).await;
    assert_eq!(next(&mut ws_b).await["type"], "queue_empty");
    let back = send(&two, &a, &b, &[1]).await;
    assert_eq!(
        next(&mut ws_b).await["envelope"]["message_id"],
        back.to_string()
    );
    // b's socket cannot acknowledge a's envelope; a can, through the other instance.
    ws_b.send(Message::text(
        json!({"type": "ack", "id": pushed["envelope"]["id"]}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws_b).await["error"], "not_found");
    let r = one
        .call(
            Method::DELETE,
            &format!("/v1/messages/{}", pushed["envelope"]["id"]),
            Some(&a.token),
            None,
        )
        .await;
    assert_eq!(
        r.status, 204,
        "a acknowledges its envelope through the other instance"
    );
    two.shutdown().await;
    one.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sessions() {
    let s = server().await;
    let a = s.register(0).await;
    let mut ws = connect(&s, &a.token).await;
    assert_eq!(next(&mut ws).await["type"], "queue_empty");
    s.shutdown().await;
    let end = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("socket ends");
    assert!(
        matches!(end, Some(Ok(Message::Close(_))) | None | Some(Err(_))),
        "{end:?}"
    );
}

/// Reads frames until the envelope of `marker` arrives; returns the message ids seen on the way
/// (the marker included). A bounded wait per frame only guards against a hung server.
async fn envelopes_until(ws: &mut Socket, marker: Uuid) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let frame = next(ws).await;
        if frame["type"] != "envelope" {
            continue;
        }
        let mid = frame["envelope"]["message_id"]
            .as_str()
            .unwrap()
            .to_string();
        let done = mid == marker.to_string();
        seen.push(mid);
        if done {
            return seen;
        }
    }
}

/// Identity ids are taken at insert and become visible at commit, so an envelope can commit
/// after a higher id was already pushed. It must still be delivered. The interleaving is forced:
/// a transaction takes id N for device D and holds it, id N+1 is sent through the API and
/// delivered, then N commits; a marker sent afterwards must not arrive before N does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_committed_after_a_higher_id_was_pushed_is_still_delivered() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    let mut ws = connect(&s, &a.token).await;
    assert_eq!(next(&mut ws).await["type"], "queue_empty");

    // The slow writer: id N taken, not committed.
    let mut slow = s.db().await;
    let tx = slow.transaction().await.unwrap();
    let late = Uuid::new_v4();
    let msg: i64 = tx
        .query_one(
            "INSERT INTO messages (message_id, sender_user, sender_device, recipient_user)
             VALUES ($1, $2, 1, $3) RETURNING id",
            &[&late, &b.user_id, &a.user_id],
        )
        .await
        .unwrap()
        .get(0);
    let late_id: i64 = tx
        .query_one(
            "INSERT INTO envelopes (message, recipient_device, kind, header, ciphertext)
             SELECT $1, id, 'ratchet', '\\x01', '\\x02' FROM devices WHERE user_id = $2 AND device_id = 1
             RETURNING id",
            &[&msg, &a.user_id],
        )
        .await
        .unwrap()
        .get(0);

    // id N+1 commits first and is pushed.
    let early = send(&s, &b, &a, &[1]).await;
    let pushed = next(&mut ws).await;
    assert_eq!(pushed["envelope"]["message_id"], early.to_string());
    assert!(pushed["envelope"]["id"].as_i64().unwrap() > late_id);

    // Now N commits; then a marker. N must arrive, and before the marker.
    tx.commit().await.unwrap();
    let marker = send(&s, &b, &a, &[1]).await;
    let seen = envelopes_until(&mut ws, marker).await;
    assert_eq!(
        seen,
        vec![late.to_string(), marker.to_string()],
        "the late-committing envelope {late_id} was skipped"
    );
    s.shutdown().await;
}

/// A send that retries on 503 with the same message id (as a client would: sends are
/// idempotent), for use while the server's pool recovers from lost connections.
async fn send_retrying(s: &TestServer, from: &Account, to: &Account) -> Uuid {
    let mid = Uuid::new_v4();
    for _ in 0..100 {
        let r = s
            .call(
                Method::PUT,
                &format!("/v1/messages/{}", to.user_id),
                Some(&from.token),
                Some(&send_body(mid, &[1])),
            )
            .await;
        match r.status {
            200 => return mid,
            503 => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => panic!("send failed: {r:?}"),
        }
    }
    panic!("the server never recovered its database connections");
}

/// Stores an envelope for `to`'s device 1 behind the server's back, committed.
async fn store_directly(db: &tokio_postgres::Client, from: &Account, to: &Account) -> Uuid {
    let mid = Uuid::new_v4();
    db.execute(
        "WITH m AS (INSERT INTO messages (message_id, sender_user, sender_device, recipient_user)
                    VALUES ($1, $2, 1, $3) RETURNING id)
         INSERT INTO envelopes (message, recipient_device, kind, header, ciphertext)
         SELECT m.id, d.id, 'ratchet', '\\x01', '\\x02' FROM m, devices d
         WHERE d.user_id = $3 AND d.device_id = 1",
        &[&mid, &from.user_id, &to.user_id],
    )
    .await
    .unwrap();
    mid
}

/// Kills every other session on the test's database and waits until they are gone; returns
/// the last query of each.
async fn terminate_server_sessions(db: &tokio_postgres::Client) -> Vec<String> {
    db.query(
        "SELECT query, pg_terminate_backend(pid, 10000) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Lets the test's database accept new connections or not. Run from the maintenance
/// database: PostgreSQL refuses to change this for the database one is connected to.
async fn allow_connections(db_url: &str, allow: bool) {
    let mut config: tokio_postgres::Config = db_url.parse().unwrap();
    let name = config.get_dbname().unwrap().to_string();
    config.dbname("postgres");
    let (maintenance, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    maintenance
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {allow}"
        ))
        .await
        .unwrap();
}

/// The next frame, with a bound long enough for the server's reconnect backoff (at most 8 s
/// between attempts); the bound only keeps a broken server from hanging the test.
async fn next_after_recovery(ws: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a frame within 60 s")
            .expect("socket open")
            .expect("frame ok");
        if let Message::Text(t) = frame {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Every database session of the server dies (pool and LISTEN connection) and the database
/// refuses new ones for a while. The open WebSocket survives: an ack meanwhile gets an error
/// frame, an envelope stored while nobody listened is delivered once the server is back, and
/// new sends are delivered on the same socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_socket_survives_terminated_database_sessions() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    let mut ws = connect(&s, &a.token).await;
    assert_eq!(next(&mut ws).await["type"], "queue_empty");
    let first = send(&s, &b, &a, &[1]).await;
    let e1 = next(&mut ws).await;
    assert_eq!(e1["envelope"]["message_id"], first.to_string());

    let admin = s.db().await;
    allow_connections(&s.db_url, false).await;
    let killed = terminate_server_sessions(&admin).await;
    assert!(
        killed.iter().any(|q| q.starts_with("LISTEN")),
        "the LISTEN connection was terminated too: {killed:?}"
    );
    // An ack while the database is unreachable: an error frame, and the socket stays open.
    let ack =
        |e: &Value| Message::text(json!({"type": "ack", "id": e["envelope"]["id"]}).to_string());
    ws.send(ack(&e1)).await.unwrap();
    let err = next(&mut ws).await;
    assert_eq!(
        (err["type"].as_str(), err["error"].as_str()),
        (Some("error"), Some("database_unavailable")),
        "{err}"
    );
    // Stored while the server can neither listen nor read.
    let missed = store_directly(&admin, &b, &a).await;
    allow_connections(&s.db_url, true).await;

    // The server reconnects, re-LISTENs, and the session re-reads its queue.
    let e2 = next_after_recovery(&mut ws).await;
    assert_eq!(e2["envelope"]["message_id"], missed.to_string(), "{e2}");
    // The pool recovered too: a send through the API is delivered on the same socket.
    let live = send_retrying(&s, &b, &a).await;
    let e3 = next_after_recovery(&mut ws).await;
    assert_eq!(e3["envelope"]["message_id"], live.to_string(), "{e3}");
    // Acks work again: frames are handled in order, so once the bad frame's error arrives the
    // acks before it are done.
    for e in [&e1, &e2, &e3] {
        ws.send(ack(e)).await.unwrap();
    }
    ws.send(Message::text(r#"{"type":"nope"}"#)).await.unwrap();
    assert_eq!(next(&mut ws).await["type"], "error");
    assert_eq!(s.snapshot().await["envelopes"], 0, "all three acknowledged");
    s.shutdown().await;
}

/// A 200 on send means committed: a restarted server (same database) delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_delivers_what_it_accepted() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    let sent = [send(&s, &b, &a, &[1]).await, send(&s, &b, &a, &[1]).await];
    let db_url = s.db_url.clone();
    s.shutdown().await;
    let again = server_on(&db_url).await;
    let mut ws = connect(&again, &a.token).await;
    for mid in sent {
        assert_eq!(
            next(&mut ws).await["envelope"]["message_id"],
            mid.to_string()
        );
    }
    assert_eq!(next(&mut ws).await["type"], "queue_empty");
    again.shutdown().await;
}

/// `["ack", id]` is not an ack: frames are objects, as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_positional_ack_is_refused() {
    let s = server().await;
    let a = s.register(0).await;
    let b = s.register(0).await;
    send(&s, &b, &a, &[1]).await;
    let mut ws = connect(&s, &a.token).await;
    let e = next(&mut ws).await;
    assert_eq!(next(&mut ws).await["type"], "queue_empty");
    ws.send(Message::text(
        json!(["ack", e["envelope"]["id"]]).to_string(),
    ))
    .await
    .unwrap();
    let err = next(&mut ws).await;
    assert_eq!(
        (err["type"].as_str(), err["error"].as_str()),
        (Some("error"), Some("invalid_json")),
        "{err}"
    );
    assert_eq!(s.snapshot().await["envelopes"], 1, "not acknowledged");
    s.shutdown().await;
}

/// One token cannot open unbounded sessions (each would get every envelope).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_per_device_are_capped() {
    let s = server().await;
    let a = s.register(0).await;
    let cap = reference_server::api::MAX_SESSIONS_PER_DEVICE;
    let mut open = Vec::new();
    for _ in 0..cap {
        let mut ws = connect(&s, &a.token).await;
        assert_eq!(next(&mut ws).await["type"], "queue_empty");
        open.push(ws);
    }
    let url = format!(
        "ws://{}/v1/websocket?token={}",
        s.base.trim_start_matches("http://"),
        a.token
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status(), 429);
            let body: Value =
                serde_json::from_slice(res.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"], "too_many_sessions");
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    // Another device is not affected.
    let b = s.register(0).await;
    let mut other = connect(&s, &b.token).await;
    assert_eq!(next(&mut other).await["type"], "queue_empty");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_answered_with_a_close() {
    let s = server().await;
    let a = s.register(0).await;
    let mut ws = connect(&s, &a.token).await;
    assert_eq!(next(&mut ws).await, json!({"type": "queue_empty"}));
    ws.close(None).await.unwrap();
    // RFC 6455 §5.5.1: the server echoes the close, so the client knows every frame it sent
    // before (every ack) was processed.
    let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an answer within 10 s");
    assert!(
        matches!(reply, Some(Ok(Message::Close(_)))),
        "expected a close frame, got {reply:?}"
    );
    s.shutdown().await;
}
