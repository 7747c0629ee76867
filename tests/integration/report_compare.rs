//! `report compare`: an identical pair passes (exit 0), a synthetic regression fails (exit 1)
//! and is named per operation and percentile, on the terminal and in Markdown; operations on
//! one side only are reported; bad input exits 2.

use crate::common;

use std::path::{Path, PathBuf};

use common::{build_report, path_str, record_run, run_harness, stderr, stdout, RunSpec, Sample};
use e2ee_harness::report::write_report_dir;

/// Writes the report of `samples` into `dir/name` and returns the directory.
fn write(dir: &Path, name: &str, samples: &[Sample], spec: &RunSpec) -> PathBuf {
    let out = dir.join(name);
    write_report_dir(&out, &build_report(samples, spec)).unwrap();
    out
}

fn scaled(samples: &[Sample], f: impl Fn(u64) -> u64) -> Vec<Sample> {
    samples
        .iter()
        .map(|s| Sample {
            latency_us: s.latency_us.map(&f),
            ..s.clone()
        })
        .collect()
}

#[test]
fn an_identical_pair_passes() {
    let samples = record_run(3, 20, 31);
    let spec = RunSpec::new("cmp", 3);
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &samples, &spec);
    let cur = write(dir.path(), "cur", &samples, &spec);
    // A directory on one side, a report.json file on the other.
    let o = run_harness(&[
        "report",
        "compare",
        path_str(&base),
        path_str(&cur.join("report.json")),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("PASS: no percentile regressed by more than 10%"),
        "{out}"
    );
    for op in common::OPERATIONS {
        for p in ["p50", "p95", "p99.9"] {
            let row = out
                .lines()
                .find(|l| l.starts_with(op) && l.split_whitespace().nth(1) == Some(p))
                .unwrap_or_else(|| panic!("row {op} {p} in\n{out}"));
            assert!(row.contains("+0.0%"), "{row}");
        }
    }
}

#[test]
fn a_synthetic_regression_fails_and_is_named() {
    // 1,000 samples per operation: enough for p50..p99 to gate, not for p99.9.
    let samples = record_run(10, 100, 32);
    let spec = RunSpec::new("cmp", 10);
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &samples, &spec);
    // Only delivery gets slower: twice as slow plus a microsecond, far past 10 %.
    let slower: Vec<Sample> = samples
        .iter()
        .map(|s| Sample {
            latency_us: s
                .latency_us
                .map(|v| if s.op == "delivery" { 2 * v + 1 } else { v }),
            ..s.clone()
        })
        .collect();
    let cur = write(dir.path(), "cur", &slower, &spec);

    let o = run_harness(&["report", "compare", path_str(&base), path_str(&cur)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let regressed: Vec<&str> = out.lines().filter(|l| l.ends_with("REGRESSED")).collect();
    assert!(
        regressed
            .iter()
            .any(|l| l.split_whitespace().take(2).collect::<Vec<_>>() == ["delivery", "p50"]),
        "delivery p50 regressed:\n{out}"
    );
    assert!(
        regressed.iter().all(|l| l.starts_with("delivery ")),
        "{out}"
    );
    assert!(
        out.contains(&format!("FAIL: {} regression(s) past 10%", regressed.len())),
        "{out}"
    );
    let p999 = out
        .lines()
        .find(|l| l.split_whitespace().take(2).collect::<Vec<_>>() == ["delivery", "p99.9"])
        .unwrap();
    assert!(
        p999.contains("not enough data"),
        "1,000 samples cannot gate p99.9: {p999}"
    );

    let o = run_harness(&[
        "report",
        "compare",
        "--format",
        "markdown",
        path_str(&base),
        path_str(&cur),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let md = stdout(&o);
    assert!(md.starts_with("### e2ee-harness · comparison against baseline · ❌ FAIL"));
    let row = md
        .lines()
        .find(|l| l.starts_with("| `delivery` |"))
        .unwrap();
    assert_eq!(row.matches('❌').count(), regressed.len(), "{row}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| `bundle_fetch` |"))
        .unwrap();
    assert_eq!(row.matches('❌').count(), 0, "{row}");

    // A threshold above the regression lets it through; the faster direction always passes.
    let o = run_harness(&[
        "report",
        "compare",
        "--max-regression",
        "100000%",
        path_str(&base),
        path_str(&cur),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = run_harness(&["report", "compare", path_str(&cur), path_str(&base)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn a_30_percent_slowdown_fails_and_identical_runs_pass() {
    let samples = record_run(10, 100, 35);
    let spec = RunSpec::new("cmp", 10);
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &samples, &spec);
    let same = write(dir.path(), "same", &samples, &spec);
    let slower = write(
        dir.path(),
        "slower",
        &scaled(&samples, |v| v * 13 / 10),
        &spec,
    );
    let o = run_harness(&["report", "compare", path_str(&base), path_str(&same)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = run_harness(&["report", "compare", path_str(&base), path_str(&slower)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("with confidence"), "{}", stdout(&o));
}

#[test]
fn few_samples_say_not_enough_data_instead_of_regressing() {
    // 30 samples per operation: only p50 has 10 samples beyond it.
    let samples = record_run(3, 10, 36);
    let spec = RunSpec::new("cmp", 3);
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &samples, &spec);
    // The slowest sample of every operation becomes 50 times slower: p99 (= max) jumps.
    let mut tail = samples.clone();
    for op in common::OPERATIONS {
        let slowest = tail
            .iter_mut()
            .filter(|s| s.op == op && s.latency_us.is_some())
            .max_by_key(|s| s.latency_us)
            .unwrap();
        slowest.latency_us = slowest.latency_us.map(|v| v * 50);
    }
    let cur = write(dir.path(), "cur", &tail, &spec);
    let o = run_harness(&["report", "compare", path_str(&base), path_str(&cur)]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for op in common::OPERATIONS {
        let p99 = out
            .lines()
            .find(|l| l.split_whitespace().take(2).collect::<Vec<_>>() == [op, "p99"])
            .unwrap();
        assert!(p99.contains("not enough data"), "{p99}");
    }
}

#[test]
fn improvements_pass() {
    let samples = record_run(2, 20, 33);
    let spec = RunSpec::new("cmp", 2);
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &samples, &spec);
    let cur = write(
        dir.path(),
        "cur",
        &scaled(&samples, |v| (v / 2).max(1)),
        &spec,
    );
    let o = run_harness(&["report", "compare", path_str(&base), path_str(&cur)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn operations_on_one_side_only_are_reported() {
    let samples = record_run(2, 20, 34);
    let spec = RunSpec::new("cmp", 2);
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &samples, &spec);
    let without: Vec<Sample> = samples
        .iter()
        .filter(|s| s.op != "key_insert")
        .cloned()
        .collect();
    let cur = write(dir.path(), "cur", &without, &spec);

    let o = run_harness(&["report", "compare", path_str(&base), path_str(&cur)]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("missing in current: key_insert"));
    let o = run_harness(&["report", "compare", path_str(&cur), path_str(&base)]);
    assert!(stdout(&o).contains("missing in baseline: key_insert"));
    let o = run_harness(&[
        "report",
        "compare",
        "--format",
        "markdown",
        path_str(&base),
        path_str(&cur),
    ]);
    assert!(stdout(&o).contains("Missing in current: `key_insert`"));
}

#[test]
fn bad_input_exits_2_and_names_it() {
    let samples = record_run(1, 10, 35);
    let spec = RunSpec::new("cmp", 1);
    let dir = tempfile::tempdir().unwrap();
    let base = write(dir.path(), "base", &samples, &spec);

    let o = run_harness(&[
        "report",
        "compare",
        "--max-regression",
        "ten",
        path_str(&base),
        path_str(&base),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--max-regression \"ten\""),
        "{}",
        stderr(&o)
    );

    let missing = dir.path().join("missing.json");
    let o = run_harness(&["report", "compare", path_str(&base), path_str(&missing)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.json: no such report.json file"));

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"schema_version\": 1,\n \"scenario\": 3}").unwrap();
    let o = run_harness(&["report", "compare", path_str(&base), path_str(&garbage)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("garbage.json:2:"),
        "names file and line: {}",
        stderr(&o)
    );
}
