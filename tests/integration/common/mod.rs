//! Test support: reports built from real recorded latencies.
//!
//! Until the load engine produces report directories, these tests time real work (X25519 key
//! agreement, SHA-256 over message-sized buffers, key generation) and record it in the same
//! HdrHistograms the harness uses, on an open-model schedule: sample `i` of an operation is
//! intended at `i / rate` seconds into the window. Which values come out is up to the machine;
//! the tests assert only relations (merged equals whole, round trips are exact, …).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

use chrono::{DateTime, Utc};
use e2ee_harness::report::model::{
    new_histogram, BudgetVerdict, Environment, GeneratorHealth, Integrity, IntervalStats,
    OperationStats, RunReport, ScenarioInfo, StageInfo, Window, HISTOGRAM_MAX_US, SCHEMA_VERSION,
};
use e2ee_harness::verdict;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

/// One timed attempt of one operation.
#[derive(Debug, Clone)]
pub struct Sample {
    pub op: &'static str,
    /// Intended start, milliseconds into the measured window.
    pub offset_ms: u64,
    /// `None`: the attempt failed (counted as an error, not in the histogram).
    pub latency_us: Option<u64>,
    /// Which of two workers ran it (alternating per operation).
    pub worker: usize,
}

/// The operations the recorded runs time.
pub const OPERATIONS: [&str; 5] = [
    "bundle_fetch",
    "key_insert",
    "message_insert",
    "delivery",
    "flow_initiate",
];

fn time_us(work: impl FnOnce()) -> u64 {
    let t = Instant::now();
    work();
    (t.elapsed().as_nanos() as u64).div_ceil(1000).max(1)
}

/// Runs `per_second` attempts of every operation per second of a `seconds`-long window, timing
/// real work. About 2 % of `message_insert` attempts are errors (seeded, deterministic).
pub fn record_run(seconds: u64, per_second: u64, seed: u64) -> Vec<Sample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let peer = PublicKey::from(&StaticSecret::random_from_rng(&mut rng));
    let mut payload = vec![0u8; 4096];
    let mut samples = Vec::new();
    for i in 0..seconds * per_second {
        let offset_ms = i * 1000 / per_second;
        for op in OPERATIONS {
            rng.fill(&mut payload[..]);
            let size = rng.gen_range(256..payload.len());
            let latency = match op {
                "bundle_fetch" => time_us(|| {
                    std::hint::black_box(Sha256::digest(&payload[..size]));
                }),
                "key_insert" => time_us(|| {
                    for _ in 0..4 {
                        std::hint::black_box(PublicKey::from(&StaticSecret::random_from_rng(
                            &mut rng,
                        )));
                    }
                }),
                "message_insert" => time_us(|| {
                    let secret = StaticSecret::random_from_rng(&mut rng);
                    let shared = secret.diffie_hellman(&peer);
                    let mut h = Sha256::new();
                    h.update(shared.as_bytes());
                    h.update(&payload[..size]);
                    std::hint::black_box(h.finalize());
                }),
                "delivery" => time_us(|| {
                    for _ in 0..3 {
                        let secret = StaticSecret::random_from_rng(&mut rng);
                        std::hint::black_box(secret.diffie_hellman(&peer));
                    }
                }),
                _ => time_us(|| {
                    for _ in 0..4 {
                        let secret = StaticSecret::random_from_rng(&mut rng);
                        let shared = secret.diffie_hellman(&peer);
                        std::hint::black_box(Sha256::digest(shared.as_bytes()));
                    }
                }),
            };
            let failed = op == "message_insert" && rng.gen_bool(0.02);
            samples.push(Sample {
                op,
                offset_ms,
                latency_us: (!failed).then_some(latency.min(HISTOGRAM_MAX_US)),
                worker: (i % 2) as usize,
            });
        }
    }
    samples
}

/// What a report is built with besides its samples.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub name: String,
    pub window_start: DateTime<Utc>,
    pub seconds: u64,
    /// `(operation, percentile, limit_us)`.
    pub budgets: Vec<(String, String, u64)>,
    pub integrity: Integrity,
    pub hostname: String,
    /// `max_error_rate` recorded in the report (None: not judged, as in schema 1).
    pub max_error_rate: Option<f64>,
}

impl RunSpec {
    pub fn new(name: &str, seconds: u64) -> RunSpec {
        RunSpec {
            name: name.into(),
            window_start: Utc::now(),
            seconds,
            budgets: Vec::new(),
            integrity: Integrity::default(),
            hostname: "worker-a".into(),
            max_error_rate: None,
        }
    }
}

/// Builds a report the way the load engine does: a histogram per operation and per interval,
/// budgets judged on the full histograms.
pub fn build_report<'a>(
    samples: impl IntoIterator<Item = &'a Sample>,
    spec: &RunSpec,
) -> RunReport {
    let interval_ms = 1000;
    let mut whole: BTreeMap<&str, (hdrhistogram::Histogram<u64>, u64)> = BTreeMap::new();
    let mut slots: BTreeMap<(&str, u64), (hdrhistogram::Histogram<u64>, u64)> = BTreeMap::new();
    let samples: Vec<&Sample> = samples.into_iter().collect();
    let with_flows = samples.iter().any(|s| s.op == "flow_initiate");
    let mut flows = 0;
    for s in samples {
        let w = whole.entry(s.op).or_insert_with(|| (new_histogram(), 0));
        let slot = slots
            .entry((s.op, s.offset_ms / interval_ms))
            .or_insert_with(|| (new_histogram(), 0));
        match s.latency_us {
            Some(v) => {
                w.0.record(v).unwrap();
                slot.0.record(v).unwrap();
            }
            None => {
                w.1 += 1;
                slot.1 += 1;
            }
        }
        // A fixture without flow samples still stands for a run whose flows did the work.
        if s.op == "flow_initiate" || (s.op == "bundle_fetch" && !with_flows) {
            flows += 1;
        }
    }
    let duration_s = spec.seconds as f64;
    let operations = whole
        .into_iter()
        .map(|(op, (h, errors))| {
            let intervals = slots
                .iter()
                .filter(|((o, _), _)| *o == op)
                .map(|((_, slot), (h, e))| IntervalStats::from_histogram(slot * interval_ms, h, *e))
                .collect();
            (
                op.to_string(),
                OperationStats::from_histogram(&h, errors, duration_s, intervals),
            )
        })
        .collect();
    let source = format!(
        "name = \"{}\"\nmodel = \"open\"\nduration = \"{}s\"\n[load]\nrate = 10\n",
        spec.name, spec.seconds
    );
    let mut report = RunReport {
        schema_version: SCHEMA_VERSION,
        scenario: ScenarioInfo {
            name: spec.name.clone(),
            path: format!("scenarios/{}.toml", spec.name),
            model: "open".into(),
            seed: 7,
            duration_s,
            warmup_s: 2.0,
            stages: vec![StageInfo {
                duration_s,
                target: 10.0,
            }],
            flow_weights: [("initiate".to_string(), 1u32)].into_iter().collect(),
            source_bytes: source.len() as u64,
            source,
            source_sha256: String::new(),
            api: "reference".into(),
            skipped_flows: Default::default(),
            max_error_rate: spec.max_error_rate,
        },
        environment: Environment {
            db_provider: "local".into(),
            postgres_version: Some("16.4".into()),
            durable: Some(true),
            target: "http://127.0.0.1:1/".into(),
            bundled_server: true,
            server_in_child: false,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            harness_version: env!("CARGO_PKG_VERSION").into(),
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            hostname: Some(spec.hostname.clone()),
            machine: None,
        },
        started_at: spec.window_start - chrono::Duration::seconds(2),
        finished_at: spec.window_start + chrono::Duration::seconds(spec.seconds as i64 + 1),
        window: Window {
            start: spec.window_start,
            duration_s,
            interval_ms,
        },
        operations,
        budgets: spec
            .budgets
            .iter()
            .map(|(op, p, limit)| BudgetVerdict {
                operation: op.clone(),
                percentile: p.clone(),
                limit_us: *limit,
                observed_us: None,
                passed: false,
                source: "scenario".into(),
            })
            .collect(),
        integrity: spec.integrity.clone(),
        generator: GeneratorHealth {
            model: "open".into(),
            cpu_share: 0.25,
            cpu_share_includes_server: true,
            process_cpu_s: 1.5,
            peak_rss_bytes: 64 << 20,
            late_starts: 0,
            late_start_threshold_us: 1000,
            max_start_lag_us: 120,
            start_lag_p50_us: 20,
            start_lag_p99_us: 90,
            flows_started: flows,
            flows_intended: flows,
            achieved_rate_per_s: flows as f64 / duration_s,
            configured_rate_per_s: flows as f64 / duration_s,
            configured_users: 0,
            peak_users_busy: 0,
            flows_cancelled: 0,
            flows_cancelled_by_flow: Default::default(),
            max_late_start_share: Some(0.01),
            drain_reconnect_failures: 0,
            ws_close_timeouts: 0,
            closed_users_unfinished: false,
            devices: flows * 2,
            peak_open_websockets: flows,
            memory_per_ws_device_bytes: 0,
            ws_probe_devices: 0,
            memory_probe_includes_server: false,
            goose_report: None,
        },
        integrity_problems: Default::default(),
        resilience: Default::default(),
        passed: false,
        failures: Vec::new(),
        interrupted: false,
        shard: None,
        start_at: None,
        merged: None,
    };
    verdict::judge(&mut report);
    report
}

pub fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_e2ee-harness"))
}

/// Runs the harness binary with `args`.
pub fn run_harness(args: &[&str]) -> Output {
    std::process::Command::new(harness())
        .args(args)
        .output()
        .expect("the harness binary runs")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub mod child;
pub mod hlog;
pub mod run;
