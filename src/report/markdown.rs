//! `summary.md`: a compact Markdown summary, small enough for a CI job summary
//! (`$GITHUB_STEP_SUMMARY`): verdict, operations table, budgets, integrity, failures.

use std::fmt::Write as _;

use crate::report::model::RunReport;
use crate::report::summary::format_us;

/// File name of the Markdown summary inside a report directory.
pub(crate) const MARKDOWN_FILE: &str = "summary.md";

/// Renders the Markdown summary of a report.
pub(crate) fn render(report: &RunReport) -> String {
    let mut out = String::new();
    heading(&mut out, report);
    tables(&mut out, report);
    integrity(&mut out, report);
    generator_and_failures(&mut out, report);
    out
}

/// The verdict and what ran where.
fn heading(out: &mut String, report: &RunReport) {
    let verdict = if report.passed {
        "✅ PASS"
    } else {
        "❌ FAIL"
    };
    let _ = writeln!(
        out,
        "### e2ee-harness · {} · {verdict}\n",
        cell(&report.scenario.name)
    );
    let env = &report.environment;
    let db = match (&env.postgres_version, env.durable) {
        (Some(v), Some(true)) => format!("PostgreSQL {v} (durable)"),
        (Some(v), Some(false)) => format!("PostgreSQL {v} (fsync off)"),
        (Some(v), None) => format!("PostgreSQL {v} (durability unknown)"),
        (None, Some(true)) => format!("database: {} (durable)", env.db_provider),
        (None, Some(false)) => format!("database: {} (fsync off)", env.db_provider),
        (None, None) => format!("database: {} (durability unknown)", env.db_provider),
    };
    let _ = writeln!(
        out,
        "{} model · {:.0} s measured (warm-up {:.0} s) · seed {} · {} CPUs · {} · harness {} · started {}\n",
        report.scenario.model,
        report.window.duration_s,
        report.scenario.warmup_s,
        report.scenario.seed,
        env.cpus,
        db,
        env.harness_version,
        report.started_at.format("%Y-%m-%d %H:%M:%SZ")
    );
}

/// Operations, then budgets.
fn tables(out: &mut String, report: &RunReport) {
    let _ = writeln!(
        out,
        "| operation | count | errors | p50 | p95 | p99 | max | rate/s |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|");
    for (name, op) in &report.operations {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} | {:.1} |",
            cell(name),
            op.count,
            op.errors,
            format_us(op.p50_us),
            format_us(op.p95_us),
            format_us(op.p99_us),
            format_us(op.max_us),
            op.rate_per_s
        );
    }

    if !report.budgets.is_empty() {
        let _ = writeln!(out, "\n| budget | limit | observed | verdict |");
        let _ = writeln!(out, "|---|--:|--:|:-:|");
        for b in &report.budgets {
            let _ = writeln!(
                out,
                "| `{}.{}` | {} | {} | {} |",
                cell(&b.operation),
                cell(&b.percentile),
                format_us(b.limit_us),
                b.observed_us
                    .map(format_us)
                    .unwrap_or_else(|| "no samples".into()),
                if b.passed { "✅" } else { "❌" }
            );
        }
    }
}

/// The integrity line, then faults and recovery.
fn integrity(out: &mut String, report: &RunReport) {
    let i = &report.integrity;
    let _ = write!(
        out,
        "\n**Integrity** {} sent {} · delivered {} · decrypted {} · redelivered {}",
        if i.is_clean() { "✅" } else { "❌" },
        i.messages_sent,
        i.messages_delivered,
        i.messages_decrypted,
        i.messages_redelivered
    );
    let g = &report.generator;
    if g.flows_cancelled > 0 {
        let _ = write!(out, " · **flows cancelled {}**", g.flows_cancelled);
    }
    for (name, n) in i.failure_counts() {
        if n > 0 {
            let _ = write!(out, " · **{name} {n}**");
        } else {
            let _ = write!(out, " · {name} 0");
        }
    }
    let _ = writeln!(out);
    let lines = crate::report::summary::resilience_lines(report);
    if !lines.is_empty() {
        let _ = writeln!(out, "\n**Faults and recovery**");
        for l in lines {
            let _ = writeln!(out, "- {}", cell(&l));
        }
    }
}

/// The generator's line and each failure.
fn generator_and_failures(out: &mut String, report: &RunReport) {
    let g = &report.generator;
    let _ = writeln!(
        out,
        "\n**Generator** {:.1} of {:.1} flows/s · late starts {} · CPU share {:.1}% · peak RSS {:.1} MiB",
        g.achieved_rate_per_s,
        g.configured_rate_per_s,
        g.late_starts,
        g.cpu_share * 100.0,
        g.peak_rss_bytes as f64 / (1024.0 * 1024.0)
    );

    if !report.failures.is_empty() {
        let _ = writeln!(out, "\n**Failures**");
        for f in &report.failures {
            let _ = writeln!(out, "- {}", cell(&f.to_string()));
        }
    }
}

/// Text safe inside a Markdown table cell: pipes escaped, line breaks flattened.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}
