//! `e2ee-harness run` as a user runs it: exit codes and messages for bad input, an
//! unreachable target and an impossible budget, and `--target` against a server started
//! separately.

#[path = "common/run.rs"]
mod common;

use std::process::{Command, Output};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
        .args(args)
        .current_dir(common::repo())
        .env_remove("DATABASE_URL")
        .output()
        .expect("running e2ee-harness")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bad_scenario_files_exit_2_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = std::fs::read_to_string(common::scenario("smoke.toml")).unwrap();
    let cases = [
        (
            "unknown-key.toml",
            smoke.replace("seed = 1", "seed = 1\nspeed = 2"),
            "unknown field `speed`",
        ),
        (
            "wrong-type.toml",
            smoke.replace("users = 12", "users = \"twelve\""),
            "invalid type",
        ),
        (
            "negative-rate.toml",
            smoke.replace("\nrate = ", "\nrate = -"),
            "must be above 0",
        ),
        (
            "unknown-budget.toml",
            format!("{smoke}\n[budgets]\nbundle_fetchh = {{ p95 = \"10ms\" }}\n"),
            "unknown operation `bundle_fetchh`",
        ),
    ];
    for (name, body, what) in cases {
        assert_ne!(body, smoke, "{name}: the test must change the file");
        let path = dir.path().join(name);
        std::fs::write(&path, &body).unwrap();
        let out = harness(&[
            "run",
            path.to_str().unwrap(),
            "--report-dir",
            dir.path().join("r").to_str().unwrap(),
        ]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        let line = body.lines().position(|l| {
            l.contains("speed")
                || l.contains("twelve")
                || l.contains("rate = -")
                || l.contains("bundle_fetchh")
        });
        let at = format!("{}:{}:", path.display(), line.unwrap() + 1);
        assert!(stderr.contains(&at), "{name}: expected `{at}` in: {stderr}");
        assert!(
            stderr.contains(what),
            "{name}: expected `{what}` in: {stderr}"
        );
        assert!(
            !dir.path().join("r").exists(),
            "{name}: a bad scenario must change nothing"
        );
    }
}

#[test]
fn a_bad_budget_flag_exits_2() {
    let out = harness(&[
        "run",
        "scenarios/smoke.toml",
        "--budget",
        "bundle_fetch.p95",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--budget bundle_fetch.p95"), "{stderr}");
}

#[test]
fn an_unreachable_target_exits_3_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    let report_dir = dir.path().join("r");
    let out = harness(&[
        "run",
        "scenarios/smoke.toml",
        "--target",
        "http://127.0.0.1:9",
        "--report-dir",
        report_dir.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("http://127.0.0.1:9") && stderr.contains("unreachable"),
        "{stderr}"
    );
    assert!(!report_dir.exists(), "no load, no report");
}

#[test]
fn an_impossible_budget_exits_1_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(&[
        "run",
        "scenarios/smoke.toml",
        "--db",
        "local",
        "--pg-fast",
        "--quiet",
        "--budget",
        "bundle_fetch.p95=1us",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("FAIL bundle_fetch.p95"), "{stdout}");
    let report = common::read_report(dir.path());
    assert!(!report.passed);
    let budget = report
        .budgets
        .iter()
        .find(|b| b.operation == "bundle_fetch" && b.percentile == "p95")
        .unwrap();
    assert!(!budget.passed && budget.limit_us == 1 && budget.source == "command line");
    // Only the budget failed: the protocol itself held.
    common::assert_smoke_report(&report);
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.contains("bundle_fetch.p95")),
        "{:?}",
        report.failures
    );
}

#[test]
fn target_runs_against_a_separately_started_serve() {
    let serve = common::Serve::start();
    let dir = tempfile::tempdir().unwrap();
    let out = harness(&[
        "run",
        "scenarios/smoke.toml",
        "--quiet",
        "--target",
        &serve.url,
        "--report-dir",
        dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report = common::read_report(dir.path());
    common::assert_smoke_report(&report);
    assert!(!report.environment.bundled_server);
    assert_eq!(report.environment.target, serve.url);
    assert_eq!(report.environment.db_provider, "external");
    drop(serve);
}
