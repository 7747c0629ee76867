//! Whether reports belong in one merge. A merged report claims to be one test, so inputs
//! that cannot be parts of one test are refused (exit 2) before anything is written: the same
//! directory or the same run twice, different scenarios or seeds, different shard layouts,
//! two workers that ran the same shard. What only makes a merge less meaningful is stated as
//! a warning: windows that do not overlap, workers that started their clock late.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::load::start_at::ON_TIME;
use crate::report::model::{MergedInput, RunReport, StartAtInfo};

/// Why reports cannot be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum MergeRefusal {
    #[error("report merge needs at least one report")]
    Empty,
    #[error("{b} is the same report as {a} (given twice); each worker's report counts once")]
    SameDirectory { a: String, b: String },
    #[error("{b} holds the same run as {a} (identical report.json, a copy?); each worker's report counts once")]
    SameRun { a: String, b: String },
    #[error("{label}: scenario {got:?} differs from {want:?} in {first}; merge only workers of one test")]
    Scenario {
        label: String,
        got: String,
        want: String,
        first: String,
    },
    #[error("{label}: scenario file {name:?} differs from the one in {first} (sha256 {got} vs {want}); merge only workers of one test")]
    ScenarioText {
        label: String,
        name: String,
        got: String,
        want: String,
        first: String,
    },
    #[error("{label}: seed {got} differs from seed {want} in {first}; the workers of one test run one scenario with one seed")]
    Seed {
        label: String,
        got: u64,
        want: u64,
        first: String,
    },
    #[error("{label}: interval_ms {got} differs from {want} in {first}")]
    Interval {
        label: String,
        got: u64,
        want: u64,
        first: String,
    },
    #[error("{label} is {got} but {first} is {want}: shard layouts differ (merge the N shards of one `--shard I/N` test, or only unsharded runs)")]
    Layout {
        label: String,
        got: String,
        want: String,
        first: String,
    },
    #[error("{a} and {b} are both shard {shard}: overlapping shard indexes (that slice of the test ran twice)")]
    Overlap { a: String, b: String, shard: String },
}

/// What the inputs are, once they are known to belong together.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Layout {
    /// `N` when the inputs are shards of one test.
    pub(crate) shards: Option<u32>,
    /// Shards of the layout that are not among the inputs.
    pub(crate) missing: Vec<u32>,
    pub(crate) warnings: Vec<String>,
}

/// Refuses the same report given twice by path (a directory and its `report.json` are one).
pub(crate) fn check_paths(paths: &[PathBuf]) -> Result<(), MergeRefusal> {
    let mut seen: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    for p in paths {
        let Some(dir) = report_dir(p) else { continue };
        if let Some(first) = seen.insert(dir, p) {
            return Err(MergeRefusal::SameDirectory {
                a: first.display().to_string(),
                b: p.display().to_string(),
            });
        }
    }
    Ok(())
}

/// The canonical directory of a report given as a directory or as its `report.json`.
pub(crate) fn report_dir(p: &Path) -> Option<PathBuf> {
    let dir = if p.is_file() { p.parent()? } else { p };
    dir.canonicalize().ok()
}

/// Checks that `reports` (named by `labels`) are parts of one test.
pub(crate) fn check(reports: &[RunReport], labels: &[String]) -> Result<Layout, MergeRefusal> {
    let first = reports.first().ok_or(MergeRefusal::Empty)?;
    for (i, (r, label)) in reports.iter().zip(labels).enumerate().skip(1) {
        same_test(first, &labels[0], r, label)?;
        if let Some(j) = reports[..i].iter().position(|o| o == r) {
            return Err(MergeRefusal::SameRun {
                a: labels[j].clone(),
                b: label.clone(),
            });
        }
    }
    let shards = shard_layout(reports, labels)?;
    let missing = match shards {
        Some(n) => (1..=n)
            .filter(|i| {
                !reports
                    .iter()
                    .any(|r| r.shard.as_ref().unwrap().index == *i)
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Layout {
        shards,
        missing,
        warnings: warnings(reports, labels),
    })
}

/// Same scenario (name, text, seed) and interval grid as the first report.
fn same_test(
    first: &RunReport,
    first_label: &str,
    r: &RunReport,
    label: &str,
) -> Result<(), MergeRefusal> {
    let (a, b) = (&first.scenario, &r.scenario);
    if b.name != a.name {
        return Err(MergeRefusal::Scenario {
            label: label.into(),
            got: b.name.clone(),
            want: a.name.clone(),
            first: first_label.into(),
        });
    }
    // Older reports carry no hash: the name is all there is to compare.
    if !a.source_sha256.is_empty()
        && !b.source_sha256.is_empty()
        && a.source_sha256 != b.source_sha256
    {
        return Err(MergeRefusal::ScenarioText {
            label: label.into(),
            name: b.name.clone(),
            got: short(&b.source_sha256),
            want: short(&a.source_sha256),
            first: first_label.into(),
        });
    }
    if b.seed != a.seed {
        return Err(MergeRefusal::Seed {
            label: label.into(),
            got: b.seed,
            want: a.seed,
            first: first_label.into(),
        });
    }
    if r.window.interval_ms != first.window.interval_ms {
        return Err(MergeRefusal::Interval {
            label: label.into(),
            got: r.window.interval_ms,
            want: first.window.interval_ms,
            first: first_label.into(),
        });
    }
    Ok(())
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

fn layout_name(r: &RunReport) -> String {
    match &r.shard {
        Some(s) => format!("shard {}/{}", s.index, s.count),
        None => "not a shard".into(),
    }
}

/// All inputs unsharded, or all shards of one layout `N` with distinct indexes.
fn shard_layout(reports: &[RunReport], labels: &[String]) -> Result<Option<u32>, MergeRefusal> {
    let first = &reports[0];
    let mut by_index: BTreeMap<u32, &str> = BTreeMap::new();
    for (r, label) in reports.iter().zip(labels) {
        let same = match (&first.shard, &r.shard) {
            (None, None) => true,
            (Some(a), Some(b)) => a.count == b.count,
            _ => false,
        };
        if !same {
            return Err(MergeRefusal::Layout {
                label: label.clone(),
                got: layout_name(r),
                want: layout_name(first),
                first: labels[0].clone(),
            });
        }
        if let Some(s) = &r.shard {
            if let Some(other) = by_index.insert(s.index, label) {
                return Err(MergeRefusal::Overlap {
                    a: other.to_string(),
                    b: label.clone(),
                    shard: format!("{}/{}", s.index, s.count),
                });
            }
        }
    }
    Ok(first.shard.as_ref().map(|s| s.count))
}

fn window_end(r: &RunReport) -> DateTime<Utc> {
    r.window.start + chrono::Duration::milliseconds((r.window.duration_s * 1000.0).round() as i64)
}

/// Windows that do not overlap or are spread out, and clocks started late.
fn warnings(reports: &[RunReport], labels: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let latest_start = reports
        .iter()
        .map(|r| r.window.start)
        .max()
        .expect("non-empty");
    let earliest_end = reports.iter().map(window_end).min().expect("non-empty");
    let earliest_start = reports
        .iter()
        .map(|r| r.window.start)
        .min()
        .expect("non-empty");
    let interval = chrono::Duration::milliseconds(reports[0].window.interval_ms as i64);
    if reports.len() > 1 && latest_start >= earliest_end {
        out.push(format!(
            "the workers' measured windows do not overlap (the last starts at {}, the first \
             ends at {}): the merged window spans all of them, so its rates are diluted; start \
             the workers together with --start-at",
            latest_start.to_rfc3339(),
            earliest_end.to_rfc3339()
        ));
    } else if latest_start - earliest_start > interval {
        out.push(format!(
            "the workers' windows start up to {:.1} s apart: the merged per-second series \
             mixes their phases; start the workers together with --start-at",
            (latest_start - earliest_start).num_milliseconds() as f64 / 1000.0
        ));
    }
    for (r, label) in reports.iter().zip(labels) {
        let late = |s: &&StartAtInfo| s.late_ms >= ON_TIME.as_millis() as u64;
        if let Some(s) = r.start_at.as_ref().filter(late) {
            out.push(format!(
                "{label}: started its clock {:.3} s after --start-at {} (its setup took longer)",
                s.late_ms as f64 / 1000.0,
                s.at.to_rfc3339()
            ));
        }
    }
    out
}

/// The inputs as the merged report lists them.
pub(crate) fn inputs(reports: &[RunReport], labels: &[String]) -> Vec<MergedInput> {
    reports
        .iter()
        .zip(labels)
        .map(|(r, label)| MergedInput {
            label: label.clone(),
            shard: r.shard.as_ref().map(|s| format!("{}/{}", s.index, s.count)),
            hostname: r.environment.hostname.clone(),
            window_start: r.window.start,
            window_duration_s: r.window.duration_s,
            flows_started: r.generator.flows_started,
            start_late_ms: r.start_at.as_ref().map(|s| s.late_ms),
        })
        .collect()
}
