//! Measurement: per-worker HDR histograms (merged, never averaged) with per-second intervals,
//! integrity accounting, live progress, and the generator's own CPU and memory.

mod op;

pub use op::Op;
