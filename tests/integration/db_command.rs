//! `e2ee-harness db` as a user runs it: the URL is the only stdout line, psql-compatible, and
//! after SIGINT/SIGTERM nothing it started is left: no postgres process, no temp dir.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::child;

const BIN: &str = env!("CARGO_BIN_EXE_e2ee-harness");

struct Started {
    child: Child,
    url: String,
    data_dir: PathBuf,
}

fn start_db() -> Started {
    let mut child = Command::new(BIN)
        .args(["db", "--db", "local"])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    stdout.read_line(&mut url).unwrap();
    let url = url.trim().to_string();
    assert!(
        url.starts_with("postgres://"),
        "first stdout line is not a URL: {url:?}"
    );
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut data_dir = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.strip_prefix("data directory: ") {
            data_dir = Some(PathBuf::from(rest.split(" (").next().unwrap().trim()));
        }
        if line.starts_with("serving until Ctrl-C") {
            break;
        }
        line.clear();
    }
    // Keep draining stdout/stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut rest = String::new();
        while stdout.read_line(&mut rest).unwrap_or(0) > 0 {
            assert!(
                rest.trim().is_empty(),
                "stdout must hold only the URL, got {rest:?}"
            );
            rest.clear();
        }
    });
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Started {
        child,
        url,
        data_dir: data_dir.expect("data directory line on stderr"),
    }
}

fn postgres_processes_for(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let zombie = stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z'));
            (cmd.contains(&needle) && !zombie).then_some(format!("{pid}: {cmd}"))
        })
        .collect()
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "db did not exit after the signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal_cleans_up(signal: libc::c_int) {
    let mut s = start_db();
    assert!(s.data_dir.exists());
    // psql can use the URL.
    let out = Command::new("psql")
        .arg(&s.url)
        .args(["-tAc", "SELECT 6 * 7"])
        .output()
        .expect("psql installed");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    assert!(!postgres_processes_for(&s.data_dir).is_empty());

    // SAFETY: signalling our own child.
    unsafe { libc::kill(s.child.id() as i32, signal) };
    let status = wait_exit(&mut s.child);
    assert_eq!(status.code(), Some(130), "interrupted runs exit 130");
    let left = postgres_processes_for(&s.data_dir);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(
        !s.data_dir.exists(),
        "temp dir {} left behind",
        s.data_dir.display()
    );
}

#[test]
fn sigint_leaves_no_process_and_no_directory() {
    signal_cleans_up(libc::SIGINT);
}

#[test]
fn sigterm_leaves_no_process_and_no_directory() {
    signal_cleans_up(libc::SIGTERM);
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn nonsense_db_is_bad_usage_naming_the_accepted_forms() {
    let (code, err) = run(&["db", "--db", "nonsense"]);
    assert_eq!(code, Some(2), "{err}");
    for form in ["auto", "local", "docker", "postgres://"] {
        assert!(err.contains(form), "{err}");
    }
}

#[test]
fn pg_bin_without_initdb_is_unavailable() {
    let dir = std::env::temp_dir().join(format!("no-initdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, err) = run(&["db", "--db", "local", "--pg-bin", dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("initdb"), "{err}");
}

#[test]
fn refusing_url_is_unavailable_with_host_port_and_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://x@127.0.0.1:{port}/db");
    let (code, err) = run(&["db", "--db", &url]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.to_lowercase().contains("refused"),
        "{err}"
    );
}

#[test]
fn help_lists_examples_and_exit_codes() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("Exit codes"),
        "{text}"
    );
    for code in ["0  pass", "1  a check", "2  bad usage", "3  infrastructure"] {
        assert!(text.contains(code), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// The Docker provider through the binary. These need a Docker engine and a PostgreSQL image in
// it: E2EE_HARNESS_PG_IMAGE, or e2ee-harness/postgres:15 as docker/postgres/build-image.sh
// builds it (.ci/run does). Without them they fail and say so.

fn pg_image() -> String {
    disposable_pg::Options::image_for_tests()
}

const ABSENT_IMAGE: &str = "e2ee-harness-test/absent:none";

/// Containers whose owner label names process `pid` (the harness labels each container it
/// starts with `<pid>:<start time>`), running or not.
fn containers_of(pid: u32) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=e2ee-harness.owner",
            "--format",
            "{{.ID}} {{.Label \"e2ee-harness.owner\"}}",
        ])
        .output()
        .expect("docker CLI");
    assert!(out.status.success(), "docker ps failed: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|o| o.starts_with(&format!("{pid}:")))
        })
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

/// Starts `db` with `args`, reads stderr up to "serving until Ctrl-C", and returns the child
/// with everything it printed so far.
fn start_db_with(args: &[&str]) -> (Child, String) {
    let (child, seen, mut stderr) = child::spawn_until(
        Command::new(BIN)
            .arg("db")
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("E2EE_HARNESS_PG_IMAGE"),
        "serving until Ctrl-C",
    );
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, seen)
}

fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    child::interrupt(child);
    wait_exit(child)
}

#[test]
fn auto_with_an_engine_but_no_image_falls_back_to_local_and_says_why() {
    let (mut child, seen) = start_db_with(&["--pg-image", ABSENT_IMAGE]);
    assert!(
        seen.contains(&format!(
            "Docker passed over (engine answered, image {ABSENT_IMAGE} absent and not pullable: "
        )),
        "{seen}"
    );
    assert!(seen.contains("(local, "), "{seen}");
    assert_eq!(interrupt(&mut child).code(), Some(130));
}

#[test]
fn explicit_docker_with_a_missing_image_is_unavailable_with_the_reason() {
    let (code, err) = run(&["db", "--db", "docker", "--pg-image", ABSENT_IMAGE]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains(ABSENT_IMAGE)
            && err.contains("cannot be pulled: ")
            && err.contains("build-image.sh"),
        "{err}"
    );
}

#[test]
fn docker_db_leaves_no_container_after_sigint_nor_after_sigkill_and_the_next_start() {
    let image = pg_image();
    let (mut first, seen) = start_db_with(&["--db", "docker", "--pg-image", &image]);
    assert!(seen.contains("(docker, "), "{seen}");
    let pid = first.id();
    assert_eq!(containers_of(pid).len(), 1, "{seen}");
    assert_eq!(interrupt(&mut first).code(), Some(130));
    assert!(containers_of(pid).is_empty(), "container left after SIGINT");

    // SIGKILL runs no cleanup at all: the container stays until the next start sweeps it.
    let (mut killed, _) = start_db_with(&["--db", "docker", "--pg-image", &image]);
    let killed_pid = killed.id();
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert_eq!(containers_of(killed_pid).len(), 1);
    let (mut next, _) = start_db_with(&["--db", "docker", "--pg-image", &image]);
    assert!(
        containers_of(killed_pid).is_empty(),
        "the next start did not remove the SIGKILLed harness's container"
    );
    let next_pid = next.id();
    assert_eq!(interrupt(&mut next).code(), Some(130));
    assert!(containers_of(next_pid).is_empty());
}

/// `conform` on a container, through to its end: after a pass and after a failure (a pack
/// whose migration does not apply), nothing of the run is left in the engine.
#[test]
fn conform_on_docker_leaves_no_container_after_success_or_failure() {
    let image = pg_image();
    let bad = tempfile::tempdir().unwrap();
    std::fs::create_dir(bad.path().join("migrations")).unwrap();
    std::fs::write(
        bad.path().join("migrations/001_broken.sql"),
        "CREATE TABLE ok (id int);\nCREATE TABLE broken (id nonexistent_type);\n",
    )
    .unwrap();
    for (schema, want_success) in [("reference", true), (bad.path().to_str().unwrap(), false)] {
        let report = tempfile::tempdir().unwrap();
        let child = Command::new(BIN)
            .args([
                "conform",
                "--quiet",
                "--db",
                "docker",
                "--pg-image",
                &image,
                "--schema",
            ])
            .arg(schema)
            .arg("--report-dir")
            .arg(report.path())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), want_success, "{schema}: {err}");
        assert!(
            containers_of(pid).is_empty(),
            "{schema}: container left behind"
        );
    }
}

/// `conform` on two PostgreSQL majors at once: one report per image, and a check whose
/// behaviour depends on the version (JSON_TABLE exists from PostgreSQL 17 on) is named as a
/// difference in `versions.json` and in the closing lines.
#[test]
fn conform_on_two_postgres_versions_reports_each_and_what_differs() {
    let (v15, v17) = ("e2ee-harness/postgres:15", "e2ee-harness/postgres:17");
    let pack = tempfile::tempdir().unwrap();
    std::fs::create_dir(pack.path().join("migrations")).unwrap();
    std::fs::write(
        pack.path().join("migrations/001_init.sql"),
        "CREATE TABLE devices (id bigint PRIMARY KEY, name text NOT NULL);\n",
    )
    .unwrap();
    std::fs::write(
        pack.path().join("expect.toml"),
        "[[succeeds]]\nname = \"JSON_TABLE reads device lists\"\n\
         sql = \"SELECT * FROM JSON_TABLE('[1, 2]', '$[*]' COLUMNS (id int PATH '$'))\"\n",
    )
    .unwrap();
    let report = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "conform",
            "--db",
            "docker",
            "--pg-image",
            v15,
            "--pg-image",
            v17,
        ])
        .arg("--schema")
        .arg(pack.path())
        .arg("--report-dir")
        .arg(report.path())
        .env_remove("DATABASE_URL")
        .env_remove("E2EE_HARNESS_PG_IMAGE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It fails on 15, so the whole run fails.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for dir in ["e2ee-harness_postgres_15", "e2ee-harness_postgres_17"] {
        assert!(
            report.path().join(dir).join("conform.json").is_file(),
            "{dir}"
        );
        assert!(report.path().join(dir).join("junit.xml").is_file(), "{dir}");
    }
    let versions: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report.path().join("versions.json")).unwrap(),
    )
    .unwrap();
    let postgres: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["postgres"].as_str().unwrap())
        .collect();
    assert!(
        postgres[0].contains("15.") && postgres[1].contains("17."),
        "{postgres:?}"
    );
    let diffs = versions["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{diffs:#?}");
    assert!(diffs[0]["name"].as_str().unwrap().contains("JSON_TABLE"));
    assert_eq!(diffs[0]["statuses"][v15], "fail");
    assert_eq!(diffs[0]["statuses"][v17], "pass");
    assert!(
        stdout.contains("1 checks differ between versions:") && stdout.contains("JSON_TABLE"),
        "{stdout}"
    );
}

#[test]
fn several_images_without_docker_are_bad_usage() {
    let (code, err) = run(&[
        "conform",
        "--schema",
        "reference",
        "--db",
        "local",
        "--pg-image",
        "a:1",
        "--pg-image",
        "b:2",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--db docker"), "{err}");
    let (code, err) = run(&["db", "--pg-image", "a:1,b:2"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("only `conform --db docker` takes several"),
        "{err}"
    );
}
