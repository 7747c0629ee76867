//! The three budgeted operations through the real HTTP API of an in-process server, on a
//! *durable* disposable PostgreSQL (fsync on, as in production):
//! - bundle fetch (`GET /v1/keys/{user}/{device}`, claiming a one-time prekey),
//! - key insert (`POST /v1/keys/one-time` with 100 prekeys),
//! - message insert (`PUT /v1/messages/{user}`, one envelope).
//!
//! Criterion reports closed-loop times (one request after another). Afterwards a short
//! open-model run sends each operation at a fixed 200 requests/s, timing every request from
//! its *intended* start (no coordinated omission), and prints p50/p95/p99.
//!
//! `cargo bench -p reference-server --bench api` (E2EE_BENCH_RATE_SECS=0 skips the fixed-rate part).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use disposable_pg::{Durability, Options, Postgres};
use ed25519_dalek::{Signer, SigningKey};
use hdrhistogram::Histogram;
use rand::rngs::OsRng;
use reference_server::{RunningServer, ServerConfig};
use serde_json::{json, Value};
use uuid::Uuid;

struct Bench {
    _pg: Postgres,
    server: RunningServer,
    http: reqwest::Client,
    base: String,
    /// Fetches bundles and sends messages.
    caller_token: String,
    /// Its prekeys are claimed by the fetches, replenished outside the timed region.
    target: Uuid,
    target_token: String,
    /// Receives the messages; one device.
    recipient: Uuid,
    /// Upload the 100-prekey batches, round-robin, so no device holds more than a realistic
    /// number of prekeys (the reply counts what remains).
    uploaders: Vec<(i64, String)>,
    next_uploader: AtomicU32,
    /// Direct database access for untimed cleanup.
    db: tokio_postgres::Client,
    next_key_id: AtomicU32,
    publics: Vec<String>,
}

/// Devices that take turns uploading prekey batches.
const UPLOADERS: usize = 200;

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

fn x25519() -> String {
    let s = x25519_dalek::StaticSecret::random_from_rng(OsRng);
    b64(x25519_dalek::PublicKey::from(&s).as_bytes())
}

fn registration() -> Value {
    let identity = SigningKey::generate(&mut OsRng);
    let spk = STANDARD.decode(x25519()).unwrap();
    let mut encoded = vec![0x05];
    encoded.extend_from_slice(&spk);
    json!({
        "registration_id": 7,
        "identity_key": b64(identity.verifying_key().as_bytes()),
        "signed_prekey": {"key_id": 1, "public_key": b64(&spk), "signature": b64(&identity.sign(&encoded).to_bytes())},
    })
}

impl Bench {
    async fn setup() -> Bench {
        // E2EE_BENCH_FAST=1 measures on fsync-off PostgreSQL, to separate the server's own
        // cost from the WAL flush every write pays on durable storage.
        let fast = std::env::var("E2EE_BENCH_FAST").is_ok_and(|v| v == "1");
        let durability = if fast {
            Durability::Fast
        } else {
            Durability::Durable
        };
        let options = Options {
            durability,
            ..Options::default()
        };
        let pg = Postgres::start(&options)
            .await
            .expect("a PostgreSQL for the benchmark");
        assert_eq!(pg.durable(), !fast, "durability as requested");
        println!(
            "PostgreSQL {} ({}), {}",
            pg.version(),
            pg.kind(),
            if fast { "fsync OFF" } else { "durable" }
        );
        let url = pg
            .create_database("bench", None)
            .await
            .expect("bench database");
        let server = reference_server::start(ServerConfig::new(url.clone()))
            .await
            .expect("server");
        let http = reqwest::Client::new();
        let base = server.base_url();
        let mut tokens: Vec<(Uuid, String)> = Vec::new();
        for _ in 0..(3 + UPLOADERS) {
            let r: Value = http
                .post(format!("{base}/v1/users"))
                .json(&registration())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            tokens.push((
                r["user_id"].as_str().unwrap().parse().unwrap(),
                r["token"].as_str().unwrap().to_string(),
            ));
        }
        let db = disposable_pg::connect(&url).await.expect("bench connects");
        let mut uploaders = Vec::new();
        for (user, token) in &tokens[3..] {
            let row: i64 = db
                .query_one("SELECT id FROM devices WHERE user_id = $1", &[user])
                .await
                .unwrap()
                .get(0);
            uploaders.push((row, token.clone()));
        }
        let publics = (0..100).map(|_| x25519()).collect();
        Bench {
            _pg: pg,
            server,
            http,
            base,
            caller_token: tokens[0].1.clone(),
            target: tokens[1].0,
            target_token: tokens[1].1.clone(),
            recipient: tokens[2].0,
            uploaders,
            next_uploader: AtomicU32::new(0),
            db,
            next_key_id: AtomicU32::new(1),
            publics,
        }
    }

    /// 100 prekeys with fresh key ids.
    fn batch(&self) -> Value {
        let first = self.next_key_id.fetch_add(100, Ordering::Relaxed);
        let prekeys: Vec<Value> = self
            .publics
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"key_id": first + i as u32, "public_key": p}))
            .collect();
        json!({"prekeys": prekeys})
    }

    /// Gives the fetch target at least `n` more prekeys (untimed).
    async fn replenish(&self, n: u64) {
        for _ in 0..n.div_ceil(100) {
            let res = self
                .http
                .post(format!("{}/v1/keys/one-time", self.base))
                .bearer_auth(&self.target_token)
                .json(&self.batch())
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    }

    async fn fetch_bundle(&self) {
        let res = self
            .http
            .get(format!("{}/v1/keys/{}/1", self.base, self.target))
            .bearer_auth(&self.caller_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        assert!(
            body["bundles"][0]["one_time_prekey"].is_object(),
            "the fetch claims a prekey"
        );
    }

    /// The next uploader; its prekeys are removed first (untimed) when `fresh`.
    async fn uploader(&self, fresh: bool) -> String {
        let i = self.next_uploader.fetch_add(1, Ordering::Relaxed) as usize % self.uploaders.len();
        let (row, token) = &self.uploaders[i];
        if fresh {
            self.db
                .execute("DELETE FROM one_time_prekeys WHERE device = $1", &[row])
                .await
                .unwrap();
        }
        token.clone()
    }

    async fn insert_keys(&self, token: &str, body: &Value) {
        let res = self
            .http
            .post(format!("{}/v1/keys/one-time", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    fn message(&self) -> Value {
        json!({"message_id": Uuid::new_v4(), "messages": [{
            "device_id": 1, "type": "ratchet",
            "header": b64(&[3u8; 40]), "ciphertext": b64(&[9u8; 200]),
        }]})
    }

    async fn insert_message(&self, body: &Value) {
        let res = self
            .http
            .put(format!("{}/v1/messages/{}", self.base, self.recipient))
            .bearer_auth(&self.caller_token)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}

fn api(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bench = Arc::new(rt.block_on(Bench::setup()));
    let mut group = c.benchmark_group("api");
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(2));

    group.bench_function("bundle_fetch", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let bench = bench.clone();
            async move {
                bench.replenish(iters).await;
                let start = Instant::now();
                for _ in 0..iters {
                    bench.fetch_bundle().await;
                }
                start.elapsed()
            }
        })
    });
    group.bench_function("key_insert_100", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let bench = bench.clone();
            async move {
                // Each upload goes to a device that has just run out, as a replenishing client's
                // would; only the upload itself is timed.
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let body = bench.batch();
                    let token = bench.uploader(true).await;
                    let start = Instant::now();
                    bench.insert_keys(&token, &body).await;
                    total += start.elapsed();
                }
                total
            }
        })
    });
    group.bench_function("message_insert", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let bench = bench.clone();
            async move {
                let bodies: Vec<Value> = (0..iters).map(|_| bench.message()).collect();
                let start = Instant::now();
                for body in &bodies {
                    bench.insert_message(body).await;
                }
                start.elapsed()
            }
        })
    });
    group.finish();

    let secs: u64 = std::env::var("E2EE_BENCH_RATE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    if secs > 0 {
        rt.block_on(fixed_rate(bench.clone(), secs));
    }
    let bench = Arc::try_unwrap(bench).ok().expect("no other owner");
    rt.block_on(bench.server.shutdown());
    drop(bench._pg);
}

#[derive(Clone, Copy, Debug)]
enum Op {
    BundleFetch,
    KeyInsert,
    MessageInsert,
}

/// Open model: request i is due at start + i/rate whether or not earlier ones finished; its
/// latency counts from that due time.
async fn fixed_rate(bench: Arc<Bench>, secs: u64) {
    const RATE: u64 = 200;
    println!(
        "\nfixed rate {RATE} req/s for {secs} s per operation, latency from intended start (µs):"
    );
    for op in [Op::BundleFetch, Op::KeyInsert, Op::MessageInsert] {
        let n = RATE * secs;
        if let Op::BundleFetch = op {
            bench.replenish(n).await;
        }
        let interval = Duration::from_nanos(1_000_000_000 / RATE);
        let start = tokio::time::Instant::now() + Duration::from_millis(50);
        let mut tasks = Vec::with_capacity(n as usize);
        for i in 0..n {
            let due = start + interval * i as u32;
            let body = match op {
                Op::BundleFetch => Value::Null,
                Op::KeyInsert => bench.batch(),
                Op::MessageInsert => bench.message(),
            };
            // Round-robin over the uploaders: each ends with at most 100 × n / UPLOADERS prekeys.
            let token = if let Op::KeyInsert = op {
                bench.uploader(false).await
            } else {
                String::new()
            };
            tokio::time::sleep_until(due).await;
            let bench = bench.clone();
            tasks.push(tokio::spawn(async move {
                let sent = tokio::time::Instant::now();
                match op {
                    Op::BundleFetch => bench.fetch_bundle().await,
                    Op::KeyInsert => bench.insert_keys(&token, &body).await,
                    Op::MessageInsert => bench.insert_message(&body).await,
                }
                (due.elapsed(), sent.elapsed())
            }));
        }
        // From the intended start (includes any queueing, and up to ~1 ms of timer lateness
        // of the generator: tokio's timer has millisecond resolution) and from the actual send.
        let mut intended = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let mut service = intended.clone();
        for t in tasks {
            let (from_due, from_send) = t.await.unwrap();
            intended.record(from_due.as_micros().max(1) as u64).unwrap();
            service.record(from_send.as_micros().max(1) as u64).unwrap();
        }
        for (what, h) in [("intended", &intended), ("sent", &service)] {
            println!(
                "  {:<15} from {:<8} n={:<5} p50={:>6} p95={:>6} p99={:>6} max={:>7}",
                format!("{op:?}"),
                what,
                h.len(),
                h.value_at_quantile(0.50),
                h.value_at_quantile(0.95),
                h.value_at_quantile(0.99),
                h.max()
            );
        }
    }
}

criterion_group!(benches, api);
criterion_main!(benches);
