//! What to run: a scenario file (`scenarios/*.toml`) parsed and validated into a [`Scenario`].
//!
//! Parsing is serde + toml with unknown keys rejected; every error, whether toml's own (syntax,
//! type, unknown key) or ours (negative rate, unknown budget operation, …) is reported as
//! `file:line:column: what is wrong`, using toml's spans.

pub(crate) mod budget;
mod error;
pub(crate) mod fault;
mod file;
mod flow;
pub(crate) mod limits;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use budget::{Budget, BudgetSource};
pub(crate) use error::{line_column, ScenarioError};
pub(crate) use fault::{Fault, FaultKind};
pub(crate) use file::LoadModel;
pub use flow::FlowKind;
use toml::Spanned;

/// The server's per-request limit on one-time prekeys (docs/api.md).
pub(crate) const MAX_PREKEYS_PER_UPLOAD: u32 = 100;

/// Late starts (share of flows started) above which a run fails: the schedule was not held.
pub(crate) const DEFAULT_MAX_LATE_STARTS: f64 = 0.01;

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    /// The file's full text (embedded in the report).
    pub(crate) source: String,
    pub seed: u64,
    /// The server API named by the file (`api = "..."`), if any; `--api` overrides it.
    pub(crate) api: Option<crate::client::Dialect>,
    pub load: Load,
    /// Total run time including warm-up.
    pub(crate) duration: Duration,
    pub(crate) warmup: Duration,
    pub(crate) drain: Duration,
    pub(crate) population: Population,
    /// Weight per [`FlowKind`], indexed by `FlowKind as usize`.
    pub weights: [u32; FlowKind::COUNT],
    pub converse_messages: u32,
    pub(crate) fanout_group_size: u32,
    pub(crate) offline_messages: u32,
    pub(crate) offline_away: Duration,
    pub(crate) message_size: u32,
    /// Largest share of failed attempts per operation that still passes (0..=1).
    pub(crate) max_error_rate: f64,
    /// Open model: largest share of late starts that still passes (0..=1).
    pub(crate) max_late_start_share: f64,
    pub(crate) memory_probe_devices: u32,
    pub(crate) budgets: Vec<Budget>,
    /// Failures to inject, by offset from the start of the measured window.
    pub(crate) faults: Vec<Fault>,
    /// Flows taken out of the mix because the server's API cannot run them
    /// (`--skip-unsupported`); empty as loaded.
    pub(crate) skipped_flows: Vec<crate::load::capability::SkippedFlow>,
}

/// The flows' own settings, as validated.
struct FlowParams {
    converse_messages: u32,
    fanout_group_size: u32,
    offline_messages: u32,
    offline_away: Duration,
    message_size: u32,
}

/// What a run may get wrong and still pass, and the memory probe's size.
struct RunLimits {
    max_error_rate: f64,
    max_late_start_share: f64,
    memory_probe_devices: u32,
}

/// The population set up before the clock starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Population {
    pub(crate) users: u32,
    pub(crate) devices_per_user: u32,
    pub(crate) one_time_prekeys: u32,
    pub(crate) replenish_threshold: u32,
}

/// How load is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    Open(OpenPlan),
    Closed(ClosedPlan),
}

/// Open model: flows start at an arrival rate, linearly interpolated between stage ends.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenPlan {
    pub(crate) start_rate: f64,
    pub(crate) stages: Vec<Stage>,
    pub(crate) max_in_flight: u32,
}

/// Ramp linearly to `rate` flows/s over `duration`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stage {
    pub(crate) duration: Duration,
    pub(crate) rate: f64,
}

/// Closed model: N virtual users looping over flows, ramped up and down.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedPlan {
    pub(crate) users: u32,
    pub(crate) ramp_up: Duration,
    pub(crate) ramp_down: Duration,
    pub(crate) think_time: Duration,
}

impl OpenPlan {
    /// Configured average rate over the whole run.
    pub(crate) fn mean_rate(&self) -> f64 {
        let total: f64 = self.stages.iter().map(|s| s.duration.as_secs_f64()).sum();
        if total == 0.0 {
            return 0.0;
        }
        let mut from = self.start_rate;
        let mut flows = 0.0;
        for s in &self.stages {
            flows += (from + s.rate) / 2.0 * s.duration.as_secs_f64();
            from = s.rate;
        }
        flows / total
    }
}

impl Scenario {
    /// An error about fault `f` found after parsing (e.g. the provider cannot inject it).
    pub(crate) fn fault_error(&self, f: &Fault, message: impl Into<String>) -> ScenarioError {
        ScenarioError {
            origin: self.path.display().to_string(),
            position: Some(f.position),
            message: message.into(),
        }
    }

    /// Reads and validates a scenario file; a path that does not exist may name a built-in
    /// scenario (`default`, `scenarios/smoke.toml`, …), so `run` works from any directory.
    /// Reads at most [`limits::MAX_FILE_BYTES`]: `/dev/zero` or a runaway pipe is refused,
    /// not read until memory runs out.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        if !path.exists() {
            if let Some((shown, source)) = crate::builtin::scenario(path) {
                return Scenario::parse(&shown, source);
            }
        }
        let fail = |message: String| ScenarioError {
            origin: path.display().to_string(),
            position: None,
            message,
        };
        let source = crate::source::read_capped(path, limits::MAX_FILE_BYTES).map_err(|e| {
            fail(format!(
                "cannot read scenario file: {e} (built-in scenarios: {})",
                crate::builtin::scenario_names().join(", ")
            ))
        })?;
        Scenario::parse(path, &source)
    }

    /// Parses and validates scenario text; `path` is only used in messages and the report.
    pub fn parse(path: &Path, source: &str) -> Result<Scenario, ScenarioError> {
        let raw: file::RawScenario = toml::from_str(source).map_err(|e| {
            ScenarioError::at(path, source, e.span(), e.message().trim_end().to_string())
        })?;
        Validator { path, source }.validate(raw)
    }

    pub(crate) fn weight(&self, flow: FlowKind) -> u32 {
        self.weights[flow as usize]
    }

    /// Adds or overrides budgets from `--budget` flags.
    pub(crate) fn apply_budget_flags(&mut self, flags: &[String]) -> Result<(), ScenarioError> {
        let mut extra = Vec::new();
        for f in flags {
            extra.push(budget::parse_flag(f).map_err(|m| ScenarioError::flag(f, m))?);
        }
        budget::merge(&mut self.budgets, extra);
        Ok(())
    }
}

struct Validator<'a> {
    path: &'a Path,
    source: &'a str,
}

impl Validator<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.path, self.source, Some(span), message)
    }

    /// A duration of at most `max` (a bound in [`limits`]).
    fn duration(
        &self,
        v: &Spanned<String>,
        what: &str,
        max: Duration,
    ) -> Result<Duration, ScenarioError> {
        let d = humantime::parse_duration(v.get_ref().trim()).map_err(|e| {
            self.err(
                v.span(),
                format!(
                    "{what} `{}` is not a duration like 30s or 1m: {e}",
                    v.get_ref()
                ),
            )
        })?;
        if d > max {
            return Err(self.err(
                v.span(),
                format!(
                    "{what} `{}` is above the bound of {}",
                    v.get_ref(),
                    limits::show(max)
                ),
            ));
        }
        Ok(d)
    }

    fn opt_duration(
        &self,
        v: &Option<Spanned<String>>,
        what: &str,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, ScenarioError> {
        v.as_ref()
            .map_or(Ok(default), |v| self.duration(v, what, max))
    }

    /// One rule for every rate: a finite number of flows per second up to
    /// [`limits::MAX_RATE`]; above 0 where the rate is the whole schedule (`open.rate`), 0 or
    /// more where it is one point of a ramp (`stages`, `start_rate`: 0 is a pause).
    fn rate(&self, v: &Spanned<f64>, what: &str, zero_ok: bool) -> Result<f64, ScenarioError> {
        let r = *v.get_ref();
        let low_ok = if zero_ok { r >= 0.0 } else { r > 0.0 };
        if !r.is_finite() || !low_ok || r > limits::MAX_RATE {
            let low = if zero_ok { "0 or more" } else { "above 0" };
            return Err(self.err(
                v.span(),
                format!(
                    "{what} must be {low} and at most {} flows per second, got {r}",
                    limits::MAX_RATE
                ),
            ));
        }
        Ok(r)
    }

    /// `v` is at most `max`, else an error naming the field and the bound.
    fn at_most(&self, v: &Spanned<u32>, max: u32, what: &str) -> Result<u32, ScenarioError> {
        if *v.get_ref() > max {
            return Err(self.err(
                v.span(),
                format!("{what} ({}) is above the bound of {max}", v.get_ref()),
            ));
        }
        Ok(*v.get_ref())
    }

    /// Checks the file section by section (one function each) into a [`Scenario`].
    fn validate(&self, raw: file::RawScenario) -> Result<Scenario, ScenarioError> {
        let name = raw.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into())
        });
        let population = self.population(&raw.population)?;
        let (load, duration) = self.load(&raw)?;
        let (warmup, drain) = self.timing(&raw, duration)?;
        let weights = self.weights(&raw.mix)?;
        if weights.iter().all(|w| *w == 0) {
            return Err(self.err(
                raw.mix.span(),
                "[mix] needs at least one flow with a weight above 0",
            ));
        }
        let params = self.flow_params(&raw, &population)?;
        let limits = self.limits(&raw)?;
        let budgets = self.budgets(&raw, &weights)?;
        let faults = self.faults(&raw.faults, duration - warmup)?;
        let api = raw.api.as_ref().map(|a| self.dialect(a)).transpose()?;

        Ok(Scenario {
            name,
            path: self.path.to_path_buf(),
            source: self.source.to_string(),
            seed: raw.seed,
            api,
            load,
            duration,
            warmup,
            drain,
            population,
            weights,
            converse_messages: params.converse_messages,
            fanout_group_size: params.fanout_group_size,
            offline_messages: params.offline_messages,
            offline_away: params.offline_away,
            message_size: params.message_size,
            max_error_rate: limits.max_error_rate,
            max_late_start_share: limits.max_late_start_share,
            memory_probe_devices: limits.memory_probe_devices,
            budgets,
            faults,
            skipped_flows: Vec::new(),
        })
    }

    /// `model` with its `[open]` or `[closed]` table, and the total duration.
    fn load(&self, raw: &file::RawScenario) -> Result<(Load, Duration), ScenarioError> {
        let whole = 0..self.source.len();
        let duration = raw
            .duration
            .as_ref()
            .map(|d| (self.duration(d, "duration", limits::MAX_DURATION), d.span()));
        let (load, duration) = match raw.model {
            LoadModel::Open => {
                if let Some(c) = &raw.closed {
                    return Err(self.err(
                        c.span(),
                        "a [closed] table in an open-model scenario (model = \"open\")",
                    ));
                }
                let open = raw.open.as_ref().ok_or_else(|| {
                    self.err(
                        whole.clone(),
                        "model = \"open\" needs an [open] table with `rate` or `stages`",
                    )
                })?;
                self.open(open, duration)?
            }
            LoadModel::Closed => {
                if let Some(o) = &raw.open {
                    return Err(self.err(
                        o.span(),
                        "an [open] table in a closed-model scenario (model = \"closed\")",
                    ));
                }
                let closed = raw.closed.as_ref().ok_or_else(|| {
                    self.err(
                        whole.clone(),
                        "model = \"closed\" needs a [closed] table with `users`",
                    )
                })?;
                let (d, span) = match duration {
                    Some((d, span)) => (d?, span),
                    None => {
                        return Err(self.err(
                            whole.clone(),
                            "missing `duration` (e.g. duration = \"30s\")",
                        ))
                    }
                };
                (Load::Closed(self.closed(closed, d, span)?), d)
            }
        };

        Ok((load, duration))
    }

    /// `warmup` (shorter than the duration) and `drain`.
    fn timing(
        &self,
        raw: &file::RawScenario,
        duration: Duration,
    ) -> Result<(Duration, Duration), ScenarioError> {
        let whole = 0..self.source.len();
        let warmup =
            self.opt_duration(&raw.warmup, "warmup", Duration::ZERO, limits::MAX_DURATION)?;
        if warmup >= duration {
            let span = raw
                .warmup
                .as_ref()
                .map(|w| w.span())
                .unwrap_or(whole.clone());
            return Err(self.err(
                span,
                format!("warmup ({warmup:?}) must be shorter than the duration ({duration:?})"),
            ));
        }
        let drain = self.opt_duration(
            &raw.drain,
            "drain",
            Duration::from_secs(10),
            limits::MAX_WAIT,
        )?;

        Ok((warmup, drain))
    }

    /// The flows' own settings: `[converse]`, `[fanout]`, `[offline]`, `message_size`.
    fn flow_params(
        &self,
        raw: &file::RawScenario,
        population: &Population,
    ) -> Result<FlowParams, ScenarioError> {
        let whole = 0..self.source.len();
        let positive =
            |v: &Option<Spanned<u32>>, default: u32, what: &str| -> Result<u32, ScenarioError> {
                match v {
                    None => Ok(default),
                    Some(v) if *v.get_ref() == 0 => {
                        Err(self.err(v.span(), format!("{what} must be at least 1")))
                    }
                    Some(v) => Ok(*v.get_ref()),
                }
            };
        let messages = |v: &Option<Spanned<u32>>, what: &str| -> Result<u32, ScenarioError> {
            if let Some(v) = v {
                self.at_most(v, limits::MAX_MESSAGES_PER_FLOW, what)?;
            }
            positive(v, 3, what)
        };
        let converse_messages = messages(&raw.converse.messages, "converse.messages")?;
        let fanout_group_size = positive(&raw.fanout.group_size, 3, "fanout.group_size")?;
        if fanout_group_size >= population.users {
            let span = raw
                .fanout
                .group_size
                .as_ref()
                .map(|v| v.span())
                .unwrap_or(raw.population.span());
            return Err(self.err(
                span,
                format!(
                    "fanout.group_size ({fanout_group_size}) must be below population.users ({})",
                    population.users
                ),
            ));
        }
        let offline_messages = messages(&raw.offline.messages, "offline.messages")?;
        let offline_away = self.opt_duration(
            &raw.offline.away,
            "offline.away",
            Duration::from_millis(200),
            limits::MAX_WAIT,
        )?;
        let message_size = positive(&raw.message_size, 128, "message_size")?;
        if !(32..=60 * 1024).contains(&message_size) {
            let span = raw
                .message_size
                .as_ref()
                .map(|v| v.span())
                .unwrap_or(whole.clone());
            return Err(self.err(span, "message_size must be between 32 and 61440 bytes"));
        }

        Ok(FlowParams {
            converse_messages,
            fanout_group_size,
            offline_messages,
            offline_away,
            message_size,
        })
    }

    /// `max_error_rate`, `max_late_starts` and `memory_probe_devices`.
    fn limits(&self, raw: &file::RawScenario) -> Result<RunLimits, ScenarioError> {
        let max_error_rate = match &raw.max_error_rate {
            None => 0.01,
            Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                return Err(self.err(
                    v.span(),
                    format!(
                        "max_error_rate must be between 0 and 1, got {}",
                        v.get_ref()
                    ),
                ))
            }
        };
        let max_late_start_share = match &raw.max_late_starts {
            None => DEFAULT_MAX_LATE_STARTS,
            Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                return Err(self.err(
                    v.span(),
                    format!(
                        "max_late_starts must be between 0 and 1, got {}",
                        v.get_ref()
                    ),
                ))
            }
        };
        let memory_probe_devices = match &raw.memory_probe_devices {
            Some(v) => self.at_most(v, limits::MAX_PROBE_DEVICES, "memory_probe_devices")?,
            None => 200,
        };

        Ok(RunLimits {
            max_error_rate,
            max_late_start_share,
            memory_probe_devices,
        })
    }

    /// `[budgets]`: `operation = { p95 = "10ms", ... }`.
    /// `[budgets]`: each on an operation some flow of the mix records (from the flow table),
    /// since a budget nothing measures would fail the run only after it ran.
    fn budgets(
        &self,
        raw: &file::RawScenario,
        weights: &[u32; FlowKind::COUNT],
    ) -> Result<Vec<Budget>, ScenarioError> {
        let mut budgets = Vec::new();
        for (op, percentiles) in &raw.budgets {
            let op_parsed = budget::parse_op(op.get_ref()).map_err(|m| self.err(op.span(), m))?;
            let recorders = crate::client::flows::Flow::recording(op_parsed);
            if !recorders.iter().any(|f| weights[f.kind as usize] > 0) {
                let names: Vec<&str> = recorders.iter().map(|f| f.name).collect();
                return Err(self.err(
                    op.span(),
                    format!(
                        "budget on `{}`, but no flow in [mix] records it (flows that do: {})",
                        op.get_ref(),
                        names.join(", ")
                    ),
                ));
            }
            if percentiles.is_empty() {
                return Err(self.err(
                    op.span(),
                    format!("budget `{}` names no percentile", op.get_ref()),
                ));
            }
            for (pct, limit) in percentiles {
                let (percentile, label) =
                    budget::parse_percentile(pct.get_ref()).map_err(|m| self.err(pct.span(), m))?;
                let limit_us =
                    budget::parse_limit(limit.get_ref()).map_err(|m| self.err(limit.span(), m))?;
                budgets.push(Budget {
                    op: op_parsed,
                    percentile,
                    label,
                    limit_us,
                    source: BudgetSource::Scenario,
                });
            }
        }

        Ok(budgets)
    }

    /// `[mix]`: a weight per flow named in the flow table; flows not named weigh 0.
    fn weights(
        &self,
        mix: &Spanned<BTreeMap<Spanned<String>, Spanned<u32>>>,
    ) -> Result<[u32; FlowKind::COUNT], ScenarioError> {
        let mut weights = [0; FlowKind::COUNT];
        for (name, weight) in mix.get_ref() {
            let kind = FlowKind::from_name(name.get_ref()).ok_or_else(|| {
                let known: Vec<&str> = FlowKind::ALL.iter().map(|k| k.name()).collect();
                self.err(
                    name.span(),
                    format!(
                        "unknown field `{}` in [mix]: the flows are {}",
                        name.get_ref(),
                        known.join(", ")
                    ),
                )
            })?;
            weights[kind as usize] = *weight.get_ref();
        }
        Ok(weights)
    }

    fn dialect(&self, name: &Spanned<String>) -> Result<crate::client::Dialect, ScenarioError> {
        crate::client::Dialect::parse(name.get_ref()).map_err(|m| self.err(name.span(), m))
    }

    fn faults(
        &self,
        raw: &[fault::RawFault],
        window: Duration,
    ) -> Result<Vec<Fault>, ScenarioError> {
        let err = |span: Range<usize>, m: String| self.err(span, m);
        let duration =
            |v: &Spanned<String>, what: &str| self.duration(v, what, limits::MAX_DURATION);
        let mut out: Vec<Fault> = raw
            .iter()
            .map(|f| {
                let position = line_column(self.source, f.kind.span().start);
                fault::validate(f, window, &err, &duration, position)
            })
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|f| f.at);
        Ok(out)
    }

    fn population(&self, p: &Spanned<file::RawPopulation>) -> Result<Population, ScenarioError> {
        let r = p.get_ref();
        if *r.users.get_ref() < 2 {
            return Err(self.err(
                r.users.span(),
                "population.users must be at least 2 (someone has to talk to someone)",
            ));
        }
        if *r.devices_per_user.get_ref() == 0 {
            return Err(self.err(
                r.devices_per_user.span(),
                "population.devices_per_user must be at least 1",
            ));
        }
        self.at_most(&r.users, limits::MAX_USERS, "population.users")?;
        let per_user = self.at_most(
            &r.devices_per_user,
            limits::MAX_DEVICES_PER_USER,
            "population.devices_per_user",
        )?;
        let devices = u64::from(*r.users.get_ref()) * u64::from(per_user);
        if devices > limits::MAX_DEVICES {
            return Err(self.err(
                p.span(),
                format!(
                    "population.users × devices_per_user ({devices} devices) is above the bound of {}",
                    limits::MAX_DEVICES
                ),
            ));
        }
        let otpk = *r.one_time_prekeys.get_ref();
        if otpk == 0 || otpk > MAX_PREKEYS_PER_UPLOAD {
            return Err(self.err(
                r.one_time_prekeys.span(),
                format!("population.one_time_prekeys must be 1..={MAX_PREKEYS_PER_UPLOAD} (one upload), got {otpk}"),
            ));
        }
        if *r.replenish_threshold.get_ref() >= otpk {
            return Err(self.err(
                r.replenish_threshold.span(),
                format!("population.replenish_threshold must be below one_time_prekeys ({otpk})"),
            ));
        }
        Ok(Population {
            users: *r.users.get_ref(),
            devices_per_user: *r.devices_per_user.get_ref(),
            one_time_prekeys: otpk,
            replenish_threshold: *r.replenish_threshold.get_ref(),
        })
    }

    fn open(
        &self,
        open: &Spanned<file::RawOpen>,
        duration: Option<(Result<Duration, ScenarioError>, Range<usize>)>,
    ) -> Result<(Load, Duration), ScenarioError> {
        let o = open.get_ref();
        let max_in_flight = match &o.max_in_flight {
            Some(v) if *v.get_ref() == 0 => {
                return Err(self.err(v.span(), "open.max_in_flight must be at least 1"))
            }
            Some(v) => self.at_most(v, limits::MAX_IN_FLIGHT, "open.max_in_flight")?,
            None => 10_000,
        };
        match (&o.rate, &o.stages) {
            (Some(_), Some(stages)) => Err(self.err(
                stages.first().map(|s| s.span()).unwrap_or(open.span()),
                "[open] has both `rate` and `stages`; use one",
            )),
            (None, None) => Err(self.err(
                open.span(),
                "[open] needs `rate` (constant) or `stages` (ramping)",
            )),
            (Some(rate), None) => {
                let r = self.rate(rate, "open.rate", false)?;
                if let Some(s) = &o.start_rate {
                    return Err(self.err(s.span(), "open.start_rate only applies to `stages`"));
                }
                let d = match duration {
                    Some((d, _)) => d?,
                    None => {
                        return Err(self.err(
                            open.span(),
                            "a constant open.rate needs a top-level `duration`",
                        ))
                    }
                };
                let plan = OpenPlan {
                    start_rate: r,
                    stages: vec![Stage {
                        duration: d,
                        rate: r,
                    }],
                    max_in_flight,
                };
                self.within_flow_bound(&plan, rate.span())?;
                Ok((Load::Open(plan), d))
            }
            (None, Some(raw_stages)) => self.open_stages(open, raw_stages, duration, max_in_flight),
        }
    }

    /// `[open]` with `stages`: each lasts longer than 0 s, the sum is the duration.
    fn open_stages(
        &self,
        open: &Spanned<file::RawOpen>,
        raw_stages: &[Spanned<file::RawOpenStage>],
        duration: Option<(Result<Duration, ScenarioError>, Range<usize>)>,
        max_in_flight: u32,
    ) -> Result<(Load, Duration), ScenarioError> {
        let o = open.get_ref();
        if raw_stages.is_empty() {
            return Err(self.err(open.span(), "open.stages is empty"));
        }
        let start_rate = o
            .start_rate
            .as_ref()
            .map(|s| self.rate(s, "open.start_rate", true))
            .transpose()?
            .unwrap_or(0.0);
        let mut stages = Vec::new();
        for s in raw_stages {
            let st = s.get_ref();
            let d = self.duration(&st.duration, "stage duration", limits::MAX_DURATION)?;
            if d.is_zero() {
                return Err(self.err(st.duration.span(), "a stage must last longer than 0s"));
            }
            stages.push(Stage {
                duration: d,
                rate: self.rate(&st.rate, "stage rate", true)?,
            });
        }
        let total: Duration = stages.iter().map(|s| s.duration).sum();
        if total > limits::MAX_DURATION {
            return Err(self.err(
                open.span(),
                format!(
                    "open.stages last {} in all, above the bound of {}",
                    limits::show(total),
                    limits::show(limits::MAX_DURATION)
                ),
            ));
        }
        if let Some((d, span)) = duration {
            let d = d?;
            if d != total {
                return Err(self.err(
                    span,
                    format!("duration ({d:?}) differs from the sum of open.stages ({total:?}); omit it or make them agree"),
                ));
            }
        }
        let plan = OpenPlan {
            start_rate,
            stages,
            max_in_flight,
        };
        if plan.mean_rate() == 0.0 {
            return Err(self.err(
                open.span(),
                "open.stages never start a flow (every rate is 0)",
            ));
        }
        self.within_flow_bound(&plan, open.span())?;
        Ok((Load::Open(plan), total))
    }

    /// The schedule (and the keys made for it) stays bounded: mean rate × duration.
    fn within_flow_bound(&self, plan: &OpenPlan, span: Range<usize>) -> Result<(), ScenarioError> {
        let seconds: f64 = plan.stages.iter().map(|s| s.duration.as_secs_f64()).sum();
        let flows = plan.mean_rate() * seconds;
        if flows > limits::MAX_FLOWS {
            return Err(self.err(
                span,
                format!(
                    "the schedule starts {flows:.0} flows (rate × duration), above the bound of {}",
                    limits::MAX_FLOWS
                ),
            ));
        }
        Ok(())
    }

    fn closed(
        &self,
        c: &Spanned<file::RawClosed>,
        duration: Duration,
        dspan: Range<usize>,
    ) -> Result<ClosedPlan, ScenarioError> {
        let r = c.get_ref();
        if *r.users.get_ref() == 0 {
            return Err(self.err(r.users.span(), "closed.users must be at least 1"));
        }
        self.at_most(&r.users, limits::MAX_USERS, "closed.users")?;
        let max = limits::MAX_DURATION;
        let ramp_up = self.opt_duration(&r.ramp_up, "closed.ramp_up", Duration::ZERO, max)?;
        let ramp_down = self.opt_duration(&r.ramp_down, "closed.ramp_down", Duration::ZERO, max)?;
        if ramp_up + ramp_down >= duration {
            return Err(self.err(
                dspan,
                format!("duration ({duration:?}) must be longer than closed.ramp_up + closed.ramp_down ({:?})", ramp_up + ramp_down),
            ));
        }
        Ok(ClosedPlan {
            users: *r.users.get_ref(),
            ramp_up,
            ramp_down,
            think_time: self.opt_duration(
                &r.think_time,
                "closed.think_time",
                Duration::ZERO,
                limits::MAX_WAIT,
            )?,
        })
    }
}

#[cfg(test)]
mod tests;
