//! The end-of-run summary printed on stdout: one line per operation, the budget verdicts and
//! the integrity line. Plain text (no colours), so it reads the same in CI logs.

use std::fmt::Write as _;

use crate::report::model::RunReport;

/// Renders the summary of a report: one section after the other.
pub(crate) fn render(report: &RunReport) -> String {
    let mut out = String::new();
    operations(&mut out, report);
    budgets(&mut out, report);
    integrity(&mut out, report);
    for line in resilience_lines(report) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{}", health_line(&report.generator));
    generator(&mut out, report);
    environment(&mut out, report);
    for line in shard_lines(report) {
        let _ = writeln!(out, "{line}");
    }
    result(&mut out, report);
    out
}

/// One line per operation: counts, percentiles, rate.
fn operations(out: &mut String, report: &RunReport) {
    let name_w = report
        .operations
        .keys()
        .map(|k| k.len())
        .max()
        .unwrap_or(9)
        .max(9);
    let _ = writeln!(
        out,
        "{:<name_w$} {:>9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "operation", "count", "errors", "p50", "p95", "p99", "max", "rate/s"
    );
    for (name, op) in &report.operations {
        let _ = writeln!(
            out,
            "{:<name_w$} {:>9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>9.1}",
            name,
            op.count,
            op.errors,
            format_us(op.p50_us),
            format_us(op.p95_us),
            format_us(op.p99_us),
            format_us(op.max_us),
            op.rate_per_s
        );
    }
}

/// Each budget's verdict.
fn budgets(out: &mut String, report: &RunReport) {
    if !report.budgets.is_empty() {
        let _ = writeln!(out, "\nbudgets:");
        for b in &report.budgets {
            let observed = b
                .observed_us
                .map(format_us)
                .unwrap_or_else(|| "no samples".into());
            let _ = writeln!(
                out,
                "  {} {}.{} <= {}: observed {}",
                if b.passed { "PASS" } else { "FAIL" },
                b.operation,
                b.percentile,
                format_us(b.limit_us),
                observed
            );
        }
    }
}

/// The integrity counts, on one line.
fn integrity(out: &mut String, report: &RunReport) {
    let i = &report.integrity;
    let _ = writeln!(
        out,
        "\nintegrity: sent {} delivered {} decrypted {} redelivered {} | lost {} duplicated {} undecryptable {} prekeys_reused {} signature_failures {} unexpected {}",
        i.messages_sent,
        i.messages_delivered,
        i.messages_decrypted,
        i.messages_redelivered,
        i.messages_lost,
        i.messages_duplicated,
        i.decrypt_failures,
        i.prekeys_reused,
        i.signature_failures,
        i.messages_unexpected
    );
}

/// The load achieved and what the generator cost.
fn generator(out: &mut String, report: &RunReport) {
    let g = &report.generator;
    // The open model has a configured rate; the closed model has users and no schedule.
    let load = if g.model == "closed" {
        format!(
            "closed model, {:.1} flows/s from {} of {} configured virtual users busy at peak",
            g.achieved_rate_per_s, g.peak_users_busy, g.configured_users
        )
    } else {
        format!(
            "{} model, {:.1} flows/s achieved of {:.1} configured",
            g.model, g.achieved_rate_per_s, g.configured_rate_per_s
        )
    };
    let _ = writeln!(
        out,
        "generator: {load}, late starts {}, cpu share {:.1}%{}, peak RSS {:.1} MiB{}",
        g.late_starts,
        g.cpu_share * 100.0,
        if g.cpu_share_includes_server {
            " (incl. in-process server)"
        } else {
            ""
        },
        g.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        if g.memory_per_ws_device_bytes > 0 {
            format!(
                ", {:.1} KiB per WebSocket device{}",
                g.memory_per_ws_device_bytes as f64 / 1024.0,
                if g.memory_probe_includes_server {
                    " (incl. in-process server side)"
                } else {
                    ""
                }
            )
        } else {
            String::new()
        }
    );
}

/// The database and the machine.
fn environment(out: &mut String, report: &RunReport) {
    let e = &report.environment;
    let _ = writeln!(
        out,
        "database: {}{}, {}",
        e.db_provider,
        e.postgres_version
            .as_deref()
            .map(|v| format!(" PostgreSQL {v}"))
            .unwrap_or_default(),
        match e.durable {
            Some(true) => "durable (fsync and synchronous_commit on)",
            Some(false) => "fast (fsync off): latencies are not production's",
            None => "durability unknown (the target's /healthz did not say)",
        }
    );
    if let Some(m) = &e.machine {
        let _ = writeln!(
            out,
            "machine: {} CPUs, server {}, generator threads {}, {}, load average {:.2} -> {:.2}, CPU steal {:.1}% before, {:.1}% during",
            e.cpus,
            match (e.bundled_server, e.server_in_child) {
                (true, false) => "in-process",
                (true, true) => "bundled, child process",
                (false, _) => "external",
            },
            m.priority_text(),
            m.idle_text(),
            m.load_avg_start[0],
            m.load_avg_end[0],
            m.cpu_steal_start * 100.0,
            m.cpu_steal_end * 100.0
        );
    }
}

/// PASS, or the verdict and each failure.
fn result(out: &mut String, report: &RunReport) {
    if report.passed {
        let _ = writeln!(out, "result: PASS");
    } else {
        let verdict = if report.interrupted {
            "INTERRUPTED (partial results)"
        } else {
            "FAIL"
        };
        let _ = writeln!(out, "result: {verdict}");
        for f in &report.failures {
            let _ = writeln!(out, "  - {f}");
        }
    }
}

/// A shard says it is one part of a test; a merge says what it was made of.
pub(crate) fn shard_lines(report: &RunReport) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(s) = &report.shard {
        out.push(format!(
            "shard {}/{}: {} users{} of the scenario; the test's verdict is the merged report's",
            s.index,
            s.count,
            s.users,
            if s.closed_users > 0 {
                format!(", {} virtual users", s.closed_users)
            } else {
                format!(", arrivals k with k mod {} = {}", s.count, s.index - 1)
            }
        ));
    }
    if let Some(st) = &report.start_at {
        out.push(format!(
            "start: --start-at {}, clock started {}",
            st.at.to_rfc3339(),
            if st.late_ms < crate::load::start_at::ON_TIME.as_millis() as u64 {
                format!("on time ({} ms)", st.late_ms)
            } else {
                format!("{:.3} s late", st.late_ms as f64 / 1000.0)
            }
        ));
    }
    if let Some(m) = &report.merged {
        out.push(format!(
            "merged: {} workers{}, window {} + {:.1} s",
            m.workers,
            m.shards
                .map(|n| format!(" ({} of {n} shards)", n as usize - m.missing_shards.len()))
                .unwrap_or_default(),
            report.window.start.to_rfc3339(),
            report.window.duration_s
        ));
        out.extend(m.warnings.iter().map(|w| format!("  warning: {w}")));
    }
    out
}

/// Flows started, cancelled (by flow), late; what the end of the run cut short.
fn health_line(g: &crate::report::model::GeneratorHealth) -> String {
    let by_flow: Vec<String> = g
        .flows_cancelled_by_flow
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let mut line = format!(
        "health: flows started {} of {} intended | cancelled {}{} | late starts {} (> {}us) | start lag p50 {} p99 {} max {}",
        g.flows_started,
        g.flows_intended,
        g.flows_cancelled,
        if by_flow.is_empty() { String::new() } else { format!(" ({})", by_flow.join(", ")) },
        g.late_starts,
        g.late_start_threshold_us,
        format_us(g.start_lag_p50_us),
        format_us(g.start_lag_p99_us),
        format_us(g.max_start_lag_us)
    );
    if g.drain_reconnect_failures > 0 || g.ws_close_timeouts > 0 {
        line += &format!(
            " | drain reconnect failures {} | close timeouts {}",
            g.drain_reconnect_failures, g.ws_close_timeouts
        );
    }
    line
}

/// Microseconds in the most readable unit: `850us`, `12.3ms`, `1.50s`.
pub fn format_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2}s", us as f64 / 1_000_000.0)
    }
}

/// Envelopes listed per problem in the terminal and Markdown summaries (report.json has more).
const PROBLEMS_SHOWN: usize = 10;

/// One line per injected fault, one for retries and reconnects, and the first problem
/// envelopes: shared by the terminal summary and summary.md.
pub(crate) fn resilience_lines(report: &RunReport) -> Vec<String> {
    let r = &report.resilience;
    let total = |m: &std::collections::BTreeMap<String, u64>| m.values().sum::<u64>();
    let mut out = Vec::new();
    for f in &r.faults {
        let when = match (f.started_s, f.ended_s) {
            (Some(a), Some(b)) => format!("{a:.1}s–{b:.1}s"),
            _ => "not run".into(),
        };
        let outcome = match (&f.error, f.recovery_s) {
            (Some(e), _) => format!("NOT INJECTED: {e}"),
            (None, Some(v)) => format!("recovered {v:.2}s after its start"),
            (None, None) => "NO RECOVERY".into(),
        };
        out.push(format!(
            "fault {} (line {}) {when}: {outcome}; errors during {} after {}; retries during {} after {}",
            f.kind,
            f.line,
            total(&f.errors_during),
            total(&f.errors_after),
            total(&f.retries_during),
            total(&f.retries_after)
        ));
    }
    if !r.faults.is_empty() || total(&r.retries) > 0 || r.ws_reconnects > 0 {
        out.push(format!(
            "retries: {} (budget exhausted {}) | websocket reconnects {} ({} attempts)",
            total(&r.retries),
            total(&r.retry_budget_exhausted),
            r.ws_reconnects,
            r.ws_reconnect_attempts
        ));
    }
    let p = &report.integrity_problems;
    for (what, list) in [
        ("lost", &p.lost),
        ("duplicated", &p.duplicated),
        ("undecryptable", &p.undecryptable),
    ] {
        for e in list.iter().take(PROBLEMS_SHOWN) {
            out.push(format!(
                "{what}: message {} to user {} device {}",
                e.message_id, e.recipient_user, e.recipient_device
            ));
        }
        if list.len() > PROBLEMS_SHOWN {
            out.push(format!(
                "{what}: … {} more in report.json",
                list.len() - PROBLEMS_SHOWN
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format_us;

    #[test]
    fn units_are_readable() {
        assert_eq!(format_us(850), "850us");
        assert_eq!(format_us(12_345), "12.3ms");
        assert_eq!(format_us(1_500_000), "1.50s");
    }
}
