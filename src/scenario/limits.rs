//! Upper bounds on what a scenario (or a flag) may ask for. They are far above anything one
//! machine can drive, and exist so that an absurd value (`users = 4000000000`,
//! `rate = 1e12`, `duration = "999999h"`) is refused with exit 2 naming the field and the
//! bound before anything starts, instead of an allocation abort after PostgreSQL has started.
//! scenarios/README.md lists them.

use std::time::Duration;

/// population.users (and closed.users): every user is registered and connected up front.
pub(crate) const MAX_USERS: u32 = 100_000;
/// population.devices_per_user.
pub(crate) const MAX_DEVICES_PER_USER: u32 = 64;
/// users × devices_per_user: each device holds a WebSocket and precomputed keys.
pub(crate) const MAX_DEVICES: u64 = 200_000;
/// Any arrival rate, flows per second.
pub(crate) const MAX_RATE: f64 = 100_000.0;
/// duration, each stage, warm-up, ramps.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// drain, offline.away, think_time: waits inside or after a run.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(3600);
/// memory_probe_devices: connected on top of the population.
pub(crate) const MAX_PROBE_DEVICES: u32 = 20_000;
/// converse.messages and offline.messages, per flow; the ratchet skips at most 1000 keys.
pub(crate) const MAX_MESSAGES_PER_FLOW: u32 = 1_000;
/// open.max_in_flight.
pub(crate) const MAX_IN_FLIGHT: u32 = 1_000_000;
/// Flows one run may schedule (mean rate × duration): bounds the schedule and its keys.
pub(crate) const MAX_FLOWS: f64 = 50_000_000.0;

/// A scenario file's size.
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Human form of a duration bound for messages ("24h").
pub(crate) fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
