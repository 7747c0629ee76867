//! `run --shard` / `--shards` / `--start-at`: bad values are refused with exit 2 and a message
//! naming the flag (or variable) and the fix, before anything starts: no report directory is
//! created and the target is never contacted (port 9 answers nothing).

use crate::common;

use std::process::{Command, Output};

use common::{harness, path_str, stderr};

const TARGET: &str = "http://127.0.0.1:9";

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(harness());
    cmd.arg("run")
        .args(args)
        .env_remove("E2EE_HARNESS_SHARD")
        .env_remove("E2EE_HARNESS_START_AT")
        .env_remove("JOB_COMPLETION_INDEX");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the harness binary runs")
}

fn assert_refused(args: &[&str], env: &[(&str, &str)], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let mut all = vec!["smoke", "--report-dir", path_str(&out)];
    all.extend_from_slice(args);
    let o = run(&all, env);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    assert!(!out.exists(), "{args:?} created its report directory");
}

#[test]
fn bad_shards_are_refused_before_anything_starts() {
    assert_refused(
        &["--target", TARGET, "--shard", "0/3"],
        &[],
        "--shard \"0/3\": the shard index counts from 1 to N (JOB_COMPLETION_INDEX counts from 0: use --shards N with it)",
    );
    assert_refused(
        &["--target", TARGET, "--shard", "two/3"],
        &[],
        "not a shard like 2/3",
    );
    assert_refused(
        &["--target", TARGET],
        &[("E2EE_HARNESS_SHARD", "4/3")],
        "E2EE_HARNESS_SHARD \"4/3\": the shard index counts from 1 to N",
    );
    assert_refused(&["--shard", "1/3"], &[], "a sharded run needs --target");
    assert_refused(
        &["--target", TARGET, "--shards", "3"],
        &[],
        "--shards 3 takes the shard index from JOB_COMPLETION_INDEX",
    );
    assert_refused(
        &["--target", TARGET, "--shards", "3"],
        &[("JOB_COMPLETION_INDEX", "3")],
        "JOB_COMPLETION_INDEX=\"3\" with --shards 3: expected 0 to 2",
    );
    assert_refused(
        &["--target", TARGET, "--shards", "3", "--shard", "1/3"],
        &[("JOB_COMPLETION_INDEX", "0")],
        "not both",
    );
    // smoke has 12 users and fanout groups of 3: four shards of 3 users cannot run it.
    assert_refused(
        &["--target", TARGET, "--shard", "1/4"],
        &[],
        "population.users = 12 dealt out to 4 shards leaves shard 4/4 3, below the 4 it needs",
    );
}

#[test]
fn bad_start_times_are_refused_before_anything_starts() {
    assert_refused(
        &["--target", TARGET, "--start-at", "at noon"],
        &[],
        "--start-at \"at noon\": not an RFC 3339 time",
    );
    assert_refused(
        &["--target", TARGET, "--start-at", "@/nonexistent/start_at"],
        &[],
        "--start-at @/nonexistent/start_at: cannot read the start time from this file",
    );
    assert_refused(
        &["--target", TARGET],
        &[("E2EE_HARNESS_START_AT", "2999-01-01T00:00:00Z")],
        "more than the 3600 s a worker may wait",
    );
    assert_refused(
        &["--start-at", "2026-01-01T00:00:00Z"],
        &[],
        "--start-at lines up the workers of one test against one server: it needs --target",
    );
}
