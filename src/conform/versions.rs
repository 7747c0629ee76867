//! One pack conformed on several PostgreSQL images (`conform --db docker --pg-image A
//! --pg-image B`): which checks got a different verdict on which version, so a pack whose
//! behaviour depends on the server version says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::conform::outcome::{ConformReport, Kind, Status};

/// One pack's run on one image.
pub(crate) struct VersionRun {
    pub(crate) image: String,
    pub(crate) report: ConformReport,
}

/// A check whose verdict is not the same on every image (absent on some = `None`).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Difference {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    /// image → status there (`null` where that run had no such check).
    pub(crate) statuses: BTreeMap<String, Option<Status>>,
}

/// Checks whose status differs between runs, in the order of the first run's checks, then any
/// that only later runs have.
pub(crate) fn differences(runs: &[VersionRun]) -> Vec<Difference> {
    let mut keys: Vec<(Kind, String)> = Vec::new();
    for run in runs {
        for c in &run.report.checks {
            if !keys.iter().any(|(k, n)| *k == c.kind && *n == c.name) {
                keys.push((c.kind, c.name.clone()));
            }
        }
    }
    keys.into_iter()
        .filter_map(|(kind, name)| {
            let statuses: BTreeMap<String, Option<Status>> = runs
                .iter()
                .map(|r| {
                    let status = r
                        .report
                        .checks
                        .iter()
                        .find(|c| c.kind == kind && c.name == name)
                        .map(|c| c.status);
                    (r.image.clone(), status)
                })
                .collect();
            let first = statuses.values().next().copied().flatten();
            let same = statuses.values().all(|s| *s == first);
            (!same).then_some(Difference {
                kind,
                name,
                statuses,
            })
        })
        .collect()
}

/// `versions.json`: per image its server version and summary, and the differences.
pub(crate) fn json(runs: &[VersionRun], exit_code: u8) -> serde_json::Value {
    let per_image: Vec<_> = runs
        .iter()
        .map(|r| {
            serde_json::json!({
                "image": r.image,
                "postgres": r.report.postgres,
                "outcome": if r.report.held() { "passed" } else { "failed" },
                "summary": r.report.summary(),
                "report_dir": dir_name(&r.image),
            })
        })
        .collect();
    serde_json::json!({
        "pack": runs.first().map(|r| r.report.pack.as_str()).unwrap_or_default(),
        "exit_code": exit_code,
        "versions": per_image,
        "differences": differences(runs),
    })
}

/// The closing lines: one per image, then each difference with its statuses.
pub(crate) fn text(runs: &[VersionRun]) -> String {
    let mut s = String::from("per PostgreSQL version:\n");
    for r in runs {
        let sum = r.report.summary();
        let _ = writeln!(
            s,
            "  {:<32} {}: {} passed, {} failed, {} findings",
            r.image, r.report.postgres, sum.passed, sum.failed, sum.findings
        );
    }
    let diffs = differences(runs);
    if diffs.is_empty() {
        s.push_str("  the same verdict for every check on every version\n");
        return s;
    }
    let _ = writeln!(s, "  {} checks differ between versions:", diffs.len());
    for d in &diffs {
        let cells: Vec<String> = d
            .statuses
            .iter()
            .map(|(image, st)| format!("{image}: {}", st.map_or("absent", |s| s.label())))
            .collect();
        let _ = writeln!(s, "    {} ({})", d.name, cells.join(", "));
    }
    s
}

/// The report subdirectory of an image: its name with anything but `[A-Za-z0-9._-]` as `_`.
pub(crate) fn dir_name(image: &str) -> String {
    let name: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // "." and ".." name directories that already exist.
    if name.chars().all(|c| c == '.') {
        name.replace('.', "_")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conform::outcome::Check;

    fn report(checks: Vec<Check>) -> ConformReport {
        ConformReport {
            pack: "p".into(),
            source: "s".into(),
            postgres: "PostgreSQL".into(),
            checks,
        }
    }

    #[test]
    fn only_checks_that_differ_or_are_missing_somewhere_are_listed() {
        let a = VersionRun {
            image: "pg:15".into(),
            report: report(vec![
                Check::pass(Kind::Catalog, "same"),
                Check::pass(Kind::Behaviour, "changes"),
                Check::pass(Kind::Hazards, "only on 15"),
            ]),
        };
        let mut changed = Check::pass(Kind::Behaviour, "changes");
        changed.status = Status::Fail;
        let b = VersionRun {
            image: "pg:17".into(),
            report: report(vec![Check::pass(Kind::Catalog, "same"), changed]),
        };
        let d = differences(&[a, b]);
        let names: Vec<_> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["changes", "only on 15"]);
        assert_eq!(d[0].statuses["pg:17"], Some(Status::Fail));
        assert_eq!(d[1].statuses["pg:17"], None);
    }

    #[test]
    fn image_names_become_safe_directory_names() {
        assert_eq!(
            dir_name("e2ee-harness/postgres:15"),
            "e2ee-harness_postgres_15"
        );
        assert_eq!(dir_name("../x"), ".._x");
        assert_eq!(dir_name(".."), "__");
    }
}
