//! A schema pack is untrusted code: it runs as a role that owns only its scratch database, so
//! it cannot reach the host, the server's settings, other databases or roles; its statements
//! are cut by a timeout; and SIGINT during a hanging statement cancels it and drops the
//! scratch database. The harness binary runs against the test binary's shared PostgreSQL
//! through `--db <URL>`, i.e. as it would against an external server.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn pg_url() -> &'static str {
    disposable_pg::shared_for_tests().url()
}

fn harness(args: &[&str], cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_e2ee-harness"));
    cmd.args(args)
        .args(["--db", pg_url()])
        .current_dir(cwd)
        .env_remove("DATABASE_URL");
    cmd
}

/// Runs the harness and returns its pid with its output (names of its sandboxes carry the pid).
fn run(args: &[&str], cwd: &Path) -> (u32, Output) {
    let child = harness(args, cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the harness");
    let pid = child.id();
    (pid, child.wait_with_output().expect("harness output"))
}

/// One value from the shared server, as its superuser.
fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([pg_url(), "-XAtc", sql])
        .output()
        .expect("psql (install postgresql-client)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Databases and roles a harness process left on the server.
fn leftovers(pid: u32) -> String {
    psql(&format!(
        "SELECT string_agg(n, ', ') FROM (SELECT datname AS n FROM pg_database WHERE datname LIKE 'e2ee_sbx_{pid}_%' \
         UNION ALL SELECT rolname FROM pg_roles WHERE rolname LIKE 'e2ee_sbx_{pid}_%') x"
    ))
}

fn write(dir: &Path, path: &str, body: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

#[test]
fn copy_to_program_is_refused_and_runs_nothing_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    // A directory the PostgreSQL OS user could write to, so only the refusal keeps it empty.
    let drop_zone = dir.path().join("zone");
    std::fs::create_dir(&drop_zone).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&drop_zone, std::fs::Permissions::from_mode(0o777)).unwrap();
    let marker = drop_zone.join("pwned");
    write(
        dir.path(),
        "p/migrations/001_init.sql",
        &format!(
            "CREATE TABLE a (id bigint PRIMARY KEY);\nCOPY (SELECT 1) TO PROGRAM 'touch {}';\n",
            marker.display()
        ),
    );
    let (pid, out) = run(&["conform", "--schema", "p"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("001_init.sql:2:"), "{stderr}");
    assert!(stderr.contains("SQLSTATE 42501"), "{stderr}");
    assert!(
        stderr.contains("refused: a pack runs as a role"),
        "{stderr}"
    );
    assert!(!marker.exists(), "COPY TO PROGRAM ran on the host");
    assert_eq!(leftovers(pid), "", "sandbox database or role left behind");
}

#[test]
fn server_settings_other_databases_and_roles_are_out_of_reach() {
    let dir = tempfile::tempdir().unwrap();
    let before = psql("SHOW work_mem");
    let victim = format!("e2ee_victim_{}", std::process::id());
    psql(&format!("CREATE DATABASE {victim}"));
    write(
        dir.path(),
        "p/migrations/001_init.sql",
        "CREATE TABLE schema_migrations (version text PRIMARY KEY);\n\
         INSERT INTO schema_migrations VALUES ('001');\n\
         CREATE TABLE a (id bigint PRIMARY KEY);\n",
    );
    // Behaviour assertions run outside a transaction block, where ALTER SYSTEM is allowed.
    write(
        dir.path(),
        "p/expect.toml",
        &format!(
            "[[succeeds]]\nname = \"alter system\"\nsql = \"ALTER SYSTEM SET work_mem = '77MB'\"\n\
             [[succeeds]]\nname = \"reload\"\nsql = \"SELECT pg_reload_conf()\"\n\
             [[succeeds]]\nname = \"drop another database\"\nsql = \"DROP DATABASE {victim}\"\n\
             [[succeeds]]\nname = \"leave a superuser\"\nsql = \"CREATE ROLE e2ee_intruder SUPERUSER LOGIN\"\n"
        ),
    );
    let (pid, out) = run(&["conform", "--schema", "p"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for name in [
        "alter system",
        "reload",
        "drop another database",
        "leave a superuser",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains("FAIL") && l.contains(&format!("succeeds {name}"))),
            "{name} was not refused:\n{stdout}"
        );
    }
    psql("SELECT pg_reload_conf()");
    assert_eq!(psql("SHOW work_mem"), before, "ALTER SYSTEM took effect");
    assert_eq!(
        psql("SELECT count(*) FROM pg_file_settings WHERE name = 'work_mem' AND sourcefile LIKE '%postgresql.auto.conf'"),
        "0",
        "ALTER SYSTEM wrote postgresql.auto.conf"
    );
    assert_eq!(
        psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{victim}'"
        )),
        "1",
        "another database was dropped"
    );
    assert_eq!(
        psql("SELECT count(*) FROM pg_roles WHERE rolname = 'e2ee_intruder'"),
        "0"
    );
    assert_eq!(leftovers(pid), "", "sandbox database or role left behind");
    psql(&format!("DROP DATABASE {victim}"));
}

#[test]
fn a_sleeping_migration_is_cut_by_the_statement_timeout() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p/migrations/001_init.sql",
        "CREATE TABLE a (id bigint PRIMARY KEY);\nSELECT pg_sleep(3600);\n",
    );
    let (pid, out) = run(
        &["conform", "--schema", "p", "--statement-timeout", "1s"],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("001_init.sql:2:"), "{stderr}");
    assert!(stderr.contains("SQLSTATE 57014"), "{stderr}");
    assert!(
        stderr.contains("statement: SELECT pg_sleep(3600)"),
        "{stderr}"
    );
    assert!(stderr.contains("cut by the statement timeout"), "{stderr}");
    assert_eq!(leftovers(pid), "");
}

#[test]
fn sigint_during_a_hanging_statement_cancels_it_and_drops_the_scratch_database() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p/migrations/001_init.sql",
        "SELECT pg_sleep(3600);\n",
    );
    let mut child = harness(
        &["conform", "--schema", "p", "--statement-timeout", "0"],
        dir.path(),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let sleeping = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'e2ee_sbx_{pid}_%' AND query LIKE '%pg_sleep%'"
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while psql(&sleeping) != "1" {
        assert!(Instant::now() < deadline, "the migration never started");
        assert!(child.try_wait().unwrap().is_none(), "harness exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "stderr:\n{stderr}");
    assert_eq!(psql(&sleeping), "0", "the statement still runs");
    assert_eq!(leftovers(pid), "", "sandbox left behind");
}

#[test]
fn db_bench_runs_a_pack_under_the_same_rule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let pack = dir.path().join("batch3");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/schemas/batch3");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&seed)
        .arg(&pack)
        .status()
        .unwrap();
    assert!(status.success());
    let marker = dir.path().join("pwned");
    let first = pack.join("migrations/001_users.sql");
    let mut sql = std::fs::read_to_string(&first).unwrap();
    sql.push_str(&format!(
        "\nCOPY (SELECT 1) TO PROGRAM 'touch {}';\n",
        marker.display()
    ));
    std::fs::write(&first, sql).unwrap();
    let (pid, out) = run(
        &[
            "db-bench",
            "--schema",
            pack.to_str().unwrap(),
            "--scale",
            "10",
            "--duration",
            "1s",
            "--report-dir",
            dir.path().join("r").to_str().unwrap(),
        ],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("42501"), "{stderr}");
    assert!(!marker.exists(), "COPY TO PROGRAM ran on the host");
    assert_eq!(leftovers(pid), "", "sandbox database or role left behind");
}

#[test]
fn a_pack_that_lifts_the_statement_timeout_is_still_cut() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p/migrations/001_init.sql",
        "SET statement_timeout = 0;\nSELECT pg_sleep(3600);\n",
    );
    let (pid, out) = run(
        &["conform", "--schema", "p", "--statement-timeout", "1s"],
        dir.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("001_init.sql:2:"), "{stderr}");
    assert!(stderr.contains("SQLSTATE 57014"), "{stderr}");
    assert_eq!(leftovers(pid), "");
}
