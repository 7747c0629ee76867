//! `report compare`: a run against a baseline, per operation and percentile, knowing noise.
//!
//! Two rules keep a comparison from crying wolf:
//!
//! - **Enough samples.** A percentile q is gated only when both runs have at least
//!   [`MIN_TAIL_SAMPLES`] samples beyond it, i.e. `n >= 10 / (1 - q)`: p50 needs 20 samples,
//!   p90 100, p95 200, p99 1,000, p99.9 10,000. Below that the row says "not enough data"
//!   (a p99 of 94 samples is the maximum: one slow sample, not a trend).
//! - **Confidence.** Each run's percentile gets a distribution-free 99 % confidence interval
//!   from its histogram (the order statistics at ranks `nq ± z·sqrt(nq(1−q))`, z = 2.576,
//!   binomial). A percentile regressed only when the current run's *lower* bound exceeds the
//!   baseline's *upper* bound by more than the allowed fraction (`--max-regression 10%`):
//!   worse by more than the threshold however the sampling noise fell. A change past the
//!   threshold that is not confident is shown as "within noise" and does not gate.
//!
//! Max is shown but never gated. Operations present on one side only are listed and do not
//! gate. Differences in environment (CPUs, durability, scenario, load, steal, in-process
//! server) are noted, since they make a comparison unfair.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::report::model::{decode_histogram, quantile, Machine, OperationStats, RunReport};
use crate::report::summary::format_us;
use crate::Error;

/// Samples a percentile needs beyond it, in both runs, to be gated.
pub(crate) const MIN_TAIL_SAMPLES: f64 = 10.0;
/// z of the two-sided 99 % confidence interval of a percentile.
const Z: f64 = 2.576;

/// Percentiles compared: label, percentage, whether it can gate.
const COMPARED: [(&str, f64, bool); 6] = [
    ("p50", 50.0, true),
    ("p90", 90.0, true),
    ("p95", 95.0, true),
    ("p99", 99.0, true),
    ("p99.9", 99.9, true),
    ("max", 100.0, false),
];

/// Samples a percentile needs (in each run) to be gated: `10 / (1 - q)`.
pub(crate) fn min_samples(percentile: f64) -> u64 {
    (MIN_TAIL_SAMPLES / (1.0 - quantile(percentile))).round() as u64
}

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

/// The 99 % confidence interval of `percentile` from the histogram (ranks of the binomial
/// order-statistic interval), as (lowest, highest) equivalent values.
fn confidence_interval(h: &Histogram<u64>, percentile: f64) -> (u64, u64) {
    let n = h.len() as f64;
    let q = quantile(percentile);
    let spread = Z * (n * q * (1.0 - q)).sqrt();
    let lo_rank = (n * q - spread).floor().max(1.0);
    let hi_rank = ((n * q + spread).ceil() + 1.0).min(n);
    // Rank r is the value at quantile (r - ½)/n: the ceiling lands on r exactly.
    let at = |r: f64| h.value_at_quantile((r - 0.5) / n);
    (h.lowest_equivalent(at(lo_rank)), at(hi_rank))
}

/// Parses `--max-regression`: `10%`, `10` (percent) or `2.5%`. Must be finite and >= 0.
pub(crate) fn parse_threshold(s: &str) -> Result<f64, Error> {
    let t = s.trim();
    let number = t.strip_suffix('%').unwrap_or(t).trim();
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p / 100.0),
        _ => Err(Error::BadInput(format!(
            "--max-regression {s:?}: expected a non-negative percentage such as 10%"
        ))),
    }
}

/// What a comparison of one percentile concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not worse by more than the threshold, with confidence.
    Ok,
    /// Worse by more than the threshold even at the edges of both confidence intervals.
    Regressed,
    /// Past the threshold as a point value, but within the sampling noise.
    WithinNoise,
    /// Too few samples behind this percentile on at least one side to gate it.
    NotEnoughData,
    /// Shown, never gated (max).
    NotGated,
}

impl Verdict {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Regressed => "REGRESSED",
            Verdict::WithinNoise => "within noise",
            Verdict::NotEnoughData => "not enough data",
            Verdict::NotGated => "(not gated)",
        }
    }
}

/// One operation and percentile, baseline against current.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delta {
    pub(crate) operation: String,
    pub(crate) percentile: &'static str,
    pub(crate) baseline_us: u64,
    pub(crate) current_us: u64,
    /// `current / baseline - 1` (baseline floored at 1 µs).
    pub(crate) change: f64,
    /// Samples behind each side.
    pub(crate) baseline_count: u64,
    pub(crate) current_count: u64,
    /// 99 % confidence intervals of the percentile, when computed.
    pub(crate) baseline_ci: Option<(u64, u64)>,
    pub(crate) current_ci: Option<(u64, u64)>,
    pub(crate) verdict: Verdict,
    /// Whether this percentile gates the comparison (enough samples, not max).
    pub(crate) gated: bool,
    pub(crate) regressed: bool,
}

/// The outcome of comparing two reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comparison {
    pub(crate) baseline: String,
    pub(crate) current: String,
    /// Allowed regression as a fraction (0.10 for 10 %).
    pub(crate) threshold: f64,
    pub(crate) deltas: Vec<Delta>,
    /// Operations with samples in the baseline only, and in the current run only.
    pub(crate) only_in_baseline: Vec<String>,
    pub(crate) only_in_current: Vec<String>,
    /// Differences between the runs that make the comparison less fair.
    pub(crate) notes: Vec<String>,
}

/// Compares `current` against `baseline`. `threshold` is a fraction (0.10 for 10 %).
pub(crate) fn compare(
    baseline: &RunReport,
    current: &RunReport,
    baseline_label: &str,
    current_label: &str,
    threshold: f64,
) -> Comparison {
    let with_samples = |r: &RunReport| -> Vec<String> {
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
        deltas.extend(compare_operation(name, b, c, threshold));
    }
    let notes = environment_notes(baseline, current);
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
    pub(crate) fn regressions(&self) -> impl Iterator<Item = &Delta> {
        self.deltas.iter().filter(|d| d.regressed)
    }

    pub(crate) fn regressed(&self) -> bool {
        self.regressions().next().is_some()
    }

    fn verdict_line(&self) -> String {
        let n = self.regressions().count();
        if n == 0 {
            format!(
                "PASS: no percentile regressed by more than {} with confidence",
                percent(self.threshold)
            )
        } else {
            let list: Vec<String> = self
                .regressions()
                .map(|d| format!("{}.{} {}", d.operation, d.percentile, signed(d.change)))
                .collect();
            format!(
                "FAIL: {n} regression(s) past {} with confidence: {}",
                percent(self.threshold),
                list.join(", ")
            )
        }
    }

    /// Plain text for the terminal: one row per operation and percentile.
    pub(crate) fn render_text(&self) -> String {
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
            let verdict = match d.verdict {
                Verdict::NotEnoughData => format!(
                    "not enough data (n {}/{}, needs {})",
                    d.baseline_count,
                    d.current_count,
                    COMPARED
                        .iter()
                        .find(|c| c.0 == d.percentile)
                        .map_or(0, |c| min_samples(c.1))
                ),
                v => v.label().to_string(),
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
    pub(crate) fn render_markdown(&self) -> String {
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
            "Baseline `{}` → current `{}`; allowed regression {} with 99 % confidence (p50–p99.9, each only with ≥ 10 samples beyond it; max not gated).\n",
            self.baseline,
            self.current,
            percent(self.threshold)
        );
        for n in &self.notes {
            let _ = writeln!(out, "> ⚠️ {n}\n");
        }
        let _ = write!(out, "| operation |");
        for (p, _, _) in COMPARED {
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
                let mark = match d.verdict {
                    Verdict::Regressed => " ❌",
                    Verdict::NotEnoughData => " (not enough data)",
                    Verdict::WithinNoise => " (within noise)",
                    _ => "",
                };
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

/// Every percentile of one operation.
fn compare_operation(
    name: &str,
    b: &OperationStats,
    c: &OperationStats,
    threshold: f64,
) -> Vec<Delta> {
    let (bh, ch) = (
        decode_histogram(&b.histogram).ok(),
        decode_histogram(&c.histogram).ok(),
    );
    COMPARED
        .iter()
        .map(|&(percentile, pct, can_gate)| {
            let (bv, cv) = (value(b, percentile), value(c, percentile));
            let change = cv as f64 / bv.max(1) as f64 - 1.0;
            let enough = b.count >= min_samples(pct) && c.count >= min_samples(pct);
            let cis = match (&bh, &ch) {
                (Some(bh), Some(ch)) if can_gate && enough => {
                    Some((confidence_interval(bh, pct), confidence_interval(ch, pct)))
                }
                _ => None,
            };
            // A small epsilon keeps "exactly at the threshold" a pass despite rounding.
            let past =
                |from: u64, to: u64| to as f64 > from.max(1) as f64 * (1.0 + threshold) + 1e-9;
            let verdict = match (can_gate, enough, cis) {
                (false, _, _) => Verdict::NotGated,
                (true, false, _) => Verdict::NotEnoughData,
                (true, true, Some(((_, b_hi), (c_lo, _)))) if past(b_hi, c_lo) => {
                    Verdict::Regressed
                }
                // Histograms that do not decode: only the point values are known.
                (true, true, None) if past(bv, cv) => Verdict::Regressed,
                _ if past(bv, cv) => Verdict::WithinNoise,
                _ => Verdict::Ok,
            };
            Delta {
                operation: name.to_string(),
                percentile,
                baseline_us: bv,
                current_us: cv,
                change,
                baseline_count: b.count,
                current_count: c.count,
                baseline_ci: cis.map(|c| c.0),
                current_ci: cis.map(|c| c.1),
                verdict,
                gated: can_gate && enough,
                regressed: verdict == Verdict::Regressed,
            }
        })
        .collect()
}

/// Differences between the runs' setups and machines that make the comparison less fair.
fn environment_notes(baseline: &RunReport, current: &RunReport) -> Vec<String> {
    let mut notes = Vec::new();
    let (be, ce) = (&baseline.environment, &current.environment);
    let mut differ = |what: &str, b: String, c: String| {
        if b != c {
            notes.push(format!("different {what}: {b} vs {c}"));
        }
    };
    differ(
        "scenarios",
        baseline.scenario.name.clone(),
        current.scenario.name.clone(),
    );
    differ(
        "load models",
        baseline.scenario.model.clone(),
        current.scenario.model.clone(),
    );
    differ("CPU counts", be.cpus.to_string(), ce.cpus.to_string());
    differ(
        "durability",
        format!("{:?}", be.durable),
        format!("{:?}", ce.durable),
    );
    differ(
        "PostgreSQL versions",
        be.postgres_version
            .clone()
            .unwrap_or_else(|| "unknown".into()),
        ce.postgres_version
            .clone()
            .unwrap_or_else(|| "unknown".into()),
    );
    differ(
        "server placement",
        placement(be.bundled_server),
        placement(ce.bundled_server),
    );
    if let (Some(bm), Some(cm)) = (&be.machine, &ce.machine) {
        notes.extend(machine_notes(bm, cm));
    }
    notes
}

/// Load averages (1 minute) apart by 1 or more, or CPU steal apart by a percentage point.
fn machine_notes(b: &Machine, c: &Machine) -> Vec<String> {
    let mut notes = Vec::new();
    for (when, bl, cl) in [
        ("start", b.load_avg_start[0], c.load_avg_start[0]),
        ("end", b.load_avg_end[0], c.load_avg_end[0]),
    ] {
        if (bl - cl).abs() >= 1.0 {
            notes.push(format!(
                "different load average at the {when}: {bl:.2} vs {cl:.2}"
            ));
        }
    }
    for (what, bt, ct) in [
        ("idle CPU state", b.idle_text(), c.idle_text()),
        (
            "generator thread priority",
            b.priority_text(),
            c.priority_text(),
        ),
    ] {
        if bt != ct {
            notes.push(format!("different {what}: {bt} vs {ct}"));
        }
    }
    for (when, bs, cs) in [
        ("before the run", b.cpu_steal_start, c.cpu_steal_start),
        ("during the run", b.cpu_steal_end, c.cpu_steal_end),
    ] {
        if (bs - cs).abs() >= 0.01 {
            notes.push(format!(
                "different CPU steal {when}: {:.1}% vs {:.1}%",
                bs * 100.0,
                cs * 100.0
            ));
        }
    }
    notes
}

fn placement(bundled: bool) -> String {
    if bundled { "in-process" } else { "external" }.to_string()
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
    use crate::report::model::new_histogram;

    fn histogram(values: impl Iterator<Item = u64>) -> Histogram<u64> {
        let mut h = new_histogram();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    fn stats(h: &Histogram<u64>) -> OperationStats {
        OperationStats::from_histogram(h, 0, 10.0, vec![])
    }

    #[test]
    fn sample_rule_gates_only_percentiles_with_ten_samples_beyond() {
        assert_eq!(min_samples(50.0), 20);
        assert_eq!(min_samples(99.0), 1000);
        assert_eq!(min_samples(99.9), 10_000);
        // 94 samples: p50 and p90 can gate, p99 cannot.
        let h = histogram((1..=94).map(|i| 1000 + i * 10));
        let slow = histogram((1..=94).map(|i| if i == 94 { 90_000 } else { 1000 + i * 10 }));
        let d = compare_operation("x", &stats(&h), &stats(&slow), 0.1);
        let p99 = d.iter().find(|d| d.percentile == "p99").unwrap();
        assert_eq!(p99.verdict, Verdict::NotEnoughData);
        assert!(p99.change > 10.0, "the point value did jump");
        assert!(d.iter().all(|d| !d.regressed), "{d:?}");
    }

    #[test]
    fn identical_pass_and_a_30_percent_slowdown_fails_with_confidence() {
        // A skewed distribution, 5,000 samples.
        let base: Vec<u64> = (0..5000u64)
            .map(|i| 800 + (i * 7919 % 5000).pow(2) / 2000)
            .collect();
        let b = histogram(base.iter().copied());
        let same = compare_operation("x", &stats(&b), &stats(&b), 0.1);
        assert!(same.iter().all(|d| !d.regressed), "{same:?}");
        let slower = histogram(base.iter().map(|v| v * 13 / 10));
        let d = compare_operation("x", &stats(&b), &stats(&slower), 0.1);
        let p50 = d.iter().find(|d| d.percentile == "p50").unwrap();
        assert_eq!(p50.verdict, Verdict::Regressed, "{p50:?}");
        let (lo, hi) = p50.baseline_ci.unwrap();
        assert!(lo <= p50.baseline_us && p50.baseline_us <= hi, "{p50:?}");
    }

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
