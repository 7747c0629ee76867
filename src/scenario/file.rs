//! The scenario file as written (serde + toml, unknown keys rejected). Values that need checks
//! beyond their type keep their span, so a validation error can point at them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Option<String>,
    pub description: Option<String>,
    pub model: LoadModel,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// The server API the scenario is written for (`--api` overrides it).
    pub api: Option<Spanned<String>>,
    /// Total run time including warm-up (optional with open-model stages: their sum).
    pub duration: Option<Spanned<String>>,
    /// Excluded from results.
    pub warmup: Option<Spanned<String>>,
    /// After the last flow: how long to wait for in-flight messages before calling them lost.
    pub drain: Option<Spanned<String>>,
    pub population: Spanned<RawPopulation>,
    pub open: Option<Spanned<RawOpen>>,
    pub closed: Option<Spanned<RawClosed>>,
    /// Flow name → weight (names checked against the flow table).
    pub mix: Spanned<BTreeMap<Spanned<String>, Spanned<u32>>>,
    #[serde(default)]
    pub converse: RawConverse,
    #[serde(default)]
    pub fanout: RawFanout,
    #[serde(default)]
    pub offline: RawOffline,
    /// Plaintext bytes per message (before encryption).
    pub message_size: Option<Spanned<u32>>,
    /// Largest share of failed operations (errors / attempts, per operation) that still passes.
    pub max_error_rate: Option<Spanned<f64>>,
    /// Open model: largest share of flows started more than the late-start threshold after
    /// their intended start that still passes.
    pub max_late_starts: Option<Spanned<f64>>,
    /// Devices the memory probe connects to measure generator memory per WebSocket (0: off).
    pub memory_probe_devices: Option<Spanned<u32>>,
    /// `operation = { p95 = "10ms", ... }`
    #[serde(default)]
    pub budgets: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<String>>>,
    /// `[[faults]]`: failures injected during the measured window.
    #[serde(default)]
    pub faults: Vec<crate::scenario::fault::RawFault>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadModel {
    Open,
    Closed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPopulation {
    pub users: Spanned<u32>,
    pub devices_per_user: Spanned<u32>,
    pub one_time_prekeys: Spanned<u32>,
    pub replenish_threshold: Spanned<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpen {
    /// Constant arrival rate, flows per second.
    pub rate: Option<Spanned<f64>>,
    /// Rate at the start of the first stage (ramping stages).
    pub start_rate: Option<Spanned<f64>>,
    pub stages: Option<Vec<Spanned<RawOpenStage>>>,
    /// Most flows in flight at once; a start beyond it waits (and counts as late).
    pub max_in_flight: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenStage {
    pub duration: Spanned<String>,
    /// Rate reached (linearly) at the end of the stage.
    pub rate: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClosed {
    pub users: Spanned<u32>,
    pub ramp_up: Option<Spanned<String>>,
    pub ramp_down: Option<Spanned<String>>,
    /// Pause between a user's flows.
    pub think_time: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConverse {
    /// Messages in each direction.
    pub messages: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFanout {
    /// Users in the group message.
    pub group_size: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOffline {
    /// Messages queued for the offline device.
    pub messages: Option<Spanned<u32>>,
    /// How long the device stays offline at least.
    pub away: Option<Spanned<String>>,
}
