//! How the virtual clients account for deliveries against the real reference server:
//! a message that waited in a queue counts in delivery latency, and an envelope delivered
//! again because its acknowledgement failed is `redelivered`, not `duplicated` (the device
//! reconnects by itself after the broken connection).

use crate::common::run as common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2ee_harness::client::flows::{self, FlowCtx};
use e2ee_harness::client::keys::KeyFactory;
use e2ee_harness::client::{Dialect, FlowConfig, World};
use e2ee_harness::metrics::{GeneratorCounters, Ledger, Recorder};
use e2ee_harness::scenario::FlowKind;

async fn world(base_url: &str) -> Arc<World> {
    let api = Dialect::Reference
        .client(base_url, Duration::from_secs(10))
        .unwrap();
    let cfg = FlowConfig {
        converse_messages: 1,
        fanout_group_size: 1,
        offline_messages: 1,
        offline_away: Duration::from_millis(100),
        message_size: 64,
        one_time_prekeys: 5,
        replenish_threshold: 1,
        devices_per_user: 1,
        reply_timeout: Duration::from_secs(10),
    };
    World::new(
        api,
        Arc::new(Recorder::new(Instant::now())),
        Arc::new(Ledger::new()),
        Arc::new(GeneratorCounters::default()),
        KeyFactory::with_seed(7, 4, 5),
        cfg,
        7,
    )
}

/// Waits (bounded) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ack_is_redelivered_not_duplicated() {
    let server = common::server().await;
    let world = world(&server.base_url()).await;
    let alice = world.register_user(1).await.unwrap();
    let bob = world.register_user(1).await.unwrap();
    let bob_device = bob.devices[0].clone();
    bob_device.inject_ack_failures(1);

    let mut ctx = FlowCtx::new(world.clone(), FlowKind::Initiate, 1, Instant::now());
    let (message_id, _) = flows::send_message(&mut ctx, &alice.devices[0], &bob)
        .await
        .unwrap();
    // Bob decrypted it, but his ack never went out: the connection broke instead.
    eventually("bob decrypts", || {
        world.ledger.finish().messages_decrypted == 1
    })
    .await;
    // The device reconnects by itself, at once (as a real client does), and the server
    // sends the unacknowledged envelope again.
    eventually("bob reconnects by himself and gets it again", || {
        world.ledger.finish().messages_redelivered == 1
    })
    .await;
    eventually("the reconnect is counted", || {
        world
            .counters
            .ws_reconnects
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    })
    .await;
    let i = world.ledger.finish();
    assert_eq!(i.messages_redelivered, 1, "{i:?}");
    assert_eq!(i.messages_duplicated, 0, "{i:?}");
    assert_eq!((i.messages_sent, i.messages_decrypted), (1, 1), "{i:?}");
    assert_eq!(i.messages_lost, 0, "{i:?}");
    assert!(i.is_clean(), "a redelivery is not a failure: {i:?}");

    // This time the ack went out and the close was clean: nothing comes a third time.
    let conn = bob_device.connection.lock().await.take().unwrap();
    assert!(conn.close(&world).await, "the server answers the close");
    world.connect(&bob_device).await.unwrap();
    let i = world.ledger.finish();
    assert_eq!((i.messages_redelivered, i.messages_duplicated), (1, 0));
    assert!(world
        .ledger
        .wait_decrypted(message_id, bob_device.addr)
        .is_some());
    world.disconnect_all().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_from_the_backlog_counts_in_delivery_latency() {
    let server = common::server().await;
    let world = world(&server.base_url()).await;
    let alice = world.register_user(1).await.unwrap();
    let bob = world.register_user(1).await.unwrap();
    let bob_device = bob.devices[0].clone();
    // Bob is offline while Alice sends; the message waits in his queue.
    let conn = bob_device.connection.lock().await.take().unwrap();
    assert!(conn.close(&world).await);

    let mut ctx = FlowCtx::new(world.clone(), FlowKind::Offline, 2, Instant::now());
    let sent_at = Instant::now();
    flows::send_message(&mut ctx, &alice.devices[0], &bob)
        .await
        .unwrap();
    let away = Duration::from_millis(1500);
    tokio::time::sleep(away).await;
    world.connect(&bob_device).await.unwrap();
    let waited = sent_at.elapsed();

    let ops = world.recorder.finish(Duration::from_secs(10));
    let delivery = ops.get("delivery").expect("the backlog delivery was timed");
    assert_eq!(delivery.count, 1);
    // It cannot have been delivered before Bob came back.
    assert!(
        delivery.max_us >= away.as_micros() as u64,
        "delivery max {}us, but bob was away {away:?} (round trip {waited:?})",
        delivery.max_us
    );
    let i = world.ledger.finish();
    assert_eq!(
        (i.messages_delivered, i.messages_decrypted),
        (1, 1),
        "{i:?}"
    );
    world.disconnect_all().await;
    server.shutdown().await;
}
