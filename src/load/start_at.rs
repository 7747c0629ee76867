//! A synchronized start: the workers of a sharded test finish their setup (keys, population)
//! at different moments, so each waits for one agreed instant before it starts its clock, and
//! their measured windows line up. The instant is given as an RFC 3339 time, or read from a
//! file an orchestrator wrote to a shared volume (`@PATH`). A worker whose setup ended after
//! that instant starts at once and reports how late it was.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::report::model::StartAtInfo;

/// Lateness below this is on time (waking from a sleep, scheduling on a busy machine): it is
/// recorded, but neither the summary nor `report merge` calls it late.
pub(crate) const ON_TIME: Duration = Duration::from_millis(100);
/// Furthest ahead a start may be: further is almost certainly a mistake, and a worker would
/// hold its connections idle all that time.
pub(crate) const MAX_AHEAD: Duration = Duration::from_secs(3600);

/// Why `--start-at` could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartAtError {
    #[error(
        "--start-at {value:?}{from}: not an RFC 3339 time like 2026-11-29T20:15:00Z ({reason})"
    )]
    NotATime {
        value: String,
        /// ` (in FILE)` when read from a file.
        from: String,
        reason: String,
    },
    #[error("--start-at @{}: cannot read the start time from this file: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--start-at lines up the workers of one test against one server: it needs --target")]
    NoTarget,
    #[error("--start-at {at}: {ahead_s} s from now, more than the {max_s} s a worker may wait (check the clock and the time zone)", at = at.to_rfc3339())]
    TooFar {
        at: DateTime<Utc>,
        ahead_s: i64,
        max_s: u64,
    },
}

/// Parses `--start-at`: an RFC 3339 time, or `@PATH` of a file holding one (surrounding
/// whitespace ignored). Checked against the clock now, before anything starts.
pub(crate) fn parse(value: &str) -> Result<DateTime<Utc>, StartAtError> {
    let (text, from) = match value.strip_prefix('@') {
        Some(path) => {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path).map_err(|source| StartAtError::File {
                path: path.clone(),
                source,
            })?;
            (text, format!(" (in {})", path.display()))
        }
        None => (value.to_string(), String::new()),
    };
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| StartAtError::NotATime {
            value: text.trim().to_string(),
            from,
            reason: e.to_string(),
        })?
        .with_timezone(&Utc);
    let ahead = at - Utc::now();
    if ahead.num_seconds() > MAX_AHEAD.as_secs() as i64 {
        return Err(StartAtError::TooFar {
            at,
            ahead_s: ahead.num_seconds(),
            max_s: MAX_AHEAD.as_secs(),
        });
    }
    Ok(at)
}

/// Waits until `at` (at once if it has passed) and says how late the clock starts.
pub(crate) async fn wait(at: DateTime<Utc>, quiet: bool) -> StartAtInfo {
    let ahead = (at - Utc::now()).to_std().unwrap_or_default();
    if !ahead.is_zero() {
        if !quiet {
            eprintln!(
                "waiting {:.1} s for --start-at {}",
                ahead.as_secs_f64(),
                at.to_rfc3339()
            );
        }
        tokio::time::sleep(ahead).await;
    }
    let late = (Utc::now() - at).to_std().unwrap_or_default();
    let late_ms = late.as_millis() as u64;
    if late >= ON_TIME && !quiet {
        eprintln!(
            "started {:.3} s after --start-at {} (setup took longer)",
            late.as_secs_f64(),
            at.to_rfc3339()
        );
    }
    StartAtInfo { at, late_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_files_parse_and_bad_ones_say_why() {
        let soon = Utc::now() + chrono::Duration::seconds(30);
        let text = soon.to_rfc3339();
        assert_eq!(parse(&text).unwrap(), soon);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("start_at");
        std::fs::write(&file, format!("{text}\n")).unwrap();
        assert_eq!(parse(&format!("@{}", file.display())).unwrap(), soon);

        std::fs::write(&file, "tomorrow").unwrap();
        let e = parse(&format!("@{}", file.display()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"tomorrow\" (in ") && e.contains("RFC 3339"),
            "{e}"
        );
        let e = parse(&format!("@{}", dir.path().join("none").display()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the start time"), "{e}");
        let far = (Utc::now() + chrono::Duration::hours(5)).to_rfc3339();
        assert!(matches!(parse(&far), Err(StartAtError::TooFar { .. })));
        // The past is allowed: the worker starts at once and says how late.
        let past = (Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
        assert!(parse(&past).is_ok());
    }

    #[tokio::test]
    async fn a_past_start_is_reported_late_and_a_near_one_is_waited_for() {
        let past = Utc::now() - chrono::Duration::milliseconds(1500);
        let info = wait(past, true).await;
        assert!(info.late_ms >= 1500, "{info:?}");
        let soon = Utc::now() + chrono::Duration::milliseconds(200);
        let info = wait(soon, true).await;
        assert!(Utc::now() >= soon);
        assert_eq!(info.at, soon);
    }
}
