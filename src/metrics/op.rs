//! The operations the harness times. Their names are the keys of `report.json`'s
//! `operations` and of scenario budgets, so they never change once released.

use crate::scenario::FlowKind;

/// One timed operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `GET /v1/keys/{user}`: a prekey-bundle fetch (claims one-time prekeys).
    BundleFetch,
    /// A key upload: registration (identity, signed and one-time prekeys), a one-time prekey
    /// batch, or a signed-prekey rotation.
    KeyInsert,
    /// `GET /v1/keys/count`.
    KeyCount,
    /// Encrypt for every recipient device, then `PUT /v1/messages` until the server acknowledges.
    MessageInsert,
    /// From the sender's intended start until a live recipient device has decrypted it.
    Delivery,
    /// WebSocket upgrade until the server's `queue_empty`.
    WsConnect,
    /// Offline flow: reconnect until every message queued while offline is decrypted.
    OfflineDrain,
    /// A whole flow, timed from its intended start.
    Flow(FlowKind),
}

impl Op {
    /// The operations that are not whole flows, in report order.
    const STEPS: [Op; 7] = [
        Op::BundleFetch,
        Op::KeyInsert,
        Op::KeyCount,
        Op::MessageInsert,
        Op::Delivery,
        Op::WsConnect,
        Op::OfflineDrain,
    ];

    /// Every operation, in report order: the steps, then one per flow.
    pub const ALL: [Op; Op::STEPS.len() + FlowKind::COUNT] = {
        let mut all = [Op::BundleFetch; Op::STEPS.len() + FlowKind::COUNT];
        let mut i = 0;
        while i < all.len() {
            all[i] = if i < Op::STEPS.len() {
                Op::STEPS[i]
            } else {
                Op::Flow(FlowKind::ALL[i - Op::STEPS.len()])
            };
            i += 1;
        }
        all
    };
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// Dense index into per-operation arrays.
    pub(crate) fn index(self) -> usize {
        match self {
            Op::BundleFetch => 0,
            Op::KeyInsert => 1,
            Op::KeyCount => 2,
            Op::MessageInsert => 3,
            Op::Delivery => 4,
            Op::WsConnect => 5,
            Op::OfflineDrain => 6,
            Op::Flow(f) => Op::STEPS.len() + f as usize,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::BundleFetch => "bundle_fetch",
            Op::KeyInsert => "key_insert",
            Op::KeyCount => "key_count",
            Op::MessageInsert => "message_insert",
            Op::Delivery => "delivery",
            Op::WsConnect => "ws_connect",
            Op::OfflineDrain => "offline_drain",
            Op::Flow(kind) => crate::client::flows::Flow::of(kind).op_name,
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_names_round_trip() {
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
        assert_eq!(Op::from_name("bundle_fetc"), None);
    }
}
