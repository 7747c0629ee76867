//! The serde model of `report.json`: the single source of truth for everything a run reports.
//!
//! Every other output (the terminal summary, HTML, JUnit, HDR logs, `report compare`,
//! `report merge`) is derived from a [`RunReport`], so they can never disagree with each other.
//! Latency figures are in whole microseconds. Besides the percentiles, each operation carries
//! its full HdrHistogram and its per-second interval histograms (HdrHistogram "V2 + DEFLATE",
//! standard base64), so reports of several workers can be *merged* (histograms added, never
//! percentiles averaged) and time series drawn without rerunning anything.
//!
//! Reading is tolerant of fields a newer harness added (no `deny_unknown_fields`); a change
//! that alters the meaning of an existing field bumps [`SCHEMA_VERSION`].

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Version of this document's shape. Readers refuse a major they do not know.
pub const SCHEMA_VERSION: u32 = 2;
/// Oldest schema this harness still reads (1: `failures` were text lines).
pub(crate) const OLDEST_READABLE_SCHEMA: u32 = 1;

/// Highest latency a histogram can hold: one hour in microseconds. Anything slower is a hang,
/// recorded as this value (saturated), never dropped.
pub const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
/// Significant decimal digits of every latency histogram (0.1 % value resolution).
pub(crate) const HISTOGRAM_SIGFIG: u8 = 3;

/// One run's report (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub scenario: ScenarioInfo,
    pub environment: Environment,
    /// When the run (including warm-up) started and when it finished, UTC.
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The measured window: warm-up excluded, drain period excluded.
    pub window: Window,
    /// Per operation (`bundle_fetch`, `key_insert`, `message_insert`, `delivery`,
    /// `ws_connect`, `flow_<name>`, …), sorted by name.
    pub operations: BTreeMap<String, OperationStats>,
    pub budgets: Vec<BudgetVerdict>,
    pub integrity: Integrity,
    /// Which envelopes were lost, duplicated or undecryptable (empty when clean).
    #[serde(default)]
    pub integrity_problems: IntegrityProblems,
    pub generator: GeneratorHealth,
    /// Faults injected, and the clients' retries and reconnects.
    #[serde(default)]
    pub resilience: Resilience,
    /// True when every budget held, every integrity failure count is zero, and the run was
    /// not cut short.
    pub passed: bool,
    /// Why `passed` is false, one typed failure per reason (empty when it passed); judged
    /// by [`crate::verdict`].
    #[serde(default, deserialize_with = "crate::verdict::deserialize_failures")]
    pub failures: Vec<crate::verdict::Failure>,
    /// The run was stopped by SIGINT/SIGTERM: what it measured until then, never a pass.
    #[serde(default)]
    pub interrupted: bool,
    /// Present when this run was one shard of a sharded test (`run --shard I/N`): its figures
    /// are its slice only, and the test's verdict is the merged report's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// Present when the clock waited for an agreed start (`run --start-at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<StartAtInfo>,
    /// Present in a report made by `report merge`: what it was made of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeInfo>,
}

/// One worker's slice of a sharded test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Shard `index` (from 1) of `count`.
    pub index: u32,
    pub count: u32,
    /// This shard's part of `population.users` (users of different shards never message
    /// each other).
    pub users: u32,
    /// Closed model: this shard's part of the virtual users (0 in the open model, where the
    /// shard runs the arrivals `k` of the schedule with `k mod count = index - 1`).
    pub closed_users: u32,
}

/// The agreed start of the measured clock, and how late this run started it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartAtInfo {
    pub at: DateTime<Utc>,
    /// Milliseconds after `at` that the clock started: a few on a busy machine; more when
    /// the setup took longer than the time left before `at` (from 100 ms on it is called
    /// late).
    pub(crate) late_ms: u64,
}

/// What a merged report was made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeInfo {
    /// Reports merged.
    pub workers: u32,
    /// The shard layout `N` when the inputs were shards of one test, else `None`.
    pub shards: Option<u32>,
    /// Shards of the layout that were not among the inputs (the test ran only in part).
    #[serde(default)]
    pub missing_shards: Vec<u32>,
    pub inputs: Vec<MergedInput>,
    /// Things that do not stop a merge but make it less meaningful (windows that do not
    /// overlap, late starts).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One input of a merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedInput {
    /// As given on the command line.
    pub(crate) label: String,
    /// `I/N` when the input was a shard.
    pub shard: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) window_start: DateTime<Utc>,
    pub(crate) window_duration_s: f64,
    pub(crate) flows_started: u64,
    /// How late the input started its clock after `--start-at`, if it had one.
    pub(crate) start_late_ms: Option<u64>,
}

/// What was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// The scenario's `name`, or its file stem.
    pub name: String,
    /// Path of the scenario file as given on the command line.
    pub path: String,
    /// `open` or `closed`.
    pub model: String,
    pub seed: u64,
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Open model: the configured arrival rate (flows/s) per stage; closed model: users per stage.
    pub stages: Vec<StageInfo>,
    /// Flow name → weight, as configured.
    pub flow_weights: BTreeMap<String, u32>,
    /// The scenario file's text, so a report alone says exactly what ran: the whole file
    /// up to [`MAX_SOURCE_COPY`] bytes, its beginning beyond that.
    pub source: String,
    /// SHA-256 (hex) of the whole file, which identifies it even when `source` is cut.
    #[serde(default)]
    pub source_sha256: String,
    /// Size of the whole file in bytes (`source` is shorter when the file was cut).
    #[serde(default)]
    pub source_bytes: u64,
    /// The server API the clients spoke (`reference`, …).
    #[serde(default = "default_api")]
    pub api: String,
    /// Flow name → capabilities the API lacks, for flows left out of the mix
    /// (`--skip-unsupported`).
    #[serde(default)]
    pub skipped_flows: BTreeMap<String, Vec<String>>,
    /// Largest share of failed attempts per operation that passes, so `report merge` can
    /// judge error rates again on merged counts.
    #[serde(default)]
    pub max_error_rate: Option<f64>,
}

fn default_api() -> String {
    "reference".into()
}

/// Largest scenario text copied into a report: a 50 MB file is not repeated in every report.
pub(crate) const MAX_SOURCE_COPY: usize = 64 * 1024;

/// One load stage as configured: ramp linearly to `target` over `duration_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageInfo {
    pub duration_s: f64,
    /// Flows per second (open model) or virtual users (closed model) at the stage's end.
    pub target: f64,
}

/// Where and on what the run happened; needed to compare two reports honestly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// `local`, `docker`, `url`, or `external` when `--target` pointed at a server we did not start.
    pub db_provider: String,
    /// PostgreSQL `server_version`, when the harness started or reached the database.
    pub postgres_version: Option<String>,
    /// fsync and synchronous_commit on. `None` when the database is not ours to know.
    pub durable: Option<bool>,
    /// Base URL of the server under test.
    pub target: String,
    /// True when the harness started the bundled reference server itself.
    pub bundled_server: bool,
    /// The bundled server ran as a child process (a scenario with faults kills it), not in
    /// the harness's own process.
    #[serde(default)]
    pub server_in_child: bool,
    /// Logical CPUs of the machine running the generator (and the bundled server, if any).
    pub cpus: usize,
    pub harness_version: String,
    /// `std::env::consts::OS`/`ARCH`, e.g. `linux-x86_64`.
    pub platform: String,
    pub hostname: Option<String>,
    /// Load and CPU steal around the run (absent in reports of older harnesses).
    #[serde(default)]
    pub machine: Option<Machine>,
}

/// The machine's state around a run: numbers taken on a busy machine say so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `/proc/loadavg` (1, 5, 15 minutes) when the measured clock started, and at its end.
    pub(crate) load_avg_start: [f64; 3],
    pub(crate) load_avg_end: [f64; 3],
    /// Share of CPU time stolen by a hypervisor (0..1): over the setup before the clock
    /// started, and over the run itself.
    pub(crate) cpu_steal_start: f64,
    pub(crate) cpu_steal_end: f64,
    /// How the generator's threads were favoured over the server's and the database's
    /// (absent in reports of older harnesses, and when no generator thread ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) generator_priority: Option<crate::load::priority::Priority>,
    /// The machine's limit on how slow leaving an idle state may be, in µs, when the clock
    /// started (0: idle CPUs poll; see `load::wakeup`). Absent when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) idle_exit_limit_us: Option<u32>,
}

impl Machine {
    /// How the generator's threads were favoured, for people.
    pub(crate) fn priority_text(&self) -> &'static str {
        self.generator_priority
            .map_or("unrecorded", crate::load::priority::Priority::describe)
    }

    /// How the machine's idle CPUs behaved, for people.
    pub(crate) fn idle_text(&self) -> &'static str {
        match self.idle_exit_limit_us {
            Some(0) => "idle CPUs polling",
            Some(_) => "idle CPUs may sleep",
            None => "idle CPU state unknown",
        }
    }
}

/// The measured window, relative to which rates and interval offsets are computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// UTC instant the measured window began (end of warm-up). Interval offsets count from here;
    /// HDR log writers use it as `StartTime`.
    pub start: DateTime<Utc>,
    /// Length of the measured window in seconds.
    pub duration_s: f64,
    /// Width of each interval histogram in milliseconds (1000: per-second).
    pub interval_ms: u64,
}

/// Latency statistics of one operation over the measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationStats {
    /// Successful samples (recorded in the histogram).
    pub count: u64,
    /// Failed attempts (server errors, timeouts, protocol failures); not in the histogram.
    pub errors: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    /// Successful samples per second of the measured window.
    pub rate_per_s: f64,
    /// The full histogram of the window (V2 + DEFLATE, base64).
    pub histogram: String,
    /// Per-interval histograms for time series, in time order. Intervals with no samples and
    /// no errors are omitted.
    pub intervals: Vec<IntervalStats>,
}

/// One interval (normally one second) of one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalStats {
    /// Start of the interval in milliseconds after [`Window::start`].
    pub offset_ms: u64,
    pub count: u64,
    pub errors: u64,
    /// Convenience for charts that do not decode histograms.
    pub p50_us: u64,
    pub p95_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The interval's histogram (V2 + DEFLATE, base64).
    pub histogram: String,
}

/// One budget and what was observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetVerdict {
    pub operation: String,
    /// Percentile as written in the budget, e.g. `p95`, `p99.9`.
    pub percentile: String,
    pub limit_us: u64,
    /// `None` when the operation has no samples (which fails the budget).
    pub observed_us: Option<u64>,
    pub passed: bool,
    /// `scenario` or `command line` (a `--budget` flag added or overrode it).
    pub source: String,
}

/// Message and key accounting across all virtual clients. Every field but the first three is a
/// failure count: any non-zero value fails the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integrity {
    /// Envelopes the server acknowledged storing (one per recipient device).
    pub messages_sent: u64,
    /// Envelopes that reached their recipient device (first arrival only).
    pub messages_delivered: u64,
    /// Envelopes the recipient decrypted to exactly the plaintext that was sent.
    pub messages_decrypted: u64,
    /// Acknowledged envelopes that never arrived by the end of the drain period.
    pub messages_lost: u64,
    /// Arrivals of an envelope again after its ack reached the server (closed cleanly after
    /// the ack, or twice on one connection), or of the same message under a second envelope
    /// id (the recipient would decrypt the same plaintext twice). A failure.
    pub messages_duplicated: u64,
    /// Arrivals of an envelope again, on a later connection, whose ack was never known to
    /// reach the server (the ack failed; the API sends unacknowledged envelopes again).
    /// Not a failure.
    #[serde(default)]
    pub messages_redelivered: u64,
    /// Arrived but could not be decrypted, or decrypted to something else than was sent.
    pub decrypt_failures: u64,
    /// One-time prekeys handed out to two different initiators.
    pub prekeys_reused: u64,
    /// Bundles whose signed-prekey signature did not verify.
    pub signature_failures: u64,
    /// Envelopes that arrived but were never sent by any virtual client of this run.
    #[serde(default)]
    pub messages_unexpected: u64,
}

impl Integrity {
    /// The failure counts with their names, for verdicts and summaries.
    pub fn failure_counts(&self) -> [(&'static str, u64); 6] {
        [
            ("messages_lost", self.messages_lost),
            ("messages_duplicated", self.messages_duplicated),
            ("decrypt_failures", self.decrypt_failures),
            ("prekeys_reused", self.prekeys_reused),
            ("signature_failures", self.signature_failures),
            ("messages_unexpected", self.messages_unexpected),
        ]
    }

    pub fn is_clean(&self) -> bool {
        self.failure_counts().iter().all(|(_, n)| *n == 0)
    }
}

/// The envelopes behind the integrity failure counts, each as (message id, recipient), at
/// most [`IntegrityProblems::LIMIT`] per list (the counts are exact).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityProblems {
    #[serde(default)]
    pub lost: Vec<EnvelopeRef>,
    #[serde(default)]
    pub(crate) duplicated: Vec<EnvelopeRef>,
    #[serde(default)]
    pub(crate) undecryptable: Vec<EnvelopeRef>,
}

impl IntegrityProblems {
    pub(crate) const LIMIT: usize = 1000;

    pub fn is_empty(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.undecryptable.is_empty()
    }
}

/// One envelope: a logical message to one recipient device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EnvelopeRef {
    pub(crate) message_id: uuid::Uuid,
    pub(crate) recipient_user: uuid::Uuid,
    pub(crate) recipient_device: u32,
}

/// How the clients rode out failures: retries of idempotent operations and sends, WebSocket
/// reconnects, and each injected fault with its effect and recovery.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resilience {
    /// Retries (attempts after the first) per operation.
    #[serde(default)]
    pub(crate) retries: BTreeMap<String, u64>,
    /// Operations that ran out of their retry budget (then recorded as errors).
    #[serde(default)]
    pub(crate) retry_budget_exhausted: BTreeMap<String, u64>,
    /// Dropped WebSockets that reconnected by themselves (with backoff), and the attempts.
    #[serde(default)]
    pub ws_reconnects: u64,
    #[serde(default)]
    pub(crate) ws_reconnect_attempts: u64,
    #[serde(default)]
    pub faults: Vec<FaultReport>,
}

/// One injected fault: when, what it did to the clients, and when they recovered. Times are
/// seconds from the start of the measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    pub kind: String,
    /// The user's command that injected it, if any.
    pub command: Option<String>,
    /// Line of the fault in the scenario file.
    pub(crate) line: usize,
    /// Scheduled offset, and how long the server stays down / the database frozen.
    pub(crate) at_s: f64,
    pub(crate) hold_s: f64,
    /// When the injection began and ended (server healthy again, database thawed or back).
    pub(crate) started_s: Option<f64>,
    pub(crate) ended_s: Option<f64>,
    /// Why it could not be injected (fails the run).
    pub error: Option<String>,
    /// From `started_s` until a message was stored and one delivered again after `ended_s`.
    pub recovery_s: Option<f64>,
    /// Errors and retries per operation while the fault lasted and in the 10 s after it.
    #[serde(default)]
    pub(crate) errors_during: BTreeMap<String, u64>,
    #[serde(default)]
    pub(crate) errors_after: BTreeMap<String, u64>,
    #[serde(default)]
    pub(crate) retries_during: BTreeMap<String, u64>,
    #[serde(default)]
    pub(crate) retries_after: BTreeMap<String, u64>,
    /// Per operation: seconds from `ended_s` to its first success.
    #[serde(default)]
    pub(crate) first_success_after_s: BTreeMap<String, f64>,
}

/// The load generator's own behaviour: proof that it was not the bottleneck.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratorHealth {
    /// Load model actually used (`open` or `closed`).
    pub model: String,
    /// CPU time of the generator's threads over the run divided by (wall time × CPUs), 0..=1.
    /// When the bundled server runs in the same process, its CPU is excluded when measurable
    /// (see `cpu_share_includes_server`).
    pub cpu_share: f64,
    /// True when `cpu_share` could not separate the in-process server from the generator.
    pub cpu_share_includes_server: bool,
    /// Process CPU seconds (user + system) over the whole run.
    pub process_cpu_s: f64,
    /// Peak resident set size of the harness process (VmHWM), bytes.
    pub peak_rss_bytes: u64,
    /// Open model: flows that started later than `late_start_threshold_us` after their intended
    /// start. They are still timed from the intended start; this counts how often it happened.
    pub late_starts: u64,
    pub late_start_threshold_us: u64,
    /// Open model: largest delay between a flow's intended and actual start, microseconds.
    pub max_start_lag_us: u64,
    /// Start lag percentiles of the flows started in the measured window (open model): how
    /// far the generator itself was from its schedule. A merge keeps the workers' highest.
    #[serde(default)]
    pub start_lag_p50_us: u64,
    #[serde(default)]
    pub start_lag_p99_us: u64,
    /// Flows started within the measured window, and how many were intended.
    pub flows_started: u64,
    pub flows_intended: u64,
    /// Flows per second started within the measured window, and the rate the open-model
    /// schedule intended over the same window (0 in the closed model, which has no schedule).
    pub achieved_rate_per_s: f64,
    pub configured_rate_per_s: f64,
    /// Closed model: the virtual users the scenario configures (its largest stage), and the
    /// most that were busy with a flow at once. 0 in the open model.
    #[serde(default)]
    pub configured_users: u64,
    #[serde(default)]
    pub peak_users_busy: u64,
    /// Flows that had not finished when the run ended and were cancelled (each is an error
    /// of its `flow_<name>` operation and of the operation it was in; any fails the run).
    pub flows_cancelled: u64,
    /// `flows_cancelled` per flow operation (`flow_<name>`), only those above zero.
    #[serde(default)]
    pub flows_cancelled_by_flow: BTreeMap<String, u64>,
    /// Open model: the largest share of late starts that passes (`max_late_starts`).
    #[serde(default)]
    pub max_late_start_share: Option<f64>,
    /// Devices whose WebSocket could not be reopened for the drain (fails the run).
    #[serde(default)]
    pub drain_reconnect_failures: u64,
    /// WebSockets that got no close reply in time at the end (fails the run).
    #[serde(default)]
    pub ws_close_timeouts: u64,
    /// Closed model: users still busy at the end of the drain.
    #[serde(default)]
    pub closed_users_unfinished: bool,
    /// Virtual devices created over the run.
    pub devices: u64,
    /// Most WebSockets held open at once.
    pub peak_open_websockets: u64,
    /// Measured generator memory per virtual device holding an open WebSocket, bytes: the RSS
    /// growth of a dedicated probe that opens `ws_probe_devices` connections (0 if not run).
    pub memory_per_ws_device_bytes: u64,
    pub ws_probe_devices: u64,
    /// True when the server ran in this process during the probe, so the figure also holds
    /// the server's side of each connection (an upper bound for the generator alone).
    #[serde(default)]
    pub memory_probe_includes_server: bool,
    /// Closed model: path of goose's own report, relative to the report directory.
    pub goose_report: Option<String>,
}

/// The quantile (0..=1) of a percentage, as the decimal literal would be written: `99.9` →
/// `0.999`. Dividing by 100 is not enough: `99.9 / 100.0` is `0.9990000000000001`, and
/// `value_at_quantile` then takes the ceiling one sample too high (at n = 1000, the maximum
/// instead of the 999th value).
pub(crate) fn quantile(percentile: f64) -> f64 {
    ((percentile * 1e9).round() / 1e11).clamp(0.0, 1.0)
}

/// The value at `percentile` (0..=100) with the hdrhistogram crate's semantics, used for every
/// percentile the harness reports: the smallest recorded value `v` such that at least
/// `ceil(q × count)` samples are `<= v` (at least one), given as the highest value equivalent
/// to it at the histogram's precision. So p99 of fewer than 101 samples is the maximum.
pub(crate) fn value_at_percentile(h: &Histogram<u64>, percentile: f64) -> u64 {
    if h.is_empty() {
        return 0;
    }
    h.value_at_quantile(quantile(percentile))
}

/// Percentiles of a histogram as [`OperationStats`] reports them.
pub(crate) const REPORTED_PERCENTILES: [(&str, f64); 5] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
];

/// A new empty latency histogram with the harness's precision. It grows as values arrive (up
/// to [`HISTOGRAM_MAX_US`], which recorders clamp to), so an idle operation costs little memory.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(HISTOGRAM_SIGFIG).expect("static histogram precision is valid")
}

/// Clamps a latency to what histograms hold (1 µs ..= [`HISTOGRAM_MAX_US`]).
pub(crate) fn clamp_us(us: u128) -> u64 {
    us.clamp(1, HISTOGRAM_MAX_US as u128) as u64
}

/// Serializes a histogram as V2 + DEFLATE, base64 (the format of `histogram` fields).
pub(crate) fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serializing to a Vec cannot fail for a valid histogram");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Why a `histogram` field could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistogramDecodeError {
    #[error("not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("not an HdrHistogram V2 encoding: {0:?}")]
    Hdr(hdrhistogram::serialization::DeserializeError),
}

/// Reads a `histogram` field back.
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, HistogramDecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(HistogramDecodeError::Hdr)
}

impl OperationStats {
    /// Summarises a window histogram. `window_s` is the measured window's length (for the rate).
    pub fn from_histogram(
        h: &Histogram<u64>,
        errors: u64,
        window_s: f64,
        intervals: Vec<IntervalStats>,
    ) -> Self {
        let count = h.len();
        let q = |p: f64| value_at_percentile(h, p);
        OperationStats {
            count,
            errors,
            p50_us: q(50.0),
            p90_us: q(90.0),
            p95_us: q(95.0),
            p99_us: q(99.0),
            p999_us: q(99.9),
            max_us: if count == 0 { 0 } else { h.max() },
            mean_us: if count == 0 {
                0.0
            } else {
                (h.mean() * 10.0).round() / 10.0
            },
            rate_per_s: if window_s > 0.0 {
                round3(count as f64 / window_s)
            } else {
                0.0
            },
            histogram: encode_histogram(h),
            intervals,
        }
    }

    /// The value at a percentile written as in budgets (`p95`, `p99.9`), from the full histogram
    /// when it decodes (any percentile), else from the stored fields.
    pub(crate) fn percentile_us(&self, percentile: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        if let Ok(h) = decode_histogram(&self.histogram) {
            return Some(value_at_percentile(&h, percentile));
        }
        REPORTED_PERCENTILES
            .iter()
            .find(|(_, p)| (*p - percentile).abs() < f64::EPSILON)
            .map(|(name, _)| match *name {
                "p50" => self.p50_us,
                "p90" => self.p90_us,
                "p95" => self.p95_us,
                "p99" => self.p99_us,
                _ => self.p999_us,
            })
    }
}

impl IntervalStats {
    pub fn from_histogram(offset_ms: u64, h: &Histogram<u64>, errors: u64) -> Self {
        let count = h.len();
        let q = |p: f64| value_at_percentile(h, p);
        IntervalStats {
            offset_ms,
            count,
            errors,
            p50_us: q(50.0),
            p95_us: q(95.0),
            p99_us: q(99.0),
            max_us: if count == 0 { 0 } else { h.max() },
            histogram: encode_histogram(h),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_through_base64_v2_deflate() {
        let mut h = new_histogram();
        for v in [1u64, 10, 100, 1_000, 10_000, 123_456] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }

    #[test]
    fn stats_from_histogram_computes_rate_and_percentiles() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let s = OperationStats::from_histogram(&h, 3, 10.0, vec![]);
        assert_eq!(s.count, 1000);
        assert_eq!(s.errors, 3);
        assert_eq!(s.rate_per_s, 100.0);
        assert!(h.equivalent(s.p95_us, 950), "p95 {}", s.p95_us);
        assert_eq!(s.percentile_us(95.0), Some(s.p95_us));
        assert!(s.p999_us >= s.p99_us && s.max_us >= s.p999_us);
    }

    #[test]
    fn percentiles_are_the_crates_value_at_quantile() {
        // n = 1000 and n = 78: small samples where p99 / p99.9 fall on the last few values.
        for n in [1000u64, 78, 3] {
            let mut h = new_histogram();
            for v in 1..=n {
                h.record(v * 37).unwrap();
            }
            let s = OperationStats::from_histogram(&h, 0, 1.0, vec![]);
            assert_eq!(s.p50_us, h.value_at_quantile(0.5));
            assert_eq!(s.p90_us, h.value_at_quantile(0.9));
            assert_eq!(s.p95_us, h.value_at_quantile(0.95));
            assert_eq!(s.p99_us, h.value_at_quantile(0.99));
            assert_eq!(s.p999_us, h.value_at_quantile(0.999), "n = {n}");
            assert_eq!(s.percentile_us(99.9), Some(h.value_at_quantile(0.999)));
        }
        assert_eq!(quantile(99.9), 0.999);
        assert_eq!(quantile(99.99), 0.9999);
        assert_eq!(quantile(100.0), 1.0);
    }

    #[test]
    fn empty_histogram_has_no_percentile() {
        let s = OperationStats::from_histogram(&new_histogram(), 2, 10.0, vec![]);
        assert_eq!(s.count, 0);
        assert_eq!(s.percentile_us(95.0), None);
    }

    #[test]
    fn integrity_fails_on_any_failure_count() {
        let mut i = Integrity {
            messages_sent: 5,
            messages_delivered: 5,
            messages_decrypted: 5,
            ..Default::default()
        };
        assert!(i.is_clean());
        i.prekeys_reused = 1;
        assert!(!i.is_clean());
    }
}
