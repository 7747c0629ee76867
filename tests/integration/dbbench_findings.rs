//! db-bench finds, unprompted, operations that serialize on a lock held by another
//! operation (`dbbench.lock_wait`) and operations whose cost grows with the table size
//! (`dbbench.growth`), on small packs of its own: one with the defect, one without.
//! The assertions are about which operation is named and what evidence names it, never
//! about how long anything took.

use std::path::Path;
use std::time::Duration;

use e2ee_harness::dbbench::{self, report, BenchReport, Options};
use e2ee_harness::verdict::bench::BenchOutcome;

/// Writes a pack (one migration, one workload) into `dir`.
fn pack(dir: &Path, migration: &str, workload: &str) {
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    std::fs::write(dir.join("migrations/001_schema.sql"), migration).unwrap();
    std::fs::write(dir.join("workload.toml"), workload).unwrap();
}

async fn bench(dir: &Path, scales: &[u64]) -> BenchReport {
    let (p, w) = dbbench::prepare(dir.to_str().unwrap()).unwrap();
    let options = Options {
        scales: scales.to_vec(),
        duration: Duration::from_secs(2),
        verbose: false,
        statement_timeout: Duration::from_secs(600),
    };
    dbbench::run(disposable_pg::shared_for_tests(), &p, &w, &options)
        .await
        .unwrap()
}

// ------------------------------------------------------------------------------------------
// Locks
// ------------------------------------------------------------------------------------------

const EVENTS: &str = "
CREATE TABLE devices (id bigint PRIMARY KEY);
CREATE TABLE events (id bigint PRIMARY KEY, device_id bigint NOT NULL REFERENCES devices (id));
CREATE TABLE event_totals (n bigint NOT NULL);
INSERT INTO event_totals VALUES (0);
";

/// Every insert locks a side table for the rest of its transaction, then works on for a while
/// (the sleep stands in for an expensive refresh): with inserts due every 10 ms and each
/// holding the lock 15 ms, every insert finds the lock taken.
const LOCKING_TRIGGER: &str = "
CREATE FUNCTION count_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  LOCK TABLE event_totals IN EXCLUSIVE MODE;
  PERFORM pg_sleep(0.015);
  RETURN NEW;
END $$;
CREATE TRIGGER events_count AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION count_event();
";

/// The same amount of work per insert, without a lock every writer needs.
const SLEEPING_TRIGGER: &str = "
CREATE FUNCTION slow_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_sleep(0.015);
  RETURN NEW;
END $$;
CREATE TRIGGER events_slow AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION slow_event();
";

const EVENTS_WORKLOAD: &str = r#"
[seed]
sql = ["INSERT INTO devices SELECT g FROM generate_series(1, ${devices}) g"]

[load]
rate = 100
connections = 4
warmup = "500ms"
max_error_rate = 1.0

[[operation]]
name = "insert_event"
weight = 3
sql = "INSERT INTO events (id, device_id) VALUES ($1, $2)"
params = [{ seq = true }, { pick = "devices" }]

[[operation]]
name = "read_device"
sql = "SELECT id FROM devices WHERE id = $1"
params = [{ pick = "devices" }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_trigger_taking_an_exclusive_lock_is_a_lock_wait_finding() {
    let dir = tempfile::tempdir().unwrap();
    pack(
        dir.path(),
        &format!("{EVENTS}{LOCKING_TRIGGER}"),
        EVENTS_WORKLOAD,
    );
    let report = bench(dir.path(), &[100]).await;
    let locks = &report.scales[0].locks;
    assert!(locks.samples > 0, "the sampler ran");
    let found: Vec<_> = locks.waits.iter().filter(|w| w.finding).collect();
    assert!(!found.is_empty(), "waits: {:?}", locks.waits);
    for w in &found {
        assert_eq!(w.waiter, "insert_event", "{w:?}");
        assert_eq!(w.blocker, "insert_event", "{w:?}");
        assert_eq!(w.locktype, "relation", "{w:?}");
        assert_eq!(w.mode, "ExclusiveLock", "{w:?}");
        assert_eq!(w.relation, "event_totals", "{w:?}");
        assert!(w.blocker_statement.contains("INSERT INTO events"), "{w:?}");
        assert!(w.waits > 0 && w.max_wait_ms > 0.0, "{w:?}");
    }
    // The reader never waits: it takes no lock the trigger's conflicts with.
    assert!(locks.waits.iter().all(|w| w.waiter != "read_device"));
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.to_string().starts_with("dbbench.lock_wait: at 100 devices, insert_event waited for insert_event: ExclusiveLock")),
        "{:?}",
        report.findings
    );
    assert_eq!(report.outcome, BenchOutcome::Failed);

    // Every output carries it: the terminal summary, report.json and report.html.
    let summary = report::summary(&report);
    assert!(
        summary.contains("FINDING  insert_event waited for insert_event"),
        "{summary}"
    );
    let out = tempfile::tempdir().unwrap();
    report::write(&report, out.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let waits = json["scales"][0]["locks"]["waits"].as_array().unwrap();
    assert!(waits
        .iter()
        .any(|w| w["finding"] == true && w["relation"] == "event_totals"));
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("Lock waits between operations") && html.contains("event_totals"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_as_slow_but_without_a_shared_lock_are_no_finding() {
    let dir = tempfile::tempdir().unwrap();
    pack(
        dir.path(),
        &format!("{EVENTS}{SLEEPING_TRIGGER}"),
        EVENTS_WORKLOAD,
    );
    let report = bench(dir.path(), &[100]).await;
    let locks = &report.scales[0].locks;
    assert!(locks.samples > 0, "the sampler ran");
    assert!(locks.waits.iter().all(|w| !w.finding), "{:?}", locks.waits);
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.to_string().starts_with("dbbench.lock_wait")),
        "{:?}",
        report.findings
    );
}

// ------------------------------------------------------------------------------------------
// Growth
// ------------------------------------------------------------------------------------------

const DIRECTORY: &str = "
CREATE TABLE devices (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE audit (id bigint PRIMARY KEY, device_id bigint NOT NULL REFERENCES devices (id));
CREATE TABLE notes (id bigint PRIMARY KEY, device_id bigint NOT NULL REFERENCES devices (id));
CREATE INDEX ON audit (device_id);
CREATE INDEX ON notes (device_id);
";

/// Two defects: nothing indexes `devices.name`, and every audit insert counts all devices.
const DEFECTS: &str = "
CREATE TABLE device_total (n bigint);
INSERT INTO device_total VALUES (0);
CREATE FUNCTION recount_devices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE device_total SET n = (SELECT count(*) FROM devices);
  RETURN NEW;
END $$;
CREATE TRIGGER audit_recount AFTER INSERT ON audit FOR EACH ROW EXECUTE FUNCTION recount_devices();
";

/// The same schema done right: the name is indexed, and nothing recounts.
const FIXED: &str = "
CREATE UNIQUE INDEX devices_name ON devices (name);
";

const DIRECTORY_WORKLOAD: &str = r#"
[seed]
sql = ["INSERT INTO devices SELECT g, 'dev-' || g FROM generate_series(1, ${devices}) g"]

[load]
rate = 40
connections = 2
warmup = "200ms"

[[operation]]
name = "device_by_name"
sql = "SELECT id FROM devices WHERE name = 'dev-' || $1"
params = [{ pick = "devices" }]

[[operation]]
name = "device_by_id"
sql = "SELECT name FROM devices WHERE id = $1"
params = [{ pick = "devices" }]

[[operation]]
name = "audit_insert"
sql = "INSERT INTO audit (id, device_id) VALUES ($1, $2)"
params = [{ seq = true }, { pick = "devices" }]

[[operation]]
name = "note_insert"
sql = "INSERT INTO notes (id, device_id) VALUES ($1, $2)"
params = [{ seq = true }, { pick = "devices" }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_without_index_and_a_counting_trigger_are_growth_findings() {
    let dir = tempfile::tempdir().unwrap();
    pack(
        dir.path(),
        &format!("{DIRECTORY}{DEFECTS}"),
        DIRECTORY_WORKLOAD,
    );
    let report = bench(dir.path(), &[300, 3000]).await;
    let flagged: Vec<&str> = report
        .growth
        .iter()
        .filter(|g| g.flagged)
        .map(|g| g.operation.as_str())
        .collect();
    assert_eq!(
        flagged,
        ["device_by_name", "audit_insert"],
        "{:#?}",
        report.growth
    );

    let by_name = &report.growth[0];
    assert!(by_name.rows_exponent > 0.9, "{by_name:?}");
    let evidence = by_name.responsible.join("\n");
    assert!(
        evidence.contains("Seq Scan on devices") && evidence.contains("Filter: (name = "),
        "{evidence}"
    );

    let audit = report
        .growth
        .iter()
        .find(|g| g.operation == "audit_insert")
        .unwrap();
    let evidence = audit.responsible.join("\n");
    assert!(
        evidence.contains("table devices") && evidence.contains("by its trigger(s) audit_recount"),
        "{evidence}"
    );
    assert!(
        evidence.contains("trigger audit_recount on audit (function recount_devices()"),
        "{evidence}"
    );
    assert!(report.findings.iter().any(|f| f
        .to_string()
        .starts_with("dbbench.growth: audit_insert: cost grows as devices^")));

    let summary = report::summary(&report);
    assert!(summary.contains("Seq Scan on devices"), "{summary}");
    let out = tempfile::tempdir().unwrap();
    report::write(&report, out.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["growth"][0]["flagged"], true);
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("Cost growth") && html.contains("audit_recount"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_lookups_and_plain_inserts_do_not_grow() {
    let dir = tempfile::tempdir().unwrap();
    pack(
        dir.path(),
        &format!("{DIRECTORY}{FIXED}"),
        DIRECTORY_WORKLOAD,
    );
    let report = bench(dir.path(), &[300, 3000]).await;
    assert_eq!(report.growth.len(), 4);
    for g in &report.growth {
        assert!(g.not_judged.is_none(), "{g:?}");
        assert!(!g.flagged, "{g:#?}");
    }
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scale_judges_no_growth() {
    let dir = tempfile::tempdir().unwrap();
    pack(
        dir.path(),
        &format!("{DIRECTORY}{DEFECTS}"),
        DIRECTORY_WORKLOAD,
    );
    let report = bench(dir.path(), &[300]).await;
    assert!(report.growth.is_empty());
    assert!(report::summary(&report).contains("cost growth: needs two or more scales"));
}
