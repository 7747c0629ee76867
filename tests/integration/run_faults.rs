//! Faults with nothing lost: a short chaos run against the bundled server as a child process
//! on a disposable local PostgreSQL — the server SIGKILLed and restarted, the database
//! restarted, frozen and cut off — must lose, duplicate and mangle nothing; and the same
//! kill against a server whose acknowledgements are non-durable on purpose must be caught
//! by the integrity ledger (exit 1, the lost envelopes listed).
//!
//! Assertions are about integrity and counts, never about timings.

use crate::common;

use std::path::Path;

use common::{path_str, run_harness, stderr, stdout};
use e2ee_harness::report::RunReport;

/// Schedule and error-rate checks are loose: they are about timing, which a test must not
/// judge; the run is judged here by its integrity ledger and its fault accounting.
const SCENARIO: &str = r#"
name = "chaos-ci"
model = "open"
seed = 13
duration = "22s"
warmup = "2s"
drain = "15s"
memory_probe_devices = 0
max_error_rate = 0.25
max_late_starts = 1.0

[population]
users = 30
devices_per_user = 2
one_time_prekeys = 20
replenish_threshold = 5

[open]
rate = 8.0

[mix]
register = 1
replenish = 1
rotate = 1
initiate = 3
converse = 6
fanout = 2
offline = 1

[converse]
messages = 2

[fanout]
group_size = 3
"#;

const FAULTS: &str = r#"
[[faults]]
at = "3s"
kind = "kill_server"
down = "1s"

[[faults]]
at = "8s"
kind = "restart_db"

[[faults]]
at = "12s"
kind = "pause_db"
for = "1s"

[[faults]]
at = "15s"
kind = "drop_db_connections"

[[faults]]
at = "17s"
kind = "restart_server"

[[faults]]
at = "19s"
kind = "drop_db_connections"
command = "true"
"#;

const KILL_ONLY: &str = r#"
[[faults]]
at = "5s"
kind = "kill_server"
down = "1s"
"#;

fn write_scenario(dir: &Path, faults: &str) -> std::path::PathBuf {
    let path = dir.join("chaos-ci.toml");
    std::fs::write(&path, format!("{SCENARIO}{faults}")).unwrap();
    path
}

fn read_report(dir: &Path) -> RunReport {
    e2ee_harness::report::json::read(&dir.join("report.json")).unwrap()
}

#[test]
fn chaos_loses_nothing_and_every_fault_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write_scenario(tmp.path(), FAULTS);
    let reports = tmp.path().join("report");
    let out = run_harness(&[
        "run",
        path_str(&scenario),
        "--db",
        "local",
        "--report-dir",
        path_str(&reports),
        "--quiet",
    ]);
    let report = read_report(&reports);
    assert_eq!(
        out.status.code(),
        Some(0),
        "failures: {:?}\n{}\n{}",
        report.failures,
        stdout(&out),
        stderr(&out)
    );
    let i = &report.integrity;
    assert!(i.messages_sent > 0);
    assert_eq!(
        (i.messages_lost, i.messages_duplicated, i.decrypt_failures),
        (0, 0, 0)
    );
    assert_eq!(i.messages_delivered, i.messages_sent);
    assert!(report.integrity_problems.is_empty());
    let kinds: Vec<&str> = report
        .resilience
        .faults
        .iter()
        .map(|f| f.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "kill_server",
            "restart_db",
            "pause_db",
            "drop_db_connections",
            "restart_server",
            "drop_db_connections"
        ]
    );
    for f in &report.resilience.faults {
        assert_eq!(f.error, None, "{} was not injected", f.kind);
        assert!(f.recovery_s.is_some(), "{} never recovered", f.kind);
    }
    assert_eq!(report.resilience.faults[5].command.as_deref(), Some("true"));
    // The server that was killed ran as a child process, and the report says so.
    assert!(report.environment.server_in_child);
    assert!(
        stdout(&out).contains("server bundled, child process"),
        "{}",
        stdout(&out)
    );
    // The kill dropped every WebSocket; each device came back by itself.
    assert!(
        report.resilience.ws_reconnects >= 60,
        "{:?}",
        report.resilience
    );
}

#[test]
fn a_non_durable_acknowledgement_is_caught_as_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write_scenario(tmp.path(), KILL_ONLY);
    let reports = tmp.path().join("report");
    let out = std::process::Command::new(common::harness())
        .args([
            "run",
            path_str(&scenario),
            "--db",
            "local",
            "--report-dir",
            path_str(&reports),
            "--quiet",
        ])
        .env(reference_server::config::TEST_NONDURABLE_ACK_ENV, "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = read_report(&reports);
    assert!(report.integrity.messages_lost > 0, "{:?}", report.integrity);
    assert_eq!(
        report.integrity_problems.lost.len() as u64,
        report.integrity.messages_lost.min(1000)
    );
    assert!(report
        .failures
        .iter()
        .any(|f| f.to_string().contains("messages_lost")));
}

#[test]
fn a_fault_the_setup_cannot_inject_is_bad_input_with_its_place() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write_scenario(tmp.path(), KILL_ONLY);
    // With --target the harness cannot kill the server: refused before anything is reached.
    let out = run_harness(&[
        "run",
        path_str(&scenario),
        "--target",
        "http://127.0.0.1:9",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let line = SCENARIO.lines().count() + 4;
    assert!(
        stderr(&out).contains(&format!("chaos-ci.toml:{line}:8: fault kill_server")),
        "{}",
        stderr(&out)
    );
}
