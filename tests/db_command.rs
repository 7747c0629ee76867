//! `e2ee-harness db` as a user runs it: the URL is the only stdout line, psql-compatible, and
//! after SIGINT/SIGTERM nothing it started is left: no postgres process, no temp dir.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
