//! `report merge`: one report from the reports of several workers of one test.
//!
//! Percentiles cannot be averaged, so each operation's histograms are *added* (whole window and
//! per interval) and every figure is recomputed from the sums. Interval series are aligned on
//! wall-clock time: each worker's intervals are placed at their offset from the earliest
//! worker's window start, snapped to the interval grid. Integrity counts are summed. Budgets
//! are re-judged on the merged histograms, so a merged report passes only if the whole test
//! held its budgets.
//!
//! Generator figures: counts and rates are summed; peaks and shares (peak RSS, CPU share,
//! start lag, memory per device) take the worst worker, since they describe one process each.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::report::merge_check;
use crate::report::model::{
    decode_histogram, new_histogram, BudgetVerdict, Environment, GeneratorHealth, Integrity,
    IntervalStats, MergeInfo, OperationStats, RunReport, Window,
};
use crate::verdict::{Failure, RunFailure};
use crate::Error;

/// Merges worker reports. `labels` name the inputs in error messages and carried-over failure
/// lines (usually their paths); it must be as long as `reports`.
pub fn merge(reports: &[RunReport], labels: &[String]) -> Result<RunReport, Error> {
    assert_eq!(reports.len(), labels.len(), "one label per report");
    let layout = merge_check::check(reports, labels).map_err(|e| Error::BadInput(e.to_string()))?;
    let first = &reports[0];
    let window = merged_window(reports);
    let operations = merge_operations(reports, labels, &window)?;
    let missing = missing_shards(&layout, reports.len());
    let mut merged = RunReport {
        schema_version: first.schema_version,
        scenario: first.scenario.clone(),
        environment: merge_environment(reports),
        started_at: reports
            .iter()
            .map(|r| r.started_at)
            .min()
            .expect("non-empty"),
        finished_at: reports
            .iter()
            .map(|r| r.finished_at)
            .max()
            .expect("non-empty"),
        window,
        operations,
        budgets: merge_budgets(reports),
        integrity: merge_integrity(reports),
        integrity_problems: merge_problems(reports),
        generator: merge_generator(reports),
        resilience: merge_resilience(reports),
        passed: false,
        failures: Vec::new(),
        // One interrupted worker makes the merged test partial.
        interrupted: reports.iter().any(|r| r.interrupted),
        shard: None,
        start_at: None,
        merged: Some(MergeInfo {
            workers: reports.len() as u32,
            shards: layout.shards,
            missing_shards: layout.missing.clone(),
            inputs: merge_check::inputs(reports, labels),
            warnings: layout.warnings,
        }),
    };
    // Budgets, integrity and error rates judged again on the sums; each worker's run-level
    // failures (cut short, …) still fail the merged run.
    let workers: Vec<(String, &RunReport)> = labels.iter().cloned().zip(reports).collect();
    crate::verdict::judge_merged(&mut merged, &workers);
    if let Some(missing) = missing {
        merged.failures.push(Failure::Run {
            worker: None,
            reason: missing,
        });
        merged.passed = false;
    }
    Ok(merged)
}

/// The merged window: from the earliest worker's start to the latest worker's end, on the
/// first worker's interval grid.
fn merged_window(reports: &[RunReport]) -> Window {
    let start = reports
        .iter()
        .map(|r| r.window.start)
        .min()
        .expect("non-empty");
    let end_ms = reports
        .iter()
        .map(|r| (r.window.start - start).num_milliseconds() as f64 + r.window.duration_s * 1000.0)
        .fold(0.0, f64::max);
    Window {
        start,
        duration_s: end_ms / 1000.0,
        interval_ms: reports[0].window.interval_ms,
    }
}

/// One operation's histograms added over workers: whole window and per slot of the merged
/// interval grid (slot → histogram, errors).
struct OperationSums {
    whole: Histogram<u64>,
    errors: u64,
    slots: BTreeMap<u64, (Histogram<u64>, u64)>,
}

impl OperationSums {
    fn new() -> Self {
        OperationSums {
            whole: new_histogram(),
            errors: 0,
            slots: BTreeMap::new(),
        }
    }

    /// Adds one worker's figures for operation `name`; its intervals, shifted by `shift_ms`
    /// (the worker's start after the merged window's), snap to the nearest merged slot.
    fn add_worker(
        &mut self,
        op: &OperationStats,
        shift_ms: u64,
        interval_ms: u64,
        label: &str,
        name: &str,
    ) -> Result<(), Error> {
        let h = decode_histogram(&op.histogram)
            .map_err(|e| Error::BadInput(format!("{label}: operations.{name}.histogram: {e}")))?;
        add(&mut self.whole, &h, label, name)?;
        self.errors += op.errors;
        for iv in &op.intervals {
            let h = decode_histogram(&iv.histogram).map_err(|e| {
                Error::BadInput(format!(
                    "{label}: operations.{name}.intervals[offset_ms={}].histogram: {e}",
                    iv.offset_ms
                ))
            })?;
            // Snap to the nearest slot of the merged grid.
            let slot = (iv.offset_ms + shift_ms + interval_ms / 2) / interval_ms;
            let entry = self
                .slots
                .entry(slot)
                .or_insert_with(|| (new_histogram(), 0));
            add(&mut entry.0, &h, label, name)?;
            entry.1 += iv.errors;
        }
        Ok(())
    }

    /// Every figure recomputed from the sums over the merged window.
    fn into_stats(self, interval_ms: u64, duration_s: f64) -> OperationStats {
        let intervals = self
            .slots
            .into_iter()
            .map(|(slot, (h, errors))| {
                IntervalStats::from_histogram(slot * interval_ms, &h, errors)
            })
            .collect();
        OperationStats::from_histogram(&self.whole, self.errors, duration_s, intervals)
    }
}

/// Each operation's histograms added over workers (percentiles cannot be averaged) and its
/// figures recomputed from the sums.
fn merge_operations(
    reports: &[RunReport],
    labels: &[String],
    window: &Window,
) -> Result<BTreeMap<String, OperationStats>, Error> {
    let interval_ms = window.interval_ms.max(1);
    let mut ops: BTreeMap<String, OperationSums> = BTreeMap::new();
    for (r, label) in reports.iter().zip(labels) {
        let shift_ms = (r.window.start - window.start).num_milliseconds().max(0) as u64;
        for (name, op) in &r.operations {
            ops.entry(name.clone())
                .or_insert_with(OperationSums::new)
                .add_worker(op, shift_ms, interval_ms, label, name)?;
        }
    }
    Ok(ops
        .into_iter()
        .map(|(name, sums)| (name, sums.into_stats(interval_ms, window.duration_s)))
        .collect())
}

/// The union of every worker's budgets (first definition wins), to be re-judged on the sums.
fn merge_budgets(reports: &[RunReport]) -> Vec<BudgetVerdict> {
    let mut budgets: Vec<BudgetVerdict> = Vec::new();
    for r in reports {
        for b in &r.budgets {
            if !budgets
                .iter()
                .any(|x| x.operation == b.operation && x.percentile == b.percentile)
            {
                budgets.push(b.clone());
            }
        }
    }
    budgets
}

/// Integrity counts summed over workers.
fn merge_integrity(reports: &[RunReport]) -> Integrity {
    let mut integrity = reports[0].integrity.clone();
    for r in &reports[1..] {
        let i = &r.integrity;
        integrity.messages_sent += i.messages_sent;
        integrity.messages_delivered += i.messages_delivered;
        integrity.messages_decrypted += i.messages_decrypted;
        integrity.messages_lost += i.messages_lost;
        integrity.messages_duplicated += i.messages_duplicated;
        integrity.messages_redelivered += i.messages_redelivered;
        integrity.decrypt_failures += i.decrypt_failures;
        integrity.prekeys_reused += i.prekeys_reused;
        integrity.signature_failures += i.signature_failures;
        integrity.messages_unexpected += i.messages_unexpected;
    }
    integrity
}

/// Generator figures: counts and rates summed; peaks and shares take the worst worker, since
/// each describes one process.
fn merge_generator(reports: &[RunReport]) -> GeneratorHealth {
    let mut generator = reports[0].generator.clone();
    for g in reports[1..].iter().map(|r| &r.generator) {
        generator.cpu_share = generator.cpu_share.max(g.cpu_share);
        generator.cpu_share_includes_server |= g.cpu_share_includes_server;
        generator.process_cpu_s += g.process_cpu_s;
        // Workers' users add up; each worker's busy peak is its own, so their sum bounds
        // the merged peak from above.
        generator.configured_users += g.configured_users;
        generator.peak_users_busy += g.peak_users_busy;
        generator.peak_rss_bytes = generator.peak_rss_bytes.max(g.peak_rss_bytes);
        generator.late_starts += g.late_starts;
        generator.late_start_threshold_us = generator
            .late_start_threshold_us
            .max(g.late_start_threshold_us);
        generator.max_start_lag_us = generator.max_start_lag_us.max(g.max_start_lag_us);
        generator.start_lag_p50_us = generator.start_lag_p50_us.max(g.start_lag_p50_us);
        generator.start_lag_p99_us = generator.start_lag_p99_us.max(g.start_lag_p99_us);
        generator.flows_started += g.flows_started;
        generator.flows_intended += g.flows_intended;
        generator.achieved_rate_per_s += g.achieved_rate_per_s;
        generator.configured_rate_per_s += g.configured_rate_per_s;
        generator.flows_cancelled += g.flows_cancelled;
        for (name, n) in &g.flows_cancelled_by_flow {
            *generator
                .flows_cancelled_by_flow
                .entry(name.clone())
                .or_default() += n;
        }
        generator.drain_reconnect_failures += g.drain_reconnect_failures;
        generator.ws_close_timeouts += g.ws_close_timeouts;
        generator.devices += g.devices;
        generator.peak_open_websockets += g.peak_open_websockets;
        generator.memory_per_ws_device_bytes = generator
            .memory_per_ws_device_bytes
            .max(g.memory_per_ws_device_bytes);
        generator.ws_probe_devices = generator.ws_probe_devices.max(g.ws_probe_devices);
        if generator.model != g.model {
            generator.model = format!("{}+{}", generator.model, g.model);
        }
    }
    // A goose report path is relative to its own worker's directory: meaningless here.
    if reports.len() > 1 {
        generator.goose_report = None;
    }
    generator
}

/// The first worker's environment, with every distinct worker hostname listed.
fn merge_environment(reports: &[RunReport]) -> Environment {
    let mut environment = reports[0].environment.clone();
    let mut hosts: Vec<String> = reports
        .iter()
        .filter_map(|r| r.environment.hostname.clone())
        .collect();
    hosts.sort();
    hosts.dedup();
    if hosts.len() > 1 {
        environment.hostname = Some(hosts.join(","));
    }
    environment
}

/// A sharded test merged without all its shards ran only part of the scenario: it fails.
fn missing_shards(layout: &merge_check::Layout, merged: usize) -> Option<RunFailure> {
    let shards = layout.shards?;
    if layout.missing.is_empty() {
        return None;
    }
    Some(RunFailure::ShardsMissing {
        merged: merged as u32,
        shards,
        missing: layout.missing.clone(),
    })
}

fn add(into: &mut Histogram<u64>, h: &Histogram<u64>, label: &str, op: &str) -> Result<(), Error> {
    into.add(h).map_err(|e| {
        Error::BadInput(format!(
            "{label}: operations.{op}: histogram cannot be added: {e:?}"
        ))
    })
}

/// Every worker's problem envelopes, each list capped as in one report.
fn merge_problems(reports: &[RunReport]) -> crate::report::model::IntegrityProblems {
    let mut out = crate::report::model::IntegrityProblems::default();
    let cap = crate::report::model::IntegrityProblems::LIMIT;
    for r in reports {
        let p = &r.integrity_problems;
        out.lost.extend(p.lost.iter().cloned());
        out.duplicated.extend(p.duplicated.iter().cloned());
        out.undecryptable.extend(p.undecryptable.iter().cloned());
    }
    out.lost.truncate(cap);
    out.duplicated.truncate(cap);
    out.undecryptable.truncate(cap);
    out
}

/// Retries and reconnects summed; every worker's faults listed.
fn merge_resilience(reports: &[RunReport]) -> crate::report::model::Resilience {
    let mut out = crate::report::model::Resilience::default();
    for r in reports {
        let x = &r.resilience;
        for (op, n) in &x.retries {
            *out.retries.entry(op.clone()).or_default() += n;
        }
        for (op, n) in &x.retry_budget_exhausted {
            *out.retry_budget_exhausted.entry(op.clone()).or_default() += n;
        }
        out.ws_reconnects += x.ws_reconnects;
        out.ws_reconnect_attempts += x.ws_reconnect_attempts;
        out.faults.extend(x.faults.iter().cloned());
    }
    out
}
