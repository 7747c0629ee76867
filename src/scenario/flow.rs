//! The kinds of flow a scenario mixes.

use serde::Deserialize;

/// One kind of flow (a sequence of protocol steps by virtual devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    /// A new device registers and uploads its keys.
    Register = 0,
    /// A device checks its one-time prekey count and uploads a batch when it runs low.
    Replenish = 1,
    /// A device rotates its signed prekey.
    Rotate = 2,
    /// Fetch a user's bundles, verify, X3DH, send the prekey message.
    Initiate = 3,
    /// A ratcheted exchange of K messages in both directions.
    Converse = 4,
    /// One message to a multi-device user and to a group of M users.
    Fanout = 5,
    /// A device goes offline, messages queue for it, it reconnects and drains them.
    Offline = 6,
}

impl FlowKind {
    pub const ALL: [FlowKind; 7] = [
        FlowKind::Register,
        FlowKind::Replenish,
        FlowKind::Rotate,
        FlowKind::Initiate,
        FlowKind::Converse,
        FlowKind::Fanout,
        FlowKind::Offline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Register => "register",
            FlowKind::Replenish => "replenish",
            FlowKind::Rotate => "rotate",
            FlowKind::Initiate => "initiate",
            FlowKind::Converse => "converse",
            FlowKind::Fanout => "fanout",
            FlowKind::Offline => "offline",
        }
    }
}
