//! report.html in a real browser: headless Chromium loads it with no console message at all
//! (no error, no blocked fetch) and the rendered DOM holds every chart with its lines.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`; `.ci/run` installs it). Without
//! Chromium it fails, saying so; it never passes or skips silently.

use crate::common;

use std::process::Command;

use common::{build_report, record_run, RunSpec};
use e2ee_harness::report::write_report_dir;

fn chromium(args: &[&str], page: &str) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(page)
        .output()
        .expect("chromium is installed (apt-get install -y chromium)");
    assert!(out.status.success(), "chromium failed: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn renders_in_headless_chromium_without_console_messages() {
    let samples = record_run(5, 20, 41);
    let probe = build_report(&samples, &RunSpec::new("browser", 5));
    let mut spec = RunSpec::new("browser", 5);
    spec.budgets = vec![(
        "delivery".into(),
        "p95".into(),
        probe.operations["delivery"].p95_us,
    )];
    let report = build_report(&samples, &spec);
    let dir = tempfile::tempdir().unwrap();
    let files = write_report_dir(dir.path(), &report).unwrap();
    let page = format!("file://{}", files.html.display());

    let (dom, log) = chromium(&["--dump-dom"], &page);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    for (name, op) in &report.operations {
        for kind in ["spectrum", "percentiles-over-time"] {
            let marker = format!(r#"data-chart="{kind}" data-op="{name}""#);
            let at = dom
                .find(&marker)
                .unwrap_or_else(|| panic!("{marker} rendered"));
            let svg = dom[at..].split("</svg>").next().unwrap();
            assert!(
                op.count == 0 || svg.contains("<polyline"),
                "{marker} has a line"
            );
        }
    }
    assert!(dom.contains(r#"data-chart="throughput""#));

    let shot = dir.path().join("shot.png");
    chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400",
        ],
        &page,
    );
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
}
