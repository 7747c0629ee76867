//! `latency.hlog`: the per-interval histograms of every operation as an HdrHistogram interval
//! log, so HdrHistogram's own tools (HistogramLogProcessor, HdrHistogram's plotter, the Rust
//! crate's reader) can reprocess a run without this harness.
//!
//! Format: the standard interval log, version 1.3, with V2 + DEFLATE histograms. Each line is
//! tagged with its operation (`Tag=bundle_fetch,...`); pass `-tag bundle_fetch` to
//! HistogramLogProcessor to select one. `StartTime` and `BaseTime` are both the start of the
//! measured window, so interval timestamps are seconds into the window. Values are microseconds.

use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use crate::report::model::{decode_histogram, RunReport};
use crate::Error;

/// File name of the interval log inside a report directory.
pub(crate) const HLOG_FILE: &str = "latency.hlog";

/// The column legend HdrHistogram's Java writer puts after the header; readers skip it.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

/// Renders the interval log of a report. Fails (as bad input) only when a stored histogram
/// does not decode, naming the operation and interval.
pub(crate) fn render(report: &RunReport) -> Result<Vec<u8>, Error> {
    // Every interval of every operation, ordered by time as interval logs expect.
    let mut entries: Vec<(u64, &str, Histogram<u64>)> = Vec::new();
    for (name, op) in &report.operations {
        if Tag::new(name).is_none() {
            return Err(Error::BadInput(format!(
                "operation name {name:?} cannot be an interval log tag (no ',', ' ' or newlines)"
            )));
        }
        for interval in &op.intervals {
            let h = decode_histogram(&interval.histogram).map_err(|e| {
                Error::BadInput(format!(
                    "operations.{name}.intervals[offset_ms={}].histogram: {e}",
                    interval.offset_ms
                ))
            })?;
            entries.push((interval.offset_ms, name.as_str(), h));
        }
    }
    entries.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));

    let start = SystemTime::from(report.window.start);
    let window_ms = (report.window.duration_s * 1000.0).round().max(0.0) as u64;
    let interval_ms = report.window.interval_ms.max(1);

    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut header = IntervalLogWriterBuilder::new();
        header
            .add_comment(&format!(
                "[Logged with e2ee-harness {}: scenario {}, one Tag per operation, values in microseconds]",
                report.environment.harness_version,
                report.scenario.name.replace('\n', " ")
            ))
            .add_comment("[Histogram log format version 1.3]")
            .with_start_time(start)
            .with_base_time(start);
        header
            .begin_log_with(&mut out, &mut serializer)
            .map_err(write_error)?;
    }
    out.extend_from_slice(LEGEND.as_bytes());
    {
        let mut log = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut out, &mut serializer)
            .map_err(write_error)?;
        for (offset_ms, name, h) in &entries {
            // The last interval may be cut short by the end of the window.
            let length_ms = if window_ms > *offset_ms {
                interval_ms.min(window_ms - offset_ms)
            } else {
                interval_ms
            };
            log.write_histogram(
                h,
                Duration::from_millis(*offset_ms),
                Duration::from_millis(length_ms),
                Tag::new(name),
            )
            .map_err(|e| Error::BadInput(format!("interval log of {name}: {e}")))?;
        }
    }
    Ok(out)
}

fn write_error(e: std::io::Error) -> Error {
    Error::BadInput(format!("writing the interval log: {e}"))
}
