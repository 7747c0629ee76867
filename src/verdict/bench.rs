//! The judge of a db-bench: a bench report's own data (per scale and operation: samples,
//! budgets, claims, error rates; the lock sampler's and the growth rule's flags) judged into
//! typed [`BenchFailure`]s and [`BenchFinding`]s, as [`super::judge`] does for a run.
//!
//! Every output (terminal, `report.json`, `report.html`) renders the same typed values; their
//! `Display` is the line printed.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::dbbench::growth::{self, Growth};
use crate::dbbench::locks::{self, LockWait};
use crate::dbbench::report::{ms, BenchReport};

/// Why a bench fails.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BenchFailure {
    /// An operation never succeeded at a scale: an incomplete report proves nothing.
    NoSample { operation: String, devices: u64 },
    /// An operation's p95 is above its budget.
    Budget {
        operation: String,
        devices: u64,
        p95_us: u64,
        budget_p95_us: u64,
    },
    /// One-time prekeys handed out to more than one fetcher.
    ClaimedTwice {
        operation: String,
        devices: u64,
        keys: u64,
    },
    /// An operation failed more often than the workload's `max_error_rate` allows.
    ErrorRate {
        operation: String,
        devices: u64,
        error_rate: f64,
        errors: BTreeMap<String, u64>,
        max_error_rate: f64,
    },
    /// SIGINT/SIGTERM stopped the bench: partial results.
    Interrupted { measured: usize, scales: usize },
}

/// What a rule of docs/conformance.md 6.3 found; each fails the bench like a failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BenchFinding {
    /// `dbbench.lock_wait`: an operation waited for another on a lock serializing them.
    LockWait {
        devices: u64,
        #[serde(flatten)]
        wait: LockWait,
    },
    /// `dbbench.growth`: an operation's cost grows well above logarithmically.
    Growth {
        #[serde(flatten)]
        growth: Growth,
    },
}

/// Pass or failed: derived by [`judge`] from the failures and findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchOutcome {
    #[default]
    Pass,
    Failed,
}

impl fmt::Display for BenchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchFailure::NoSample { operation, devices } => {
                write!(f, "{operation} at {devices} devices: no successful sample")
            }
            BenchFailure::Budget {
                operation,
                devices,
                p95_us,
                budget_p95_us,
            } => write!(
                f,
                "{operation} at {devices} devices: p95 {} > budget {}",
                ms(*p95_us),
                ms(*budget_p95_us)
            ),
            BenchFailure::ClaimedTwice {
                operation,
                devices,
                keys,
            } => write!(
                f,
                "{operation} at {devices} devices: integrity: {keys} one-time prekeys were handed out to more than one fetcher"
            ),
            BenchFailure::ErrorRate {
                operation,
                devices,
                error_rate,
                errors,
                max_error_rate,
            } => {
                let kinds: Vec<String> = errors.iter().map(|(k, v)| format!("{k}×{v}")).collect();
                write!(
                    f,
                    "{operation} at {devices} devices: {:.2}% of operations failed ({}), limit {:.2}%",
                    error_rate * 100.0,
                    kinds.join(", "),
                    max_error_rate * 100.0
                )
            }
            BenchFailure::Interrupted { measured, scales } => write!(
                f,
                "interrupted by a signal: partial results ({measured} of {scales} scales measured)"
            ),
        }
    }
}

impl fmt::Display for BenchFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchFinding::LockWait { devices, wait } => write!(
                f,
                "{}: at {devices} devices, {}",
                locks::RULE,
                wait.describe()
            ),
            BenchFinding::Growth { growth: g } => write!(f, "{}: {}", growth::RULE, g.describe()),
        }
    }
}

impl fmt::Display for BenchOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BenchOutcome::Pass => "pass",
            BenchOutcome::Failed => "failed",
        })
    }
}

/// Judges a bench report: sets `failures`, `findings` and `outcome`. `scales` is the number
/// of scales asked for (an interrupted bench measured fewer).
pub(crate) fn judge(report: &mut BenchReport, max_error_rate: f64, scales: usize) {
    let mut failures = failures(report, max_error_rate);
    if report.interrupted {
        failures.push(BenchFailure::Interrupted {
            measured: report.scales.len(),
            scales,
        });
    }
    report.findings = findings(report);
    report.outcome = if failures.is_empty() && report.findings.is_empty() {
        BenchOutcome::Pass
    } else {
        BenchOutcome::Failed
    };
    report.failures = failures;
}

/// Budget breaches, error rates above the workload's limit, keys claimed twice, and
/// operations that were never sampled at some scale.
fn failures(report: &BenchReport, max_error_rate: f64) -> Vec<BenchFailure> {
    let mut out = Vec::new();
    for s in &report.scales {
        for o in &s.operations {
            let (operation, devices) = (o.name.clone(), s.devices);
            if o.count == 0 {
                out.push(BenchFailure::NoSample {
                    operation: operation.clone(),
                    devices,
                });
            }
            if let (Some(b), Some(false)) = (o.budget_p95_us, o.within_budget) {
                if o.count > 0 {
                    out.push(BenchFailure::Budget {
                        operation: operation.clone(),
                        devices,
                        p95_us: o.p95_us,
                        budget_p95_us: b,
                    });
                }
            }
            if let Some(keys) = o.keys_claimed_twice.filter(|n| *n > 0) {
                out.push(BenchFailure::ClaimedTwice {
                    operation: operation.clone(),
                    devices,
                    keys,
                });
            }
            if o.error_rate > max_error_rate {
                out.push(BenchFailure::ErrorRate {
                    operation,
                    devices,
                    error_rate: o.error_rate,
                    errors: o.errors.clone(),
                    max_error_rate,
                });
            }
        }
    }
    out
}

/// The findings of the lock sampler and the growth rule (docs/conformance.md 6.3).
fn findings(report: &BenchReport) -> Vec<BenchFinding> {
    let waits = report.scales.iter().flat_map(|s| {
        s.locks
            .waits
            .iter()
            .filter(|w| w.finding)
            .map(|w| BenchFinding::LockWait {
                devices: s.devices,
                wait: w.clone(),
            })
    });
    let growth = report
        .growth
        .iter()
        .filter(|g| g.flagged)
        .map(|g| BenchFinding::Growth { growth: g.clone() });
    waits.chain(growth).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_render_the_lines_printed_and_serialise_tagged() {
        let f = BenchFailure::ErrorRate {
            operation: "bundle_fetch".into(),
            devices: 1000,
            error_rate: 0.5,
            errors: [("timeout".to_string(), 3)].into_iter().collect(),
            max_error_rate: 0.01,
        };
        assert_eq!(
            f.to_string(),
            "bundle_fetch at 1000 devices: 50.00% of operations failed (timeout×3), limit 1.00%"
        );
        let f = BenchFailure::Budget {
            operation: "x".into(),
            devices: 10,
            p95_us: 2500,
            budget_p95_us: 1000,
        };
        assert_eq!(
            f.to_string(),
            "x at 10 devices: p95 2.50 ms > budget 1.00 ms"
        );
        let json = serde_json::to_value(BenchFailure::Interrupted {
            measured: 1,
            scales: 2,
        })
        .unwrap();
        assert_eq!(json["kind"], "interrupted");
        assert_eq!(
            serde_json::to_value(BenchOutcome::Failed).unwrap(),
            "failed"
        );
    }
}
