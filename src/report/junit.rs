//! `junit.xml`: the run's verdicts as JUnit test cases, so a CI system lists every budget and
//! integrity check by name: one suite of budgets (a failure shows observed against limit), one
//! of integrity checks (each failure count must be 0), and a `run` suite for failures that are
//! neither (a run cut short, …).

use std::fmt::Write as _;

use quick_xml::escape::escape;

use crate::report::model::RunReport;
use crate::report::summary::format_us;
use crate::verdict::Failure;

/// File name of the JUnit report inside a report directory.
pub(crate) const JUNIT_FILE: &str = "junit.xml";

struct Case {
    name: String,
    /// `(message, details)` when the case failed.
    failure: Option<(String, String)>,
}

/// Renders the JUnit XML of a report: one suite each for budgets, integrity and the run.
pub(crate) fn render(report: &RunReport) -> String {
    let suites = [
        ("budgets", budget_cases(report)),
        ("integrity", integrity_cases(report)),
        ("run", run_cases(report)),
    ];
    xml(report, &suites)
}

/// One case per budget.
fn budget_cases(report: &RunReport) -> Vec<Case> {
    report
        .budgets
        .iter()
        .map(|b| {
            let name = format!(
                "{}.{} <= {}",
                b.operation,
                b.percentile,
                format_us(b.limit_us)
            );
            let failure = (!b.passed).then(|| match b.observed_us {
                Some(v) => (
                    format!(
                        "{}.{}: observed {} ({v}us) > limit {} ({}us)",
                        b.operation,
                        b.percentile,
                        format_us(v),
                        format_us(b.limit_us),
                        b.limit_us
                    ),
                    format!(
                        "observed_us={v} limit_us={} source={}",
                        b.limit_us, b.source
                    ),
                ),
                None => (
                    format!(
                        "{}.{}: no samples (limit {})",
                        b.operation,
                        b.percentile,
                        format_us(b.limit_us)
                    ),
                    format!(
                        "observed_us=none limit_us={} source={}",
                        b.limit_us, b.source
                    ),
                ),
            });
            Case { name, failure }
        })
        .collect()
}

/// One case per integrity count.
fn integrity_cases(report: &RunReport) -> Vec<Case> {
    let i = &report.integrity;
    i.failure_counts()
        .iter()
        .map(|(name, n)| Case {
            name: format!("{name} == 0"),
            failure: (*n > 0).then(|| {
                (
                    format!("{name}: observed {n} > limit 0"),
                    format!(
                        "{name}={n}; messages_sent={} messages_delivered={} messages_decrypted={}",
                        i.messages_sent, i.messages_delivered, i.messages_decrypted
                    ),
                )
            }),
        })
        .collect()
}

/// One case: the run completed (no error-rate or run-level failure).
fn run_cases(report: &RunReport) -> Vec<Case> {
    // Error rates and run-level failures: neither a budget nor an integrity count.
    let run_failures: Vec<String> = report
        .failures
        .iter()
        .filter(|f| matches!(f, Failure::ErrorRate { .. } | Failure::Run { .. }))
        .map(ToString::to_string)
        .collect();
    vec![Case {
        name: "run completed".into(),
        failure: (!run_failures.is_empty())
            .then(|| (run_failures.join("; "), run_failures.join("\n"))),
    }]
}

/// The suites as JUnit XML.
fn xml(report: &RunReport, suites: &[(&str, Vec<Case>)]) -> String {
    let tests: usize = suites.iter().map(|(_, c)| c.len()).sum();
    let failures: usize = suites
        .iter()
        .map(|(_, c)| c.iter().filter(|c| c.failure.is_some()).count())
        .sum();
    let time = report.window.duration_s;
    let timestamp = report.started_at.format("%Y-%m-%dT%H:%M:%S");
    let scenario = escape(report.scenario.name.as_str());

    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<testsuites name="e2ee-harness {scenario}" tests="{tests}" failures="{failures}" errors="0" time="{time:.3}">"#
    );
    for (suite, cases) in suites {
        let suite_failures = cases.iter().filter(|c| c.failure.is_some()).count();
        let _ = writeln!(
            out,
            r#"  <testsuite name="{suite}" tests="{}" failures="{suite_failures}" errors="0" skipped="0" time="{time:.3}" timestamp="{timestamp}">"#,
            cases.len()
        );
        for case in cases {
            let name = escape(case.name.as_str());
            match &case.failure {
                None => {
                    let _ = writeln!(
                        out,
                        r#"    <testcase classname="e2ee-harness.{scenario}.{suite}" name="{name}" time="0"/>"#
                    );
                }
                Some((message, details)) => {
                    let _ = writeln!(
                        out,
                        r#"    <testcase classname="e2ee-harness.{scenario}.{suite}" name="{name}" time="0">"#
                    );
                    let _ = writeln!(
                        out,
                        r#"      <failure message="{}" type="{suite}">{}</failure>"#,
                        escape(message.as_str()),
                        escape(details.as_str())
                    );
                    let _ = writeln!(out, "    </testcase>");
                }
            }
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    let _ = writeln!(out, "</testsuites>");
    out
}
