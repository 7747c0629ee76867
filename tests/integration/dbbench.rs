//! db-bench on every schema pack that has a workload: a small run (two scales, two seconds) on
//! the test PostgreSQL must produce a complete report — every scale present, every operation
//! sampled at every scale. Whether the packs meet their budgets is not asserted: that is what
//! the report is for.

use std::path::Path;
use std::time::Duration;

use e2ee_harness::dbbench::{self, report, Options};
use e2ee_harness::verdict::bench::BenchOutcome;

use crate::common::child;

const SCALES: [u64; 2] = [100, 200];

fn packs_with_workloads() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/schemas");
    let mut out: Vec<String> = std::fs::read_dir(&dir)
        .expect("scenarios/schemas exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("workload.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn every_seed_pack_has_a_parsable_workload() {
    let packs = packs_with_workloads();
    for expected in ["batch3", "chat-app", "hushnet", "nchat", "sup"] {
        assert!(
            packs.iter().any(|p| p == expected),
            "pack {expected} has no workload.toml"
        );
    }
    for pack in &packs {
        let (p, w) = dbbench::prepare(pack).unwrap_or_else(|e| panic!("{pack}: {e}"));
        assert!(!p.migrations.is_empty(), "{pack}: no migrations");
        assert!(!w.operations.is_empty(), "{pack}: no operations");
        assert!(!w.seed.statements.is_empty(), "{pack}: no seed");
    }
}

#[test]
fn an_unknown_pack_is_bad_input() {
    let e = dbbench::prepare("no-such-pack").unwrap_err();
    assert_eq!(e.outcome(), e2ee_harness::Outcome::BadInput);
    assert!(e.to_string().contains("no-such-pack"), "{e}");
}

#[test]
fn a_bad_workload_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/001_t.sql"),
        "CREATE TABLE t (id int);",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("workload.toml"),
        "[seed]\nsql = [\"INSERT INTO t SELECT 1\"]\n[load]\nrate = 10\nconnections = 1\n\n[[operation]]\nname = \"q\"\nsql = \"SELECT $2\"\nparams = [{ seq = true }]\n",
    )
    .unwrap();
    let e = dbbench::prepare(dir.path().to_str().unwrap()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("workload.toml:9:7:"), "{msg}");
    assert!(msg.contains("$2"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_db_bench_of_every_pack_is_complete() {
    let pg = disposable_pg::shared_for_tests();
    for pack in packs_with_workloads() {
        let (p, w) = dbbench::prepare(&pack).unwrap();
        let options = Options {
            scales: SCALES.to_vec(),
            duration: Duration::from_secs(2),
            verbose: false,
            statement_timeout: Duration::from_secs(600),
        };
        let report = dbbench::run(pg, &p, &w, &options)
            .await
            .unwrap_or_else(|e| panic!("{pack}: {e}"));

        let scales: Vec<u64> = report.scales.iter().map(|s| s.devices).collect();
        assert_eq!(scales, SCALES, "{pack}: every scale is reported");
        for s in &report.scales {
            assert_eq!(s.counts["devices"], s.devices);
            assert!(
                s.load.rows.values().any(|n| *n >= s.devices as i64),
                "{pack}@{}: seeding loaded the devices: {:?}",
                s.devices,
                s.load.rows
            );
            let names: Vec<&str> = s.operations.iter().map(|o| o.name.as_str()).collect();
            let expected: Vec<&str> = w.operations.iter().map(|o| o.name.as_str()).collect();
            assert_eq!(
                names, expected,
                "{pack}@{}: every operation is reported",
                s.devices
            );
            for o in &s.operations {
                assert!(
                    o.count > 0,
                    "{pack}@{}: operation {} was never sampled ({:?})",
                    s.devices,
                    o.name,
                    o.errors
                );
                assert!(
                    o.p50_us <= o.p95_us && o.p95_us <= o.p99_us && o.p99_us <= o.max_us,
                    "{pack}: {} percentiles ordered",
                    o.name
                );
                assert_eq!(o.within_budget.is_some(), o.budget_p95_us.is_some());
            }
            assert!(s.scheduled > 0);
        }
        // The verdict agrees with the per-operation facts.
        assert_eq!(
            report.outcome == BenchOutcome::Pass,
            report.failures.is_empty() && report.findings.is_empty(),
            "{pack}"
        );
        // Every operation's growth is judged or says why not.
        assert_eq!(report.growth.len(), w.operations.len(), "{pack}");
        for s in &report.scales {
            assert_eq!(s.costs.len(), w.operations.len(), "{pack}");
            assert!(s.locks.samples > 0, "{pack}: the lock sampler ran");
        }

        let dir = tempfile::tempdir().unwrap();
        report::write(&report, dir.path()).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap())
                .unwrap();
        assert_eq!(
            json["scales"].as_array().unwrap().len(),
            SCALES.len(),
            "{pack}: report.json holds every scale"
        );
        let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
        assert!(html.contains("<svg"), "{pack}: the chart is inline SVG");
        assert!(
            !html.contains("src=") && !html.contains("<link") && !html.contains("<script"),
            "{pack}: the page loads nothing"
        );
        for o in &w.operations {
            assert!(html.contains(&o.name), "{pack}: the chart names {}", o.name);
        }
    }
}

/// Ctrl-C during db-bench keeps what was measured: the schedule stops, the report is written
/// with the scales done so far and marked interrupted, and the exit code is 130.
#[test]
fn ctrl_c_during_db_bench_writes_the_partial_report_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    // "running …" is printed when the first scale's schedule starts.
    let (child, _, _stderr) = child::spawn_until(
        std::process::Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
            .args([
                "db-bench",
                "--schema",
                "batch3",
                "--scale",
                "100,200",
                "--duration",
                "60s",
                "--db",
                "local",
                "--pg-fast",
                "--report-dir",
            ])
            .arg(dir.path())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("DATABASE_URL"),
        "running",
    );
    std::thread::sleep(Duration::from_secs(2));
    child::interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["interrupted"], true, "{json}");
    assert_eq!(
        json["scales"].as_array().unwrap().len(),
        1,
        "only the first scale ran"
    );
    let measured = json["scales"][0]["measured_seconds"]
        .as_f64()
        .unwrap_or(60.0);
    assert!(measured < 60.0, "the schedule stopped early: {measured}");
    assert!(
        json["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "interrupted"),
        "{json}"
    );
}
