//! The kinds of flow a scenario mixes: ids only. What each flow is (its `[mix]` key, its
//! operation, what it records and needs, how it runs) is defined once, in
//! [`crate::client::flows::FLOWS`].

use crate::client::flows::Flow;

/// One kind of flow (a sequence of protocol steps by virtual devices); indexes
/// [`crate::client::flows::FLOWS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowKind {
    Register = 0,
    Replenish = 1,
    Rotate = 2,
    Initiate = 3,
    Converse = 4,
    Fanout = 5,
    Offline = 6,
    Fetch = 7,
}

impl FlowKind {
    pub const COUNT: usize = 8;
    pub const ALL: [FlowKind; FlowKind::COUNT] = [
        FlowKind::Register,
        FlowKind::Replenish,
        FlowKind::Rotate,
        FlowKind::Initiate,
        FlowKind::Converse,
        FlowKind::Fanout,
        FlowKind::Offline,
        FlowKind::Fetch,
    ];

    /// Its `[mix]` key.
    pub fn name(self) -> &'static str {
        Flow::of(self).name
    }

    /// The flow whose `[mix]` key is `name`.
    pub fn from_name(name: &str) -> Option<FlowKind> {
        FlowKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow_table_is_indexed_by_kind() {
        for k in FlowKind::ALL {
            assert_eq!(Flow::of(k).kind, k);
            assert_eq!(Flow::of(k).op_name, format!("flow_{}", k.name()));
            assert_eq!(FlowKind::from_name(k.name()), Some(k));
        }
    }
}
