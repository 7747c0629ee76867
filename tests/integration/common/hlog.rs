//! Reads `latency.hlog` back with the hdrhistogram crate's own interval-log reader and checks
//! every percentile `report.json` states against the histograms found there.
#![allow(dead_code)]

use std::collections::BTreeMap;

use e2ee_harness::report::model::new_histogram;
use e2ee_harness::report::RunReport;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

/// Each tag's interval histograms, added up.
pub fn totals(hlog: &[u8]) -> BTreeMap<String, Histogram<u64>> {
    let mut out: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(hlog) {
        if let LogEntry::Interval(ilh) = entry.expect("every line of latency.hlog parses") {
            let tag = ilh
                .tag()
                .expect("every interval is tagged")
                .as_str()
                .to_string();
            let raw = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                ilh.encoded_histogram(),
            )
            .unwrap();
            let h: Histogram<u64> = deserializer.deserialize(&mut raw.as_slice()).unwrap();
            out.entry(tag)
                .or_insert_with(new_histogram)
                .add(&h)
                .unwrap();
        }
    }
    out
}

/// Every operation's count, p50..p99.9 and max in `report` equal the crate's
/// `value_at_quantile` on the histograms of `hlog`, and so does every budget's observed value.
pub fn assert_percentiles_match(report: &RunReport, hlog: &[u8]) {
    let read = totals(hlog);
    for (name, op) in report.operations.iter().filter(|(_, op)| op.count > 0) {
        let h = read
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in latency.hlog"));
        let stated = [
            op.count, op.p50_us, op.p90_us, op.p95_us, op.p99_us, op.p999_us, op.max_us,
        ];
        let from_hlog = [
            h.len(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.9),
            h.value_at_quantile(0.95),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
        ];
        assert_eq!(
            stated, from_hlog,
            "{name}: count, p50, p90, p95, p99, p99.9, max"
        );
    }
    for b in &report.budgets {
        let Some(h) = read.get(&b.operation) else {
            continue;
        };
        // The quantiles as decimal literals (not percent / 100, which rounds up at p99.9).
        let q = match b.percentile.as_str() {
            "p50" => 0.5,
            "p90" => 0.9,
            "p95" => 0.95,
            "p99" => 0.99,
            "p99.9" => 0.999,
            "p100" | "max" => 1.0,
            _ => continue,
        };
        let expected = h.value_at_quantile(q);
        assert_eq!(
            b.observed_us,
            Some(expected),
            "budget {}.{}",
            b.operation,
            b.percentile
        );
    }
}
