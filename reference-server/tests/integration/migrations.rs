//! Migrations on a real PostgreSQL: concurrent starts, idempotence, edited-file detection, and
//! the constraints that make bad data impossible even for a client that bypasses the API.

use crate::common;

use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// An empty database (not cloned from the migrated template).
async fn empty_database() -> String {
    let pg = disposable_pg::shared_for_tests();
    let name = format!(
        "mig_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    pg.create_database(&name, None)
        .await
        .expect("create database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_apply_once() {
    let url = empty_database().await;
    let runs: Vec<_> = (0..4)
        .map(|_| tokio::spawn(reference_server::migrate_owned(url.clone())))
        .collect();
    for r in runs {
        r.await.unwrap().expect("every concurrent migrate succeeds");
    }
    reference_server::migrate(&url)
        .await
        .expect("and again: nothing to do");
    let db = disposable_pg::connect(&url).await.unwrap();
    let names: Vec<String> = db
        .query("SELECT name FROM schema_migrations ORDER BY name", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<String> = reference_server::MIGRATIONS
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let url = empty_database().await;
    reference_server::migrate(&url).await.unwrap();
    let db = disposable_pg::connect(&url).await.unwrap();
    db.execute(
        "UPDATE schema_migrations SET sha256 = decode(repeat('00', 32), 'hex')",
        &[],
    )
    .await
    .unwrap();
    let err = reference_server::migrate(&url)
        .await
        .expect_err("checksum mismatch");
    assert!(
        matches!(err, reference_server::Error::MigrationChanged { .. }),
        "{err}"
    );
}

/// Direct inserts that the schema itself must refuse.
#[tokio::test]
async fn schema_constraints_refuse_bad_rows() {
    let url = common::database().await;
    let db = disposable_pg::connect(&url).await.unwrap();
    db.batch_execute(
        "INSERT INTO users (id) VALUES ('00000000-0000-0000-0000-000000000001');
         INSERT INTO devices (user_id, device_id, registration_id, identity_key, token_hash)
         VALUES ('00000000-0000-0000-0000-000000000001', 1, 1, decode(repeat('aa', 32), 'hex'), decode(repeat('01', 32), 'hex'));",
    )
    .await
    .unwrap();
    let device: i64 = db
        .query_one("SELECT id FROM devices", &[])
        .await
        .unwrap()
        .get(0);
    let bad: Vec<(&str, String)> = vec![
        ("31-byte identity key", "INSERT INTO devices (user_id, device_id, registration_id, identity_key, token_hash) VALUES ('00000000-0000-0000-0000-000000000001', 2, 1, decode(repeat('aa', 31), 'hex'), decode(repeat('02', 32), 'hex'))".into()),
        ("registration id 16381", "INSERT INTO devices (user_id, device_id, registration_id, identity_key, token_hash) VALUES ('00000000-0000-0000-0000-000000000001', 2, 16381, decode(repeat('aa', 32), 'hex'), decode(repeat('02', 32), 'hex'))".into()),
        ("same device number twice", "INSERT INTO devices (user_id, device_id, registration_id, identity_key, token_hash) VALUES ('00000000-0000-0000-0000-000000000001', 1, 1, decode(repeat('aa', 32), 'hex'), decode(repeat('03', 32), 'hex'))".into()),
        ("same token hash twice", "INSERT INTO devices (user_id, device_id, registration_id, identity_key, token_hash) VALUES ('00000000-0000-0000-0000-000000000001', 2, 1, decode(repeat('aa', 32), 'hex'), decode(repeat('01', 32), 'hex'))".into()),
        ("63-byte signature", format!("INSERT INTO signed_prekeys (device, key_id, public_key, signature, active) VALUES ({device}, 1, decode(repeat('bb', 32), 'hex'), decode(repeat('cc', 63), 'hex'), true)")),
        ("key id over u32", format!("INSERT INTO one_time_prekeys (device, key_id, public_key) VALUES ({device}, 4294967296, decode(repeat('dd', 32), 'hex'))")),
        ("33-byte prekey", format!("INSERT INTO one_time_prekeys (device, key_id, public_key) VALUES ({device}, 1, decode(repeat('dd', 33), 'hex'))")),
        ("prekey of no device", "INSERT INTO one_time_prekeys (device, key_id, public_key) VALUES (999999, 1, decode(repeat('dd', 32), 'hex'))".into()),
        ("two active signed prekeys", format!("INSERT INTO signed_prekeys (device, key_id, public_key, signature, active) VALUES ({device}, 1, decode(repeat('bb', 32), 'hex'), decode(repeat('cc', 64), 'hex'), true), ({device}, 2, decode(repeat('bb', 32), 'hex'), decode(repeat('cc', 64), 'hex'), true)")),
        ("unknown audit kind", "INSERT INTO key_events (user_id, device_id, kind) VALUES ('00000000-0000-0000-0000-000000000001', 1, 'keys_stolen')".into()),
    ];
    for (what, sql) in bad {
        assert!(
            db.batch_execute(&sql).await.is_err(),
            "{what} must be refused"
        );
    }
    // The same prekey row, well formed, is accepted: the refusals above were for the defect alone.
    db.batch_execute(&format!("INSERT INTO one_time_prekeys (device, key_id, public_key) VALUES ({device}, 1, decode(repeat('dd', 32), 'hex'))"))
        .await
        .unwrap();
}
