//! Hostile command lines and scenario files: absurd numbers are refused before anything
//! starts, signals end the process promptly at any moment with nothing left behind, output
//! paths are checked before any load, and exit codes follow README's table.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn harness(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_e2ee-harness"));
    cmd.args(args)
        .current_dir(repo())
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null());
    cmd
}

/// Runs the harness; returns its pid (temp dirs and sandboxes carry it) and its output.
fn run(args: &[&str]) -> (u32, Output) {
    let child = harness(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the harness");
    let pid = child.id();
    (pid, child.wait_with_output().unwrap())
}

fn smoke() -> String {
    std::fs::read_to_string(repo().join("scenarios/smoke.toml")).unwrap()
}

/// Temp dirs of a local PostgreSQL started by harness process `pid`.
fn pg_dirs_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("e2ee-harness-pg-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Processes whose command line mentions `needle` (e.g. a postgres started in a temp dir).
fn processes_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

/// Waits for the child to exit; a generous bound only guards against hanging the suite.
fn wait_exit(child: &mut Child, bound: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the harness did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling the child this test started.
    unsafe { libc::kill(child.id() as i32, sig) };
}

#[test]
fn absurd_scenario_values_exit_2_naming_field_and_bound_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let s = smoke();
    let cases = [
        (
            "users",
            s.replace("users = 12", "users = 1000000000"),
            "population.users (1000000000) is above the bound of 100000",
        ),
        (
            "rate",
            s.replace("rate = 8.0", "rate = 1e12"),
            "open.rate must be above 0 and at most 100000 flows per second, got 1000000000000",
        ),
        (
            "duration",
            s.replace("duration = \"10s\"", "duration = \"999999h\""),
            "duration `999999h` is above the bound of 1day",
        ),
        (
            "devices",
            s.replace("devices_per_user = 2", "devices_per_user = 4000000000"),
            "population.devices_per_user (4000000000) is above the bound of 64",
        ),
        (
            "probe",
            s.replace(
                "memory_probe_devices = 40",
                "memory_probe_devices = 3000000000",
            ),
            "memory_probe_devices (3000000000) is above the bound of 20000",
        ),
        (
            "message",
            s.replace("message_size = 64", "message_size = 4000000000"),
            "message_size must be between 32 and 61440 bytes",
        ),
        (
            "drain",
            s.replace("drain = \"8s\"", "drain = \"100000h\""),
            "drain `100000h` is above the bound of 1h",
        ),
        (
            "converse",
            s.replace("[converse]\nmessages = 2", "[converse]\nmessages = 2000000"),
            "converse.messages (2000000) is above the bound of 1000",
        ),
        (
            "flows",
            s.replace("rate = 8.0", "rate = 90000.0")
                .replace("duration = \"10s\"", "duration = \"20h\""),
            "above the bound of 50000000",
        ),
    ];
    for (name, body, message) in cases {
        assert_ne!(body, s, "{name}: the test must change the file");
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, &body).unwrap();
        let report = dir.path().join("r");
        let (pid, out) = run(&[
            "run",
            path.to_str().unwrap(),
            "--db",
            "local",
            "--report-dir",
            report.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(message),
            "{name}: expected `{message}` in:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("{}:", path.display())),
            "{name}: {stderr}"
        );
        assert!(
            !stderr.contains("PostgreSQL "),
            "{name}: a database was started: {stderr}"
        );
        assert!(pg_dirs_of(pid).is_empty(), "{name}: a temp dir was left");
        assert!(!report.exists(), "{name}: a report dir was made");
    }
}

#[test]
fn a_population_past_the_open_file_limit_exits_2_before_anything_starts() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.toml");
    std::fs::write(&path, smoke().replace("users = 12", "users = 10000")).unwrap();
    let mut cmd = harness(&["run", path.to_str().unwrap(), "--db", "local"]);
    // SAFETY: only setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: 4096,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "20040 devices need about 40592 open files, above this process's limit of 4096"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("PostgreSQL "), "{stderr}");
}

#[test]
fn absurd_db_bench_flags_exit_2_before_anything_starts() {
    for (flags, message) in [
        (
            ["--scale", "100000000000"],
            "--scale: 100000000000 devices is above the bound of 10000000",
        ),
        (
            ["--duration", "999999h"],
            "--duration must be above 0 and at most 1day",
        ),
    ] {
        let mut args = vec!["db-bench", "--schema", "batch3", "--db", "local"];
        args.extend(flags);
        let (pid, out) = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(message),
            "expected `{message}` in:\n{stderr}"
        );
        assert!(
            !stderr.contains("PostgreSQL "),
            "a database was started: {stderr}"
        );
        assert!(pg_dirs_of(pid).is_empty());
    }
}

#[test]
fn sigterm_during_key_precomputation_exits_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // 8,000 devices with 100 one-time prekeys each: many seconds of key generation, so the
    // signal lands inside it, and few enough devices for the open-file limit.
    let body = smoke()
        .replace("users = 12", "users = 4000")
        .replace("one_time_prekeys = 10", "one_time_prekeys = 100")
        .replace("memory_probe_devices = 40", "memory_probe_devices = 0");
    let path = dir.path().join("big.toml");
    std::fs::write(&path, body).unwrap();
    let report = dir.path().join("r");
    let mut child = harness(&[
        "run",
        path.to_str().unwrap(),
        "--db",
        "local",
        "--pg-fast",
        "--report-dir",
        report.to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let pid = child.id();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "stderr ended before precomputation:\n{seen}"
        );
        seen.push_str(&line);
        if line.contains("precomputing keys for ") {
            break;
        }
    }
    assert!(!pg_dirs_of(pid).is_empty(), "the local PostgreSQL runs");
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(pg_dirs_of(pid).is_empty(), "temp dir left behind");
    assert_eq!(
        processes_mentioning(&format!("e2ee-harness-pg-{pid}-")),
        Vec::<String>::new(),
        "PostgreSQL left running"
    );
    assert!(!report.exists());
}

#[test]
fn sigint_while_reading_a_fifo_exits() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("scenario.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a plain mkfifo on a path in our temp dir.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = harness(&["run", fifo.to_str().unwrap(), "--db", "local"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if std::panic::catch_unwind(|| wait_until_blocked_on_fifo(child.id())).is_err() {
        // A harness blocked on a FIFO nobody writes to would outlive the test.
        let _ = child.kill();
        let _ = child.wait();
        panic!("the harness never opened the FIFO");
    }
    signal(&child, libc::SIGINT);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130));
    assert!(pg_dirs_of(child.id()).is_empty());
}

/// Waits until one of the process's threads sleeps in the kernel's FIFO open
/// (`wait_for_partner`) or read.
fn wait_until_blocked_on_fifo(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let tasks = PathBuf::from(format!("/proc/{pid}/task"));
    loop {
        let blocked = std::fs::read_dir(&tasks)
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| {
                std::fs::read_to_string(t.path().join("wchan"))
                    .map(|w| {
                        w.contains("fifo") || w.contains("pipe") || w.contains("wait_for_partner")
                    })
                    .unwrap_or(false)
            });
        if blocked {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the harness never opened the FIFO"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_bad_report_dir_exits_2_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let earlier = dir.path().join("earlier");
    std::fs::create_dir(&earlier).unwrap();
    std::fs::write(earlier.join("report.json"), "{}").unwrap();
    let cases = [
        (file.clone(), "is a file, not a directory"),
        (file.join("sub"), "cannot be created:"),
        (
            earlier.clone(),
            "already holds a report (report.json); pass --force",
        ),
    ];
    for (report_dir, message) in cases {
        let (pid, out) = run(&[
            "run",
            "scenarios/smoke.toml",
            "--db",
            "local",
            "--report-dir",
            report_dir.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("--report-dir {}: {message}", report_dir.display())),
            "{stderr}"
        );
        assert!(!stderr.contains("PostgreSQL "), "{stderr}");
        assert!(pg_dirs_of(pid).is_empty());
    }
    assert_eq!(
        std::fs::read_to_string(earlier.join("report.json")).unwrap(),
        "{}"
    );
    // conform and db-bench check theirs the same way.
    for args in [
        ["conform", "--schema", "batch3", "--report-dir"],
        ["db-bench", "--schema", "batch3", "--report-dir"],
    ] {
        let mut args = args.to_vec();
        args.extend([file.to_str().unwrap(), "--db", "local"]);
        let (_, out) = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("is a file, not a directory"), "{stderr}");
    }
}

#[test]
fn a_malformed_target_is_bad_usage() {
    for (target, message) in [
        ("not-a-url", "not a URL"),
        ("ftp://example.org", "scheme `ftp` is not http or https"),
    ] {
        let (_, out) = run(&["run", "scenarios/smoke.toml", "--target", target]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {stderr}");
        assert!(
            stderr.contains(&format!("--target {target:?}: {message}")),
            "{stderr}"
        );
    }
}

/// An HTTP server that answers `/healthz` and fails every other request with 500.
fn healthy_but_broken_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 8192];
                let n = stream.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let response = if head.starts_with("GET /healthz") {
                    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                } else {
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\nfail"
                };
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    url
}

#[test]
fn a_target_whose_api_fails_every_request_is_a_failed_run() {
    let url = healthy_but_broken_server();
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = run(&[
        "run",
        "scenarios/smoke.toml",
        "--quiet",
        "--target",
        &url,
        "--report-dir",
        dir.path().join("r").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the run failed: against {url}")),
        "{stderr}"
    );
}

#[test]
fn a_budget_limit_that_is_no_duration_is_named_in_words() {
    let (_, out) = run(&[
        "run",
        "scenarios/smoke.toml",
        "--budget",
        "bundle_fetch.p95=fast",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--budget bundle_fetch.p95=fast: limit `fast` is not a duration (it does not start with a number); write a number and a unit, e.g. 10ms"),
        "{stderr}"
    );
    let (_, out) = run(&[
        "run",
        "scenarios/smoke.toml",
        "--budget",
        "bundle_fetch.p95=10parsecs",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(`parsecs` is not a unit)"), "{stderr}");
}

#[test]
fn a_database_chosen_by_database_url_says_so() {
    let pg = disposable_pg::shared_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("p/migrations");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(
        pack.join("001_init.sql"),
        "CREATE TABLE a (id bigint PRIMARY KEY);\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
        .args(["conform", "--schema", "p"])
        .current_dir(dir.path())
        .env("DATABASE_URL", pg.url())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auto: DATABASE_URL is set"), "{stderr}");
}

#[test]
fn serve_refuses_a_busy_address_before_starting_postgres() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let (pid, out) = run(&["serve", "--listen", &addr, "--db", "local"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("--listen {addr}: cannot listen there")),
        "{stderr}"
    );
    assert!(!stderr.contains("PostgreSQL "), "{stderr}");
    assert!(pg_dirs_of(pid).is_empty());
}

#[test]
fn a_signal_with_stderr_closed_still_exits() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("scenario.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a plain mkfifo on a path in our temp dir.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut child = harness(&["run", fifo.to_str().unwrap(), "--db", "local"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Whoever read the harness's stderr is gone: writing to it fails (EPIPE).
    drop(child.stderr.take());
    if std::panic::catch_unwind(|| wait_until_blocked_on_fifo(child.id())).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the harness never opened the FIFO");
    }
    signal(&child, libc::SIGTERM);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130));
}
