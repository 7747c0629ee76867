//! Hostile command lines and scenario files: absurd numbers are refused before anything
//! starts, signals end the process promptly at any moment with nothing left behind, output
//! paths are checked before any load, and exit codes follow README's table.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
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
    wait_until_blocked_on_fifo(child.id());
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

#[allow(dead_code)]
fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}
