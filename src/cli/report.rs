//! `e2ee-harness report compare | merge`.

use std::path::{Path, PathBuf};

use crate::cli::{ReportArgs, ReportCommand};
use crate::report::{compare, json, merge, merge_check, write_report_dir, RunReport};
use crate::{Error, Outcome};

pub(crate) fn run(args: ReportArgs) -> Result<Outcome, Error> {
    match args.command {
        ReportCommand::Compare {
            baseline,
            current,
            max_regression,
            format,
        } => {
            let current = one_current(current)?;
            let threshold = compare::parse_threshold(&max_regression)?;
            let base = read(&baseline)?;
            let cur = read(&current)?;
            let cmp = compare::compare(
                &base,
                &cur,
                &baseline.display().to_string(),
                &current.display().to_string(),
                threshold,
            );
            let text = if format == "markdown" {
                cmp.render_markdown()
            } else {
                cmp.render_text()
            };
            print!("{text}");
            Ok(if cmp.regressed() {
                Outcome::Failed
            } else {
                Outcome::Pass
            })
        }
        ReportCommand::Merge { dirs, out } => {
            if dirs.iter().any(|d| same_dir(d, &out)) {
                return Err(Error::BadInput(format!(
                    "--out {} is one of the inputs; merge into a new directory",
                    out.display()
                )));
            }
            merge_check::check_paths(&dirs).map_err(|e| Error::BadInput(e.to_string()))?;
            let reports = dirs
                .iter()
                .map(|d| read(d))
                .collect::<Result<Vec<_>, _>>()?;
            let labels: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            let merged = merge::merge(&reports, &labels)?;
            let files = write_report_dir(&out, &merged)?;
            print!("{}", crate::report::summary::render(&merged));
            eprintln!("{}", merged_line(&merged, &files.dir));
            Ok(if merged.passed {
                Outcome::Pass
            } else {
                Outcome::Failed
            })
        }
    }
}

/// What was merged: workers, shard layout, merged window, and every warning.
fn merged_line(merged: &RunReport, dir: &Path) -> String {
    let Some(info) = &merged.merged else {
        return format!("merged into {}", dir.display());
    };
    let layout = match info.shards {
        Some(n) if info.missing_shards.is_empty() => format!(" (shards 1..{n} of {n})"),
        Some(n) => format!(
            " ({} of {n} shards; missing {:?})",
            info.workers, info.missing_shards
        ),
        None => String::new(),
    };
    let mut out = format!(
        "merged {} workers{layout} into {}: window {} + {:.1} s",
        info.workers,
        dir.display(),
        merged.window.start.to_rfc3339(),
        merged.window.duration_s
    );
    for w in &info.warnings {
        out.push_str(&format!("\nwarning: {w}"));
    }
    out
}

/// Reads a report, treating a missing path as bad input (exit 2), not as an I/O outage.
fn read(path: &Path) -> Result<RunReport, Error> {
    if !path.exists() {
        return Err(Error::BadInput(format!(
            "{}: no such report.json file or report directory",
            path.display()
        )));
    }
    if path.is_dir() && !path.join(json::REPORT_FILE).is_file() {
        return Err(Error::BadInput(format!(
            "{}: directory holds no {}",
            path.display(),
            json::REPORT_FILE
        )));
    }
    json::read(path)
}

fn same_dir(input: &Path, out: &Path) -> bool {
    let canon = |p: &Path| -> Option<PathBuf> {
        let dir = if p.is_file() { p.parent()? } else { p };
        dir.canonicalize().ok()
    };
    matches!((canon(input), canon(out)), (Some(a), Some(b)) if a == b)
}

/// `report compare BASELINE CURRENT`: a shell glob such as `reports/default-*/` expands to
/// every matching run; say so, name them and the newest, rather than clap's "unexpected
/// argument".
fn one_current(mut current: Vec<PathBuf>) -> Result<PathBuf, Error> {
    if current.len() == 1 {
        return Ok(current.remove(0));
    }
    current.sort();
    let names: Vec<String> = current.iter().map(|p| p.display().to_string()).collect();
    Err(Error::BadInput(format!(
        "report compare: {} runs given to compare against the baseline ({}); a glob probably \
         expanded to several. Give one (the last in name order is {}), or combine the workers \
         of one test first with `report merge DIR... --out DIR`",
        names.len(),
        names.join(", "),
        names.last().map(String::as_str).unwrap_or_default()
    )))
}
