//! The db-bench report: per scale and operation, percentiles from the merged histograms,
//! errors, late starts and the budget verdict; written as `report.json` and `report.html`, and
//! summarised on stdout.

use std::path::Path;

use serde::Serialize;

use super::runner::{OpStats, RunStats};
use super::seed::Loaded;
use super::workload::Workload;
use crate::report::outdir;
use crate::verdict::bench::{BenchFailure, BenchFinding, BenchOutcome};
use crate::Error;

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub(crate) pack: String,
    pub(crate) source: String,
    pub(crate) workload: String,
    pub(crate) postgres: String,
    pub(crate) durable: bool,
    pub(crate) rate_per_second: f64,
    pub(crate) connections: usize,
    pub(crate) warmup_seconds: f64,
    pub(crate) duration_seconds: f64,
    pub scales: Vec<ScaleReport>,
    /// How each operation's counted cost grows across the scales (docs/conformance.md 6.3).
    pub growth: Vec<super::growth::Growth>,
    /// Budget breaches, error-rate breaches, unsampled operations, an interruption
    /// (judged by [`crate::verdict::bench`]).
    pub failures: Vec<BenchFailure>,
    /// Lock waits that serialize the workload's operations and operations whose cost grows
    /// well above logarithmically; each fails the run like a failure.
    pub findings: Vec<BenchFinding>,
    pub outcome: BenchOutcome,
    /// Stopped by SIGINT/SIGTERM: the scales measured until then (the last one possibly
    /// short); never a pass, and the CLI exits 130.
    pub(crate) interrupted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    pub devices: u64,
    pub counts: std::collections::BTreeMap<String, u64>,
    pub load: Loaded,
    pub scheduled: u64,
    /// Seconds of the measured window that ran (less than the duration when interrupted).
    pub(crate) measured_seconds: f64,
    pub operations: Vec<OpReport>,
    /// Each operation executed alone under EXPLAIN ANALYZE before the run, counted.
    pub costs: Vec<super::explain::OpCost>,
    /// Lock waits between the workload's operations, sampled during the run.
    pub locks: super::locks::LockReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub name: String,
    /// Successful operations measured (warm-up excluded).
    pub count: u64,
    pub errors: std::collections::BTreeMap<String, u64>,
    pub(crate) error_rate: f64,
    pub(crate) late_starts: u64,
    pub(crate) max_start_lag_us: u64,
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub(crate) service_p95_us: u64,
    /// From actual start to completion (what the database alone took), p50.
    pub(crate) service_p50_us: u64,
    /// Delay between intended and actual start, p99: the generator's own start lag plus
    /// any queueing for a free connection.
    pub(crate) start_lag_p99_us: u64,
    pub budget_p95_us: Option<u64>,
    pub(crate) budget_source: Option<String>,
    /// `None` when the operation has no budget.
    pub within_budget: Option<bool>,
    /// For an operation declaring `claims`: keys handed out, and keys handed out more than once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) keys_claimed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) keys_claimed_twice: Option<u64>,
}

impl OpReport {
    pub(crate) fn from_stats(op: &super::workload::Operation, s: &OpStats) -> OpReport {
        let count = s.latency.len();
        let errors = s.error_count();
        let attempted = count + errors;
        let q = |p: f64| {
            if count == 0 {
                0
            } else {
                s.latency.value_at_quantile(p)
            }
        };
        let p95 = q(0.95);
        let budget = op.budget_p95.map(|d| d.as_micros() as u64);
        let (keys_claimed, keys_claimed_twice) = match op.claims {
            Some(_) => (
                Some(s.claims.keys.values().map(|v| v.len() as u64).sum()),
                Some(s.claims.repeats().count() as u64),
            ),
            None => (None, None),
        };
        OpReport {
            keys_claimed,
            keys_claimed_twice,
            name: op.name.clone(),
            count,
            errors: s.errors.clone(),
            error_rate: if attempted == 0 {
                0.0
            } else {
                errors as f64 / attempted as f64
            },
            late_starts: s.late,
            max_start_lag_us: s.max_start_lag_us,
            p50_us: q(0.50),
            p95_us: p95,
            p99_us: q(0.99),
            max_us: if count == 0 { 0 } else { s.latency.max() },
            service_p50_us: if count == 0 {
                0
            } else {
                s.service.value_at_quantile(0.5)
            },
            start_lag_p99_us: if s.start_lag.is_empty() {
                0
            } else {
                s.start_lag.value_at_quantile(0.99)
            },
            service_p95_us: if count == 0 {
                0
            } else {
                s.service.value_at_quantile(0.95)
            },
            budget_p95_us: budget,
            budget_source: op.source.clone(),
            within_budget: budget.map(|b| count > 0 && p95 <= b),
        }
    }
}

impl ScaleReport {
    pub(crate) fn new(
        workload: &Workload,
        devices: u64,
        counts: std::collections::BTreeMap<String, u64>,
        load: Loaded,
        run: &RunStats,
    ) -> ScaleReport {
        let operations = workload
            .operations
            .iter()
            .zip(run.ops.iter())
            .map(|(o, s)| OpReport::from_stats(o, s))
            .collect();
        ScaleReport {
            devices,
            counts,
            load,
            scheduled: run.scheduled,
            measured_seconds: run.measured_seconds,
            operations,
            costs: Vec::new(),
            locks: Default::default(),
        }
    }
}

/// Milliseconds with two decimals, for people.
pub(crate) fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// The stdout summary: one table per scale.
pub fn summary(report: &BenchReport) -> String {
    let mut out = String::new();
    for s in &report.scales {
        out.push_str(&format!(
            "\n{} devices (seeded in {:.1} s, {} operations scheduled; latency from the intended start, service from the actual start)\n  {:<22} {:>8} {:>7} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  budget\n",
            s.devices, s.load.seconds, s.scheduled, "operation", "count", "errors", "late", "p50", "p95", "p99", "max", "svc p50", "svc p95", "lag p99"
        ));
        for o in &s.operations {
            let verdict = match (o.budget_p95_us, o.within_budget) {
                (Some(b), Some(true)) => format!("p95 <= {}  ok", ms(b)),
                (Some(b), _) => format!("p95 <= {}  BREACH", ms(b)),
                _ => "-".to_string(),
            };
            out.push_str(&format!(
                "  {:<22} {:>8} {:>7} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  {}\n",
                o.name,
                o.count,
                o.errors.values().sum::<u64>(),
                o.late_starts,
                ms(o.p50_us),
                ms(o.p95_us),
                ms(o.p99_us),
                ms(o.max_us),
                ms(o.service_p50_us),
                ms(o.service_p95_us),
                ms(o.start_lag_p99_us),
                verdict
            ));
        }
    }
    out.push_str(&super::locks::summary(&report.scales));
    out.push_str(&super::growth::summary(&report.growth));
    out
}

/// Writes `report.json` and `report.html` into `dir` (created if needed).
pub fn write(report: &BenchReport, dir: &Path) -> Result<(), Error> {
    let html = super::chart::html(report);
    outdir::write_json(dir, "report.json", report)?;
    outdir::write_file(dir, "report.html", html.as_bytes())?;
    Ok(())
}
