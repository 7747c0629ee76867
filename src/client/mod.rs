//! A virtual client: devices that run the real protocol against a server — the server's API
//! as the protocol's operations ([`api`], one implementation per dialect), keys ([`keys`],
//! made ahead where the protocol allows), the receiving side with its acks ([`receive`]),
//! the envelope layout ([`wire`]), the device's sessions ([`device`]), the shared world of a
//! run ([`population`]) and the flows a scenario mixes ([`flows`]).

pub(crate) mod api;
pub(crate) mod device;
pub mod flows;
pub mod keys;
pub(crate) mod population;
pub(crate) mod receive;
pub(crate) mod retry;
pub(crate) mod wire;

pub use api::{Dialect, ServerApi};
pub(crate) use device::Device;
pub use population::{FlowConfig, World};
