//! A server that freezes mid-run (SIGSTOP on a separately started `e2ee-harness serve`): the
//! run must still end within its bound — duration + drain + a bounded grace — and fail,
//! naming the flows it had to cancel instead of letting them disappear.

use crate::common::run as common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Far above duration + drain + grace of the scenario below (20 s + 3 s + a few seconds):
/// only a hang exceeds it.
const GENEROUS_BOUND: Duration = Duration::from_secs(120);

#[test]
fn a_server_frozen_past_the_drain_fails_the_run_naming_cancelled_flows() {
    let serve = common::Serve::start();
    let dir = tempfile::tempdir().unwrap();
    let smoke = std::fs::read_to_string(common::scenario("smoke.toml")).unwrap();
    let frozen = smoke
        .replace("name = \"smoke\"", "name = \"frozen\"")
        .replace("duration = \"10s\"", "duration = \"20s\"")
        .replace("drain = \"8s\"", "drain = \"3s\"")
        .replace("memory_probe_devices = 40", "memory_probe_devices = 0");
    assert_ne!(frozen, smoke);
    let scenario = dir.path().join("frozen.toml");
    std::fs::write(&scenario, frozen).unwrap();
    let report_dir = dir.path().join("r");

    let started = Instant::now();
    let mut run = Command::new(env!("CARGO_BIN_EXE_e2ee-harness"))
        .args(["run", scenario.to_str().unwrap(), "--target", &serve.url])
        .args(["--report-dir", report_dir.to_str().unwrap()])
        .current_dir(common::repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting e2ee-harness run");
    let stderr_lines = lines_of(run.stderr.take().unwrap());

    // The first progress line comes 5 s into the clock: load is running. Freeze the server.
    let mut stderr = String::new();
    loop {
        let line = stderr_lines
            .recv_timeout(GENEROUS_BOUND)
            .expect("a progress line while the run is going");
        stderr += &line;
        if line.contains("measuring") {
            break;
        }
    }
    unsafe { libc::kill(serve.child.id() as i32, libc::SIGSTOP) };

    let status = wait_within(&mut run, started + GENEROUS_BOUND);
    unsafe { libc::kill(serve.child.id() as i32, libc::SIGCONT) };
    let status = status.unwrap_or_else(|| panic!("the run hung on a frozen server:\n{stderr}"));
    stderr.extend(stderr_lines.try_iter());
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut run.stdout.take().unwrap(), &mut stdout).unwrap();

    // Shown with --nocapture: what a user sees after a frozen server.
    println!("{stdout}");
    assert_eq!(
        status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("flows cancelled"), "{stdout}");
    assert!(stdout.contains("result: FAIL"), "{stdout}");
    let report = common::read_report(&report_dir);
    let g = &report.generator;
    assert!(g.flows_cancelled > 0, "{g:?}");
    assert_eq!(
        g.flows_cancelled_by_flow.values().sum::<u64>(),
        g.flows_cancelled,
        "{g:?}"
    );
    // Every cancelled flow is an error of its flow operation, in the table and the JSON.
    for (name, n) in &g.flows_cancelled_by_flow {
        let op = &report.operations[name];
        assert!(
            op.errors >= *n,
            "{name}: {} errors < {n} cancelled",
            op.errors
        );
        assert!(stdout.contains(&format!("{name} {n}")), "{stdout}");
    }
    let cut = report
        .failures
        .iter()
        .map(ToString::to_string)
        .find(|f| f.contains("flows cancelled"))
        .unwrap_or_else(|| panic!("no cancellation failure in {:?}", report.failures));
    for name in g.flows_cancelled_by_flow.keys() {
        assert!(cut.contains(name.as_str()), "{cut}");
    }
    assert!(!report.passed);
    drop(serve);
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line + "\n").is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `child` until `deadline`; kills it and returns `None` past it.
fn wait_within(
    child: &mut std::process::Child,
    deadline: Instant,
) -> Option<std::process::ExitStatus> {
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("waiting for the run") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
