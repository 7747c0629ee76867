//! Budget and integrity verdicts computed from a report's own data.
//!
//! `report merge` must re-judge budgets on the merged histograms (a worker's verdict says
//! nothing about the whole), and JUnit/Markdown must tell budget and integrity failures apart
//! from other reasons a run failed. Both need one shared idea of what a verdict line looks
//! like, which lives here: budget failure lines start with `budget `, integrity failure lines
//! with `integrity `; any other line in `Report::failures` is a run-level failure (cut short,
//! generator overloaded, …) that is carried over as is.

use crate::report::model::{BudgetVerdict, Integrity, Report};
use crate::report::summary::format_us;

/// Prefix of every budget failure line in `Report::failures`.
pub const BUDGET_PREFIX: &str = "budget ";
/// Prefix of every integrity failure line in `Report::failures`.
pub const INTEGRITY_PREFIX: &str = "integrity ";

/// Parses a budget percentile as written in budgets (`p50`, `p95`, `p99.9`, `max`) into a
/// percentage in `0.0..=100.0`.
pub fn parse_percentile(s: &str) -> Option<f64> {
    if s == "max" {
        return Some(100.0);
    }
    let p: f64 = s.strip_prefix('p')?.parse().ok()?;
    (p.is_finite() && (0.0..=100.0).contains(&p)).then_some(p)
}

/// Re-evaluates one budget against the report's operations: the observed value comes from the
/// operation's full histogram. A budget on an operation without samples fails.
pub fn evaluate_budget(report: &Report, budget: &BudgetVerdict) -> BudgetVerdict {
    let observed_us = parse_percentile(&budget.percentile).and_then(|p| {
        report
            .operations
            .get(&budget.operation)
            .and_then(|op| op.percentile_us(p))
    });
    BudgetVerdict {
        observed_us,
        passed: observed_us.is_some_and(|v| v <= budget.limit_us),
        ..budget.clone()
    }
}

/// The `failures` line of a failed budget.
pub fn budget_failure_line(b: &BudgetVerdict) -> String {
    match b.observed_us {
        Some(v) => format!(
            "{BUDGET_PREFIX}{}.{} <= {}: observed {} ({}us > {}us)",
            b.operation,
            b.percentile,
            format_us(b.limit_us),
            format_us(v),
            v,
            b.limit_us
        ),
        None => format!(
            "{BUDGET_PREFIX}{}.{} <= {}: no samples",
            b.operation,
            b.percentile,
            format_us(b.limit_us)
        ),
    }
}

/// The `failures` lines of the non-zero integrity failure counts.
pub fn integrity_failure_lines(i: &Integrity) -> Vec<String> {
    i.failure_counts()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{INTEGRITY_PREFIX}{name} = {n} (must be 0)"))
        .collect()
}

/// Whether a `failures` line is a budget or integrity verdict (recomputable from the data).
/// Accepts `integrity: ` as well as `integrity `, as the load engine writes either.
pub fn is_verdict_line(line: &str) -> bool {
    line.starts_with(BUDGET_PREFIX)
        || line.starts_with(INTEGRITY_PREFIX)
        || line.starts_with("integrity:")
}

/// Failure lines of a report that are neither budget nor integrity verdicts.
pub fn run_failures(report: &Report) -> Vec<String> {
    report
        .failures
        .iter()
        .filter(|f| !is_verdict_line(f))
        .cloned()
        .collect()
}

/// Re-judges every budget on the report's data and rebuilds `failures` and `passed`.
/// Run-level failure lines (see [`run_failures`]) are kept.
pub fn reevaluate(report: &mut Report) {
    let budgets: Vec<BudgetVerdict> = report
        .budgets
        .iter()
        .map(|b| evaluate_budget(report, b))
        .collect();
    let mut failures: Vec<String> = budgets
        .iter()
        .filter(|b| !b.passed)
        .map(budget_failure_line)
        .collect();
    failures.extend(integrity_failure_lines(&report.integrity));
    failures.extend(run_failures(report));
    report.budgets = budgets;
    report.passed = failures.is_empty();
    report.failures = failures;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_parse_as_written_in_budgets() {
        assert_eq!(parse_percentile("p95"), Some(95.0));
        assert_eq!(parse_percentile("p99.9"), Some(99.9));
        assert_eq!(parse_percentile("max"), Some(100.0));
        assert_eq!(parse_percentile("95"), None);
        assert_eq!(parse_percentile("p101"), None);
        assert_eq!(parse_percentile("pNaN"), None);
    }

    #[test]
    fn verdict_lines_are_told_from_run_failures() {
        assert!(is_verdict_line(
            "budget bundle_fetch.p95 <= 10000us: observed 12000us"
        ));
        assert!(is_verdict_line("integrity: messages_lost = 1"));
        assert!(is_verdict_line("integrity messages_lost = 1 (must be 0)"));
        assert!(!is_verdict_line("no flow started in the measured window"));
        assert!(!is_verdict_line(
            "bundle_fetch: 9 errors in 10 attempts is above max_error_rate 0.01"
        ));
    }

    #[test]
    fn integrity_lines_name_each_failure_count() {
        let i = Integrity {
            messages_lost: 2,
            prekeys_reused: 1,
            ..Default::default()
        };
        let lines = integrity_failure_lines(&i);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("integrity messages_lost = 2"));
        assert!(lines[1].starts_with("integrity prekeys_reused = 1"));
    }
}
