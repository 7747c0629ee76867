//! A virtual client: devices that run the real protocol against a server speaking the
//! reference API — keys ([`keys`], made ahead where the protocol allows), HTTP ([`http`]),
//! WebSocket delivery and acks ([`ws`]), the envelope layout ([`wire`]), the device's
//! sessions ([`device`]), the shared world of a run ([`population`]) and the flows a
//! scenario mixes ([`flows`]).

pub mod device;
pub mod flows;
pub mod http;
pub mod keys;
pub mod population;
pub mod retry;
pub mod wire;
pub mod ws;

pub use device::Device;
pub use http::Api;
pub use population::{FlowConfig, World};
