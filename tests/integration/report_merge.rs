//! `report merge`: merging the reports of two halves of a run gives exactly the report of the
//! whole (histograms added, never percentiles averaged), budgets are re-judged on the merged
//! data, and reports of different tests are refused.

use crate::common;

use common::{build_report, path_str, record_run, run_harness, stderr, RunSpec, Sample};
use e2ee_harness::report::model::{decode_histogram, Integrity, OperationStats, RunReport};
use e2ee_harness::report::{json, merge::merge, write_report_dir};
use e2ee_harness::verdict::{Failure, RunFailure};

fn halves(samples: &[Sample]) -> (Vec<&Sample>, Vec<&Sample>) {
    samples.iter().partition(|s| s.worker == 0)
}

fn integrity(sent: u64) -> Integrity {
    Integrity {
        messages_sent: sent,
        messages_delivered: sent,
        messages_decrypted: sent,
        ..Default::default()
    }
}

/// Same samples at every value, same figures.
fn assert_same_histogram(merged: &str, whole: &str, what: &str) {
    let (m, w) = (
        decode_histogram(merged).unwrap(),
        decode_histogram(whole).unwrap(),
    );
    assert_eq!(m.len(), w.len(), "{what}: count");
    let mv: Vec<(u64, u64)> = m
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    let wv: Vec<(u64, u64)> = w
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    assert_eq!(mv, wv, "{what}: counts per value");
    for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0] {
        assert_eq!(
            m.value_at_quantile(q),
            w.value_at_quantile(q),
            "{what}: q{q}"
        );
    }
    assert_eq!((m.min(), m.max()), (w.min(), w.max()), "{what}: min/max");
}

fn assert_same_operation(m: &OperationStats, w: &OperationStats, name: &str) {
    assert_same_histogram(&m.histogram, &w.histogram, name);
    let figures = |o: &OperationStats| {
        (
            o.count,
            o.errors,
            o.p50_us,
            o.p90_us,
            o.p95_us,
            o.p99_us,
            o.p999_us,
            o.max_us,
            o.mean_us,
            o.rate_per_s,
        )
    };
    assert_eq!(figures(m), figures(w), "{name}: figures");
    assert_eq!(m.intervals.len(), w.intervals.len(), "{name}: intervals");
    for (mi, wi) in m.intervals.iter().zip(&w.intervals) {
        let what = format!("{name} interval at {} ms", wi.offset_ms);
        assert_same_histogram(&mi.histogram, &wi.histogram, &what);
        assert_eq!(
            (
                mi.offset_ms,
                mi.count,
                mi.errors,
                mi.p50_us,
                mi.p95_us,
                mi.p99_us,
                mi.max_us
            ),
            (
                wi.offset_ms,
                wi.count,
                wi.errors,
                wi.p50_us,
                wi.p95_us,
                wi.p99_us,
                wi.max_us
            ),
            "{what}"
        );
    }
}

fn assert_merged_equals_whole(merged: &RunReport, whole: &RunReport) {
    assert_eq!(
        merged.operations.keys().collect::<Vec<_>>(),
        whole.operations.keys().collect::<Vec<_>>()
    );
    for (name, w) in &whole.operations {
        assert_same_operation(&merged.operations[name], w, name);
    }
    assert_eq!(merged.integrity, whole.integrity);
    assert_eq!(merged.window, whole.window);
    assert_eq!(merged.budgets, whole.budgets);
    assert_eq!(merged.passed, whole.passed);
    assert_eq!(merged.failures, whole.failures);
}

#[test]
fn merging_two_halves_gives_exactly_the_whole() {
    let samples = record_run(5, 30, 21);
    let (a, b) = halves(&samples);
    let mut spec = RunSpec::new("merge", 5);
    // A budget at the whole run's p95 exactly: the halves' own p95s differ from it.
    let probe = build_report(&samples, &spec);
    spec.budgets = vec![(
        "message_insert".into(),
        "p95".into(),
        probe.operations["message_insert"].p95_us,
    )];
    spec.integrity = integrity(70);
    let whole = build_report(&samples, &spec);
    spec.integrity = integrity(30);
    let half_a = build_report(a, &spec);
    spec.integrity = integrity(40);
    spec.hostname = "worker-b".into();
    let half_b = build_report(b, &spec);
    assert!(half_a.operations["bundle_fetch"].count < whole.operations["bundle_fetch"].count);

    let merged = merge(&[half_a, half_b], &["a".into(), "b".into()]).unwrap();
    assert_merged_equals_whole(&merged, &whole);
    assert!(merged.passed, "{:?}", merged.failures);
    assert_eq!(
        merged.environment.hostname.as_deref(),
        Some("worker-a,worker-b")
    );
    assert_eq!(
        merged.generator.flows_started,
        whole.generator.flows_started
    );
}

#[test]
fn merge_command_writes_a_full_report_directory() {
    let samples = record_run(3, 20, 22);
    let (a, b) = halves(&samples);
    let spec = RunSpec::new("merge-cli", 3);
    let whole = build_report(&samples, &spec);
    let dir = tempfile::tempdir().unwrap();
    let (da, db, out) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("merged"),
    );
    write_report_dir(&da, &build_report(a, &spec)).unwrap();
    // A report.json file is accepted as well as a directory.
    let b_json = write_report_dir(&db, &build_report(b, &spec)).unwrap().json;
    let o = run_harness(&[
        "report",
        "merge",
        path_str(&da),
        path_str(&b_json),
        "--out",
        path_str(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in [
        "report.json",
        "report.html",
        "summary.md",
        "junit.xml",
        "latency.hlog",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    assert_merged_equals_whole(&json::read(&out).unwrap(), &whole);
}

#[test]
fn budgets_are_rejudged_on_the_merged_histograms() {
    let samples = record_run(3, 20, 23);
    // Worker B is the slow one: each of its samples is worker A's latency plus twice A's
    // maximum, so every B sample is slower than anything A saw.
    let fast: Vec<Sample> = samples
        .iter()
        .filter(|s| s.op == "bundle_fetch")
        .cloned()
        .collect();
    let a_max = fast.iter().filter_map(|s| s.latency_us).max().unwrap();
    let slow: Vec<Sample> = fast
        .iter()
        .map(|s| Sample {
            latency_us: s.latency_us.map(|v| v + 2 * a_max),
            worker: 1,
            ..s.clone()
        })
        .collect();
    let mut spec = RunSpec::new("rejudge", 3);
    spec.budgets = vec![("bundle_fetch".into(), "p95".into(), a_max)];
    let half_a = build_report(&fast, &spec);
    let half_b = build_report(&slow, &spec);
    let whole = build_report(fast.iter().chain(&slow), &spec);
    assert!(half_a.passed && !half_b.passed);

    let merged = merge(&[half_a, half_b], &["a".into(), "b".into()]).unwrap();
    let verdict = &merged.budgets[0];
    assert_eq!(
        verdict.observed_us,
        Some(whole.operations["bundle_fetch"].p95_us)
    );
    assert!(!verdict.passed && !merged.passed);
    assert_eq!(merged.failures, whole.failures);
    assert!(merged.failures[0]
        .to_string()
        .starts_with("budget bundle_fetch.p95"));
}

#[test]
fn run_failures_of_a_worker_fail_the_merged_run() {
    let samples = record_run(2, 10, 24);
    let (a, b) = halves(&samples);
    let spec = RunSpec::new("cut", 2);
    let half_a = build_report(a, &spec);
    let mut half_b = build_report(b, &spec);
    let cut = RunFailure::Interrupted {
        measured_s: 5.0,
        window_s: 10.0,
    };
    half_b.failures.push(Failure::Run {
        worker: None,
        reason: cut.clone(),
    });
    half_b.passed = false;
    let merged = merge(&[half_a, half_b], &["a".into(), "b".into()]).unwrap();
    assert!(!merged.passed);
    assert_eq!(
        merged.failures,
        vec![Failure::Run {
            worker: Some("b".into()),
            reason: cut
        }]
    );
    assert!(merged.failures[0]
        .to_string()
        .starts_with("b: interrupted by a signal"));
}

#[test]
fn reports_of_different_tests_are_refused_and_nothing_is_written() {
    let samples = record_run(2, 10, 25);
    let dir = tempfile::tempdir().unwrap();
    let (da, db, out) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("merged"),
    );
    write_report_dir(&da, &build_report(&samples, &RunSpec::new("one", 2))).unwrap();
    write_report_dir(&db, &build_report(&samples, &RunSpec::new("other", 2))).unwrap();
    let o = run_harness(&[
        "report",
        "merge",
        path_str(&da),
        path_str(&db),
        "--out",
        path_str(&out),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("scenario \"other\" differs from \"one\""));
    assert!(!out.exists());

    let missing = dir.path().join("nope");
    let o = run_harness(&[
        "report",
        "merge",
        path_str(&da),
        path_str(&missing),
        "--out",
        path_str(&out),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope: no such report.json file or report directory"));
    assert!(!out.exists());
}

/// Error rates are judged again on the merged counts, never carried over from a worker: a
/// worker above `max_error_rate` whose errors are diluted by the other passes merged, and
/// two workers each above it fail merged with the summed counts.
#[test]
fn merge_judges_error_rates_again_on_the_merged_counts() {
    let samples = record_run(2, 20, 26);
    // Worker 1 fails 3 of its bundle fetches; worker 0 none.
    let mut failed = 0;
    let samples: Vec<Sample> = samples
        .into_iter()
        .map(|mut s| {
            if s.op == "bundle_fetch" && s.worker == 1 && failed < 3 {
                s.latency_us = None;
                failed += 1;
            }
            s
        })
        .collect();
    let (a, b) = halves(&samples);
    let mut spec = RunSpec::new("errors", 2);
    let attempts_b = b.iter().filter(|s| s.op == "bundle_fetch").count() as f64;
    let attempts = samples.iter().filter(|s| s.op == "bundle_fetch").count() as f64;
    // Between the merged rate and worker b's rate.
    spec.max_error_rate = Some((3.0 / attempts + 3.0 / attempts_b) / 2.0);
    let half_a = build_report(a.iter().copied(), &spec);
    let half_b = build_report(b.iter().copied(), &spec);
    let whole = build_report(&samples, &spec);
    assert!(bundle_failures(&half_a).is_empty() && bundle_failures(&whole).is_empty());
    assert!(matches!(
        bundle_failures(&half_b).as_slice(),
        [Failure::ErrorRate { errors: 3, .. }]
    ));
    let merged = merge(&[half_a, half_b], &["a".into(), "b".into()]).unwrap();
    assert!(bundle_failures(&merged).is_empty(), "{:?}", merged.failures);
    assert_eq!(merged.failures, whole.failures);

    // Below the merged rate: the merged run fails on the merged counts, as the whole does.
    spec.max_error_rate = Some(3.0 / attempts / 2.0);
    let half_a = build_report(a.iter().copied(), &spec);
    let half_b = build_report(b.iter().copied(), &spec);
    let whole = build_report(&samples, &spec);
    let merged = merge(&[half_a, half_b], &["a".into(), "b".into()]).unwrap();
    assert!(!merged.passed);
    assert_eq!(merged.failures, whole.failures);
    assert!(matches!(
        bundle_failures(&merged).as_slice(),
        [Failure::ErrorRate { errors: 3, attempts: n, .. }] if *n as f64 == attempts
    ));
}

/// The error-rate failures of `bundle_fetch` (the fixture has errors elsewhere too).
fn bundle_failures(r: &RunReport) -> Vec<Failure> {
    r.failures
        .iter()
        .filter(
            |f| matches!(f, Failure::ErrorRate { operation, .. } if operation == "bundle_fetch"),
        )
        .cloned()
        .collect()
}
