//! Latency budgets: `operation.percentile <= limit`, from the scenario's `[budgets]` table or
//! from `--budget OP.pNN=LIMIT` flags (which add or override).

use std::time::Duration;

use crate::metrics::Op;

/// Where a budget came from (reported, so a reader knows a flag overrode the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BudgetSource {
    Scenario,
    CommandLine,
}

impl BudgetSource {
    pub(crate) fn label(self) -> &'static str {
        match self {
            BudgetSource::Scenario => "scenario",
            BudgetSource::CommandLine => "command line",
        }
    }
}

/// One latency budget.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Budget {
    pub(crate) op: Op,
    /// 0 < percentile <= 100.
    pub(crate) percentile: f64,
    /// As written, normalised: `p95`, `p99.9`.
    pub(crate) label: String,
    pub(crate) limit_us: u64,
    pub(crate) source: BudgetSource,
}

/// Parses a percentile key: `p50`, `p95`, `p99`, `p99.9`, `p999` (= 99.9), `p9999` (= 99.99),
/// `p100` (= max). Returns the percentile and its normalised label.
pub(crate) fn parse_percentile(key: &str) -> Result<(f64, String), String> {
    let bad =
        || format!("`{key}` is not a percentile; write p50, p90, p95, p99, p99.9 (or p999), p100");
    let digits = key.strip_prefix('p').ok_or_else(bad)?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value: f64 = if digits.contains('.') || digits.len() <= 2 || digits == "100" {
        digits.parse().map_err(|_| bad())?
    } else if let Some(decimals) = digits.strip_prefix("99") {
        // p999 → 99.9, p9999 → 99.99: the digits after the first two are decimals.
        format!("99.{decimals}").parse().map_err(|_| bad())?
    } else {
        return Err(format!(
            "percentile `{key}` must be above 0 and at most 100"
        ));
    };
    if !(value > 0.0 && value <= 100.0) {
        return Err(format!(
            "percentile `{key}` must be above 0 and at most 100"
        ));
    }
    Ok((value, format!("p{value}")))
}

/// Parses a limit such as `10ms`, `250us`, `1.5s` into whole microseconds (at least 1).
pub(crate) fn parse_limit(text: &str) -> Result<u64, String> {
    let d: Duration = humantime::parse_duration(text.trim()).map_err(|e| {
        format!(
            "limit `{text}` is not a duration ({}); write a number and a unit, e.g. 10ms, 250us or 1.5s",
            duration_problem(&e)
        )
    })?;
    let us = d.as_micros();
    if us == 0 {
        return Err(format!("limit `{text}` must be at least 1us"));
    }
    Ok(us.min(u64::MAX as u128) as u64)
}

/// What is wrong with a duration, in words (humantime's own text speaks of positions).
fn duration_problem(e: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    match e {
        E::Empty => "it is empty".into(),
        E::NumberExpected(_) => "it does not start with a number".into(),
        E::InvalidCharacter(i) => format!("character {} is not part of a number or unit", i + 1),
        E::UnknownUnit { unit, .. } if unit.is_empty() => "it has no unit".into(),
        E::UnknownUnit { unit, .. } => format!("`{unit}` is not a unit"),
        E::NumberOverflow => "the number is too large".into(),
    }
}

/// Resolves an operation name, listing the known ones when it is wrong.
pub(crate) fn parse_op(name: &str) -> Result<Op, String> {
    Op::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
        format!(
            "unknown operation `{name}` in budgets; known: {}",
            known.join(", ")
        )
    })
}

/// Parses one `--budget OP.pNN=LIMIT` flag.
pub(crate) fn parse_flag(flag: &str) -> Result<Budget, String> {
    let (lhs, limit) = flag.split_once('=').ok_or_else(|| {
        format!("`{flag}` must look like OP.pNN=LIMIT, e.g. bundle_fetch.p95=10ms")
    })?;
    let (op, pct) = lhs.split_once('.').ok_or_else(|| {
        format!("`{lhs}` must name an operation and a percentile, e.g. bundle_fetch.p95")
    })?;
    let op = parse_op(op.trim())?;
    let (percentile, label) = parse_percentile(pct.trim())?;
    let limit_us = parse_limit(limit)?;
    Ok(Budget {
        op,
        percentile,
        label,
        limit_us,
        source: BudgetSource::CommandLine,
    })
}

/// Adds `extra` to `budgets`, replacing any budget on the same operation and percentile.
pub(crate) fn merge(budgets: &mut Vec<Budget>, extra: Vec<Budget>) {
    for b in extra {
        budgets.retain(|x| !(x.op == b.op && x.label == b.label));
        budgets.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_parse_in_their_usual_spellings() {
        assert_eq!(parse_percentile("p95").unwrap(), (95.0, "p95".into()));
        assert_eq!(parse_percentile("p99.9").unwrap(), (99.9, "p99.9".into()));
        assert_eq!(parse_percentile("p999").unwrap(), (99.9, "p99.9".into()));
        assert_eq!(parse_percentile("p100").unwrap(), (100.0, "p100".into()));
        assert!(parse_percentile("95").is_err());
        assert!(parse_percentile("p0").is_err());
        assert!(parse_percentile("p101").is_err());
        assert!(parse_percentile("pxx").is_err());
    }

    #[test]
    fn flags_parse_and_override() {
        let b = parse_flag("bundle_fetch.p95=1us").unwrap();
        assert_eq!(
            (b.op, b.limit_us, b.label.as_str()),
            (Op::BundleFetch, 1, "p95")
        );
        assert!(parse_flag("bundle_fetch.p95")
            .unwrap_err()
            .contains("OP.pNN=LIMIT"));
        assert!(parse_flag("nope.p95=1ms")
            .unwrap_err()
            .contains("unknown operation `nope`"));
        assert!(parse_flag("bundle_fetch.p95=soon")
            .unwrap_err()
            .contains("not a duration"));
        let mut budgets = vec![Budget {
            source: BudgetSource::Scenario,
            ..parse_flag("bundle_fetch.p95=10ms").unwrap()
        }];
        merge(
            &mut budgets,
            vec![b.clone(), parse_flag("key_insert.p99=20ms").unwrap()],
        );
        assert_eq!(budgets.len(), 2);
        assert!(budgets.contains(&b));
    }
}
