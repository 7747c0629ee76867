//! Servers that are not ours, spoken to in their own API ("dialects").
//!
//! Each dialect is the protocol layer only: typed requests and responses, authentication,
//! key and header encodings, typed errors. The virtual clients keep running our real X3DH
//! and Double Ratchet ([`crate::crypto`]); a dialect only says how their inputs and outputs
//! travel through that server. The HushNet backend (seed document 003) is the first.

pub mod hushnet;
