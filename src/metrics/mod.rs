//! Measurement: per-worker HDR histograms (merged, never averaged) with per-second intervals,
//! integrity accounting, live progress, and the generator's own CPU and memory.

pub mod generator;
pub mod histogram;
pub mod integrity;
pub mod machine;
mod op;
pub mod process;
pub mod progress;

pub use generator::GeneratorCounters;
pub use histogram::Recorder;
pub use integrity::{Arrival, DeviceAddr, Ledger};
pub use op::Op;
