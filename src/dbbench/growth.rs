//! How each operation's cost grows with the table size, and what is responsible when it
//! grows well above logarithmically (docs/conformance.md 6.3, `dbbench.growth`).
//!
//! For scales n₁ < … < n_k (devices) an operation's growth exponent for a measure W is the
//! least-squares slope of ln max(W, 1) against ln n: 0 for a constant cost, about 0.1 for
//! B-tree depth (logarithmic), 1 for a cost proportional to the table. The verdict uses the
//! counted measures of [`super::explain`] (rows touched, plan blocks), never wall time: an
//! operation is flagged when either has an exponent of at least [`FLAG_EXPONENT`] *and* grew
//! by at least [`MIN_GROWTH`] units between the smallest and the largest scale (so a B-tree
//! gaining a level, +1 block, is never flagged). The service-time exponent (median from the
//! run) is fitted and shown beside them as corroboration: machines are noisy.

use serde::Serialize;

use super::explain::{OpCost, RelationRows, TriggerTime};
use super::report::ScaleReport;

/// The rule id of a finding (docs/conformance.md 6.3).
pub(crate) const RULE: &str = "dbbench.growth";
/// Exponent at and above which growth is "well above logarithmic".
pub(crate) const FLAG_EXPONENT: f64 = 0.5;
/// Rows or blocks an operation must gain between the smallest and largest scale to be flagged.
pub(crate) const MIN_GROWTH: u64 = 64;

/// One operation's growth across the scales of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Growth {
    pub operation: String,
    pub(crate) devices: Vec<u64>,
    pub(crate) service_p50_us: Vec<u64>,
    pub(crate) rows_touched: Vec<u64>,
    pub(crate) plan_blocks: Vec<u64>,
    pub(crate) service_exponent: f64,
    pub rows_exponent: f64,
    pub(crate) blocks_exponent: f64,
    pub flagged: bool,
    /// What the largest scale's evidence names as responsible (flagged operations only).
    pub responsible: Vec<String>,
    /// Why growth could not be judged (an operation EXPLAIN did not accept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_judged: Option<String>,
}

impl Growth {
    /// One line for people.
    pub(crate) fn describe(&self) -> String {
        let last = self.devices.len() - 1;
        format!(
            "{}: cost grows as devices^{:.2} in rows touched ({} → {}) and ^{:.2} in plan blocks ({} → {}) from {} to {} devices (service p50 {:.2} → {:.2} ms, ^{:.2}); {}",
            self.operation,
            self.rows_exponent,
            self.rows_touched[0],
            self.rows_touched[last],
            self.blocks_exponent,
            self.plan_blocks[0],
            self.plan_blocks[last],
            self.devices[0],
            self.devices[last],
            self.service_p50_us[0] as f64 / 1000.0,
            self.service_p50_us[last] as f64 / 1000.0,
            self.service_exponent,
            self.responsible.join("; ")
        )
    }
}

/// The terminal section: one line per operation, flagged ones with their evidence.
pub(crate) fn summary(growth: &[Growth]) -> String {
    if growth.is_empty() {
        return "\ncost growth: needs two or more scales\n".into();
    }
    let mut out = format!(
        "\ncost growth, exponent of devices (flagged at >= {FLAG_EXPONENT} in rows touched or plan blocks, and +{MIN_GROWTH} or more)\n  {:<22} {:>9} {:>9} {:>9} {:>14} {:>14}\n",
        "operation", "rows ^", "blocks ^", "svc ^", "rows touched", "plan blocks"
    );
    for g in growth {
        let last = g.devices.len() - 1;
        out.push_str(&format!(
            "  {:<22} {:>9.2} {:>9.2} {:>9.2} {:>14} {:>14}  {}\n",
            g.operation,
            g.rows_exponent,
            g.blocks_exponent,
            g.service_exponent,
            format!("{} → {}", g.rows_touched[0], g.rows_touched[last]),
            format!("{} → {}", g.plan_blocks[0], g.plan_blocks[last]),
            match (&g.not_judged, g.flagged) {
                (Some(why), _) => why.clone(),
                (None, true) => "FINDING".into(),
                (None, false) => "ok".into(),
            }
        ));
        for r in &g.responsible {
            out.push_str(&format!("      {r}\n"));
        }
    }
    out
}

/// Least-squares slope of ln y on ln x (values below 1 count as 1).
pub(crate) fn exponent(x: &[u64], y: &[u64]) -> f64 {
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .map(|(a, b)| ((*a.max(&1) as f64).ln(), (*b.max(&1) as f64).ln()))
        .collect();
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

fn flagged(x: &[u64], y: &[u64]) -> bool {
    let (first, last) = (y[0], y[y.len() - 1]);
    exponent(x, y) >= FLAG_EXPONENT && last.saturating_sub(first) >= MIN_GROWTH
}

/// Growth of every operation over the scales (at least two distinct ones, else nothing).
pub(crate) fn analyse(scales: &[ScaleReport]) -> Vec<Growth> {
    let mut scales: Vec<&ScaleReport> = scales.iter().collect();
    scales.sort_by_key(|s| s.devices);
    scales.dedup_by_key(|s| s.devices);
    if scales.len() < 2 {
        return Vec::new();
    }
    let devices: Vec<u64> = scales.iter().map(|s| s.devices).collect();
    let names: Vec<String> = scales[0]
        .operations
        .iter()
        .map(|o| o.name.clone())
        .collect();
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let costs: Vec<Option<&OpCost>> = scales.iter().map(|s| s.costs.get(i)).collect();
        let pick = |f: fn(&OpCost) -> u64| -> Vec<u64> {
            costs.iter().map(|c| c.map(f).unwrap_or(0)).collect()
        };
        let service: Vec<u64> = scales
            .iter()
            .map(|s| s.operations.get(i).map(|o| o.service_p50_us).unwrap_or(0))
            .collect();
        let (rows, blocks) = (pick(|c| c.rows_touched), pick(|c| c.plan_blocks));
        let not_judged = costs.iter().zip(&devices).find_map(|(c, d)| match c {
            None => Some(format!("not explained at {d} devices")),
            Some(c) => c
                .error
                .as_ref()
                .map(|e| format!("not explained at {d} devices: {e}")),
        });
        let flag = not_judged.is_none() && (flagged(&devices, &rows) || flagged(&devices, &blocks));
        let responsible = match (flag, costs.first(), costs.last()) {
            (true, Some(Some(small)), Some(Some(large))) => responsible(small, large),
            _ => Vec::new(),
        };
        out.push(Growth {
            operation: name.clone(),
            service_exponent: exponent(&devices, &service),
            rows_exponent: exponent(&devices, &rows),
            blocks_exponent: exponent(&devices, &blocks),
            devices: devices.clone(),
            service_p50_us: service,
            rows_touched: rows,
            plan_blocks: blocks,
            flagged: flag,
            responsible,
            not_judged,
        });
    }
    out
}

/// At the largest scale: the relations whose rows grew most, each with what reads or writes
/// them — a sequential scan of the plan (with its filter), else the triggers that fired (with
/// the views they refresh and tables they lock), else index fetches; then every trigger's time.
fn responsible(small: &OpCost, large: &OpCost) -> Vec<String> {
    let user_triggers: Vec<&TriggerTime> = large
        .triggers
        .iter()
        .filter(|t| !t.function.is_empty())
        .collect();
    let mut out: Vec<String> = grown_relations(small, large)
        .into_iter()
        .take(3)
        .map(|r| relation_reader(r, large, &user_triggers))
        .collect();
    if out.is_empty() {
        out.push(format!(
            "the plan's own blocks grew ({} → {}); no table's rows grew",
            small.plan_blocks, large.plan_blocks
        ));
    }
    out.extend(user_triggers.into_iter().map(trigger_line));
    out
}

/// The relations whose touched rows grew by at least [`MIN_GROWTH`] from the smallest to the
/// largest scale, most grown first.
fn grown_relations<'a>(small: &OpCost, large: &'a OpCost) -> Vec<&'a RelationRows> {
    let mut grown: Vec<(u64, &RelationRows)> = large
        .relations
        .iter()
        .map(|r| {
            let before = small
                .relations
                .iter()
                .find(|s| s.relation == r.relation)
                .map(|s| s.touched())
                .unwrap_or(0);
            (r.touched().saturating_sub(before), r)
        })
        .filter(|(d, _)| *d >= MIN_GROWTH)
        .collect();
    grown.sort_by_key(|g| std::cmp::Reverse(g.0));
    grown.into_iter().map(|(_, r)| r).collect()
}

/// One grown relation's rows and what read or wrote them: the plan's sequential scan of it,
/// else the user's triggers, else the plan's index scans.
fn relation_reader(r: &RelationRows, large: &OpCost, user_triggers: &[&TriggerTime]) -> String {
    let what = if r.materialized_view {
        "materialized view"
    } else {
        "table"
    };
    let rows = format!(
        "{what} {}: {} rows read by sequential scan, {} index entries read, {} written",
        r.relation, r.seq_read, r.index_read, r.written
    );
    let scan = large
        .seq_scans
        .iter()
        .find(|s| same_relation(&s.relation, &r.relation));
    match scan {
        Some(s) => format!(
            "Seq Scan on {} in the plan ({} rows scanned{}) — {rows}",
            s.relation,
            s.rows_scanned,
            if s.filter.is_empty() {
                String::new()
            } else {
                format!(", Filter: {}; no index serves it", s.filter)
            }
        ),
        None if !user_triggers.is_empty() => format!(
            "{rows}, not by the plan: by its trigger(s) {}",
            user_triggers
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("{rows} by the plan's index scans"),
    }
}

/// One user trigger that fired: where, which function, what it refreshes and locks, its time.
fn trigger_line(t: &TriggerTime) -> String {
    let mut does = Vec::new();
    if !t.refreshes.is_empty() {
        does.push(format!(
            "refreshes materialized view {}",
            t.refreshes.join(", ")
        ));
    }
    if !t.locks.is_empty() {
        does.push(format!("locks {}", t.locks.join(", ")));
    }
    format!(
        "trigger {} on {} (function {}{}): {:.2} ms in {} call(s)",
        t.name,
        t.relation,
        t.function,
        if does.is_empty() {
            String::new()
        } else {
            format!("; {}", does.join("; "))
        },
        t.time_ms,
        t.calls
    )
}

/// A plan names a relation unqualified; statistics may qualify it.
fn same_relation(plan: &str, stats: &str) -> bool {
    let strip = |s: &str| {
        s.rsplit('.')
            .next()
            .unwrap_or(s)
            .trim_matches('"')
            .to_string()
    };
    strip(plan) == strip(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_separate_constant_logarithmic_and_linear_growth() {
        let n = [1000, 10_000, 100_000];
        assert!(exponent(&n, &[4, 4, 4]).abs() < 1e-9);
        // B-tree depth: one more level per decade.
        assert!(exponent(&n, &[3, 4, 5]) < 0.15);
        assert!((exponent(&n, &[1000, 10_000, 100_000]) - 1.0).abs() < 1e-9);
        assert!(!flagged(&n, &[3, 4, 5]));
        assert!(flagged(&n, &[1000, 10_000, 100_000]));
        // Proportional but tiny: a handful of rows more is no finding.
        assert!(!flagged(&[100, 200], &[2, 4]));
    }
}
