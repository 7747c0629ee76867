//! `report merge` of the shards of one test: reports that cannot be parts of one test are
//! refused with exit 2 and nothing is written (the same directory or run twice, different
//! scenarios, seeds or shard layouts, two reports of one shard); a merge that lacks a shard
//! fails; windows that do not overlap are merged with a warning; the merged report and stderr
//! state the window and the number of workers.

use crate::common;

use common::{build_report, path_str, record_run, run_harness, stderr, RunSpec, Sample};
use e2ee_harness::report::merge::merge;
use e2ee_harness::report::model::{RunReport, ShardInfo};
use e2ee_harness::report::{json, write_report_dir};
use e2ee_harness::verdict::{Failure, RunFailure};

/// Reports of shards `1..=n` of a test of `count` shards, each from its own samples.
fn shards(n: u32, count: u32, spec: &RunSpec) -> Vec<RunReport> {
    let samples = record_run(2, 12, 40);
    (1..=n)
        .map(|i| {
            let mine: Vec<&Sample> = samples
                .iter()
                .enumerate()
                .filter(|(k, _)| *k as u32 % count == i - 1)
                .map(|(_, s)| s)
                .collect();
            let mut r = build_report(mine, spec);
            r.shard = Some(ShardInfo {
                index: i,
                count,
                users: 4,
                closed_users: 0,
            });
            r
        })
        .collect()
}

fn labels(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("worker-{i}")).collect()
}

fn refusal(reports: &[RunReport]) -> String {
    match merge(reports, &labels(reports.len())) {
        Ok(_) => panic!("merged reports that do not belong together"),
        Err(e) => {
            assert_eq!(e.outcome().code(), 2, "{e}");
            e.to_string()
        }
    }
}

#[test]
fn the_same_directory_twice_is_refused_with_exit_2_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("merged"),
    );
    let spec = RunSpec::new("dup", 2);
    let reports = shards(2, 2, &spec);
    write_report_dir(&a, &reports[0]).unwrap();
    write_report_dir(&b, &reports[1]).unwrap();
    // Once as a directory, once as its report.json: still the same report.
    let a_json = a.join("report.json");
    for second in [&a, &a_json] {
        let o = run_harness(&[
            "report",
            "merge",
            path_str(&a),
            path_str(&b),
            path_str(second),
            "--out",
            path_str(&out),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("is the same report as") && stderr(&o).contains("given twice"),
            "{}",
            stderr(&o)
        );
        assert!(!out.exists());
    }
    // A copy of a directory is the same run.
    let copy = dir.path().join("copy");
    write_report_dir(&copy, &reports[0]).unwrap();
    let o = run_harness(&[
        "report",
        "merge",
        path_str(&a),
        path_str(&copy),
        "--out",
        path_str(&out),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("holds the same run as"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn reports_of_other_scenarios_seeds_or_layouts_are_refused() {
    let spec = RunSpec::new("one", 2);
    let mut other = shards(3, 3, &RunSpec::new("other", 2));
    let mut set = shards(3, 3, &spec);
    set[2] = other.remove(2);
    let e = refusal(&set);
    assert!(e.contains("scenario \"other\" differs from \"one\""), "{e}");

    let mut set = shards(3, 3, &spec);
    set[0].scenario.source_sha256 = "a".repeat(64);
    set[1].scenario.source_sha256 = "b".repeat(64);
    let e = refusal(&set);
    assert!(e.contains("scenario file \"one\" differs"), "{e}");

    let mut set = shards(3, 3, &spec);
    set[1].scenario.seed += 1;
    let e = refusal(&set);
    assert!(e.contains("worker-2: seed 8 differs from seed 7"), "{e}");

    let mut set = shards(3, 3, &spec);
    set[2].shard.as_mut().unwrap().count = 4;
    let e = refusal(&set);
    assert!(
        e.contains("worker-3 is shard 3/4 but worker-1 is shard 1/3: shard layouts differ"),
        "{e}"
    );

    let mut set = shards(3, 3, &spec);
    set[1].shard = None;
    let e = refusal(&set);
    assert!(e.contains("worker-2 is not a shard"), "{e}");

    let mut set = shards(3, 3, &spec);
    set[2].shard.as_mut().unwrap().index = 1;
    let e = refusal(&set);
    assert!(
        e.contains("worker-1 and worker-3 are both shard 1/3: overlapping shard indexes"),
        "{e}"
    );
}

#[test]
fn all_shards_merge_into_one_test_that_says_what_it_is_made_of() {
    let spec = RunSpec::new("whole", 2);
    let set = shards(3, 3, &spec);
    let merged = merge(&set, &labels(3)).unwrap();
    let info = merged.merged.as_ref().unwrap();
    assert_eq!((info.workers, info.shards), (3, Some(3)));
    assert!(info.missing_shards.is_empty() && info.warnings.is_empty());
    assert_eq!(info.inputs[1].shard.as_deref(), Some("2/3"));
    assert!(
        merged.shard.is_none(),
        "the merge is the whole test, not a shard"
    );
    let flows: u64 = set.iter().map(|r| r.generator.flows_started).sum();
    assert_eq!(merged.generator.flows_started, flows);
    assert!(merged.passed, "{:?}", merged.failures);
}

#[test]
fn a_merge_without_every_shard_fails_as_incomplete() {
    let spec = RunSpec::new("part", 2);
    let set = shards(2, 3, &spec);
    let merged = merge(&set, &labels(2)).unwrap();
    assert_eq!(merged.merged.as_ref().unwrap().missing_shards, vec![3]);
    assert!(!merged.passed);
    assert_eq!(
        merged.failures,
        vec![Failure::Run {
            worker: None,
            reason: RunFailure::ShardsMissing {
                merged: 2,
                shards: 3,
                missing: vec![3],
            },
        }]
    );
    assert_eq!(
        merged.failures[0].to_string(),
        "incomplete: 2 of 3 shards merged, shard 3/3 missing: the scenario ran only in part"
    );
    // Typed in report.json too, so CI can tell an incomplete merge from a failed budget.
    let written = serde_json::to_value(&merged.failures[0]).unwrap();
    assert_eq!(
        written,
        serde_json::json!({"kind": "run", "reason": "shards_missing", "merged": 2, "shards": 3, "missing": [3]})
    );
}

#[test]
fn windows_that_do_not_overlap_merge_with_a_warning_and_the_window_is_stated() {
    let dir = tempfile::tempdir().unwrap();
    let early = RunSpec::new("apart", 2);
    let mut late = RunSpec::new("apart", 2);
    late.window_start = early.window_start + chrono::Duration::seconds(30);
    let mut a = shards(2, 2, &early);
    let b = shards(2, 2, &late);
    a[1] = b[1].clone();
    let (da, db, out) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("merged"),
    );
    write_report_dir(&da, &a[0]).unwrap();
    write_report_dir(&db, &a[1]).unwrap();
    let o = run_harness(&[
        "report",
        "merge",
        path_str(&da),
        path_str(&db),
        "--out",
        path_str(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("merged 2 workers (shards 1..2 of 2)") && err.contains("+ 32.0 s"),
        "{err}"
    );
    assert!(
        err.contains("warning: the workers' measured windows do not overlap"),
        "{err}"
    );
    let merged = json::read(&out).unwrap();
    assert_eq!(merged.window.start, early.window_start);
    assert_eq!(merged.window.duration_s, 32.0);
    assert_eq!(merged.merged.unwrap().warnings.len(), 1);
}
