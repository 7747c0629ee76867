//! Where a command writes its report, checked before any work starts: a bad `--report-dir`
//! (a file, a directory that cannot be created or written, an earlier report) exits 2 before
//! the load, instead of losing the results after it. Nothing is created by the check.
//!
//! [`write_file`] is the one writer of report files for `run`, `conform` and `db-bench`.

use std::path::{Path, PathBuf};

use crate::Error;

/// Longest scenario or pack name used in a default report directory's name.
const MAX_NAME: usize = 64;

/// `name` made safe as one path component: ASCII letters, digits, `.`, `_`, `-` kept, every
/// other character `-`, no leading dot or dash (so `..` or `/etc` cannot escape `reports/`),
/// at most [`MAX_NAME`] characters; `scenario` when nothing is left.
pub(crate) fn path_safe(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = mapped
        .trim_start_matches(['.', '-'])
        .chars()
        .take(MAX_NAME)
        .collect();
    if trimmed.is_empty() {
        "scenario".into()
    } else {
        trimmed
    }
}

/// A default report directory `reports/<name>-<UTC time>` that does not exist yet (a
/// second run within the same second gets `-2`, `-3`, …).
pub(crate) fn default_dir(prefix: &str, name: &str) -> PathBuf {
    let base = format!(
        "{prefix}{}-{}",
        path_safe(name),
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    let reports = PathBuf::from("reports");
    let mut dir = reports.join(&base);
    let mut n = 2;
    while dir.exists() {
        dir = reports.join(format!("{base}-{n}"));
        n += 1;
    }
    dir
}

/// Checks that a report can be written to `dir` without creating anything: `dir` is a
/// writable directory or can be created under a writable one, and it holds no earlier
/// report (`marker`, e.g. `report.json`) unless `force`.
pub(crate) fn check(dir: &Path, marker: &str, force: bool) -> Result<(), Error> {
    let bad = |why: String| Error::BadInput(format!("--report-dir {}: {why}", dir.display()));
    if dir.exists() {
        if !dir.is_dir() {
            return Err(bad("is a file, not a directory".into()));
        }
        if dir.join(marker).exists() && !force {
            return Err(bad(format!(
                "already holds a report ({marker}); pass --force to replace it, or choose another directory"
            )));
        }
        return writable(dir).map_err(|e| bad(format!("cannot be written: {e}")));
    }
    let mut ancestor = dir.parent();
    while let Some(a) = ancestor {
        let a = if a.as_os_str().is_empty() {
            Path::new(".")
        } else {
            a
        };
        if a.exists() {
            if !a.is_dir() {
                return Err(bad(format!("cannot be created: {} is a file", a.display())));
            }
            return writable(a)
                .map_err(|e| bad(format!("cannot be created in {}: {e}", a.display())));
        }
        ancestor = a.parent();
    }
    Ok(())
}

/// Writes `dir/name` (creating `dir`) under a temporary name in the same directory and
/// renames it into place, so a reader never sees half a file.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|source| Error::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Writes `value` as pretty-printed JSON with a final newline, as [`write_file`] does.
pub(crate) fn write_json(
    dir: &Path,
    name: &str,
    value: &impl serde::Serialize,
) -> Result<PathBuf, Error> {
    let text = serde_json::to_string_pretty(value).expect("a report always serializes");
    write_file(dir, name, format!("{text}\n").as_bytes())
}

/// Proves `dir` writable by creating (and at once removing) a temporary file in it.
fn writable(dir: &Path) -> std::io::Result<()> {
    tempfile::Builder::new()
        .prefix(".e2ee-harness-write-check")
        .tempfile_in(dir)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_or_hide() {
        assert_eq!(path_safe("../../etc/passwd"), "etc-passwd");
        assert_eq!(path_safe("/abs"), "abs");
        assert_eq!(path_safe("smoke run ✓"), "smoke-run--");
        assert_eq!(path_safe(".."), "scenario");
        assert_eq!(path_safe(&"x".repeat(500)).len(), MAX_NAME);
    }

    #[test]
    fn a_file_an_earlier_report_and_a_file_parent_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(check(&file, "report.json", false)
            .unwrap_err()
            .to_string()
            .contains("is a file, not a directory"));
        assert!(check(&file.join("sub"), "report.json", false)
            .unwrap_err()
            .to_string()
            .contains("cannot be created"));
        std::fs::write(dir.path().join("report.json"), "{}").unwrap();
        assert!(check(dir.path(), "report.json", false)
            .unwrap_err()
            .to_string()
            .contains("--force"));
        check(dir.path(), "report.json", true).unwrap();
        let written = write_file(&dir.path().join("made"), "a.txt", b"whole").unwrap();
        assert_eq!(std::fs::read(&written).unwrap(), b"whole");
        assert_eq!(
            std::fs::read_dir(dir.path().join("made")).unwrap().count(),
            1,
            "no temporary file is left"
        );
        check(&dir.path().join("new/deeper"), "report.json", false).unwrap();
        assert!(
            !dir.path().join("new").exists(),
            "the check creates nothing"
        );
    }
}
