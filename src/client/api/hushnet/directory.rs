//! What the dialect remembers that HushNet's answers leave out, shared by every virtual
//! device of a run (one [`Directory`] per client):
//!
//! - device numbers: HushNet names devices by UUID; the server-API layer by a number per
//!   user (1, 2, … in the order this client first saw them);
//! - one-time prekeys handed out: a session initiation names the one-time prekey it used by
//!   its key (`otpk_used`), while our X3DH initial message names it by id;
//! - chats: a message goes to a chat id, which HushNet creates when a session is confirmed
//!   and a client finds with `GET /chats`;
//! - one spare enrollment (user id and single-use token) for the raw device-registration
//!   example of the conformance suite.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use uuid::Uuid;

#[derive(Default)]
struct Devices {
    by_uuid: HashMap<Uuid, (Uuid, u32)>,
    by_number: HashMap<(Uuid, u32), Uuid>,
    last: HashMap<Uuid, u32>,
}

/// See the module doc.
#[derive(Default)]
pub struct Directory {
    devices: Mutex<Devices>,
    one_time: Mutex<HashMap<(Uuid, u32), [u8; 32]>>,
    chats: Mutex<HashMap<(Uuid, Uuid), Uuid>>,
    enrollment: Mutex<Option<(Uuid, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Directory {
    /// The number of `device` of `user`, given on first sight.
    pub fn number(&self, user: Uuid, device: Uuid) -> u32 {
        let mut d = lock(&self.devices);
        if let Some((_, n)) = d.by_uuid.get(&device) {
            return *n;
        }
        let n = {
            let last = d.last.entry(user).or_insert(0);
            *last += 1;
            *last
        };
        d.by_uuid.insert(device, (user, n));
        d.by_number.insert((user, n), device);
        n
    }

    /// The user and number of a device this client has seen.
    pub fn known(&self, device: Uuid) -> Option<(Uuid, u32)> {
        lock(&self.devices).by_uuid.get(&device).copied()
    }

    /// The UUID of device `number` of `user`.
    pub fn uuid(&self, user: Uuid, number: u32) -> Option<Uuid> {
        lock(&self.devices).by_number.get(&(user, number)).copied()
    }

    /// Remembers the one-time prekey `key` (id `key_id`) handed out for `device`.
    pub fn handed_out(&self, device: Uuid, key_id: u32, key: [u8; 32]) {
        lock(&self.one_time).insert((device, key_id), key);
    }

    /// The one-time prekey of `device` with id `key_id`, if one was handed out here.
    pub fn one_time(&self, device: Uuid, key_id: u32) -> Option<[u8; 32]> {
        lock(&self.one_time).get(&(device, key_id)).copied()
    }

    pub fn chat(&self, me: Uuid, peer: Uuid) -> Option<Uuid> {
        lock(&self.chats).get(&(me, peer)).copied()
    }

    pub fn set_chat(&self, me: Uuid, peer: Uuid, chat: Uuid) {
        lock(&self.chats).insert((me, peer), chat);
    }

    pub fn stock_enrollment(&self, user: Uuid, token: String) {
        *lock(&self.enrollment) = Some((user, token));
    }

    pub fn take_enrollment(&self) -> Option<(Uuid, String)> {
        lock(&self.enrollment).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_numbered_per_user_in_order_of_first_sight() {
        let d = Directory::default();
        let (alice, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (a1, a2, b1) = (
            Uuid::from_u128(11),
            Uuid::from_u128(12),
            Uuid::from_u128(21),
        );
        assert_eq!(d.number(alice, a1), 1);
        assert_eq!(d.number(bob, b1), 1);
        assert_eq!(d.number(alice, a2), 2);
        assert_eq!(d.number(alice, a1), 1, "stable");
        assert_eq!(d.uuid(alice, 2), Some(a2));
        assert_eq!(d.known(b1), Some((bob, 1)));
        assert_eq!(d.uuid(bob, 2), None);
    }
}
