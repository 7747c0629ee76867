//! Issue 20, point 4: does the bundle fetch slow down as the one-time prekey table grows?
//! Bundle fetch p95 at a fixed 200 requests/s (open model, latency from each request's
//! intended start) with about a thousand and with a million one-time prekeys stored, through
//! the real HTTP API of an in-process server on a durable disposable PostgreSQL.
//!
//! Set-up per scale (untimed): 200 "hot" devices, registered through the API, hold exactly the
//! keys the run will claim (every fetch claims one); the stored bulk, `scale` keys, belongs to
//! bystander devices (100 keys each) inserted directly with SQL for speed. So both runs claim
//! the same keys from the same devices and differ only in the size of the table and its index.
//!
//! `cargo bench -p reference-server --bench prekey_scale`
//! (`E2EE_BENCH_SCALES=1000,1000000`, `E2EE_BENCH_SECS=10`, `E2EE_BENCH_RATE=200`).
//! Target (issue 20): p95 at a million ≤ 1.5 × p95 at a thousand.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use disposable_pg::{Durability, Options, Postgres};
use ed25519_dalek::{Signer, SigningKey};
use hdrhistogram::Histogram;
use rand::rngs::OsRng;
use reference_server::ServerConfig;
use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;

/// Devices the fetches go to.
const HOT: usize = 200;
/// Keys per bystander device.
const PER_BYSTANDER: u64 = 100;
/// Unmeasured fetches before each measured window.
const WARMUP_SECS: u64 = 2;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

fn registration() -> Value {
    let identity = SigningKey::generate(&mut OsRng);
    let spk = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::random_from_rng(OsRng));
    let mut encoded = vec![0x05];
    encoded.extend_from_slice(spk.as_bytes());
    json!({
        "registration_id": 7,
        "identity_key": b64(identity.verifying_key().as_bytes()),
        "signed_prekey": {"key_id": 1, "public_key": b64(spk.as_bytes()),
                          "signature": b64(&identity.sign(&encoded).to_bytes())},
    })
}

struct Setup {
    http: reqwest::Client,
    base: String,
    caller_token: String,
    hot: Vec<Uuid>,
    db: tokio_postgres::Client,
}

async fn register(http: &reqwest::Client, base: &str) -> (Uuid, String) {
    let r: Value = http
        .post(format!("{base}/v1/users"))
        .json(&registration())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        r["user_id"].as_str().unwrap().parse().unwrap(),
        r["token"].as_str().unwrap().to_string(),
    )
}

/// Empties the prekey table, then stores `bystanders` keys on bystander devices and `claims`
/// keys spread over the hot devices (SQL, untimed), and refreshes the planner's statistics.
async fn populate(s: &Setup, bystanders: u64, claims: u64) {
    let db = &s.db;
    let devices = bystanders.div_ceil(PER_BYSTANDER) as i64;
    db.batch_execute("TRUNCATE one_time_prekeys").await.unwrap();
    // Bystander devices are made once and reused; more are added when a scale needs them.
    db.execute(
        "WITH have AS (SELECT count(*) AS n FROM devices WHERE registration_id = 9999),
              u AS (INSERT INTO users (id)
                    SELECT gen_random_uuid() FROM have, generate_series(1, $1 - have.n) RETURNING id)
         INSERT INTO devices (user_id, device_id, registration_id, identity_key, token_hash)
         SELECT id, 1, 9999, sha256(convert_to(id::text, 'UTF8')),
                sha256(convert_to('t' || id::text, 'UTF8')) FROM u",
        &[&devices],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO one_time_prekeys (device, key_id, public_key)
         SELECT d.id, k, sha256(convert_to(d.id::text || ':' || k, 'UTF8'))
         FROM (SELECT id FROM devices WHERE registration_id = 9999 ORDER BY id LIMIT $1) d,
              generate_series(1, $2::bigint) k",
        &[&devices, &(PER_BYSTANDER as i64)],
    )
    .await
    .unwrap();
    let per_hot = claims.div_ceil(HOT as u64) as i64;
    db.execute(
        "INSERT INTO one_time_prekeys (device, key_id, public_key)
         SELECT d.id, k, sha256(convert_to('h' || d.id::text || ':' || k, 'UTF8'))
         FROM devices d, generate_series(1, $1::bigint) k WHERE d.registration_id <> 9999",
        &[&per_hot],
    )
    .await
    .unwrap();
    // One statement each: several in one batch form a transaction block, where VACUUM
    // cannot run.
    db.batch_execute("VACUUM ANALYZE one_time_prekeys")
        .await
        .unwrap();
    db.batch_execute("CHECKPOINT").await.unwrap();
}

/// `secs` seconds of fetches at `rate`/s, each of the next hot device's bundle; returns the
/// histogram of latency from intended start (µs), or None for an unmeasured warm-up.
async fn fetches(s: &Arc<Setup>, rate: u64, secs: u64) -> Histogram<u64> {
    let n = rate * secs;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let due = start + interval * i as u32;
        // Round robin, so no hot device runs out of the keys it was given.
        let user = s.hot[i as usize % s.hot.len()];
        tokio::time::sleep_until(due).await;
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let res = s
                .http
                .get(format!("{}/v1/keys/{user}/1", s.base))
                .bearer_auth(&s.caller_token)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            let claimed = body["bundles"][0]["one_time_prekey"].is_object();
            (due.elapsed(), claimed)
        }));
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut unclaimed = 0;
    for t in tasks {
        let (latency, claimed) = t.await.unwrap();
        h.record(latency.as_micros().max(1) as u64).unwrap();
        unclaimed += u64::from(!claimed);
    }
    assert_eq!(unclaimed, 0, "every fetch claims a one-time prekey");
    h
}

fn main() {
    let scales: Vec<u64> = std::env::var("E2EE_BENCH_SCALES")
        .unwrap_or_else(|_| "1000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("E2EE_BENCH_SCALES: numbers"))
        .collect();
    let secs: u64 = env("E2EE_BENCH_SECS", 10);
    let rate: u64 = env("E2EE_BENCH_RATE", 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pg = Postgres::start(&Options {
            durability: Durability::Durable,
            ..Options::default()
        })
        .await
        .expect("a PostgreSQL for the benchmark");
        let url = pg.create_database("scale", None).await.expect("database");
        let server = reference_server::start(ServerConfig::new(url.clone()))
            .await
            .expect("server");
        let http = reqwest::Client::new();
        let base = server.base_url();
        let (_, caller_token) = register(&http, &base).await;
        let mut hot = Vec::with_capacity(HOT);
        for _ in 0..HOT {
            hot.push(register(&http, &base).await.0);
        }
        let db = disposable_pg::connect(&url).await.expect("bench connects");
        let setup = Arc::new(Setup {
            http,
            base,
            caller_token,
            hot,
            db,
        });
        println!(
            "PostgreSQL {} (durable); bundle fetch at {rate}/s for {secs} s, latency from intended start (µs)",
            pg.version()
        );
        let mut p95s = Vec::new();
        for &scale in &scales {
            let claims = rate * (secs + WARMUP_SECS) + HOT as u64;
            populate(&setup, scale, claims).await;
            fetches(&setup, rate, WARMUP_SECS).await;
            let h = fetches(&setup, rate, secs).await;
            println!(
                "  {scale:>9} stored: n={} p50={} p95={} p99={} max={}",
                h.len(),
                h.value_at_quantile(0.50),
                h.value_at_quantile(0.95),
                h.value_at_quantile(0.99),
                h.max()
            );
            p95s.push(h.value_at_quantile(0.95));
        }
        if let (Some(first), Some(last)) = (p95s.first(), p95s.last()) {
            println!(
                "p95 ratio, {} vs {} stored: {:.2} (target ≤ 1.5)",
                scales.last().unwrap(),
                scales[0],
                *last as f64 / (*first).max(1) as f64
            );
        }
        server.shutdown().await;
        drop(pg);
    });
}
