//! Stored message keys of skipped messages (Double Ratchet §3.2 `MKSKIPPED`), bounded per
//! session by [`MAX_STORED_SKIPPED_KEYS`]: the oldest goes first when the store is full.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::crypto::bytes::{hex_array, Secret32};
use crate::crypto::params::MAX_STORED_SKIPPED_KEYS;

/// One skipped message key, indexed by the sender's ratchet public key and message number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SkippedKey {
    #[serde(with = "hex_array")]
    pub(crate) dh: [u8; 32],
    pub(crate) n: u32,
    pub(crate) mk: Secret32,
}

/// Skipped keys in insertion order (oldest first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct SkippedKeys(VecDeque<SkippedKey>);

impl SkippedKeys {
    pub(crate) fn position(&self, dh: &[u8; 32], n: u32) -> Option<usize> {
        self.0.iter().position(|k| k.n == n && &k.dh == dh)
    }

    pub(crate) fn get(&self, index: usize) -> &SkippedKey {
        &self.0[index]
    }

    pub(crate) fn remove(&mut self, index: usize) {
        self.0.remove(index);
    }

    /// Adds keys, deleting the oldest stored ones beyond the per-session cap.
    pub(crate) fn extend(&mut self, keys: Vec<SkippedKey>) {
        for key in keys {
            if self.0.len() == MAX_STORED_SKIPPED_KEYS {
                self.0.pop_front();
            }
            self.0.push_back(key);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}
