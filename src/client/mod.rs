//! A virtual client: devices that run the real protocol against a server — the server's API
//! as the protocol's operations ([`api`], one implementation per dialect), keys ([`keys`],
//! made ahead where the protocol allows), the receiving side with its acks ([`receive`]),
//! the envelope layout ([`wire`]), the device's sessions ([`device`]), the shared world of a
//! run ([`population`]) and the flows a scenario mixes ([`flows`]).

pub mod api;
pub mod device;
pub mod flows;
pub mod keys;
pub mod population;
pub mod receive;
pub mod retry;
pub mod wire;

pub use api::{Dialect, ServerApi};
pub use device::Device;
pub use population::{FlowConfig, World};
