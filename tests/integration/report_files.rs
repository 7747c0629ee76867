//! Every file of a report directory is written and reads back: report.json round-trips,
//! junit.xml is well-formed JUnit with one testcase per budget and integrity check,
//! latency.hlog reads back with the hdrhistogram crate to the same counts, summary.md and
//! report.html carry every operation (the HTML with a chart per operation that has data, and
//! no reference to anything outside the file).

use crate::common;
use crate::common::hlog;

use std::collections::BTreeMap;

use common::{build_report, record_run, RunSpec};
use e2ee_harness::report::model::{decode_histogram, Integrity, RunReport};
use e2ee_harness::report::{json, write_report_dir};
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use quick_xml::events::Event;
use quick_xml::Reader;

/// A recorded run with one budget that holds, one that cannot (half the observed value),
/// and one integrity failure.
fn failing_report() -> RunReport {
    let samples = record_run(4, 25, 11);
    let probe = build_report(&samples, &RunSpec::new("files", 4));
    let fetch_p95 = probe.operations["bundle_fetch"].p95_us;
    let insert_p99 = probe.operations["message_insert"].p99_us;
    let mut spec = RunSpec::new("files", 4);
    spec.budgets = vec![
        ("bundle_fetch".into(), "p95".into(), fetch_p95 * 2),
        ("message_insert".into(), "p99".into(), insert_p99 / 2),
    ];
    spec.integrity = Integrity {
        messages_sent: 100,
        messages_delivered: 99,
        messages_decrypted: 99,
        messages_lost: 1,
        ..Default::default()
    };
    build_report(&samples, &spec)
}

#[test]
fn report_json_round_trips_exactly() {
    let report = failing_report();
    let dir = tempfile::tempdir().unwrap();
    let files = write_report_dir(dir.path(), &report).unwrap();
    let back = json::read(&files.json).unwrap();
    assert_eq!(back, report);
    // Reading the directory is the same as reading the file.
    assert_eq!(json::read(dir.path()).unwrap(), report);
    // Re-serializing gives the same JSON document.
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).unwrap();
    assert_eq!(a, serde_json::to_value(&back).unwrap());
}

#[derive(Debug, Default)]
struct Case {
    name: String,
    classname: String,
    failure_message: Option<String>,
}

#[derive(Debug, Default)]
struct Suite {
    name: String,
    tests: usize,
    failures: usize,
    cases: Vec<Case>,
}

/// Parses junit.xml into suites, checking the nesting testsuites > testsuite > testcase >
/// failure as it goes.
fn parse_junit(xml: &str) -> (BTreeMap<String, String>, Vec<Suite>) {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut root = BTreeMap::new();
    let mut suites: Vec<Suite> = Vec::new();
    let attrs = |e: &quick_xml::events::BytesStart| -> BTreeMap<String, String> {
        e.attributes()
            .map(|a| {
                let a = a.expect("well-formed attribute");
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().expect("escaped value").into_owned(),
                )
            })
            .collect()
    };
    loop {
        let ev = reader.read_event().expect("junit.xml is well-formed XML");
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            Event::End(_) => {
                stack.pop();
                (None, false)
            }
            Event::Eof => break,
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            let a = attrs(&e);
            let parent = stack.last().map(String::as_str);
            match name.as_str() {
                "testsuites" => {
                    assert_eq!(parent, None);
                    root = a;
                }
                "testsuite" => {
                    assert_eq!(parent, Some("testsuites"));
                    suites.push(Suite {
                        name: a["name"].clone(),
                        tests: a["tests"].parse().unwrap(),
                        failures: a["failures"].parse().unwrap(),
                        cases: Vec::new(),
                    });
                }
                "testcase" => {
                    assert_eq!(parent, Some("testsuite"));
                    suites.last_mut().unwrap().cases.push(Case {
                        name: a["name"].clone(),
                        classname: a["classname"].clone(),
                        failure_message: None,
                    });
                }
                "failure" => {
                    assert_eq!(parent, Some("testcase"));
                    let case = suites.last_mut().unwrap().cases.last_mut().unwrap();
                    case.failure_message = Some(a["message"].clone());
                }
                other => panic!("unexpected element <{other}> in junit.xml"),
            }
            if !empty {
                stack.push(name);
            }
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    (root, suites)
}

#[test]
fn junit_has_one_testcase_per_budget_and_integrity_check() {
    let report = failing_report();
    let dir = tempfile::tempdir().unwrap();
    let files = write_report_dir(dir.path(), &report).unwrap();
    let (root, suites) = parse_junit(&std::fs::read_to_string(&files.junit).unwrap());

    let total: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failed: usize = suites
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.failure_message.is_some())
        .count();
    assert_eq!(root["tests"].parse::<usize>().unwrap(), total);
    assert_eq!(root["failures"].parse::<usize>().unwrap(), failed);
    for s in &suites {
        assert_eq!(s.tests, s.cases.len(), "suite {}", s.name);
        assert_eq!(
            s.failures,
            s.cases
                .iter()
                .filter(|c| c.failure_message.is_some())
                .count(),
            "suite {}",
            s.name
        );
        assert!(s.cases.iter().all(|c| !c.classname.is_empty()));
    }

    let budgets = suites.iter().find(|s| s.name == "budgets").unwrap();
    assert_eq!(budgets.cases.len(), report.budgets.len());
    for b in &report.budgets {
        let case = budgets
            .cases
            .iter()
            .find(|c| {
                c.name
                    .starts_with(&format!("{}.{} ", b.operation, b.percentile))
            })
            .unwrap_or_else(|| panic!("no testcase for {}.{}", b.operation, b.percentile));
        match (&case.failure_message, b.passed) {
            (None, true) => {}
            (Some(msg), false) => {
                let observed = e2ee_harness::report::summary::format_us(b.observed_us.unwrap());
                let limit = e2ee_harness::report::summary::format_us(b.limit_us);
                assert!(
                    msg.contains(&format!(
                        "observed {observed} ({}us)",
                        b.observed_us.unwrap()
                    )) && msg.contains(&format!("limit {limit} ({}us)", b.limit_us)),
                    "failure message shows observed and limit: {msg}"
                );
            }
            other => panic!("budget {b:?} has junit verdict {other:?}"),
        }
    }
    assert!(
        report.budgets.iter().any(|b| b.passed) && report.budgets.iter().any(|b| !b.passed),
        "the fixture has one passing and one failing budget"
    );

    let integrity = suites.iter().find(|s| s.name == "integrity").unwrap();
    assert_eq!(
        integrity.cases.len(),
        report.integrity.failure_counts().len()
    );
    let lost = integrity
        .cases
        .iter()
        .find(|c| c.name.starts_with("messages_lost"))
        .unwrap();
    assert_eq!(
        lost.failure_message.as_deref(),
        Some("messages_lost: observed 1 > limit 0")
    );
    assert_eq!(integrity.failures, 1);
}

#[test]
fn hlog_reads_back_with_the_same_counts() {
    let report = failing_report();
    let dir = tempfile::tempdir().unwrap();
    let files = write_report_dir(dir.path(), &report).unwrap();
    let bytes = std::fs::read(&files.hlog).unwrap();

    let mut start_time = None;
    let mut base_time = None;
    // op -> (interval start ms, count) as read back
    let mut read: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut deserializer = Deserializer::new();
    let mut last_start = std::time::Duration::ZERO;
    for entry in IntervalLogIterator::new(&bytes) {
        match entry.expect("every line of latency.hlog parses") {
            LogEntry::StartTime(t) => start_time = Some(t),
            LogEntry::BaseTime(t) => base_time = Some(t),
            LogEntry::Interval(ilh) => {
                assert!(
                    ilh.start_timestamp() >= last_start,
                    "intervals in time order"
                );
                last_start = ilh.start_timestamp();
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
                let h: hdrhistogram::Histogram<u64> =
                    deserializer.deserialize(&mut raw.as_slice()).unwrap();
                assert_eq!(ilh.max(), h.max() as f64);
                read.entry(tag)
                    .or_default()
                    .push((ilh.start_timestamp().as_millis() as u64, h.len()));
            }
        }
    }
    let window_start = std::time::SystemTime::from(report.window.start)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    for t in [start_time, base_time] {
        let t = t.expect("StartTime and BaseTime headers");
        assert!(t.abs_diff(window_start) < std::time::Duration::from_millis(1));
    }
    assert_eq!(
        read.keys().collect::<Vec<_>>(),
        report.operations.keys().collect::<Vec<_>>()
    );
    for (name, op) in &report.operations {
        let expected: Vec<(u64, u64)> = op
            .intervals
            .iter()
            .map(|iv| (iv.offset_ms, iv.count))
            .collect();
        assert_eq!(read[name], expected, "intervals of {name}");
        let total: u64 = read[name].iter().map(|(_, c)| c).sum();
        assert_eq!(total, op.count, "count of {name}");
    }
    hlog::assert_percentiles_match(&report, &bytes);
}

#[test]
fn markdown_summary_lists_every_operation_and_budget() {
    let report = failing_report();
    let dir = tempfile::tempdir().unwrap();
    let files = write_report_dir(dir.path(), &report).unwrap();
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(md.starts_with("### e2ee-harness · files · ❌ FAIL"), "{md}");
    for (name, op) in &report.operations {
        assert!(
            md.contains(&format!("| `{name}` | {} | {} |", op.count, op.errors)),
            "row for {name}"
        );
    }
    for b in &report.budgets {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| `{}.{}` |", b.operation, b.percentile)))
            .unwrap();
        assert!(
            row.ends_with(if b.passed { "✅ |" } else { "❌ |" }),
            "{row}"
        );
    }
    assert!(md.contains("**messages_lost 1**"));
    for f in &report.failures {
        assert!(md.contains(&format!("- {f}")));
    }
}

/// `data-points` of the chart of `kind` (for `op`, if given) in the page.
fn chart_points(html: &str, kind: &str, op: Option<&str>) -> usize {
    let marker = match op {
        Some(op) => format!(r#"data-chart="{kind}" data-op="{op}" data-points=""#),
        None => format!(r#"data-chart="{kind}" data-points=""#),
    };
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no chart {marker}"))
        + marker.len();
    let rest = &html[at..];
    let svg_end = rest.find("</svg>").unwrap();
    assert!(
        rest[..svg_end].contains("<polyline") || rest[..svg_end].contains("<circle"),
        "chart {kind} {op:?} draws a line"
    );
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

#[test]
fn html_is_self_contained_with_a_chart_per_operation() {
    let report = failing_report();
    let dir = tempfile::tempdir().unwrap();
    let files = write_report_dir(dir.path(), &report).unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains(r#"id="verdict">FAIL<"#));

    for (name, op) in &report.operations {
        assert!(html.contains(&format!(r#"id="op-{name}""#)));
        // The spectrum has a point per percentile step; over time, three lines of one point
        // per interval with samples.
        assert!(chart_points(&html, "spectrum", Some(name)) > 10, "{name}");
        let with_samples = op.intervals.iter().filter(|i| i.count > 0).count();
        assert_eq!(
            chart_points(&html, "percentiles-over-time", Some(name)),
            3 * with_samples,
            "{name}"
        );
    }
    let intervals = report.window.duration_s as usize;
    assert_eq!(
        chart_points(&html, "throughput", None),
        report.operations.len() * intervals
    );
    let with_errors = report.operations.values().filter(|o| o.errors > 0).count();
    assert!(with_errors > 0, "the fixture records errors");
    assert_eq!(chart_points(&html, "errors", None), with_errors * intervals);

    // Budgets are drawn as reference lines on their operation's charts.
    assert_eq!(
        html.matches(r#"class="reference""#).count(),
        2 * report.budgets.len()
    );
    // Nothing outside the file: no scripts, stylesheets, images, fonts or remote URLs.
    for banned in [
        "<script", "<link", "<img", "<iframe", "src=", "url(", "@import", "http://", "https://",
    ] {
        let allowed_in_source =
            report.scenario.source.contains(banned) || report.environment.target.contains(banned);
        if !allowed_in_source {
            assert!(!html.contains(banned), "report.html contains {banned}");
        }
    }
    for (i, _) in html.match_indices("href=\"") {
        assert!(
            html[i + 6..].starts_with('#'),
            "only in-page links: {}",
            &html[i..i + 40]
        );
    }
}

#[test]
fn a_clean_run_passes_in_every_file() {
    let samples = record_run(3, 20, 5);
    let probe = build_report(&samples, &RunSpec::new("clean", 3));
    let mut spec = RunSpec::new("clean", 3);
    spec.budgets = vec![(
        "delivery".into(),
        "p99".into(),
        probe.operations["delivery"].max_us,
    )];
    let report = build_report(&samples, &spec);
    assert!(report.passed, "{:?}", report.failures);
    let dir = tempfile::tempdir().unwrap();
    let files = write_report_dir(dir.path(), &report).unwrap();
    let (root, _) = parse_junit(&std::fs::read_to_string(&files.junit).unwrap());
    assert_eq!(root["failures"], "0");
    assert!(std::fs::read_to_string(&files.markdown)
        .unwrap()
        .contains("✅ PASS"));
    assert!(std::fs::read_to_string(&files.html)
        .unwrap()
        .contains(r#"id="verdict">PASS<"#));
}

#[test]
fn a_report_that_cannot_render_writes_nothing() {
    let mut report = failing_report();
    report.operations.get_mut("delivery").unwrap().histogram = "not a histogram".into();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let err = write_report_dir(&out, &report).unwrap_err();
    assert!(
        err.to_string().contains("operations.delivery.histogram"),
        "{err}"
    );
    assert_eq!(err.outcome(), e2ee_harness::Outcome::BadInput);
    assert!(!out.exists(), "nothing written");
    // Sanity: the undamaged report's histogram decodes.
    assert!(decode_histogram(&failing_report().operations["delivery"].histogram).is_ok());
}

#[test]
fn an_operation_with_only_errors_renders_everywhere() {
    // Every key_insert attempt failed: no samples, only errors.
    let mut samples = record_run(2, 10, 13);
    for s in samples.iter_mut().filter(|s| s.op == "key_insert") {
        s.latency_us = None;
    }
    let mut spec = RunSpec::new("errors-only", 2);
    spec.budgets = vec![("key_insert".into(), "p95".into(), 1_000_000)];
    let report = build_report(&samples, &spec);
    let op = &report.operations["key_insert"];
    assert_eq!((op.count, op.errors), (0, 20));
    assert_eq!(report.budgets[0].observed_us, None);
    assert!(!report.passed);

    let dir = tempfile::tempdir().unwrap();
    let files = write_report_dir(dir.path(), &report).unwrap();
    assert_eq!(json::read(dir.path()).unwrap(), report);
    let html = std::fs::read_to_string(&files.html).unwrap();
    let marker = r#"data-chart="spectrum" data-op="key_insert" data-points="0""#;
    let at = html.find(marker).expect("an empty spectrum chart");
    assert!(html[at..]
        .split("</svg>")
        .next()
        .unwrap()
        .contains("no samples"));
    let (_, suites) = parse_junit(&std::fs::read_to_string(&files.junit).unwrap());
    let case = &suites.iter().find(|s| s.name == "budgets").unwrap().cases[0];
    assert_eq!(
        case.failure_message.as_deref(),
        Some("key_insert.p95: no samples (limit 1.00s)")
    );
    let hlog = std::fs::read(&files.hlog).unwrap();
    let tagged = IntervalLogIterator::new(&hlog)
        .filter_map(|e| match e.unwrap() {
            LogEntry::Interval(i) => Some(i.tag().map(|t| t.as_str().to_string())),
            _ => None,
        })
        .filter(|t| t.as_deref() == Some("key_insert"))
        .count();
    assert_eq!(tagged, op.intervals.len());
}

/// The `<svg>` of the chart of `kind` (for `op`, if given).
fn chart_svg<'a>(html: &'a str, kind: &str, op: Option<&str>) -> &'a str {
    let marker = match op {
        Some(op) => format!(r#"data-chart="{kind}" data-op="{op}""#),
        None => format!(r#"data-chart="{kind}" data-points"#),
    };
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no chart {marker}"));
    let rest = &html[at..];
    &rest[..rest.find("</svg>").unwrap()]
}

/// What a reader needs to tell the lines apart: one colour per operation, p95 drawn on top of
/// a p99 halo, time axes that end with the measured window, and labels that say what they are.
#[test]
fn html_gives_every_operation_its_colour_and_keeps_p95_and_p99_apart() {
    let report = failing_report();
    let dir = tempfile::tempdir().unwrap();
    let files = write_report_dir(dir.path(), &report).unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();

    let throughput = chart_svg(&html, "throughput", None);
    let strokes: std::collections::BTreeSet<&str> = throughput
        .split("<polyline")
        .skip(1)
        .filter_map(|p| p.split("stroke=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(strokes.len(), report.operations.len(), "{strokes:?}");

    let (name, _) = report.operations.iter().next().unwrap();
    let over_time = chart_svg(&html, "percentiles-over-time", Some(name));
    let order: Vec<&str> = over_time
        .split("<polyline class=\"series\" data-series=\"")
        .skip(1)
        .filter_map(|p| p.split('"').next())
        .collect();
    assert_eq!(order, ["p99", "p95", "p50"], "p99 first, under the others");
    let p99 = over_time.split("data-series=\"p99\"").nth(1).unwrap();
    assert!(p99.contains("stroke-width=\"5\""), "p99 is a halo");

    // Tick labels of the time axis stay inside the measured window.
    let last_tick = throughput
        .split("<text class=\"tick\"")
        .filter_map(|t| {
            t.split('>')
                .nth(1)?
                .split('<')
                .next()?
                .strip_suffix('s')?
                .parse::<f64>()
                .ok()
        })
        .fold(0.0_f64, f64::max);
    assert!(
        last_tick <= report.window.duration_s,
        "time axis runs to {last_tick}s past the {}s window",
        report.window.duration_s
    );
    assert!(
        html.contains("not applicable: goose drives the closed model only"),
        "an open-model run says why there is no goose report"
    );
}
