//! `e2ee-harness run` as a user runs it: exit codes and messages for bad input, an
//! unreachable target and an impossible budget, and `--target` against a server started
//! separately.

use crate::common::child;
use crate::common::run as common;

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
            .all(|f| f.to_string().contains("bundle_fetch.p95")),
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
    // serve --pg-fast: the target's /healthz says so, and the report records it.
    assert_eq!(report.environment.durable, Some(false));
    assert!(
        stdout.contains("database: external, fast (fsync off)"),
        "{stdout}"
    );
    drop(serve);
}

/// `scenarios` lists the built-in scenarios, then every flow a `[mix]` can weigh with what it
/// does and the settings it reads.
#[test]
fn scenarios_lists_the_flows_a_mix_can_weigh_and_what_each_reads() {
    let out = harness(&["scenarios"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let (scenarios, flows) = stdout
        .split_once("\nflows ([mix] keys):\n")
        .unwrap_or_else(|| panic!("no flow list:\n{stdout}"));
    // The scenario lines come first, in their own format.
    assert!(
        scenarios.contains("smoke\tbuilt-in:scenarios/smoke.toml\n"),
        "{stdout}"
    );
    for l in scenarios.lines().filter(|l| !l.is_empty()) {
        assert!(l.contains("\tbuilt-in:scenarios/"), "{stdout}");
    }
    let line = |name: &str| {
        flows
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for flow {name}:\n{stdout}"))
            .to_string()
    };
    for name in [
        "register",
        "replenish",
        "rotate",
        "initiate",
        "converse",
        "fanout",
        "offline",
        "fetch",
    ] {
        assert!(line(name).contains("reads: "), "{stdout}");
    }
    let converse = line("converse");
    let reads = converse.split_once("reads: ").unwrap().1;
    assert!(reads.contains("converse.messages"), "{converse}");
}

/// Outside the repository (as after `cargo install`), the built-in scenarios and packs serve:
/// `run smoke`, `conform --schema reference|nchat`, and the two listings.
#[test]
fn works_from_any_directory_with_built_in_scenarios_and_packs() {
    let cwd = tempfile::tempdir().unwrap();
    let in_cwd = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
            .args(args)
            .current_dir(cwd.path())
            .env_remove("DATABASE_URL")
            .output()
            .expect("running e2ee-harness")
    };

    let out = in_cwd(&["scenarios"]);
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.contains("default\t") && stdout.contains("smoke\t"),
        "{stdout}"
    );
    let out = in_cwd(&["packs"]);
    let (stdout, _) = text(&out);
    let packs: Vec<&str> = stdout.lines().collect();
    for p in ["reference", "batch3", "chat-app", "hushnet", "nchat", "sup"] {
        assert!(packs.contains(&p), "{stdout}");
    }

    let out = in_cwd(&[
        "run",
        "smoke",
        "--db",
        "local",
        "--pg-fast",
        "--quiet",
        "--report-dir",
        "r",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report = common::read_report(&cwd.path().join("r"));
    common::assert_smoke_report(&report);

    let out = in_cwd(&[
        "conform",
        "--schema",
        "reference",
        "--db",
        "local",
        "--quiet",
        "--report-dir",
        "c1",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // nchat's document is wrong in places (README's packs table): exit 1 with a full report.
    let out = in_cwd(&[
        "conform",
        "--schema",
        "nchat",
        "--db",
        "local",
        "--quiet",
        "--report-dir",
        "c2",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(cwd.path().join("c2/conform.json").is_file());
    assert!(stdout.contains("conform nchat: "), "{stdout}");

    // A name that is neither a file nor built in lists what is.
    let out = in_cwd(&["run", "no-such-scenario", "--db", "local"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("built-in scenarios: ") && stderr.contains("smoke"),
        "{stderr}"
    );
}

/// `serve` and `run` agree: durable unless asked otherwise, read back from the database and
/// published on `/healthz`.
#[tokio::test]
async fn serve_is_durable_by_default_and_says_so_on_healthz() {
    let serve = common::Serve::start_with(&[]);
    let body: serde_json::Value = reqwest::get(format!("{}/healthz", serve.url))
        .await
        .expect("GET /healthz")
        .json()
        .await
        .expect("a JSON body");
    assert_eq!(body["durable"], serde_json::Value::Bool(true), "{body}");
    drop(serve);
}

/// The closed model through the binary: stdout holds the summary alone (goose's own
/// "N users launched." goes to stderr), the generator line compares busy users with the
/// configured ones, and live progress reports a real flow rate.
#[test]
fn closed_model_stdout_is_the_summary_and_progress_tells_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(&[
        "run",
        "scenarios/smoke-closed.toml",
        "--db",
        "local",
        "--pg-fast",
        "--report-dir",
        dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.starts_with("operation ") && !stdout.contains("launched"),
        "stdout:\n{stdout}"
    );
    assert!(
        stdout.contains("closed model, ") && stdout.contains(" of 4 configured virtual users"),
        "{stdout}"
    );
    let rates: Vec<f64> = stderr
        .lines()
        .filter_map(|l| {
            l.split(" | ")
                .nth(1)?
                .strip_suffix(" flows/s")?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        rates.iter().any(|r| *r > 0.0),
        "progress lines show flows/s above 0: {rates:?}\n{stderr}"
    );
}

/// Ctrl-C while a run measures keeps what was measured: the summary is printed, the report is
/// written and marked interrupted, and the exit code is still 130.
#[test]
fn ctrl_c_during_a_run_writes_the_partial_report_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    // Progress lines go to stderr every few seconds; the first "measuring" one means the clock
    // runs and flows are in flight.
    let (child, _, mut stderr) = child::spawn_until(
        Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
            .args([
                "run",
                "scenarios/smoke.toml",
                "--db",
                "local",
                "--pg-fast",
                "--report-dir",
            ])
            .arg(dir.path())
            .current_dir(common::repo())
            .env_remove("DATABASE_URL"),
        "measuring |",
    );
    child::interrupt(&child);
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    let out = child.wait_with_output().unwrap();
    let rest = drain.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "stdout:\n{stdout}\nstderr:\n{rest}"
    );
    assert!(
        rest.contains("stopping the run and writing what it measured"),
        "{rest}"
    );
    assert!(
        stdout.contains("result: INTERRUPTED (partial results)"),
        "{stdout}"
    );
    let report = common::read_report(dir.path());
    assert!(report.interrupted && !report.passed);
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.to_string().starts_with("interrupted by a signal after ")),
        "{:?}",
        report.failures
    );
    // What was measured is there, and the ledger accounted for it.
    assert!(report.operations.values().any(|o| o.count > 0));
    assert!(report.integrity.messages_sent > 0);
}
