//! Measurement: per-worker HDR histograms (merged, never averaged) with per-second intervals,
//! integrity accounting, live progress, and the generator's own CPU and memory.

pub(crate) mod generator;
pub(crate) mod histogram;
pub(crate) mod integrity;
pub(crate) mod machine;
mod op;
pub(crate) mod process;
pub mod progress;

pub use generator::GeneratorCounters;
pub use histogram::Recorder;
pub use integrity::{Arrival, DeviceAddr, Ledger};
pub use op::Op;
