//! A harness process under test, watched through its stderr: start it, wait for a line, then
//! signal it. Shared by the tests that interrupt a command mid-way.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};

/// Spawns `cmd` with piped stdout and stderr and reads stderr until a line containing
/// `marker`; returns the child, what stderr said so far, and the rest of stderr.
pub fn spawn_until(cmd: &mut Command, marker: &str) -> (Child, String, BufReader<ChildStderr>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the harness binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        if line.contains(marker) {
            return (child, seen, stderr);
        }
        line.clear();
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("never printed {marker:?}; stderr:\n{seen}");
}

/// Sends SIGINT to `child`.
pub fn interrupt(child: &Child) {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
}
