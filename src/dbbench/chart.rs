//! A self-contained HTML page (inline SVG, no scripts, no network) showing p95 latency against
//! scale for every operation, its budget as a dashed line, and the full table beneath.

use super::report::{ms, BenchReport};

const W: f64 = 760.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Log-scale position of `v` in `[lo, hi]` mapped to `[a, b]`.
fn log_pos(v: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    if hi <= lo {
        return (a + b) / 2.0;
    }
    a + (v.max(lo).ln() - lo.ln()) / (hi.ln() - lo.ln()) * (b - a)
}

/// The SVG chart: x = devices (log), y = p95 in ms (log).
pub fn svg(report: &BenchReport) -> String {
    let scales: Vec<f64> = report
        .scales
        .iter()
        .map(|s| s.devices.max(1) as f64)
        .collect();
    let names: Vec<String> = report
        .scales
        .first()
        .map(|s| s.operations.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default();
    let mut values: Vec<f64> = report
        .scales
        .iter()
        .flat_map(|s| s.operations.iter().map(|o| o.p95_us.max(1) as f64 / 1000.0))
        .collect();
    values.extend(report.scales.iter().flat_map(|s| {
        s.operations
            .iter()
            .filter_map(|o| o.budget_p95_us.map(|b| b as f64 / 1000.0))
    }));
    let (mut ylo, mut yhi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    if values.is_empty() {
        (ylo, yhi) = (0.1, 10.0);
    }
    ylo = 10f64.powf(ylo.log10().floor());
    yhi = 10f64.powf(yhi.log10().ceil());
    if yhi <= ylo {
        yhi = ylo * 10.0;
    }
    let (xlo, xhi) = scales
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    let x = |v: f64| {
        if scales.len() == 1 {
            (x0 + x1) / 2.0
        } else {
            log_pos(v, xlo, xhi, x0 + 20.0, x1 - 20.0)
        }
    };
    let y = |v: f64| log_pos(v, ylo, yhi, y0, y1);

    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    s.push_str(&format!(
        r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        x1 - x0,
        y0 - y1
    ));
    // y grid: decades
    let mut d = ylo;
    while d <= yhi * 1.0001 {
        let yy = y(d);
        s.push_str(&format!(r##"<line x1="{x0}" y1="{yy:.1}" x2="{x1}" y2="{yy:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##, x0 - 6.0, yy + 4.0, fmt_ms(d)));
        d *= 10.0;
    }
    for v in &scales {
        let xx = x(*v);
        s.push_str(&format!(r##"<line x1="{xx:.1}" y1="{y0}" x2="{xx:.1}" y2="{}" stroke="#999"/><text x="{xx:.1}" y="{}" text-anchor="middle">{}</text>"##, y0 + 5.0, y0 + 20.0, *v as u64));
    }
    s.push_str(&format!(
        r#"<text x="{}" y="{}" text-anchor="middle">devices (log scale)</text>"#,
        (x0 + x1) / 2.0,
        H - 10.0
    ));
    s.push_str(&format!(r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">p95 latency, ms (log scale)</text>"#, (y0 + y1) / 2.0, (y0 + y1) / 2.0));

    for (i, name) in names.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<(f64, f64)> = report
            .scales
            .iter()
            .filter_map(|sc| {
                sc.operations.iter().find(|o| &o.name == name).map(|o| {
                    (
                        x(sc.devices.max(1) as f64),
                        y(o.p95_us.max(1) as f64 / 1000.0),
                    )
                })
            })
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(a, b)| format!("{a:.1},{b:.1}"))
            .collect();
        s.push_str(&format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        ));
        for (a, b) in &points {
            s.push_str(&format!(
                r#"<circle cx="{a:.1}" cy="{b:.1}" r="3.5" fill="{colour}"/>"#
            ));
        }
        if let Some(b) = report
            .scales
            .first()
            .and_then(|sc| sc.operations.iter().find(|o| &o.name == name))
            .and_then(|o| o.budget_p95_us)
        {
            let yy = y(b as f64 / 1000.0);
            s.push_str(&format!(r#"<line x1="{x0}" y1="{yy:.1}" x2="{x1}" y2="{yy:.1}" stroke="{colour}" stroke-dasharray="6 4"/>"#));
        }
        let ly = TOP + 16.0 * i as f64 + 8.0;
        s.push_str(&format!(
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            x1 + 12.0,
            x1 + 32.0,
            x1 + 38.0,
            ly + 4.0,
            esc(name)
        ));
    }
    s.push_str(&format!(
        r##"<text x="{}" y="{}" fill="#555">dashed: p95 budget</text>"##,
        x1 + 12.0,
        TOP + 16.0 * names.len() as f64 + 14.0
    ));
    s.push_str("</svg>");
    s
}

fn fmt_ms(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

pub fn html(report: &BenchReport) -> String {
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
                esc(&o.name),
                o.count,
                esc(&errors.join(", ")),
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
    let failures = if report.failures.is_empty() {
        "<p class=\"ok\">Every budget held; every operation was sampled at every scale.</p>"
            .to_string()
    } else {
        format!(
            "<ul class=\"breach\">{}</ul>",
            report
                .failures
                .iter()
                .map(|f| format!("<li>{}</li>", esc(&f.to_string())))
                .collect::<String>()
        )
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>db-bench {pack}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:nth-child(2), th {{ text-align: left; }}
.breach {{ color: #b00; font-weight: bold; }} .ok {{ color: #070; }}
</style></head><body>
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
        pack = esc(&report.pack),
        source = esc(&report.source),
        workload = esc(&report.workload),
        pg = esc(&report.postgres),
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
        findings = findings_html(report),
        locks = locks_html(report),
        growth = growth_html(report),
    )
}

fn findings_html(report: &BenchReport) -> String {
    if report.findings.is_empty() {
        return "<h2>Findings</h2><p class=\"ok\">No lock wait between operations, no cost growing well above logarithmically.</p>".into();
    }
    let items: String = report
        .findings
        .iter()
        .map(|f| format!("<li>{}</li>", esc(&f.to_string())))
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
                esc(&w.waiter),
                esc(&w.blocker),
                esc(&w.mode),
                esc(&w.locktype),
                esc(&w.relation),
                w.waits,
                w.max_wait_ms,
                w.total_wait_ms,
                esc(&w.blocker_statement),
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
            (Some(why), _) => esc(why),
            (None, true) => "finding".into(),
            (None, false) => "ok".into(),
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{} (^{:.2})</td><td>{} (^{:.2})</td><td>{} (^{:.2})</td><td class=\"{}\">{}</td><td style=\"text-align:left\">{}</td></tr>\n",
            esc(&g.operation),
            list(&g.rows_touched),
            g.rows_exponent,
            list(&g.plan_blocks),
            g.blocks_exponent,
            g.service_p50_us.iter().map(|u| ms(*u)).collect::<Vec<_>>().join(" → "),
            g.service_exponent,
            if g.flagged { "breach" } else { "ok" },
            verdict,
            g.responsible.iter().map(|r| esc(r)).collect::<Vec<_>>().join("<br>")
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
