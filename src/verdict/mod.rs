//! The one judge of a run: a report's own data (histograms, integrity counts, error counts,
//! the generator's health, faults) judged into typed [`Failure`]s.
//!
//! `load` measures and never judges; `report merge` judges the merged data again with the
//! same function, so a verdict can always be recomputed from the report alone. Every output
//! (terminal, JSON, Markdown, JUnit, HTML) renders the same typed failures; none is encoded as
//! a string and parsed back. A db-bench is judged the same way in [`bench`].

pub mod bench;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::report::model::{BudgetVerdict, GeneratorHealth, Resilience, RunReport};
use crate::report::summary::format_us;

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// A latency budget did not hold (`observed_us: None`: no samples).
    Budget {
        operation: String,
        percentile: String,
        limit_us: u64,
        observed_us: Option<u64>,
    },
    /// An integrity count (lost, duplicated, undecryptable, …) is not zero.
    Integrity { counter: String, count: u64 },
    /// An operation failed more often than `max_error_rate` allows.
    ErrorRate {
        operation: String,
        errors: u64,
        attempts: u64,
        max_error_rate: f64,
    },
    /// The run did not do what it set out to (cut short, schedule not held, …); `worker`
    /// names the shard's report in a merged run.
    Run {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<String>,
        #[serde(flatten)]
        reason: RunFailure,
    },
}

/// A run-level reason for failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RunFailure {
    NoFlowStarted,
    /// Flows still unfinished at the end of the drain, cancelled.
    FlowsCancelled {
        flows: u64,
        by_flow: BTreeMap<String, u64>,
    },
    /// Devices that could not reconnect to receive their backlog in the drain.
    DrainReconnects {
        devices: u64,
    },
    /// Push channels whose close the server never answered.
    CloseTimeouts {
        sockets: u64,
        timeout_ms: u64,
    },
    /// More flows started late than the scenario allows (open model).
    ScheduleNotHeld {
        late: u64,
        started: u64,
        threshold_us: u64,
        max_share: f64,
    },
    /// A scheduled fault could not be injected.
    FaultNotInjected {
        fault: String,
        at_s: f64,
        line: usize,
        error: String,
    },
    FaultNeverStarted {
        fault: String,
        at_s: f64,
        line: usize,
    },
    /// After the fault, no message was stored and delivered again.
    NoRecovery {
        fault: String,
        at_s: f64,
        line: usize,
    },
    /// SIGINT/SIGTERM stopped the run: partial results.
    Interrupted {
        measured_s: f64,
        window_s: f64,
    },
    /// Closed model: users still busy at the end of the drain.
    ClosedUsersUnfinished,
    /// A sharded test merged without all its shards: only part of the scenario ran.
    ShardsMissing {
        /// Reports merged.
        merged: u32,
        /// Shards of the test.
        shards: u32,
        /// Indexes (from 1) of the shards not merged.
        missing: Vec<u32>,
    },
    /// A failure line of a report written before failures were typed (schema 1).
    Recorded {
        line: String,
    },
}

impl Failure {
    fn run(reason: RunFailure) -> Failure {
        Failure::Run {
            worker: None,
            reason,
        }
    }

    #[cfg(test)]
    /// Whether this failure can be recomputed from merged data (budgets, integrity, error
    /// rates), as opposed to a fact about one worker's run.
    pub(crate) fn is_run(&self) -> bool {
        matches!(self, Failure::Run { .. })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Budget {
                operation,
                percentile,
                limit_us,
                observed_us: Some(v),
            } => write!(
                f,
                "budget {operation}.{percentile} <= {}: observed {} ({v}us > {limit_us}us)",
                format_us(*limit_us),
                format_us(*v)
            ),
            Failure::Budget {
                operation,
                percentile,
                limit_us,
                observed_us: None,
            } => write!(
                f,
                "budget {operation}.{percentile} <= {}: no samples",
                format_us(*limit_us)
            ),
            Failure::Integrity { counter, count } => {
                write!(f, "integrity {counter} = {count} (must be 0)")
            }
            Failure::ErrorRate {
                operation,
                errors,
                attempts,
                max_error_rate,
            } => write!(
                f,
                "{operation}: {errors} errors in {attempts} attempts is above max_error_rate {max_error_rate}"
            ),
            Failure::Run {
                worker: Some(w),
                reason,
            } => write!(f, "{w}: {reason}"),
            Failure::Run {
                worker: None,
                reason,
            } => write!(f, "{reason}"),
        }
    }
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunFailure::NoFlowStarted => f.write_str("no flow started in the measured window"),
            RunFailure::FlowsCancelled { flows, by_flow } => {
                let by: Vec<String> = by_flow.iter().map(|(n, c)| format!("{n} {c}")).collect();
                write!(
                    f,
                    "cut short: {flows} flows cancelled unfinished at the end of the drain ({})",
                    by.join(", ")
                )
            }
            RunFailure::DrainReconnects { devices } => write!(
                f,
                "cut short: {devices} devices could not reconnect for the drain"
            ),
            RunFailure::CloseTimeouts {
                sockets,
                timeout_ms,
            } => write!(
                f,
                "cut short: {sockets} WebSockets got no close reply within {timeout_ms} ms"
            ),
            RunFailure::ScheduleNotHeld {
                late,
                started,
                threshold_us,
                max_share,
            } => write!(
                f,
                "schedule not held: {late} of {started} flows started more than {threshold_us}us late ({:.1}% > max_late_starts {:.1}%)",
                *late as f64 / (*started).max(1) as f64 * 100.0,
                max_share * 100.0
            ),
            RunFailure::FaultNotInjected {
                fault,
                at_s,
                line,
                error,
            } => write!(
                f,
                "fault {fault} at {at_s}s (line {line}) could not be injected: {error}"
            ),
            RunFailure::FaultNeverStarted { fault, at_s, line } => {
                write!(f, "fault {fault} at {at_s}s (line {line}) never started")
            }
            RunFailure::NoRecovery { fault, at_s, line } => write!(
                f,
                "fault {fault} at {at_s}s (line {line}): no recovery (no message stored and delivered after it)"
            ),
            RunFailure::Interrupted {
                measured_s,
                window_s,
            } => write!(
                f,
                "interrupted by a signal after {measured_s:.1} s of the {window_s:.1} s measured window: partial results"
            ),
            RunFailure::ClosedUsersUnfinished => f.write_str(
                "cut short: the closed-model users had not finished at the end of the drain",
            ),
            RunFailure::ShardsMissing {
                merged,
                shards,
                missing,
            } => {
                let list: Vec<String> = missing.iter().map(|i| format!("{i}/{shards}")).collect();
                write!(
                    f,
                    "incomplete: {merged} of {shards} shards merged, shard {} missing: the scenario ran only in part",
                    list.join(", ")
                )
            }
            RunFailure::Recorded { line } => f.write_str(line),
        }
    }
}

/// Reads `failures` as written by any schema: typed objects, or the lines of schema 1.
pub(crate) fn deserialize_failures<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<Failure>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Typed(Failure),
        Line(String),
    }
    let written = Vec::<Written>::deserialize(d)?;
    Ok(written
        .into_iter()
        .map(|w| match w {
            Written::Typed(f) => f,
            Written::Line(line) => Failure::run(RunFailure::Recorded { line }),
        })
        .collect())
}

/// Parses a budget percentile as written in budgets (`p50`, `p95`, `p99.9`, `max`) into a
/// percentage in `0.0..=100.0`.
pub(crate) fn parse_percentile(s: &str) -> Option<f64> {
    if s == "max" {
        return Some(100.0);
    }
    let p: f64 = s.strip_prefix('p')?.parse().ok()?;
    (p.is_finite() && (0.0..=100.0).contains(&p)).then_some(p)
}

/// Evaluates one budget against the report's operations: the observed value comes from the
/// operation's full histogram. A budget on an operation without samples fails.
pub(crate) fn evaluate_budget(report: &RunReport, budget: &BudgetVerdict) -> BudgetVerdict {
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

/// Judges a report: budgets, integrity and error rates on its data, then the run-level
/// failures its generator, faults and interruption show. Sets `budgets`' verdicts,
/// `failures` and `passed`.
pub fn judge(report: &mut RunReport) {
    let run = run_failures(report);
    judge_with(report, run);
}

/// Judges merged data: budgets, integrity and error rates on the sums, with each worker's
/// own run-level failures (a fact of its run, not of the sums) carried over, labelled.
pub(crate) fn judge_merged(report: &mut RunReport, workers: &[(String, &RunReport)]) {
    let run = workers
        .iter()
        .flat_map(|(label, r)| {
            r.failures.iter().filter_map(move |f| match f {
                Failure::Run { reason, .. } if carried(reason) => Some(Failure::Run {
                    worker: Some(label.clone()),
                    reason: reason.clone(),
                }),
                _ => None,
            })
        })
        .collect();
    judge_with(report, run);
}

fn judge_with(report: &mut RunReport, run: Vec<Failure>) {
    report.budgets = report
        .budgets
        .iter()
        .map(|b| evaluate_budget(report, b))
        .collect();
    let mut failures = budget_failures(&report.budgets);
    failures.extend(integrity_failures(report));
    failures.extend(error_rate_failures(report));
    failures.extend(run);
    report.passed = failures.is_empty();
    report.failures = failures;
}

fn budget_failures(budgets: &[BudgetVerdict]) -> Vec<Failure> {
    budgets
        .iter()
        .filter(|b| !b.passed)
        .map(|b| Failure::Budget {
            operation: b.operation.clone(),
            percentile: b.percentile.clone(),
            limit_us: b.limit_us,
            observed_us: b.observed_us,
        })
        .collect()
}

fn integrity_failures(report: &RunReport) -> Vec<Failure> {
    report
        .integrity
        .failure_counts()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(counter, count)| Failure::Integrity {
            counter: counter.to_string(),
            count: *count,
        })
        .collect()
}

/// Operations whose share of failed attempts is above the scenario's `max_error_rate`
/// (a report without one, written before it was recorded, is not judged on it).
fn error_rate_failures(report: &RunReport) -> Vec<Failure> {
    let Some(max) = report.scenario.max_error_rate else {
        return Vec::new();
    };
    report
        .operations
        .iter()
        .filter_map(|(name, op)| {
            let attempts = op.count + op.errors;
            (attempts > 0 && op.errors as f64 / attempts as f64 > max).then(|| Failure::ErrorRate {
                operation: name.clone(),
                errors: op.errors,
                attempts,
                max_error_rate: max,
            })
        })
        .collect()
}

/// Run-level failures: no work, work that never finished, a schedule not held, faults that
/// proved nothing, an interrupted run.
fn run_failures(report: &RunReport) -> Vec<Failure> {
    let g = &report.generator;
    let mut out = Vec::new();
    if g.flows_started == 0 {
        out.push(RunFailure::NoFlowStarted);
    }
    out.extend(cut_short(g));
    out.extend(fault_failures(&report.resilience));
    if report.interrupted {
        out.push(RunFailure::Interrupted {
            measured_s: report.window.duration_s,
            window_s: report.scenario.duration_s - report.scenario.warmup_s,
        });
    }
    if g.closed_users_unfinished {
        out.push(RunFailure::ClosedUsersUnfinished);
    }
    // Reports of schema 1 carry their run-level lines only as text.
    out.extend(report.failures.iter().filter_map(|f| match f {
        Failure::Run {
            reason: r @ RunFailure::Recorded { .. },
            ..
        } if carried(r) => Some(r.clone()),
        _ => None,
    }));
    out.into_iter().map(Failure::run).collect()
}

/// Whether a worker's run-level failure is carried into a new verdict: every typed one; of
/// the lines of schema 1, those that are not budget or integrity verdicts, which are judged
/// again from the data.
fn carried(reason: &RunFailure) -> bool {
    match reason {
        RunFailure::Recorded { line } => {
            !(line.starts_with("budget ") || line.starts_with("integrity"))
        }
        _ => true,
    }
}

fn cut_short(g: &GeneratorHealth) -> Vec<RunFailure> {
    let mut out = Vec::new();
    if g.flows_cancelled > 0 {
        out.push(RunFailure::FlowsCancelled {
            flows: g.flows_cancelled,
            by_flow: g.flows_cancelled_by_flow.clone(),
        });
    }
    if g.drain_reconnect_failures > 0 {
        out.push(RunFailure::DrainReconnects {
            devices: g.drain_reconnect_failures,
        });
    }
    if g.ws_close_timeouts > 0 {
        out.push(RunFailure::CloseTimeouts {
            sockets: g.ws_close_timeouts,
            timeout_ms: crate::client::receive::CLOSE_TIMEOUT.as_millis() as u64,
        });
    }
    if let Some(limit) = g.max_late_start_share {
        let share = g.late_starts as f64 / g.flows_started.max(1) as f64;
        if share > limit {
            out.push(RunFailure::ScheduleNotHeld {
                late: g.late_starts,
                started: g.flows_started,
                threshold_us: g.late_start_threshold_us,
                max_share: limit,
            });
        }
    }
    out
}

/// A fault that was not injected, or after which the clients never stored and delivered a
/// message again, fails the run: the run did not prove what it set out to.
fn fault_failures(r: &Resilience) -> Vec<RunFailure> {
    r.faults
        .iter()
        .filter_map(|f| {
            let (fault, at_s, line) = (f.kind.clone(), f.at_s, f.line);
            if let Some(error) = &f.error {
                Some(RunFailure::FaultNotInjected {
                    fault,
                    at_s,
                    line,
                    error: error.clone(),
                })
            } else if f.started_s.is_none() {
                Some(RunFailure::FaultNeverStarted { fault, at_s, line })
            } else if f.recovery_s.is_none() {
                Some(RunFailure::NoRecovery { fault, at_s, line })
            } else {
                None
            }
        })
        .collect()
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
    fn failures_round_trip_through_json_and_old_lines_are_read() {
        let typed = vec![
            Failure::Budget {
                operation: "bundle_fetch".into(),
                percentile: "p95".into(),
                limit_us: 10_000,
                observed_us: Some(12_000),
            },
            Failure::Run {
                worker: Some("b".into()),
                reason: RunFailure::FlowsCancelled {
                    flows: 3,
                    by_flow: [("initiate".to_string(), 3)].into_iter().collect(),
                },
            },
            Failure::run(RunFailure::NoFlowStarted),
        ];
        let json = serde_json::to_string(&typed).unwrap();
        let mut d = serde_json::Deserializer::from_str(&json);
        assert_eq!(deserialize_failures(&mut d).unwrap(), typed);
        let old = r#"["budget x.p95 <= 1ms: observed 2ms", "no flow started"]"#;
        let mut d = serde_json::Deserializer::from_str(old);
        let read = deserialize_failures(&mut d).unwrap();
        assert_eq!(read.len(), 2);
        assert!(read.iter().all(Failure::is_run));
        assert_eq!(read[1].to_string(), "no flow started");
    }

    #[test]
    fn each_failure_renders_one_line_naming_what_failed() {
        let f = Failure::Integrity {
            counter: "messages_lost".into(),
            count: 2,
        };
        assert_eq!(f.to_string(), "integrity messages_lost = 2 (must be 0)");
        let f = Failure::Run {
            worker: Some("w1".into()),
            reason: RunFailure::DrainReconnects { devices: 4 },
        };
        assert_eq!(
            f.to_string(),
            "w1: cut short: 4 devices could not reconnect for the drain"
        );
    }
}
