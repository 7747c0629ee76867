//! `e2ee-harness conform` as CI runs it: the binary, its exit codes, its report files.
//! The binary uses the test binary's shared PostgreSQL through `--db <URL>`.

use std::process::Command;

fn harness(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    let pg = disposable_pg::shared_for_tests();
    Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
        .args(args)
        .args(["--db", pg.url()])
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run the harness binary")
}

fn write(dir: &std::path::Path, path: &str, body: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

#[test]
fn a_bad_pack_exits_2_naming_file_statement_and_position() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p/migrations/001_init.sql",
        "CREATE TABLE a (id bigint PRIMARY KEY);\nINSERT INTO a VALUES (1, 2);\n",
    );
    let out = harness(
        &["conform", "--schema", "p", "--report-dir", "out"],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("001_init.sql:2:"), "{stderr}");
    assert!(
        stderr.contains("statement 2 failed: INSERT has more expressions than target columns"),
        "{stderr}"
    );
    assert!(
        stderr.contains("statement: INSERT INTO a VALUES (1, 2)"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("out").exists(),
        "a bad pack writes no report"
    );
}

#[test]
fn a_clean_pack_exits_0_and_a_finding_exits_1_with_junit_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let clean = "CREATE TABLE schema_migrations (version text PRIMARY KEY);\n\
                 INSERT INTO schema_migrations VALUES ('001');\n\
                 CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE);";
    write(
        dir.path(),
        "scenarios/schemas/clean/migrations/001_init.sql",
        clean,
    );
    write(
        dir.path(),
        "scenarios/schemas/clean/migrations/001_init.down.sql",
        "DROP TABLE users; DROP TABLE schema_migrations;",
    );
    let out = harness(
        &["conform", "--schema", "clean", "--report-dir", "r1"],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("migrations\n  PASS    apply 001_init.sql"),
        "{stdout}"
    );
    assert!(stdout.contains("conform clean: "), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r1/conform.json")).unwrap())
            .unwrap();
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["summary"]["failed"], 0);
    assert!(json["checks"].as_array().unwrap().len() > 5);
    let junit = std::fs::read_to_string(dir.path().join("r1/junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuite name=\"conform.clean.probes\""),
        "{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");

    // The same pack with an unindexed foreign key: exit 1, the finding in both reports.
    let with_fk = format!("{clean}\nCREATE TABLE devices (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users);");
    write(
        dir.path(),
        "scenarios/schemas/clean/migrations/001_init.sql",
        &with_fk,
    );
    write(
        dir.path(),
        "scenarios/schemas/clean/migrations/001_init.down.sql",
        "DROP TABLE devices; DROP TABLE users; DROP TABLE schema_migrations;",
    );
    let out = harness(
        &["conform", "--schema", "clean", "--report-dir", "r2"],
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FINDING hazard.fk_unindexed devices.devices_user_id_fkey"),
        "{stdout}"
    );
    assert!(stdout.contains("shows it:"), "{stdout}");
    // The end of the listing recaps what needs attention, most severe first.
    assert!(
        stdout.contains(
            "to look at, most severe first (1):\n  FINDING hazard.fk_unindexed devices.devices_user_id_fkey\n"
        ),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(dir.path().join("r2/junit.xml")).unwrap();
    assert!(junit.contains("<failure type=\"finding\""), "{junit}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r2/conform.json")).unwrap())
            .unwrap();
    assert_eq!(json["summary"]["findings"], 1);
    assert_eq!(json["exit_code"], 1);
}

#[test]
fn an_unknown_pack_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = harness(&["conform", "--schema", "no-such-pack"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such pack"));
}

#[test]
fn an_unreachable_database_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p/migrations/001_init.sql", "SELECT 1;");
    let out = Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
        .args([
            "conform",
            "--schema",
            "p",
            "--db",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
