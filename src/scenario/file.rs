//! The scenario file as written (serde + toml, unknown keys rejected). Values that need checks
//! beyond their type keep their span, so a validation error can point at them.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) name: Option<String>,
    #[expect(
        dead_code,
        reason = "a scenario file's note for people; accepted, never used"
    )]
    pub(crate) description: Option<String>,
    pub(crate) model: LoadModel,
    #[serde(default = "default_seed")]
    pub(crate) seed: u64,
    /// The server API the scenario is written for (`--api` overrides it).
    pub(crate) api: Option<Spanned<String>>,
    /// Total run time including warm-up (optional with open-model stages: their sum).
    pub(crate) duration: Option<Spanned<String>>,
    /// Excluded from results.
    pub(crate) warmup: Option<Spanned<String>>,
    /// After the last flow: how long to wait for in-flight messages before calling them lost.
    pub(crate) drain: Option<Spanned<String>>,
    pub(crate) population: Spanned<RawPopulation>,
    pub(crate) open: Option<Spanned<RawOpen>>,
    pub(crate) closed: Option<Spanned<RawClosed>>,
    /// Flow name → weight (names checked against the flow table).
    pub(crate) mix: Spanned<BTreeMap<Spanned<String>, Spanned<u32>>>,
    #[serde(default)]
    pub(crate) converse: RawConverse,
    #[serde(default)]
    pub(crate) fanout: RawFanout,
    #[serde(default)]
    pub(crate) offline: RawOffline,
    /// Plaintext bytes per message (before encryption).
    pub(crate) message_size: Option<Spanned<u32>>,
    /// Largest share of failed operations (errors / attempts, per operation) that still passes.
    pub(crate) max_error_rate: Option<Spanned<f64>>,
    /// Open model: largest share of flows started more than the late-start threshold after
    /// their intended start that still passes.
    pub(crate) max_late_starts: Option<Spanned<f64>>,
    /// Devices the memory probe connects to measure generator memory per WebSocket (0: off).
    pub(crate) memory_probe_devices: Option<Spanned<u32>>,
    /// `operation = { p95 = "10ms", ... }`
    #[serde(default)]
    pub(crate) budgets: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<String>>>,
    /// `[[faults]]`: failures injected during the measured window.
    #[serde(default)]
    pub(crate) faults: Vec<crate::scenario::fault::RawFault>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LoadModel {
    Open,
    Closed,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPopulation {
    pub(crate) users: Spanned<u32>,
    pub(crate) devices_per_user: Spanned<u32>,
    pub(crate) one_time_prekeys: Spanned<u32>,
    pub(crate) replenish_threshold: Spanned<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOpen {
    /// Constant arrival rate, flows per second.
    pub(crate) rate: Option<Spanned<f64>>,
    /// Rate at the start of the first stage (ramping stages).
    pub(crate) start_rate: Option<Spanned<f64>>,
    pub(crate) stages: Option<Vec<Spanned<RawOpenStage>>>,
    /// Most flows in flight at once; a start beyond it waits (and counts as late).
    pub(crate) max_in_flight: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOpenStage {
    pub(crate) duration: Spanned<String>,
    /// Rate reached (linearly) at the end of the stage.
    pub(crate) rate: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClosed {
    pub(crate) users: Spanned<u32>,
    pub(crate) ramp_up: Option<Spanned<String>>,
    pub(crate) ramp_down: Option<Spanned<String>>,
    /// Pause between a user's flows.
    pub(crate) think_time: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConverse {
    /// Messages in each direction.
    pub(crate) messages: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFanout {
    /// Users in the group message.
    pub(crate) group_size: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOffline {
    /// Messages queued for the offline device.
    pub(crate) messages: Option<Spanned<u32>>,
    /// How long the device stays offline at least.
    pub(crate) away: Option<Spanned<String>>,
}
