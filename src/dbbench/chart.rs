//! A self-contained HTML page (inline SVG, no scripts, no network) showing p95 latency against
//! scale for every operation, its budget as a dashed line, and the full table beneath.

use super::report::{ms, BenchReport};
use crate::report::chart::{
    color, escape, Axis, Chart, Reference, Scale, Series, Style, CHART_CSS,
};

/// The chart: x = devices, y = p95 in ms, both on log axes; one line per operation and its
/// budget as a dashed reference line of the same colour.
pub(crate) fn svg(report: &BenchReport) -> String {
    p95_chart(report).render()
}

fn p95_chart(report: &BenchReport) -> Chart {
    let names: Vec<&str> = report
        .scales
        .first()
        .map(|s| s.operations.iter().map(|o| o.name.as_str()).collect())
        .unwrap_or_default();
    let mut series = Vec::new();
    // Operations sharing a budget share its line, so the labels do not overlap.
    let mut budgets: std::collections::BTreeMap<u64, Vec<(usize, &str)>> = Default::default();
    for (i, name) in names.iter().enumerate() {
        let ops = report.scales.iter().filter_map(|sc| {
            let op = sc.operations.iter().find(|o| o.name == *name)?;
            Some((sc.devices, op))
        });
        series.push(Series {
            name: name.to_string(),
            color: color(i),
            style: Style::Line,
            points: ops
                .clone()
                .map(|(d, o)| (d.max(1) as f64, o.p95_us.max(1) as f64 / 1000.0))
                .collect(),
        });
        if let Some(b) = ops.filter_map(|(_, o)| o.budget_p95_us).next() {
            budgets.entry(b).or_default().push((i, name));
        }
    }
    let references: Vec<Reference> = budgets
        .iter()
        .map(|(b, ops)| Reference {
            y: *b as f64 / 1000.0,
            label: format!(
                "p95 budget of {}",
                ops.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
            ),
            color: color(ops[0].0),
        })
        .collect();
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(references.iter().map(|r| r.y));
    let (lo, hi) = ys.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo > hi { (0.1, 10.0) } else { (lo, hi) };
    Chart {
        kind: "p95_by_scale".into(),
        operation: None,
        title: "p95 latency against scale".into(),
        width: 760,
        height: 420,
        x: devices_axis(report),
        y: Axis::log10_decades(lo, hi, "p95 latency, ms (log scale)", fmt_ms),
        series,
        references,
        empty_note: "no samples".into(),
        markers: Vec::new(),
    }
}

/// A log axis with a tick at each scale, a little wider than the scales so that no point
/// sits on the frame (one scale sits in the middle).
fn devices_axis(report: &BenchReport) -> Axis {
    let devices: Vec<f64> = report
        .scales
        .iter()
        .map(|s| s.devices.max(1) as f64)
        .collect();
    let (lo, hi) = devices
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let (lo, hi) = if lo > hi { (1.0, 10.0) } else { (lo, hi) };
    Axis {
        scale: Scale::Log10,
        min: lo / 1.25,
        max: hi * 1.25,
        ticks: devices
            .iter()
            .map(|d| (*d, (*d as u64).to_string()))
            .collect(),
        title: "devices (log scale)".into(),
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The page: header, outcome and failures, the chart, the table of every scale and operation,
/// then findings, lock waits and growth.
pub(crate) fn html(report: &BenchReport) -> String {
    let rows = table_rows(report);
    let failures = failures_html(report);
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>db-bench {pack}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:nth-child(2), th {{ text-align: left; }}
.breach {{ color: #b00; font-weight: bold; }} .ok {{ color: #070; }}
{chart_css}</style></head><body>
<h1>db-bench: {pack}</h1>
<p>Pack <code>{source}</code>, workload <code>{workload}</code>; PostgreSQL {pg} ({durable});
open model at {rate} operations/s over {conns} connections; warm-up {warmup} s excluded, {duration} s measured per scale.
Latency is timed from each operation's intended start.</p>
<p>Outcome: <b>{outcome}</b></p>
{failures}
{svg}
<table><tr><th>devices</th><th>operation</th><th>count</th><th>errors</th><th>late starts</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>service p95</th><th>p95 budget</th><th>verdict</th></tr>
{rows}</table>
{findings}
{locks}
{growth}
</body></html>
"#,
        pack = escape(&report.pack),
        source = escape(&report.source),
        workload = escape(&report.workload),
        pg = escape(&report.postgres),
        durable = if report.durable {
            "durable"
        } else {
            "fsync off"
        },
        rate = report.rate_per_second,
        conns = report.connections,
        warmup = report.warmup_seconds,
        duration = report.duration_seconds,
        outcome = report.outcome,
        svg = svg(report),
        chart_css = CHART_CSS,
        findings = findings_html(report),
        locks = locks_html(report),
        growth = growth_html(report),
    )
}

/// One table row per scale and operation: counts, percentiles, budget and verdict.
fn table_rows(report: &BenchReport) -> String {
    let mut rows = String::new();
    for s in &report.scales {
        for o in &s.operations {
            let budget = o.budget_p95_us.map(ms).unwrap_or_else(|| "-".into());
            let verdict = match o.within_budget {
                Some(true) => "ok",
                Some(false) => "BREACH",
                None => "-",
            };
            let errors: Vec<String> = o.errors.iter().map(|(k, v)| format!("{k}×{v}")).collect();
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>\n",
                s.devices,
                escape(&o.name),
                o.count,
                escape(&errors.join(", ")),
                o.late_starts,
                ms(o.p50_us),
                ms(o.p95_us),
                ms(o.p99_us),
                ms(o.max_us),
                ms(o.service_p95_us),
                budget,
                verdict.to_lowercase(),
                verdict
            ));
        }
    }
    rows
}

/// The failures as a list, or a line saying every budget held.
fn failures_html(report: &BenchReport) -> String {
    if report.failures.is_empty() {
        "<p class=\"ok\">Every budget held; every operation was sampled at every scale.</p>"
            .to_string()
    } else {
        format!(
            "<ul class=\"breach\">{}</ul>",
            report
                .failures
                .iter()
                .map(|f| format!("<li>{}</li>", escape(&f.to_string())))
                .collect::<String>()
        )
    }
}

fn findings_html(report: &BenchReport) -> String {
    if report.findings.is_empty() {
        return "<h2>Findings</h2><p class=\"ok\">No lock wait between operations, no cost growing well above logarithmically.</p>".into();
    }
    let items: String = report
        .findings
        .iter()
        .map(|f| format!("<li>{}</li>", escape(&f.to_string())))
        .collect();
    format!("<h2>Findings</h2><ul class=\"breach\">{items}</ul>")
}

/// Lock waits between operations, per scale (docs/conformance.md 6.3).
fn locks_html(report: &BenchReport) -> String {
    let mut rows = String::new();
    for s in &report.scales {
        for w in &s.locks.waits {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{:.1} ms</td><td>{:.1} ms</td><td>{}</td><td class=\"{}\">{}</td></tr>\n",
                s.devices,
                escape(&w.waiter),
                escape(&w.blocker),
                escape(&w.mode),
                escape(&w.locktype),
                escape(&w.relation),
                w.waits,
                w.max_wait_ms,
                w.total_wait_ms,
                escape(&w.blocker_statement),
                if w.finding { "breach" } else { "" },
                if w.finding { "finding" } else { "seen" }
            ));
        }
    }
    let samples: Vec<String> = report
        .scales
        .iter()
        .map(|s| format!("{} at {} devices", s.locks.samples, s.devices))
        .collect();
    format!(
        "<h2>Lock waits between operations</h2><p>pg_locks sampled every {} ms during each run ({}).</p>{}",
        super::locks::SAMPLE_EVERY.as_millis(),
        samples.join(", "),
        if rows.is_empty() {
            "<p class=\"ok\">No operation was seen waiting for a lock.</p>".to_string()
        } else {
            format!("<table><tr><th>devices</th><th>waiting operation</th><th>blocked by</th><th>lock</th><th>relation</th><th>waits seen</th><th>longest</th><th>in all</th><th>blocker's statement</th><th>verdict</th></tr>\n{rows}</table>")
        }
    )
}

/// Counted cost per operation against scale (docs/conformance.md 6.3).
fn growth_html(report: &BenchReport) -> String {
    if report.growth.is_empty() {
        return "<h2>Cost growth</h2><p>Needs two or more scales.</p>".into();
    }
    let list = |v: &[u64]| {
        v.iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" → ")
    };
    let mut rows = String::new();
    for g in &report.growth {
        let verdict = match (&g.not_judged, g.flagged) {
            (Some(why), _) => escape(why).into_owned(),
            (None, true) => "finding".into(),
            (None, false) => "ok".into(),
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{} (^{:.2})</td><td>{} (^{:.2})</td><td>{} (^{:.2})</td><td class=\"{}\">{}</td><td style=\"text-align:left\">{}</td></tr>\n",
            escape(&g.operation),
            list(&g.rows_touched),
            g.rows_exponent,
            list(&g.plan_blocks),
            g.blocks_exponent,
            g.service_p50_us.iter().map(|u| ms(*u)).collect::<Vec<_>>().join(" → "),
            g.service_exponent,
            if g.flagged { "breach" } else { "ok" },
            verdict,
            g.responsible.iter().map(|r| escape(r)).collect::<Vec<_>>().join("<br>")
        ));
    }
    format!(
        "<h2>Cost growth</h2><p>Each operation executed alone under EXPLAIN ANALYZE at each scale (devices {}); exponent of devices fitted by least squares; flagged at ^{} or more in rows touched or plan blocks with a gain of {} or more.</p>
<table><tr><th>operation</th><th>rows touched</th><th>plan blocks</th><th>service p50</th><th>verdict</th><th>responsible</th></tr>\n{rows}</table>",
        report.growth[0].devices.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        super::growth::FLAG_EXPONENT,
        super::growth::MIN_GROWTH,
    )
}
