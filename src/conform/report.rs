//! Writing a [`ConformReport`]: pass/fail lines grouped by kind on stdout, `junit.xml` and
//! `conform.json` in the report directory.

use std::fmt::Write as _;
use std::path::Path;

use crate::conform::outcome::{ConformReport, Kind, Status};
use crate::report::outdir;
use crate::Error;

/// The human listing: one line per check, grouped by kind; details and SQL under bad ones.
pub fn text(report: &ConformReport, report_dir: Option<&Path>) -> String {
    let mut s = String::new();
    for kind in Kind::ALL {
        let checks: Vec<_> = report.checks.iter().filter(|c| c.kind == kind).collect();
        if checks.is_empty() {
            continue;
        }
        let _ = writeln!(s, "{}", kind.label());
        for c in checks {
            let inline = c.status == Status::Pass
                && matches!(c.kind, Kind::Migrations | Kind::Preservation)
                && !c.detail.is_empty()
                && c.detail.len() <= 120;
            if inline {
                let _ = writeln!(s, "  {:<7} {} ({})", c.status.label(), c.name, c.detail);
            } else {
                let _ = writeln!(s, "  {:<7} {}", c.status.label(), c.name);
            }
            let show_detail = c.status != Status::Pass;
            if show_detail && !c.detail.is_empty() {
                for line in c.detail.lines() {
                    let _ = writeln!(s, "          {line}");
                }
            }
            if c.status.is_bad() && !c.evidence.is_empty() {
                let _ = writeln!(s, "          evidence:");
                for line in &c.evidence {
                    let _ = writeln!(s, "            {line}");
                }
            }
            if c.status.is_bad() || c.status == Status::Waived {
                if let Some(sql) = &c.sql {
                    let _ = writeln!(s, "          shows it:");
                    for line in sql.lines() {
                        let _ = writeln!(s, "            {line}");
                    }
                }
            }
        }
    }
    recap(report, &mut s);
    let sum = report.summary();
    let _ = write!(
        s,
        "conform {}: {} passed, {} failed, {} findings, {} waived, {} skipped",
        report.pack, sum.passed, sum.failed, sum.findings, sum.waived, sum.skipped
    );
    if sum.not_applicable > 0 {
        let _ = write!(s, ", {} not applicable", sum.not_applicable);
    }
    if let Some(d) = report_dir {
        let _ = write!(s, " → {}", d.display());
    }
    s.push('\n');
    s
}

/// The failures, then the findings, each on one line, so the end of a long listing says
/// what needs attention without scrolling back.
fn recap(report: &ConformReport, s: &mut String) {
    let bad: Vec<_> = [Status::Fail, Status::Finding]
        .iter()
        .flat_map(|st| report.checks.iter().filter(move |c| c.status == *st))
        .collect();
    if bad.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nto look at, most severe first ({}):", bad.len());
    for c in bad {
        let _ = writeln!(s, "  {:<7} {}", c.status.label(), c.name);
    }
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testsuite>` per kind, one `<testcase>` per check; findings are failures.
pub(crate) fn junit(report: &ConformReport) -> String {
    let sum = report.summary();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<testsuites name=\"conform {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">",
        xml_escape(&report.pack),
        report.checks.len(),
        sum.failed + sum.findings,
        sum.skipped + sum.waived + sum.not_applicable
    );
    for kind in Kind::ALL {
        let checks: Vec<_> = report.checks.iter().filter(|c| c.kind == kind).collect();
        if checks.is_empty() {
            continue;
        }
        let failures = checks.iter().filter(|c| c.status.is_bad()).count();
        let skipped = checks
            .iter()
            .filter(|c| {
                matches!(
                    c.status,
                    Status::Skip | Status::Waived | Status::NotApplicable
                )
            })
            .count();
        let _ = writeln!(
            s,
            "  <testsuite name=\"conform.{}.{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
            xml_escape(&report.pack),
            kind.label(),
            checks.len()
        );
        for c in checks {
            let _ = write!(
                s,
                "    <testcase classname=\"conform.{}.{}\" name=\"{}\"",
                xml_escape(&report.pack),
                kind.label(),
                xml_escape(&c.name)
            );
            let mut body = c.detail.clone();
            if !c.evidence.is_empty() {
                body.push_str("\nevidence:\n");
                body.push_str(&c.evidence.join("\n"));
            }
            if let Some(sql) = &c.sql {
                body.push_str("\n-- shows it:\n");
                body.push_str(sql);
            }
            match c.status {
                Status::Pass => s.push_str("/>\n"),
                Status::Fail | Status::Finding => {
                    let kind_attr = if c.status == Status::Finding {
                        "finding"
                    } else {
                        "failure"
                    };
                    let _ = writeln!(
                        s,
                        ">\n      <failure type=\"{kind_attr}\" message=\"{}\">{}</failure>\n    </testcase>",
                        xml_escape(&c.detail.lines().next().unwrap_or_default().chars().take(300).collect::<String>()),
                        xml_escape(&body)
                    );
                }
                Status::Skip | Status::Waived | Status::NotApplicable => {
                    let _ = writeln!(
                        s,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml_escape(&c.detail)
                    );
                }
            }
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

/// `conform.json`.
pub(crate) fn json(report: &ConformReport) -> serde_json::Value {
    let outcome = report.outcome();
    serde_json::json!({
        "pack": report.pack,
        "source": report.source,
        "postgres": report.postgres,
        "outcome": if report.held() { "passed" } else { "failed" },
        "exit_code": outcome.code(),
        "summary": report.summary(),
        "checks": report.checks,
    })
}

/// Writes `junit.xml` and `conform.json` into `dir` (created if needed).
pub(crate) fn write(report: &ConformReport, dir: &Path) -> Result<(), Error> {
    write_parts(dir, &junit(report), &json(report))
}

/// Writes `junit` and the `conform.json` value `json` into `dir` (created if needed); for
/// reports whose JSON says more than [`json`] does (protocol conformance: the target).
pub(crate) fn write_parts(dir: &Path, junit: &str, json: &serde_json::Value) -> Result<(), Error> {
    outdir::write_file(dir, "junit.xml", junit.as_bytes())?;
    outdir::write_json(dir, "conform.json", json)?;
    Ok(())
}
