//! `report compare`: a run against a baseline, per operation and percentile.
//!
//! A delta regresses when the current value exceeds the baseline by more than the allowed
//! fraction (`--max-regression 10%`). Percentiles p50 to p99.9 are gated; max is shown but not
//! gated (one slow sample is not a trend). Operations present on one side only are listed and
//! do not gate: they mean the two runs did different work, which the reader must see, not a
//! latency regression. Differences in environment (CPUs, durability, scenario) are noted,
//! since they make a comparison unfair.

use std::fmt::Write as _;

use crate::report::model::{OperationStats, Report};
use crate::report::summary::format_us;
use crate::Error;

/// Percentiles compared, with whether they gate.
const COMPARED: [(&str, bool); 6] = [
    ("p50", true),
    ("p90", true),
    ("p95", true),
    ("p99", true),
    ("p99.9", true),
    ("max", false),
];

fn value(op: &OperationStats, percentile: &str) -> u64 {
    match percentile {
        "p50" => op.p50_us,
        "p90" => op.p90_us,
        "p95" => op.p95_us,
        "p99" => op.p99_us,
        "p99.9" => op.p999_us,
        _ => op.max_us,
    }
}

/// Parses `--max-regression`: `10%`, `10` (percent) or `2.5%`. Must be finite and >= 0.
pub fn parse_threshold(s: &str) -> Result<f64, Error> {
    let t = s.trim();
    let number = t.strip_suffix('%').unwrap_or(t).trim();
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p / 100.0),
        _ => Err(Error::BadInput(format!(
            "--max-regression {s:?}: expected a non-negative percentage such as 10%"
        ))),
    }
}

/// One operation and percentile, baseline against current.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub operation: String,
    pub percentile: &'static str,
    pub baseline_us: u64,
    pub current_us: u64,
    /// `current / baseline - 1` (baseline floored at 1 µs).
    pub change: f64,
    /// Whether this percentile gates the comparison.
    pub gated: bool,
    pub regressed: bool,
}

/// The outcome of comparing two reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub baseline: String,
    pub current: String,
    /// Allowed regression as a fraction (0.10 for 10 %).
    pub threshold: f64,
    pub deltas: Vec<Delta>,
    /// Operations with samples in the baseline only, and in the current run only.
    pub only_in_baseline: Vec<String>,
    pub only_in_current: Vec<String>,
    /// Differences between the runs that make the comparison less fair.
    pub notes: Vec<String>,
}

/// Compares `current` against `baseline`. `threshold` is a fraction (0.10 for 10 %).
pub fn compare(
    baseline: &Report,
    current: &Report,
    baseline_label: &str,
    current_label: &str,
    threshold: f64,
) -> Comparison {
    let with_samples = |r: &Report| -> Vec<String> {
        r.operations
            .iter()
            .filter(|(_, op)| op.count > 0)
            .map(|(n, _)| n.clone())
            .collect()
    };
    let base_ops = with_samples(baseline);
    let cur_ops = with_samples(current);
    let mut deltas = Vec::new();
    for name in base_ops.iter().filter(|n| cur_ops.contains(n)) {
        let (b, c) = (&baseline.operations[name], &current.operations[name]);
        for (percentile, gated) in COMPARED {
            let (bv, cv) = (value(b, percentile), value(c, percentile));
            let change = cv as f64 / bv.max(1) as f64 - 1.0;
            deltas.push(Delta {
                operation: name.clone(),
                percentile,
                baseline_us: bv,
                current_us: cv,
                change,
                gated,
                // A small epsilon keeps "exactly at the threshold" a pass despite rounding.
                regressed: gated && change > threshold + 1e-9,
            });
        }
    }
    let mut notes = Vec::new();
    let (be, ce) = (&baseline.environment, &current.environment);
    if baseline.scenario.name != current.scenario.name {
        notes.push(format!(
            "different scenarios: {} vs {}",
            baseline.scenario.name, current.scenario.name
        ));
    }
    if baseline.scenario.model != current.scenario.model {
        notes.push(format!(
            "different load models: {} vs {}",
            baseline.scenario.model, current.scenario.model
        ));
    }
    if be.cpus != ce.cpus {
        notes.push(format!("different CPU counts: {} vs {}", be.cpus, ce.cpus));
    }
    if be.durable != ce.durable {
        notes.push(format!(
            "different durability: {:?} vs {:?}",
            be.durable, ce.durable
        ));
    }
    if be.postgres_version != ce.postgres_version {
        notes.push(format!(
            "different PostgreSQL versions: {} vs {}",
            be.postgres_version.as_deref().unwrap_or("unknown"),
            ce.postgres_version.as_deref().unwrap_or("unknown")
        ));
    }
    Comparison {
        baseline: baseline_label.into(),
        current: current_label.into(),
        threshold,
        deltas,
        only_in_baseline: base_ops
            .iter()
            .filter(|n| !cur_ops.contains(n))
            .cloned()
            .collect(),
        only_in_current: cur_ops
            .iter()
            .filter(|n| !base_ops.contains(n))
            .cloned()
            .collect(),
        notes,
    }
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &Delta> {
        self.deltas.iter().filter(|d| d.regressed)
    }

    pub fn regressed(&self) -> bool {
        self.regressions().next().is_some()
    }

    fn verdict_line(&self) -> String {
        let n = self.regressions().count();
        if n == 0 {
            format!(
                "PASS: no percentile regressed by more than {}",
                percent(self.threshold)
            )
        } else {
            let list: Vec<String> = self
                .regressions()
                .map(|d| format!("{}.{} {}", d.operation, d.percentile, signed(d.change)))
                .collect();
            format!(
                "FAIL: {n} regression(s) past {}: {}",
                percent(self.threshold),
                list.join(", ")
            )
        }
    }

    /// Plain text for the terminal: one row per operation and percentile.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "baseline: {}\ncurrent:  {}",
            self.baseline, self.current
        );
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        let w = self
            .deltas
            .iter()
            .map(|d| d.operation.len())
            .max()
            .unwrap_or(9)
            .max(9);
        let _ = writeln!(
            out,
            "\n{:<w$} {:>6} {:>10} {:>10} {:>9}  verdict",
            "operation", "pct", "baseline", "current", "change"
        );
        for d in &self.deltas {
            let verdict = if d.regressed {
                "REGRESSED"
            } else if !d.gated {
                "(not gated)"
            } else {
                "ok"
            };
            let _ = writeln!(
                out,
                "{:<w$} {:>6} {:>10} {:>10} {:>9}  {verdict}",
                d.operation,
                d.percentile,
                format_us(d.baseline_us),
                format_us(d.current_us),
                signed(d.change)
            );
        }
        for n in &self.only_in_baseline {
            let _ = writeln!(
                out,
                "missing in current: {n} (has samples in the baseline only)"
            );
        }
        for n in &self.only_in_current {
            let _ = writeln!(
                out,
                "missing in baseline: {n} (has samples in the current run only)"
            );
        }
        let _ = writeln!(out, "\n{}", self.verdict_line());
        out
    }

    /// Markdown, e.g. for `$GITHUB_STEP_SUMMARY`: one row per operation, one column per
    /// percentile showing `baseline → current (change)`.
    pub fn render_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "### e2ee-harness · comparison against baseline · {}\n",
            if self.regressed() {
                "❌ FAIL"
            } else {
                "✅ PASS"
            }
        );
        let _ = writeln!(
            out,
            "Baseline `{}` → current `{}`; allowed regression {} (p50–p99.9; max not gated).\n",
            self.baseline,
            self.current,
            percent(self.threshold)
        );
        for n in &self.notes {
            let _ = writeln!(out, "> ⚠️ {n}\n");
        }
        let _ = write!(out, "| operation |");
        for (p, _) in COMPARED {
            let _ = write!(out, " {p} |");
        }
        let _ = write!(out, "\n|---|");
        for _ in COMPARED {
            let _ = write!(out, "--:|");
        }
        let _ = writeln!(out);
        let mut ops: Vec<&str> = self.deltas.iter().map(|d| d.operation.as_str()).collect();
        ops.dedup();
        for op in ops {
            let _ = write!(out, "| `{op}` |");
            for d in self.deltas.iter().filter(|d| d.operation == op) {
                let mark = if d.regressed { " ❌" } else { "" };
                let _ = write!(
                    out,
                    " {} → {} ({}){mark} |",
                    format_us(d.baseline_us),
                    format_us(d.current_us),
                    signed(d.change)
                );
            }
            let _ = writeln!(out);
        }
        if !self.only_in_baseline.is_empty() {
            let _ = writeln!(
                out,
                "\nMissing in current: {}",
                code_list(&self.only_in_baseline)
            );
        }
        if !self.only_in_current.is_empty() {
            let _ = writeln!(
                out,
                "\nMissing in baseline: {}",
                code_list(&self.only_in_current)
            );
        }
        let _ = writeln!(out, "\n**{}**", self.verdict_line());
        out
    }
}

fn code_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

fn signed(change: f64) -> String {
    format!("{:+.1}%", change * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_as_percentages() {
        assert_eq!(parse_threshold("10%").unwrap(), 0.10);
        assert_eq!(parse_threshold("2.5%").unwrap(), 0.025);
        assert_eq!(parse_threshold("0").unwrap(), 0.0);
        assert!(parse_threshold("-5%").is_err());
        assert!(parse_threshold("ten").is_err());
        assert!(parse_threshold("inf%").is_err());
    }
}
