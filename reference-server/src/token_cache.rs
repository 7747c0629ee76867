//! Bearer token → device, remembered in memory, so an authenticated request costs one database
//! round trip (its statement) instead of two (the token lookup, then the statement).
//!
//! Why it is safe: a device's token hash and identity never change; the only way a token stops
//! being valid is that its device row is deleted. Every deletion fires the `devices_removed`
//! notification (trigger of migration 0002, also for cascades from `users`), which every
//! instance's LISTEN connection hears and evicts by device row; the instance that served the
//! removal also evicts at once, before it answers. While the LISTEN connection is down nothing
//! is heard, so the listener clears the whole cache when it reconnects. What remains is the
//! delay of one notification between instances, the same window the uncached lookup had
//! between its SELECT and the request's statement.
//!
//! A lookup that raced with an eviction is not stored (generation check), so an eviction can
//! never be undone by a slow lookup that read the row just before it was deleted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::auth::Device;

/// More entries than this and the cache starts over (a memory bound, not a policy: a working
/// set this large is re-read from the database at one round trip per device).
const MAX_ENTRIES: usize = 100_000;

/// The cache; one per server instance.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], Device>>,
    /// Bumped by every eviction; a lookup stores its result only if it did not change.
    generation: AtomicU64,
}

impl TokenCache {
    pub fn get(&self, hash: &[u8; 32]) -> Option<Device> {
        self.lock().get(hash).cloned()
    }

    /// The generation to pass to [`TokenCache::insert`]; read it *before* the database lookup.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers `device`, unless an eviction happened since `generation` was read.
    pub fn insert(&self, hash: [u8; 32], device: Device, generation: u64) {
        let mut entries = self.lock();
        // Checked under the lock that evictions also take, so none can slip in between.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, device);
    }

    /// Forgets the device with row id `row` (removed).
    pub fn evict(&self, row: i64) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, d| d.row != row);
    }

    /// Forgets everything (the removal notifications may have been missed).
    pub fn clear(&self) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Device>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn device(row: i64) -> Device {
        Device {
            row,
            user_id: Uuid::nil(),
            device_id: 1,
            identity_key: [0; 32],
        }
    }

    #[test]
    fn evicting_a_row_forgets_its_token() {
        let cache = TokenCache::default();
        let g = cache.generation();
        cache.insert([1; 32], device(1), g);
        cache.insert([2; 32], device(2), g);
        cache.evict(1);
        assert!(cache.get(&[1; 32]).is_none());
        assert_eq!(cache.get(&[2; 32]).map(|d| d.row), Some(2));
    }

    #[test]
    fn a_lookup_older_than_an_eviction_is_not_stored() {
        let cache = TokenCache::default();
        let before = cache.generation();
        cache.evict(7); // the device was removed while the lookup was in flight
        cache.insert([7; 32], device(7), before);
        assert!(cache.get(&[7; 32]).is_none());
        cache.clear();
        assert!(cache.is_empty());
    }
}
